package postgres_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// listenTo runs s.Listen into a channel until the test ends, and waits
// for its first call (SignalAll: LISTEN is in place).
func listenTo(t *testing.T, s countersign.EventSignal) <-chan string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan string, 64)
	done := make(chan error, 1)
	go func() { done <- s.Listen(ctx, func(owner string) { got <- owner }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Listen ended with %v, want the context's error", err)
		}
	})
	select {
	case o := <-got:
		if o != countersign.SignalAll {
			t.Fatalf("first signal %q, want %q", o, countersign.SignalAll)
		}
	case err := <-done:
		t.Fatalf("Listen: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Listen did not start")
	}
	return got
}

// TestListen_SignalsAtCommitOnly: AddEvent's wake-up reaches a listener
// on another connection (another replica's Store) when the transaction
// commits — once per owner, not before the commit, and never for a
// transaction that rolls back, whose events no one can read.
func TestListen_SignalsAtCommitOnly(t *testing.T) {
	dsn := migrated(t)
	writer, other := open(t, dsn), open(t, dsn)
	got := listenTo(t, other)
	ctx := context.Background()
	ev := func(owner string) *countersign.Event {
		return &countersign.Event{OwnerID: owner, Type: "transaction.pending", Subject: "s", Payload: "{}", CreatedAt: time.Now()}
	}
	none := func(within time.Duration) {
		t.Helper()
		select {
		case o := <-got:
			t.Fatalf("unexpected signal for %q", o)
		case <-time.After(within):
		}
	}

	// rolled back: no signal
	boom := errors.New("roll back")
	if err := writer.InTx(ctx, func(ctx context.Context) error {
		if err := writer.AddEvent(ctx, ev("owner-a")); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	none(500 * time.Millisecond)

	// committed: one signal per owner, only after the commit
	release := make(chan struct{})
	committed := make(chan error, 1)
	go func() {
		committed <- writer.InTx(ctx, func(ctx context.Context) error {
			if err := writer.AddEvent(ctx, ev("owner-a"), ev("owner-b"), ev("owner-a")); err != nil {
				return err
			}
			<-release
			return nil
		})
	}()
	none(500 * time.Millisecond) // written, not committed
	close(release)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for len(seen) < 2 {
		select {
		case o := <-got:
			seen[o]++
		case <-time.After(10 * time.Second):
			t.Fatalf("signals after the commit: %v, want owner-a and owner-b", seen)
		}
	}
	none(300 * time.Millisecond)
	if seen["owner-a"] != 1 || seen["owner-b"] != 1 {
		t.Fatalf("signals %v, want one per owner", seen)
	}
}
