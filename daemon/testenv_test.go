package daemon

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/envelope"
	"github.com/countersign/countersign/keys/keystore"
	hdsigner "github.com/countersign/countersign/signer/hd"
	"github.com/countersign/countersign/signer/local"
	"github.com/countersign/countersign/store/sqlite"
)

// The daemon's tests run it as the server does: over the real keyring
// (signer/hd), a SQLite store, and core.Service as its Recorder (so
// signatures are group-committed), with a clock the test moves.

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *testClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// stubChain answers the chain id core asks for at start; the daemon uses
// no chain.
type stubChain struct{ countersign.Chain }

func (stubChain) ChainID(context.Context) (*big.Int, error) { return big.NewInt(31337), nil }

type testEnv struct {
	d     *Service
	keys  *hdsigner.Keyring
	svc   *core.Service
	st    countersign.Store
	clock *testClock
	ks    countersign.KeyStore
}

// fastArgon is the cheapest cost the v1-kdb format takes.
var fastArgon = keystore.Params{Time: 1, MemoryKiB: 8 << 10, Threads: 1}

func newTestEnv(t testing.TB, cfg Config) (*testEnv, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, 32)
	_, _ = io.ReadFull(rand.Reader, kek)
	sealer, err := envelope.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	ks := keystore.Dir{Path: filepath.Join(t.TempDir(), "ks")}
	clock := &testClock{t: time.Unix(1_800_000_000, 0)}
	svc, err := core.New(ctx, st, stubChain{}, local.New(sealer, ks), sealer, clock, slog.New(slog.NewTextHandler(io.Discard, nil)),
		core.Config{Argon2: auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	keys := hdsigner.New(ks, clock, hdsigner.Config{Argon2: fastArgon})
	if cfg.UnlockTTL == 0 {
		cfg.UnlockTTL = time.Hour
	}
	if cfg.SignRate == 0 {
		cfg.SignRate, cfg.SignBurst = 1e9, 1e9
	}
	d := New(st, keys, svc, clock, cfg)
	t.Cleanup(d.Close)
	return &testEnv{d: d, keys: keys, svc: svc, st: st, clock: clock, ks: ks}, ctx
}

func newTestDaemon(t testing.TB) (*Service, context.Context) {
	e, ctx := newTestEnv(t, Config{})
	return e.d, ctx
}

// unlockedAccount creates an HD wallet (password "pw"), unlocks it and
// derives its default ed25519 account.
func unlockedAccount(t testing.TB, d *Service, ctx context.Context) (string, *countersign.DaemonAccount) {
	t.Helper()
	id, _, err := d.CreateWallet(ctx, "w", "pw", 12)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Unlock(ctx, id, "pw"); err != nil {
		t.Fatal(err)
	}
	a, err := d.Derive(ctx, id, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	return id, a
}

// auditActions counts the daemon chain's entries by action.
func auditActions(t testing.TB, st countersign.Store) map[string]int {
	t.Helper()
	entries, err := st.AuditEntries(context.Background(), Owner, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range entries {
		n[e.Action]++
	}
	return n
}

// eventTypes counts the daemon outbox's events by type.
func eventTypes(t testing.TB, st countersign.Store) map[string]int {
	t.Helper()
	evs, err := st.EventsAfter(context.Background(), Owner, 0, 100_000)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range evs {
		n[e.Type]++
	}
	return n
}
