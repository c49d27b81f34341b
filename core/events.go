package core

import (
	"context"
	"sync"

	"github.com/countersign/countersign"
)

// Broker wakes up the listeners of an owner when new events are in the
// outbox. It carries no data: listeners read the outbox from their last
// event id, so a slow listener misses nothing and a reconnecting client can
// resume with Last-Event-ID.
type Broker struct {
	mu   sync.Mutex
	subs map[string]map[chan struct{}]struct{}
}

// NewBroker returns an empty Broker.
func NewBroker() *Broker { return &Broker{subs: map[string]map[chan struct{}]struct{}{}} }

// Subscribe returns a channel that receives a value whenever owner has new
// events, and a function that ends the subscription.
func (b *Broker) Subscribe(owner string) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	b.mu.Lock()
	if b.subs[owner] == nil {
		b.subs[owner] = map[chan struct{}]struct{}{}
	}
	b.subs[owner][ch] = struct{}{}
	b.mu.Unlock()
	return ch, func() {
		b.mu.Lock()
		delete(b.subs[owner], ch)
		if len(b.subs[owner]) == 0 {
			delete(b.subs, owner)
		}
		b.mu.Unlock()
	}
}

// AllOwners subscribes to every owner's events; notified, it wakes every
// listener (the signal of a store that cannot say whose events it may have
// missed: countersign.SignalAll).
const AllOwners = countersign.SignalAll

// Notify wakes owner's listeners and those of AllOwners; Notify(AllOwners)
// wakes every listener.
func (b *Broker) Notify(owner string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	wake := func(subs map[chan struct{}]struct{}) {
		for ch := range subs {
			select {
			case ch <- struct{}{}:
			default: // already has a pending wake-up
			}
		}
	}
	if owner == AllOwners {
		for _, subs := range b.subs {
			wake(subs)
		}
		return
	}
	wake(b.subs[owner])
	wake(b.subs[AllOwners])
}

// Events returns owner's events after id.
func (s *Service) Events(ctx context.Context, owner string, after int64) ([]*countersign.Event, error) {
	return s.store.EventsAfter(ctx, owner, after, 100)
}
