package core

import (
	"context"

	"github.com/countersign/countersign"
)

var _ countersign.Recorder = (*Service)(nil)

// Record is the one state-change path (countersign.Recorder): apply, the
// audit entry and the events in one transaction. A pure record (apply nil)
// goes through the group commit, so concurrent signatures share a commit.
func (s *Service) Record(ctx context.Context, c countersign.Change, apply func(ctx context.Context) error) error {
	rec, evs := s.changeRecords(c)
	if apply == nil {
		return s.commits.submit(ctx, &commitItem{ctx: ctx, audits: []auditRecord{rec}, events: evs})
	}
	return s.inTx(ctx, func(ctx context.Context) error {
		if err := apply(ctx); err != nil {
			return err
		}
		if err := s.appendAudit(ctx, []auditRecord{rec}); err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		return s.emitEvents(ctx, evs)
	})
}

// changeRecords makes a change's audit record and events, marshalling the
// JSON on the caller's goroutine (not in the commit worker).
func (s *Service) changeRecords(c countersign.Change) (auditRecord, []*countersign.Event) {
	rec := auditRecord{owner: c.Owner, actor: c.Actor, action: c.Action, subject: c.Subject, details: jsonString(c.Details)}
	var evs []*countersign.Event
	if len(c.Events) > 0 {
		now := s.clock.Now().UTC()
		evs = make([]*countersign.Event, len(c.Events))
		for i, e := range c.Events {
			evs[i] = &countersign.Event{OwnerID: c.Owner, Type: e.Type, Subject: e.Subject, Payload: jsonString(e.Payload), CreatedAt: now}
		}
	}
	return rec, evs
}

// Close stops the group-commit worker after draining what it holds. Call it
// before closing the store.
func (s *Service) Close() { s.commits.close() }
