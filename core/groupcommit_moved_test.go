package core

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/store/sqlite"
)

// The group commit's own tests, moved here from the daemon's tests when
// the daemon left core (package daemon tests it through Recorder).

type fixedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fixedClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// newCommitService is a Service with only what the group commit needs: a
// store, a clock, the broker and the commit worker.
func newCommitService(t *testing.T) (*Service, context.Context) {
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
	return svc, ctx
}

const testOwner = "daemon"

// One failing piece of a batch fails only its own caller.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	svc, ctx := newCommitService(t)
	g := svc.commits
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
				return svc.audit(ctx, testOwner, "test", "test.piece", "p", map[string]int{"i": i})
			})
		}()
	}
	wg.Wait()
	for i, err := range results {
		if (i%7 == 3) != (err != nil) {
			t.Fatalf("piece %d: %v", i, err)
		}
	}
	entries, _ := svc.store.AuditEntries(ctx, testOwner, 0, 1000)
	if want := 40 - 6; len(entries) != want {
		t.Fatalf("%d audit entries, want %d", len(entries), want)
	}
}

// Closing answers every queued caller, and later callers still commit.
func TestGroupCommitClose(t *testing.T) {
	svc, ctx := newCommitService(t)
	var wg sync.WaitGroup
	errs := make([]error, 50)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = svc.commits.do(ctx, func(ctx context.Context) error {
				return svc.audit(ctx, testOwner, "test", "test.close", "p", nil)
			})
		}()
	}
	svc.Close()
	wg.Wait()
	if err := svc.commits.do(ctx, func(ctx context.Context) error {
		return svc.audit(ctx, testOwner, "test", "test.after", "p", nil)
	}); err != nil {
		t.Fatal(err)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n, err := VerifyAudit(ctx, svc.store); err != nil || n != 51 {
		t.Fatalf("audit: %d entries, %v", n, err)
	}
	svc.Close() // twice is fine
}

// Work submitted from inside a transaction joins it instead of waiting for
// the worker (which would wait for the caller's writer: a deadlock), and
// rolls back with it.
func TestGroupCommitInsideATransaction(t *testing.T) {
	svc, ctx := newCommitService(t)
	boom := countersign.Errorf(countersign.Conflict, "roll back")
	done := make(chan error, 1)
	go func() {
		done <- svc.inTx(ctx, func(ctx context.Context) error {
			if err := svc.commits.do(ctx, func(ctx context.Context) error {
				return svc.audit(ctx, testOwner, "test", "test.nested", "p", nil)
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
	if entries, _ := svc.store.AuditEntries(ctx, testOwner, 0, 10); len(entries) != 0 {
		t.Fatal("the nested work survived its transaction's rollback")
	}
}

// Audit entries written outside the commit worker, between its batches,
// make its remembered chain head stale; the chain must still never fork
// and no entry may be lost. (Half the writers are group-committed records
// — as the daemon's signatures are — and half write alone.)
func TestGroupCommitStaleHead(t *testing.T) {
	svc, ctx := newCommitService(t)
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				if w%2 == 0 {
					errs <- svc.Record(ctx, countersign.Change{Owner: testOwner, Actor: "operator", Action: "daemon.sign.message", Subject: "a",
						Details: map[string]int{"w": w, "i": i}, Events: []countersign.ChangeEvent{{Type: "signed", Subject: "a"}}}, nil)
				} else {
					errs <- svc.inTx(ctx, func(ctx context.Context) error {
						return svc.audit(ctx, testOwner, "operator", "test.outside", "x", map[string]int{"i": i})
					})
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
	entries, _ := svc.store.AuditEntries(ctx, testOwner, 0, 10_000)
	if got, want := len(entries), 200; got != want {
		t.Fatalf("%d audit entries, want %d", got, want)
	}
	if _, err := VerifyAudit(ctx, svc.store); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
}
