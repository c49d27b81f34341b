package core

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// Grouped state changes (changeGrouped): concurrent changes share one
// transaction, each under a savepoint; a part that fails is undone without
// touching the others and runs again alone; chains and events come out as
// if every change had committed alone.

// groupedChangeTest runs n concurrent grouped changes over two owners.
// Change i writes a ledger row (its "state") and states one audit entry and
// one event; fail(i, run) makes its run number run (1, 2, …) fail.
func groupedChangeTest(t *testing.T, n int, fail func(i, run int) error) (*Service, []error, []int32) {
	t.Helper()
	svc, ctx := newCommitService(t)
	if svc.commits.changes == nil {
		t.Fatal("the SQLite store does not group changes (no Savepointer)")
	}
	errs := make([]error, n)
	runs := make([]atomic.Int32, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = svc.changeGrouped(ctx, func(ctx context.Context, cs *changeSet) error {
				run := int(runs[i].Add(1))
				if err := svc.store.LedgerMove(ctx, "", fmt.Sprintf("acct-%d", i), big.NewInt(1)); err != nil {
					return err
				}
				cs.add(countersign.Change{Owner: fmt.Sprintf("owner-%d", i%2), Actor: "test", Action: "test.change", Subject: fmt.Sprint(i),
					Events: []countersign.ChangeEvent{{Type: "test.changed", Subject: fmt.Sprint(i)}}})
				return fail(i, run)
			})
		}()
	}
	close(start)
	wg.Wait()
	counts := make([]int32, n)
	for i := range runs {
		counts[i] = runs[i].Load()
	}
	return svc, errs, counts
}

