package core

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/keys/envelope"
	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/signer/local"
	"github.com/countersign/countersign/store/sqlite"
)

// openTestStore opens a fresh SQLite store and a sealer under a random
// key-encryption key.
func openTestStore(t *testing.T) (*sqlite.Store, countersign.Sealer) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, kek); err != nil {
		t.Fatal(err)
	}
	sealer, err := envelope.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	return st, sealer
}

// newStubService assembles a Service on a fresh store, the local signer,
// cheap Argon2, a fixed clock and chain ch.
func newStubService(t *testing.T, ch countersign.Chain) (*Service, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, sealer := openTestStore(t)
	svc, err := New(ctx, st, ch, local.New(sealer, keystore.Dir{Path: filepath.Join(t.TempDir(), "ks")}), sealer,
		&fixedClock{t: time.Unix(1_800_000_000, 0)}, slog.New(slog.NewTextHandler(io.Discard, nil)),
		Config{Argon2: auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	return svc, ctx
}
