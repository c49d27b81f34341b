package core

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"math/big"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/store/sqlite"
)

type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// Lock and TTL expiry overwrite the secret in memory, not just forget it.
func TestDaemonZeroesSecrets(t *testing.T) {
	d, ctx := newTestDaemon(t)
	d.cfg.UnlockTTL = time.Minute
	clock := d.svc.clock.(*fixedClock)
	id, _, err := d.CreateWallet(ctx, "w", "pw", 12)
	if err != nil {
		t.Fatal(err)
	}
	secretOf := func() []byte {
		if _, err := d.Unlock(ctx, id, "pw"); err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.unlocked[id].secret
	}
	s := secretOf()
	if bytes.Equal(s, make([]byte, len(s))) {
		t.Fatal("secret is zero while unlocked")
	}
	a, err := d.Derive(ctx, id, "", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.SignMessage(ctx, a.ID, []byte("m")); err != nil {
		t.Fatal(err)
	}
	ec, err := d.Derive(ctx, id, CurveSecp256k1, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.SignMessage(ctx, ec.ID, []byte("m")); err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	kv, _ := d.unlocked[id].keys.Load(a.ID)
	kecv, _ := d.unlocked[id].keys.Load(ec.ID)
	k, _ := kv.(*accountKey)
	kec, _ := kecv.(*accountKey)
	d.mu.Unlock()
	if k == nil || len(k.raw) != 32 || len(k.ed) != 64 || kec == nil || kec.ec == nil || zeroWords(scalarWords(kec.ec)) {
		t.Fatal("the derived keys are not cached while unlocked")
	}
	edKey := k.ed
	if n, _ := d.Lock(ctx, ""); n != 1 || !bytes.Equal(s, make([]byte, len(s))) || !bytes.Equal(k.raw, make([]byte, 32)) ||
		!bytes.Equal(edKey, make([]byte, 64)) || !zeroWords(scalarWords(kec.ec)) || !bytes.Equal(kec.raw, make([]byte, 32)) {
		t.Fatal("lock did not zero the seed and the derived keys")
	}
	if _, err := d.SignMessage(ctx, a.ID, []byte("m")); countersign.ErrorCode(err) != WalletLocked {
		t.Fatalf("signed after lock: %v", err)
	}
	s = secretOf()
	clock.mu.Lock()
	clock.t = clock.t.Add(61 * time.Second)
	clock.mu.Unlock()
	d.Sweep()
	if !bytes.Equal(s, make([]byte, len(s))) {
		t.Fatal("TTL expiry did not zero the secret")
	}
	if _, err := d.Derive(ctx, id, "", "", nil); err == nil {
		t.Fatal("derived from an expired unlock")
	}
}

func newTestDaemon(t *testing.T) (*Daemon, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	svc := &Service{store: st, clock: &fixedClock{t: time.Unix(1_800_000_000, 0)}, broker: NewBroker()}
	svc.commits = newGroupCommit(svc, 64)
	t.Cleanup(svc.Close)
	d := NewDaemon(svc, keystore.Dir{Path: filepath.Join(t.TempDir(), "ks")}, DaemonConfig{UnlockTTL: time.Hour,
		Argon2: keystore.Params{Time: 1, MemoryKiB: 8 << 10, Threads: 1}, SignRate: 1e9, SignBurst: 1e9})
	t.Cleanup(d.Close)
	return d, ctx
}

// unlockedAccount creates an HD wallet (password "pw"), unlocks it and
// derives its default ed25519 account.
func unlockedAccount(t *testing.T, d *Daemon, ctx context.Context) (string, *countersign.DaemonAccount) {
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

// Concurrent signatures share commits, and every one of them is in the
// audit chain and the outbox exactly once, with the chain intact.
func TestDaemonGroupCommit(t *testing.T) {
	d, ctx := newTestDaemon(t)
	_, a := unlockedAccount(t, d, ctx)
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := d.SignMessage(ctx, a.ID, []byte{byte(w), byte(i)})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, err := d.svc.store.AuditEntries(ctx, DaemonOwner, 0, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	signs := 0
	for _, e := range entries {
		if e.Action == "daemon.sign.message" {
			signs++
		}
	}
	if signs != workers*each {
		t.Fatalf("%d signature audit entries, want %d", signs, workers*each)
	}
	if _, err := VerifyAudit(ctx, d.svc.store); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	evs, _ := d.svc.store.EventsAfter(ctx, DaemonOwner, 0, 10_000)
	signed := 0
	for _, ev := range evs {
		if ev.Type == "signed" {
			signed++
		}
	}
	if signed != workers*each {
		t.Fatalf("%d signed events, want %d", signed, workers*each)
	}
}

// One failing piece of a batch fails only its own caller.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	d, ctx := newTestDaemon(t)
	g := d.commits
	bad := countersign.Errorf(countersign.Conflict, "bad piece")
	var wg sync.WaitGroup
	results := make([]error, 40)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = g.do(ctx, func(ctx context.Context) error {
				if i%7 == 3 {
					return bad
				}
				return d.svc.audit(ctx, DaemonOwner, "test", "test.piece", "p", map[string]int{"i": i})
			})
		}()
	}
	wg.Wait()
	for i, err := range results {
		if (i%7 == 3) != (err != nil) {
			t.Fatalf("piece %d: %v", i, err)
		}
	}
	entries, _ := d.svc.store.AuditEntries(ctx, DaemonOwner, 0, 1000)
	if want := 40 - 6; len(entries) != want {
		t.Fatalf("%d audit entries, want %d", len(entries), want)
	}
}

// Locking while other goroutines sign never yields a signature made with
// a zeroed key: every signature either verifies or the call says locked.
func TestDaemonLockWhileSigning(t *testing.T) {
	d, ctx := newTestDaemon(t)
	id, a := unlockedAccount(t, d, ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, locked := 0, 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sm, err := d.SignMessage(ctx, a.ID, []byte("m"))
				mu.Lock()
				switch {
				case err == nil && ed25519.Verify(a.PublicKey, []byte("m"), sm.Signature):
					ok++
				case countersign.ErrorCode(err) == WalletLocked:
					locked++
				default:
					mu.Unlock()
					t.Errorf("bad signature or error: %v", err)
					return
				}
				mu.Unlock()
			}
		}()
	}
	for range 20 {
		time.Sleep(2 * time.Millisecond)
		d.Lock(ctx, id)
		time.Sleep(time.Millisecond)
		if _, err := d.Unlock(ctx, id, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if ok == 0 {
		t.Fatal("no signature succeeded")
	}
}

func zeroWords(ws []big.Word) bool {
	for _, w := range ws {
		if w != 0 {
			return false
		}
	}
	return true
}

// Closing answers every queued caller, and later callers still commit.
func TestGroupCommitClose(t *testing.T) {
	d, ctx := newTestDaemon(t)
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = d.commits.do(ctx, func(ctx context.Context) error {
				return d.svc.audit(ctx, DaemonOwner, "test", "test.close", "p", nil)
			})
		}()
	}
	d.Close()
	wg.Wait()
	if err := d.commits.do(ctx, func(ctx context.Context) error {
		return d.svc.audit(ctx, DaemonOwner, "test", "test.after", "p", nil)
	}); err != nil {
		t.Fatal(err)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, err := VerifyAudit(ctx, d.svc.store); err != nil || n != 51 {
		t.Fatalf("audit: %d entries, %v", n, err)
	}
	d.Close() // twice is fine
}