// committed checks what the store holds after groupedChangeTest: change i
// committed once (its ledger row, one audit entry, one event) when want(i),
// and left nothing otherwise; every chain verifies.
func committed(t *testing.T, svc *Service, n int, want func(i int) bool) {
	t.Helper()
	ctx := context.Background()
	if _, err := VerifyAudit(ctx, svc.store); err != nil {
		t.Fatalf("audit chains after grouped changes: %v", err)
	}
	audits, events := map[string]int{}, map[string]int{}
	for o := range 2 {
		owner := fmt.Sprintf("owner-%d", o)
		list, err := svc.store.AuditEntries(ctx, owner, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range list {
			audits[e.Subject]++
		}
		evs, err := svc.store.EventsAfter(ctx, owner, 0, 1000)
		if err != nil {
			t.Fatal(err)
		}
		var last int64
		for _, e := range evs {
			if e.ID <= last {
				t.Fatalf("event ids of %s not increasing: %d after %d", owner, e.ID, last)
			}
			last = e.ID
			events[e.Subject]++
		}
	}
	for i := range n {
		bal, err := svc.store.LedgerBalance(ctx, fmt.Sprintf("acct-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		wantN := 0
		if want(i) {
			wantN = 1
		}
		s := fmt.Sprint(i)
		if int(bal.Int64()) != wantN || audits[s] != wantN || events[s] != wantN {
			t.Fatalf("change %d: balance %s, %d audit entries, %d events; want %d of each", i, bal, audits[s], events[s], wantN)
		}
	}
}

func TestGroupedChangesCommitEach(t *testing.T) {
	const n = 40
	svc, errs, runs := groupedChangeTest(t, n, func(int, int) error { return nil })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if runs[i] != 1 {
			t.Fatalf("change %d ran %d times without failing", i, runs[i])
		}
	}
	committed(t, svc, n, func(int) bool { return true })
}

// A change that always fails gets its own error (from its run alone) and
// leaves nothing; the changes grouped with it commit.
func TestGroupedChangesFailingPartAlone(t *testing.T) {
	const n = 40
	refused := errors.New("refused")
	svc, errs, runs := groupedChangeTest(t, n, func(i, _ int) error {
		if i%7 == 3 {
			return refused
		}
		return nil
	})
	for i, err := range errs {
		if i%7 == 3 {
			if !errors.Is(err, refused) {
				t.Fatalf("failing change %d: %v", i, err)
			}
			if runs[i] > 2 {
				t.Fatalf("failing change %d ran %d times", i, runs[i])
			}
			continue
		}
		if err != nil {
			t.Fatalf("change %d grouped with a failing one: %v", i, err)
		}
	}
	committed(t, svc, n, func(i int) bool { return i%7 != 3 })
}

// A change that fails only in its group (its first run) commits from its
// run alone, once: the group's attempt left nothing.
func TestGroupedChangesRetriedAloneOnce(t *testing.T) {
	const n = 40
	svc, errs, runs := groupedChangeTest(t, n, func(i, run int) error {
		if i%5 == 0 && run == 1 {
			return errors.New("lock wait") // as a part that gave up on a lock
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if i%5 == 0 && runs[i] != 2 {
			t.Fatalf("change %d failed once and ran %d times", i, runs[i])
		}
	}
	committed(t, svc, n, func(int) bool { return true })
}

// Nested in a transaction, a grouped change joins it (queueing would wait
// for a worker while holding the writer) and commits or rolls back with it.
func TestGroupedChangeNested(t *testing.T) {
	svc, ctx := newCommitService(t)
	boom := errors.New("outer fails")
	err := svc.change(ctx, func(ctx context.Context, cs *changeSet) error {
		if err := svc.changeGrouped(ctx, func(ctx context.Context, cs *changeSet) error {
			cs.add(countersign.Change{Owner: "owner-0", Actor: "test", Action: "test.nested", Subject: "n"})
			return nil
		}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if list, _ := svc.store.AuditEntries(ctx, "owner-0", 0, 10); len(list) != 0 {
		t.Fatalf("a nested grouped change outlived its transaction's rollback: %d entries", len(list))
	}
}

// A part that panics in its group does not take the worker (and the
// server) down: the part fails, its caller runs it again alone (where a
// panic would reach the caller's own recovery), and the changes grouped
// with it commit.
func TestGroupedChangePanicInGroup(t *testing.T) {
	const n = 40
	svc, errs, runs := groupedChangeTest(t, n, func(i, run int) error {
		if i%9 == 2 && run == 1 {
			panic("boom")
		}
		return nil
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if i%9 == 2 && runs[i] != 2 {
			t.Fatalf("change %d panicked once and ran %d times", i, runs[i])
		}
	}
	committed(t, svc, n, func(int) bool { return true })
	// the workers survived: another grouped change commits
	if err := svc.changeGrouped(context.Background(), func(ctx context.Context, cs *changeSet) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// A group waiting for its turn to commit (another group of this process is
// recording and committing) runs the changes that arrive meanwhile, and
// commits them with its own once the turn is free: the changes that reach
// the queue one by one while the turn is taken all run before any returns,
// and each commits once. (Without that a group would bring its first part
// alone and the others would wait for a later group.)
//
// On a store that runs one write transaction at a time (SQLite: serial),
// the group gathers them without running them, before it begins, and
// they commit as one group; otherwise it runs them inside its open
// transaction (the test forces that way on SQLite).
func TestGroupedChangesGatherWhileWaitingForTheTurn(t *testing.T) {
	for _, serial := range []bool{true, false} {
		t.Run(fmt.Sprintf("serial=%v", serial), func(t *testing.T) { testGatherWhileWaiting(t, serial) })
	}
}

func testGatherWhileWaiting(t *testing.T, serial bool) {
	const n = 12
	svc, ctx := newCommitService(t)
	g := svc.commits.changes
	if !g.serial {
		t.Fatal("the SQLite store does not say it runs one write transaction at a time")
	}
	if !serial { // the same store, hiding that it writes one transaction at a time
		g.close()
		g = newChangeGroups(svc, struct{ countersign.Savepointer }{g.sp}, changeGroupMax, changeGroupWorkers)
		svc.commits.changes = g
		if g.serial {
			t.Fatal("still serial")
		}
	}
	g.turn <- struct{}{} // as if another group were committing
	held := true
	defer func() { // a failure must not leave the workers waiting
		if held {
			<-g.turn
		}
	}()
	var runs [n]atomic.Int32
	var returned atomic.Int32
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = svc.changeGrouped(ctx, func(ctx context.Context, cs *changeSet) error {
				runs[i].Add(1)
				if err := svc.store.LedgerMove(ctx, "", fmt.Sprintf("acct-%d", i), big.NewInt(1)); err != nil {
					return err
				}
				cs.add(countersign.Change{Owner: fmt.Sprintf("owner-%d", i%2), Actor: "test", Action: "test.change", Subject: fmt.Sprint(i),
					Events: []countersign.ChangeEvent{{Type: "test.changed", Subject: fmt.Sprint(i)}}})
				return nil
			})
			returned.Add(1)
		}()
		time.Sleep(20 * time.Millisecond) // one by one: each finds the group waiting
	}
	// the other worker may hold one change it took from the queue: it
	// waits for the store's writer, which the waiting group holds
	ran := 0
	for deadline := time.Now().Add(5 * time.Second); !serial; time.Sleep(10 * time.Millisecond) {
		ran = 0
		for i := range n {
			ran += int(runs[i].Load())
		}
		if ran >= n-1 || time.Now().After(deadline) {
			break
		}
	}
	if serial {
		time.Sleep(100 * time.Millisecond)
		ran = 0
		for i := range n {
			ran += int(runs[i].Load())
		}
		if ran != 0 || returned.Load() != 0 || len(g.queue) != 0 {
			t.Fatalf("while the turn was taken %d of %d changes ran, %d returned, %d still queued; want them all gathered", ran, n, returned.Load(), len(g.queue))
		}
	} else if ran < n-1 || returned.Load() != 0 {
		t.Fatalf("while the turn was taken %d of %d changes ran and %d returned; want at least %d ran and none returned", ran, n, returned.Load(), n-1)
	}
	before := g.groups.Load()
	<-g.turn
	held = false
	wg.Wait()
	if groups := g.groups.Load() - before; serial && groups != 1 {
		t.Fatalf("the %d gathered changes committed in %d groups, want 1", n, groups)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		if r := runs[i].Load(); r != 1 {
			t.Fatalf("change %d ran %d times", i, r)
		}
	}
	committed(t, svc, n, func(int) bool { return true })
}
