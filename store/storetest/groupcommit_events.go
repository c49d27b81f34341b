package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testGroupedEventsNotSkipped: the live feeds' readers — the cross-replica
// poller and the event socket following every owner's events by id
// (AllEventsAfter), and each owner's stream (EventsAfter) — miss nothing
// while many transactions commit events at once, some late, as group
// transactions do (core/groupcommit.go: several parts each under a
// Savepoint, one of them undone). An undone part's events never reach a
// reader. A store whose event ids could commit out of order (a sequence
// drawn without the change lock) fails here: a reader that has seen id n
// never looks below it again.
func testGroupedEventsNotSkipped(t *testing.T, s countersign.Store) {
	sp, grouped := s.(countersign.Savepointer)
	const owners = 3
	errUndo := errors.New("undone part")

	var mu sync.Mutex
	committed := map[int64]string{} // id → owner, once its transaction committed
	undone := map[string]bool{}     // subjects of undone parts (SQLite reuses their ids)

	done := make(chan struct{})
	var readers sync.WaitGroup
	var readErr error
	var readMu sync.Mutex
	// follow reads one feed by id until the writers are done and it has
	// caught up, and returns the ids it saw in order.
	follow := func(read func(after int64) ([]*countersign.Event, error), out *[]*countersign.Event) {
		defer readers.Done()
		var cursor int64
		for final := false; ; {
			select {
			case <-done:
				final = true
			default:
			}
			l, err := read(cursor)
			if err != nil {
				readMu.Lock()
				readErr = err
				readMu.Unlock()
				return
			}
			for _, e := range l {
				*out = append(*out, e)
				cursor = e.ID
			}
			if final && len(l) == 0 {
				return
			}
		}
	}
	var all []*countersign.Event
	per := make([][]*countersign.Event, owners)
	readers.Add(1 + owners)
	go follow(func(after int64) ([]*countersign.Event, error) { return s.AllEventsAfter(ctx, after, 1000) }, &all)
	for o := range owners {
		go follow(func(after int64) ([]*countersign.Event, error) {
			return s.EventsAfter(ctx, fmt.Sprintf("feed-%d", o), after, 1000)
		}, &per[o])
	}

	errs := make([]error, workers)
	many(func(i int) {
		for j := range 5 {
			var mine []*countersign.Event
			var gone []*countersign.Event
			errs[i] = s.InTx(ctx, func(ctx context.Context) error {
				mine, gone = nil, nil
				for part := range 3 {
					e := &countersign.Event{OwnerID: fmt.Sprintf("feed-%d", (i+part)%owners), Type: "t", Subject: fmt.Sprint(i, j, part), Payload: "{}", CreatedAt: time.Now()}
					add := func(ctx context.Context) error {
						if err := s.AddEvent(ctx, e); err != nil {
							return err
						}
						if part == 1 && j%2 == 0 {
							return errUndo // the part undone on purpose
						}
						return nil
					}
					// Part 0 straight in the transaction (as the group's
					// final writeChanges): it takes the change lock, so the
					// parts after it never wait for it.
					if part == 0 || !grouped {
						if part == 1 && j%2 == 0 {
							continue // no savepoints: nothing to undo
						}
						if err := add(ctx); err != nil {
							return err
						}
						mine = append(mine, e)
						continue
					}
					err := sp.Savepoint(ctx, add)
					switch {
					case errors.Is(err, errUndo):
						gone = append(gone, e)
					case err != nil:
						return err
					default:
						mine = append(mine, e)
					}
				}
				time.Sleep(time.Duration(i%4) * time.Millisecond) // commit late
				return nil
			})
			if errs[i] != nil {
				return
			}
			mu.Lock()
			for _, e := range mine {
				committed[e.ID] = e.OwnerID
			}
			for _, e := range gone {
				undone[e.Subject] = true
			}
			mu.Unlock()
		}
	})
	close(done)
	readers.Wait()
	for _, err := range append(errs, readErr) {
		if err != nil {
			t.Fatal(err)
		}
	}
	check := func(feed string, got []*countersign.Event, want func(owner string) bool) {
		seen := map[int64]bool{}
		var last int64
		for _, e := range got {
			if e.ID <= last {
				t.Fatalf("%s: id %d after %d", feed, e.ID, last)
			}
			last = e.ID
			if undone[e.Subject] {
				t.Fatalf("%s: delivered the event of an undone part (%s, id %d)", feed, e.Subject, e.ID)
			}
			seen[e.ID] = true
		}
		missed, n := 0, 0
		for id, owner := range committed {
			if !want(owner) {
				continue
			}
			n++
			if !seen[id] {
				missed++
			}
		}
		if missed > 0 {
			t.Fatalf("%s: a reader following ids skipped %d of %d committed events", feed, missed, n)
		}
	}
	check("every owner's feed", all, func(string) bool { return true })
	for o := range owners {
		owner := fmt.Sprintf("feed-%d", o)
		check(owner+"'s feed", per[o], func(x string) bool { return x == owner })
	}
	if len(committed) < workers*5*2 {
		t.Fatalf("only %d events committed", len(committed))
	}
}