// scalarWords is a secp256k1 key's private scalar, to check it is zeroed.
func scalarWords(k *ecdsa.PrivateKey) []big.Word {
	//lint:ignore SA1019 go-ethereum keys only exist as D; zeroing it is what is tested
	return k.D.Bits()
}

// Work submitted from inside a transaction joins it instead of waiting for
// the worker (which would wait for the caller's writer: a deadlock), and
// rolls back with it.
func TestGroupCommitInsideATransaction(t *testing.T) {
	d, ctx := newTestDaemon(t)
	boom := countersign.Errorf(countersign.Conflict, "roll back")
	done := make(chan error, 1)
	go func() {
		done <- d.svc.inTx(ctx, func(ctx context.Context) error {
			if err := d.commits.do(ctx, func(ctx context.Context) error {
				return d.svc.audit(ctx, DaemonOwner, "test", "test.nested", "p", nil)
			}); err != nil {
				return err
			}
			return boom
		})
	}()
	select {
	case err := <-done:
		if err != boom {
			t.Fatalf("transaction: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("deadlock: a nested submit waited for the worker")
	}
	if entries, _ := d.svc.store.AuditEntries(ctx, DaemonOwner, 0, 10); len(entries) != 0 {
		t.Fatal("the nested work survived its transaction's rollback")
	}
}

// Audit entries written outside the commit worker, between its batches,
// make its remembered chain head stale; the chain must still never fork
// and no entry may be lost.
func TestGroupCommitStaleHead(t *testing.T) {
	d, ctx := newTestDaemon(t)
	_, a := unlockedAccount(t, d, ctx)
	before, _ := d.svc.store.AuditEntries(ctx, DaemonOwner, 0, 1000)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if w%2 == 0 {
					_, err := d.SignMessage(ctx, a.ID, []byte{byte(w), byte(i)})
					errs <- err
				} else {
					errs <- d.audit(ctx, "test.outside", "x", map[string]int{"i": i})
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, _ := d.svc.store.AuditEntries(ctx, DaemonOwner, 0, 10_000)
	if got, want := len(entries)-len(before), 200; got != want {
		t.Fatalf("%d new audit entries, want %d", got, want)
	}
	if _, err := VerifyAudit(ctx, d.svc.store); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
}
