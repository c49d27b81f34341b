package core

import (
	"context"
	"sync"
	"time"

	"github.com/countersign/countersign"
)

// LiveConfig makes this process's live listeners (SSE streams, the
// transaction_status long poll, agents' WebSockets) hear of the changes
// other processes commit to a shared store. The zero value is one process
// alone (SQLite): the in-process wake-ups on commit are all there is.
type LiveConfig struct {
	// Shared says other processes write to the store too (several
	// replicas on one PostgreSQL): the outbox is then polled every
	// PollInterval, whatever Signal does.
	Shared bool
	// Signal is the store's cross-process wake-up (PostgreSQL
	// LISTEN/NOTIFY); nil leaves the polling alone.
	Signal countersign.EventSignal
	// PollInterval is the polling fallback's period (EVENT_POLL_INTERVAL,
	// default 2 s): the longest a listener waits for another replica's
	// change when signals are lost.
	PollInterval time.Duration
}

func (c *LiveConfig) defaults() {
	if c.PollInterval <= 0 {
		c.PollInterval = 2 * time.Second
	}
}

// Listen backoff: the pause before listening again after the signal's
// connection broke, doubled on each failure in a row up to the maximum.
// The poller covers the gap, so a long pause costs latency, not events.
const (
	listenRetryMin = 250 * time.Millisecond
	listenRetryMax = 30 * time.Second
)

// pollPage is how many events one poll reads at most: a poll that finds
// more skips to the newest id and wakes everyone, rather than reading a
// backlog only to learn whose it was.
const pollPage = 500

// runLive runs the cross-process wake-ups of cfg.Live until ctx ends: the
// signal listener and the outbox poller. Both only call broker.Notify, so
// a listener woken twice for one event re-reads the outbox and finds
// nothing new; one never woken waits for its next wake-up, never misses an
// event for good. It returns at once (nothing to run) for a store no other
// process writes to.
func (s *Service) runLive(ctx context.Context) {
	live := s.cfg.Live
	if !live.Shared && live.Signal == nil {
		return
	}
	live.defaults()
	var wg sync.WaitGroup
	if live.Signal != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.listenSignals(ctx, live.Signal)
		}()
	}
	if live.Shared {
		s.pollEvents(ctx, live.PollInterval)
	}
	wg.Wait()
}

// listenSignals turns the store's signals into wake-ups, listening again
// with backoff whenever the connection breaks.
func (s *Service) listenSignals(ctx context.Context, sig countersign.EventSignal) {
	pause := listenRetryMin
	for {
		began := time.Now()
		err := sig.Listen(ctx, s.broker.Notify)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			pause = listenRetryMin // it had been working: a fresh failure
		}
		s.log.Warn("event signal: listening again after a pause (the outbox poller covers the gap)", "err", err, "pause", pause.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, listenRetryMax)
	}
}

// pollEvents is the polling fallback: every interval it reads the events
// added since the last poll, by any process, and wakes their owners'
// listeners. It needs nothing from LISTEN, so a lost notification, a
// broken listen connection or a proxy that drops NOTIFY (a transaction
// pooler) delays a listener by one interval at most. Event ids commit in
// the order they are drawn (the store's change lock), so a cursor on the
// newest id seen skips nothing.
func (s *Service) pollEvents(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	last := int64(-1) // not read yet: start from the newest event
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var err error
		if last, err = s.pollOnce(ctx, last); err != nil && ctx.Err() == nil {
			s.log.Warn("event poller", "err", err)
		}
	}
}

// pollOnce wakes the owners of the events after last and returns the new
// cursor. With last < 0 it only finds the cursor (the newest event id);
// the first poll after that wakes everyone, since the listeners subscribed
// before the cursor was read may have missed something.
func (s *Service) pollOnce(ctx context.Context, last int64) (int64, error) {
	if last < 0 {
		n, err := s.store.LastEventIDAll(ctx)
		if err != nil {
			return last, err
		}
		s.broker.Notify(AllOwners)
		return n, nil
	}
	page, err := s.store.AllEventsAfter(ctx, last, pollPage)
	if err != nil {
		return last, err
	}
	if len(page) == pollPage { // a backlog: skip it, wake everyone
		n, err := s.store.LastEventIDAll(ctx)
		if err != nil {
			return last, err
		}
		s.broker.Notify(AllOwners)
		return n, nil
	}
	woken := map[string]bool{}
	for _, e := range page {
		if !woken[e.OwnerID] {
			woken[e.OwnerID] = true
			s.broker.Notify(e.OwnerID)
		}
		last = e.ID
	}
	return last, nil
}
