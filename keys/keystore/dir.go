package keystore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/countersign/countersign"
)

// Dir is the KeyStore of the AITBC wallet-daemon design's layout: one <wallet_id>.kdb per wallet
// in a 0700 directory.
type Dir struct{ Path string }

var _ countersign.KeyStore = Dir{}

var walletIDRE = regexp.MustCompile(`^[a-zA-Z0-9-]{1,64}$`)

func (d Dir) file(id string) (string, error) {
	if !walletIDRE.MatchString(id) { // never a path from outside
		return "", countersign.Errorf(countersign.BadRequest, "invalid wallet id")
	}
	return filepath.Join(d.Path, id+".kdb"), nil
}

// Put writes atomically (see writeAtomic): temp file (0600), fsync,
// verify(read-back), rename, directory fsync.
func (d Dir) Put(_ context.Context, id string, blob []byte, verify func([]byte) error) error {
	path, err := d.file(id)
	if err != nil {
		return err
	}
	return writeAtomic(path, blob, verify)
}

// Get reads a wallet's file.
func (d Dir) Get(_ context.Context, id string) ([]byte, error) {
	path, err := d.file(id)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, countersign.Errorf(countersign.NotFound, "wallet not found")
	}
	return b, err
}

// List returns the wallet ids with a file.
func (d Dir) List(_ context.Context) ([]string, error) {
	entries, err := os.ReadDir(d.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), ".kdb"); ok && !strings.HasPrefix(e.Name(), ".") && walletIDRE.MatchString(id) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// DB is the KeyStore that keeps the same bytes in the database, so several
// replicas share the wallets.
type DB struct{ Store countersign.Store }

var _ countersign.KeyStore = DB{}

// Put stores the blob in one transaction, verified before it commits.
func (d DB) Put(ctx context.Context, id string, blob []byte, verify func([]byte) error) error {
	if !walletIDRE.MatchString(id) {
		return countersign.Errorf(countersign.BadRequest, "invalid wallet id")
	}
	return d.Store.InTx(ctx, func(ctx context.Context) error {
		if err := d.Store.PutKeyBlob(ctx, id, blob); err != nil {
			return err
		}
		back, err := d.Store.KeyBlob(ctx, id)
		if err != nil {
			return err
		}
		if verify != nil {
			return verify(back)
		}
		return nil
	})
}

// Get reads a wallet's blob.
func (d DB) Get(ctx context.Context, id string) ([]byte, error) { return d.Store.KeyBlob(ctx, id) }

// List returns every wallet id.
func (d DB) List(ctx context.Context) ([]string, error) { return d.Store.KeyBlobIDs(ctx) }
