package local

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/keys/keystore"
)

// oldWallet writes a wallet as the server did before keyed files: a
// version 1 file under Argon2id (Params) of a random secret, the secret
// sealed in the row.
func oldWallet(t testing.TB, s *Signer, id string) (*countersign.Wallet, []byte) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	raw := crypto.FromECDSA(key)
	addr := crypto.PubkeyToAddress(key.PublicKey).Hex()
	secret := make([]byte, 32)
	rand.Read(secret)
	meta, _ := json.Marshal(fileMeta{WalletID: id, Kind: KindAPI, Curve: "secp256k1", Address: addr})
	if err := keystore.Put(ctx, s.keys, id, raw, secret, meta, Params); err != nil {
		t.Fatal(err)
	}
	sealed, err := s.sealer.Seal(secretRecord(id), secret)
	if err != nil {
		t.Fatal(err)
	}
	return &countersign.Wallet{ID: id, Address: addr, KeyFormat: countersign.WalletKeyKDB, KeySealed: sealed}, raw
}

// A file of the old format (Argon2id) still opens, and the first signature
// rewrites it as a keyed file under the same secret: the row does not
// change, and the next signatures skip the KDF.
func TestOldFormatFileOpensAndIsUpgraded(t *testing.T) {
	s, dir := newSigner(t)
	w, raw := oldWallet(t, s, "old1")
	before, _ := dir.Get(ctx, "old1")
	if h, err := keystore.ReadHeader(before); err != nil || h.Keyed() || h.Params != Params {
		t.Fatalf("the old file: %+v %v", h, err)
	}
	if err := signsAs(t, s, w); err != nil {
		t.Fatalf("old-format file: %v", err)
	}
	after, _ := dir.Get(ctx, "old1")
	h, err := keystore.ReadHeader(after)
	if err != nil || !h.Keyed() || h.Params != (keystore.Params{}) {
		t.Fatalf("not upgraded: %+v %v", h, err)
	}
	if !bytes.Equal(h.Meta, mustHeader(t, before).Meta) {
		t.Fatalf("metadata changed: %s", h.Meta)
	}
	// the same key under the same secret (the row's envelope is unchanged)
	secret, err := s.sealer.Open(secretRecord("old1"), w.KeySealed)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := keystore.DecryptKeyed(after, secret, "old1")
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("the keyed file holds another key: %v", err)
	}
	if err := signsAs(t, s, w); err != nil {
		t.Fatalf("after the upgrade: %v", err)
	}
	if again, _ := dir.Get(ctx, "old1"); !bytes.Equal(again, after) {
		t.Fatal("a keyed file was rewritten again")
	}
}

// The upgrade fails closed: when the keyed file cannot be written, the
// signature is refused and the old file stays as it was.
func TestOldFormatUpgradeFailsClosed(t *testing.T) {
	s, dir := newSigner(t)
	w, _ := oldWallet(t, s, "old2")
	before, _ := dir.Get(ctx, "old2")
	s.keys = failingPut{dir}
	if err := signsAs(t, s, w); countersign.ErrorCode(err) != countersign.Internal {
		t.Fatalf("signed although the upgrade failed: %v", err)
	}
	if now, _ := dir.Get(ctx, "old2"); !bytes.Equal(now, before) {
		t.Fatal("the old file changed")
	}
}

type failingPut struct{ keystore.Dir }

func (failingPut) Put(context.Context, string, []byte, func([]byte) error) error {
	return errors.New("disk full")
}

// TestSecurity_KeyedFileBoundToItsWallet: a keyed file's key is derived
// with the wallet id, so a file copied under another wallet's id (with its
// metadata edited to match) does not open even with the right secret, and
// a keyed file never opens through the password path, which would let a
// planted file skip the KDF of a password wallet.
func TestSecurity_KeyedFileBoundToItsWallet(t *testing.T) {
	s, dir := newSigner(t)
	a := newWallet(t, s, "ka")
	blob, _ := dir.Get(ctx, "ka")
	secret, err := s.sealer.Open(secretRecord("ka"), a.KeySealed)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := keystore.DecryptKeyed(blob, secret, "ka"); err != nil {
		t.Fatalf("own id: %v", err)
	}
	if _, _, err := keystore.DecryptKeyed(blob, secret, "kb"); !errors.Is(err, keystore.ErrDecrypt) {
		t.Fatalf("opened under another id: %v", err)
	}
	if _, _, err := keystore.Decrypt(blob, secret); err == nil {
		t.Fatal("a keyed file opened with its secret as a password")
	}
	// b's row sealed with a's secret and a file copied from a's: refused
	sealedB, _ := s.sealer.Seal(secretRecord("kb"), secret)
	os.WriteFile(filepath.Join(dir.Path, "kb.kdb"), bytes.ReplaceAll(blob, []byte(`"ka"`), []byte(`"kb"`)), 0o600)
	if err := signsAs(t, s, &countersign.Wallet{ID: "kb", Address: a.Address, KeyFormat: countersign.WalletKeyKDB, KeySealed: sealedB}); err == nil {
		t.Fatal("a's file signed as wallet kb")
	}
}

func mustHeader(t *testing.T, b []byte) *keystore.Header {
	t.Helper()
	h, err := keystore.ReadHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// BenchmarkSignOpen is what a signature costs with the key's file opened
// for it: a keyed file (HKDF) against an old one (Argon2id, 8 MiB; the
// rewrite is discarded so every signature pays the KDF, as before).
func BenchmarkSignOpen(b *testing.B) {
	for _, name := range []string{"keyed", "argon2id-v1"} {
		b.Run(name, func(b *testing.B) {
			s, dir := newSigner(b)
			w := newWallet(b, s, "bw")
			if name != "keyed" {
				w, _ = oldWallet(b, s, "bw1")
				s.keys = discardPut{dir}
			}
			hash := crypto.Keccak256([]byte("x"))
			for b.Loop() {
				if _, err := s.SignHash(ctx, w, hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

type discardPut struct{ keystore.Dir }

func (discardPut) Put(context.Context, string, []byte, func([]byte) error) error { return nil }
