package core

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

func woken(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	case <-time.After(200 * time.Millisecond):
		return false
	}
}

// Notify(AllOwners) — a signal that (re)connected and may have missed
// anything — wakes the listeners of every owner; Notify(owner) wakes that
// owner's and AllOwners' only. Before, Notify("*") woke only the
// AllOwners subscribers, so a long poll on a reconnecting replica slept on.
func TestBroker_NotifyAllWakesEveryOwner(t *testing.T) {
	b := NewBroker()
	a, stopA := b.Subscribe("owner-a")
	defer stopA()
	c, stopC := b.Subscribe("owner-c")
	defer stopC()
	all, stopAll := b.Subscribe(AllOwners)
	defer stopAll()
	b.Notify("owner-a")
	if !woken(a) || !woken(all) || woken(c) {
		t.Fatal("Notify(owner) must wake that owner's and AllOwners' listeners only")
	}
	b.Notify(AllOwners)
	if !woken(a) || !woken(c) || !woken(all) {
		t.Fatal("Notify(AllOwners) must wake every listener")
	}
}

// The polling fallback finds the events another process added (written
// straight to the store: no in-process wake-up) and wakes their owners'
// listeners; the first poll only finds its cursor and wakes everyone.
func TestLive_PollWakesOwnersOfNewEvents(t *testing.T) {
	s, ctx := newStubService(t, stubChain{})
	a, stopA := s.broker.Subscribe("owner-a")
	defer stopA()
	c, stopC := s.broker.Subscribe("owner-c")
	defer stopC()
	last, err := s.pollOnce(ctx, -1)
	if err != nil || !woken(a) || !woken(c) {
		t.Fatalf("first poll: %v (every listener must wake)", err)
	}
	if err := s.store.AddEvent(ctx, &countersign.Event{OwnerID: "owner-a", Type: "transaction.pending", Subject: "x", Payload: "{}", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if last, err = s.pollOnce(ctx, last); err != nil || !woken(a) || woken(c) {
		t.Fatalf("poll after owner-a's event: %v (owner-a only must wake)", err)
	}
	if _, err = s.pollOnce(ctx, last); err != nil || woken(a) {
		t.Fatalf("a poll with nothing new woke owner-a (%v)", err)
	}
}

// fakeSignal is an EventSignal whose connection breaks after each signal.
type fakeSignal struct {
	mu    sync.Mutex
	calls int
}

func (f *fakeSignal) Listen(ctx context.Context, fn func(string)) error {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	fn(countersign.SignalAll)
	fn("owner-a")
	return errors.New("connection reset")
}

// The listener turns signals into wake-ups and listens again after its
// connection breaks.
func TestLive_SignalWakesAndRelistens(t *testing.T) {
	s, _ := newStubService(t, stubChain{})
	a, stopA := s.broker.Subscribe("owner-a")
	defer stopA()
	sig := &fakeSignal{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.listenSignals(ctx, sig) }()
	if !woken(a) {
		t.Fatal("a signal did not wake the owner's listener")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		sig.mu.Lock()
		n := sig.calls
		sig.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Listen called %d times after a broken connection, want it called again", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

// agentOfEvent names the agent of a transaction event's view, and no one
// for any other event or a payload that is not the subject's view.
func TestAgentOfEvent(t *testing.T) {
	tests := map[string]struct {
		e    countersign.Event
		want string
	}{
		"ok/agent's transaction": {countersign.Event{Type: "transaction.authorized", Subject: "t1", Payload: `{"transaction_id":"t1","agent_id":"a1"}`}, "a1"},
		"ok/user's own spend":    {countersign.Event{Type: "transaction.authorized", Subject: "t1", Payload: `{"transaction_id":"t1"}`}, ""},
		"fail/not a transaction": {countersign.Event{Type: "policy.changed", Subject: "t1", Payload: `{"transaction_id":"t1","agent_id":"a1"}`}, ""},
		"fail/another subject":   {countersign.Event{Type: "transaction.pending", Subject: "t2", Payload: `{"transaction_id":"t1","agent_id":"a1"}`}, ""},
		"fail/not JSON":          {countersign.Event{Type: "transaction.pending", Subject: "t1", Payload: `{`}, ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := agentOfEvent(&tt.e); got != tt.want {
				t.Fatalf("agentOfEvent = %q, want %q", got, tt.want)
			}
		})
	}
}

// FuzzAgentOfEvent: whatever an event holds, agentOfEvent names an agent
// only for a transaction.* event whose payload is the view of its own
// subject carrying that agent id; it never panics.
func FuzzAgentOfEvent(f *testing.F) {
	f.Add("transaction.pending", "t1", `{"transaction_id":"t1","agent_id":"a1"}`)
	f.Add("transaction.authorized", "t1", `{"transaction_id":"t1"}`)
	f.Add("policy.changed", "t1", `{"transaction_id":"t1","agent_id":"a1"}`)
	f.Add("transaction.pending", "t2", `{"transaction_id":"t1","agent_id":"a1"}`)
	f.Add("transaction.", "", `{"transaction_id":"","agent_id":"x","agent_id":"y"}`)
	f.Add("transaction.x", "t", `[1,2]`)
	f.Fuzz(func(t *testing.T, typ, subject, payload string) {
		got := agentOfEvent(&countersign.Event{Type: typ, Subject: subject, Payload: payload})
		if got == "" {
			return
		}
		var v struct {
			TransactionID string `json:"transaction_id"`
			AgentID       string `json:"agent_id"`
		}
		if !strings.HasPrefix(typ, "transaction.") || json.Unmarshal([]byte(payload), &v) != nil || v.TransactionID != subject || v.AgentID != got {
			t.Fatalf("agentOfEvent(%q, %q, %q) = %q", typ, subject, payload, got)
		}
	})
}
