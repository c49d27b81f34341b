package core

import (
	"context"
	"slices"
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

// AllOwners subscribes to every owner's events.
const AllOwners = "*"

// Notify wakes owner's listeners and those of AllOwners.
func (b *Broker) Notify(owner string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, key := range []string{owner, AllOwners} {
		for ch := range b.subs[key] {
			select {
			case ch <- struct{}{}:
			default: // already has a pending wake-up
			}
		}
	}
}

type notifyKey struct{}

// inTx runs fn in a store transaction and, once it has committed, wakes the
// listeners of every owner fn wrote an event for.
func (s *Service) inTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, nested := ctx.Value(notifyKey{}).(*[]string); nested {
		return s.store.InTx(ctx, fn)
	}
	owners := &[]string{}
	err := s.store.InTx(context.WithValue(ctx, notifyKey{}, owners), fn)
	if err == nil {
		for _, o := range *owners {
			s.broker.Notify(o)
		}
	}
	return err
}

// emit writes an event to the outbox inside the current transaction.
func (s *Service) emit(ctx context.Context, owner, typ, subject string, payload any) error {
	return s.emitEvents(ctx, []*countersign.Event{{OwnerID: owner, Type: typ, Subject: subject, Payload: jsonString(payload), CreatedAt: s.clock.Now().UTC()}})
}

// emitEvents writes events to the outbox in one statement, queues their
// webhook deliveries, and has their owners' listeners woken after commit.
func (s *Service) emitEvents(ctx context.Context, events []*countersign.Event) error {
	if err := s.store.AddEvent(ctx, events...); err != nil {
		return err
	}
	owners, _ := ctx.Value(notifyKey{}).(*[]string)
	for _, e := range events {
		if err := s.enqueueDeliveries(ctx, e); err != nil {
			return err
		}
		if owners != nil && !slices.Contains(*owners, e.OwnerID) {
			*owners = append(*owners, e.OwnerID)
		}
	}
	return nil
}

// Events returns owner's events after id.
func (s *Service) Events(ctx context.Context, owner string, after int64) ([]*countersign.Event, error) {
	return s.store.EventsAfter(ctx, owner, after, 100)
}
