package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// A part of a group transaction that waits on a lock another transaction
// holds gives up after the short group wait (not the 10 s lock_timeout),
// its writes are undone, the transaction goes on and commits the other
// parts, and the session's lock_timeout is back for what follows.
func TestSavepointBoundsLockWait(t *testing.T) {
	s := open(t, migrated(t))
	ctx := context.Background()
	if err := s.CreateUser(ctx, &countersign.User{ID: "held", Username: "held", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	locked, release := make(chan struct{}), make(chan struct{})
	holder := make(chan error, 1)
	go func() {
		holder <- s.InTx(ctx, func(ctx context.Context) error {
			if _, err := s.UserByID(ctx, "held"); err != nil { // FOR UPDATE
				return err
			}
			close(locked)
			<-release
			return nil
		})
	}()
	<-locked
	var waited time.Duration
	var timeout string
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := s.Savepoint(ctx, func(ctx context.Context) error {
			return s.CreateUser(ctx, &countersign.User{ID: "kept", Username: "kept", CreatedAt: time.Now()})
		}); err != nil {
			return err
		}
		began := time.Now()
		err := s.Savepoint(ctx, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, &countersign.User{ID: "undone", Username: "undone", CreatedAt: time.Now()}); err != nil {
				return err
			}
			_, err := s.UserByID(ctx, "held") // waits for the holder's row lock
			return err
		})
		waited = time.Since(began)
		if err == nil {
			return errors.New("the part waiting on a held row lock succeeded")
		}
		return s.QueryRowForTest(ctx, `SHOW lock_timeout`).Scan(&timeout)
	})
	close(release)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-holder; err != nil {
		t.Fatal(err)
	}
	if waited > 3*time.Second {
		t.Fatalf("the waiting part gave up after %v, not the short group wait", waited)
	}
	if timeout != "10s" {
		t.Fatalf("lock_timeout after the savepoints: %q, want the session's 10s", timeout)
	}
	if _, err := s.UserByID(ctx, "kept"); err != nil {
		t.Fatalf("the part before the failed one was not committed: %v", err)
	}
	if _, err := s.UserByID(ctx, "undone"); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("the failed part's write was committed: %v", err)
	}
}

// A part that swallows a failed statement and returns nil is refused
// whole: PostgreSQL aborted the savepoint, so the part's writes are not all
// there, and the transaction goes on without any of them.
func TestSavepointRefusesSwallowedError(t *testing.T) {
	s := open(t, migrated(t))
	ctx := context.Background()
	err := s.InTx(ctx, func(ctx context.Context) error {
		err := s.Savepoint(ctx, func(ctx context.Context) error {
			if err := s.CreateUser(ctx, &countersign.User{ID: "u1", Username: "u1", CreatedAt: time.Now()}); err != nil {
				return err
			}
			_ = s.AddEvent(ctx, &countersign.Event{OwnerID: "u1", Type: "t", Subject: "s", Payload: "bad \x00 text", CreatedAt: time.Now()})
			return nil // swallowed
		})
		if err == nil {
			return errors.New("a part with a failed statement was kept")
		}
		return s.CreateUser(ctx, &countersign.User{ID: "u2", Username: "u2", CreatedAt: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.UserByID(ctx, "u1"); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("the refused part's write was committed: %v", err)
	}
	if _, err := s.UserByID(ctx, "u2"); err != nil {
		t.Fatalf("the transaction did not go on after the refused part: %v", err)
	}
	if err := s.Savepoint(ctx, func(context.Context) error { return nil }); err == nil {
		t.Fatal("Savepoint outside a transaction ran")
	}
}

// The change lock is asked for once per transaction outside savepoints
// (the head reads and the event insert then cost no round trip each),
// and the transaction does hold it to its commit; one taken inside a part
// that rolled back was released with the part, and the next change after
// it takes the lock again.
func TestChangeLockHeldOnceAsked(t *testing.T) {
	s := open(t, migrated(t))
	ctx := context.Background()
	// held reports whether another session can take the change lock now
	held := func() bool {
		t.Helper()
		var free bool
		if err := s.QueryRowForTest(ctx, `SELECT pg_try_advisory_lock(hashtextextended('countersign:changes', 0))`).Scan(&free); err != nil {
			t.Fatal(err)
		}
		if free {
			var ok bool
			if err := s.QueryRowForTest(ctx, `SELECT pg_advisory_unlock(hashtextextended('countersign:changes', 0))`).Scan(&ok); err != nil || !ok {
				t.Fatalf("unlock: %v %v", ok, err)
			}
		}
		return !free
	}
	ev := func(owner string) *countersign.Event {
		return &countersign.Event{OwnerID: owner, Type: "t", Subject: "s", Payload: `{}`, CreatedAt: time.Now()}
	}
	err := s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.AuditEntries(ctx, "o1", -1, 1); err != nil { // asks for the lock
			return err
		}
		if !held() {
			return errors.New("the head read did not take the change lock")
		}
		if err := s.AddEvent(ctx, ev("o1")); err != nil { // remembered: not asked again
			return err
		}
		if !held() {
			return errors.New("the change lock is not held after the event insert")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if held() {
		t.Fatal("the change lock outlived its transaction")
	}
	err = s.InTx(ctx, func(ctx context.Context) error {
		perr := s.Savepoint(ctx, func(ctx context.Context) error {
			if _, err := s.AuditEntries(ctx, "o2", -1, 1); err != nil {
				return err
			}
			return errors.New("the part fails")
		})
		if perr == nil {
			return errors.New("the failing part succeeded")
		}
		if held() {
			return errors.New("the rolled-back part's lock is still held")
		}
		if err := s.AddEvent(ctx, ev("o2")); err != nil { // must ask again
			return err
		}
		if !held() {
			return errors.New("the change after a rolled-back part runs without the change lock")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
