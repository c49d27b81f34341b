package core

import (
	"context"

	"github.com/countersign/countersign"
)

// AllEventsFeed is every owner's event stream (the operator's local view)
// as the root's EventFeed port, for notify's event socket: the adapter
// gets the broker's wake-ups and the store's events, not the service.
func (s *Service) AllEventsFeed() countersign.EventFeed { return allEventsFeed{s} }

type allEventsFeed struct{ s *Service }

func (f allEventsFeed) Wake() (<-chan struct{}, func()) { return f.s.broker.Subscribe(AllOwners) }

func (f allEventsFeed) LastEventIDAll(ctx context.Context) (int64, error) {
	return f.s.store.LastEventIDAll(ctx)
}

func (f allEventsFeed) AllEventsAfter(ctx context.Context, afterID int64, limit int) ([]*countersign.Event, error) {
	return f.s.store.AllEventsAfter(ctx, afterID, limit)
}
