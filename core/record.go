package core

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"slices"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// The state-change path. Every state change in core goes through change
// (or Record, its form as the root's Recorder port): one store transaction
// that
//
//  1. applies the change (apply writes the rows and states, with
//     changeSet.add, what it changed),
//  2. appends one audit entry per stated change to its owner's hash chain,
//  3. writes the changes' events to the outbox and queues their webhook
//     deliveries,
//
// and, once the transaction has committed, wakes the owners' live-stream
// listeners. Steps 2 and 3 are writeChanges, the only code that writes
// audit entries and events: a service cannot audit outside a transaction
// that also holds its change, nor change without its audit entry failing
// the whole. Pure records (no apply: a login, a daemon signature) go
// through the group commit (groupcommit.go), which batches concurrent ones
// into one transaction and writes them with the same writeChanges.

var _ countersign.Recorder = (*Service)(nil)

// Record is the state-change path as the root's port (countersign.Recorder):
// apply, c's audit entry and its events in one transaction. A pure record
// (apply nil) goes through the group commit, so concurrent signatures share
// a commit.
func (s *Service) Record(ctx context.Context, c countersign.Change, apply func(ctx context.Context) error) error {
	if apply == nil {
		cs := &changeSet{}
		cs.add(c) // the JSON is made here, on the caller's goroutine, not in the commit worker
		return s.commits.submit(ctx, &commitItem{ctx: ctx, changes: cs})
	}
	return s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		if err := apply(ctx); err != nil {
			return err
		}
		cs.add(c)
		return nil
	})
}

// change runs apply in one store transaction and then, in the same
// transaction, records every change apply stated in cs (audit entries,
// events, webhook deliveries). An apply that returns an error rolls back
// everything; one that states nothing (it found nothing to do, or refused
// in a way that must still commit, such as a counted MFA failure it
// reports through its own variable) records nothing.
func (s *Service) change(ctx context.Context, apply func(ctx context.Context, cs *changeSet) error) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		cs := &changeSet{}
		if err := apply(ctx, cs); err != nil {
			return err
		}
		return s.writeChanges(ctx, cs)
	})
}

// changeGrouped is change for a state change that many callers make at
// once (prepare's): concurrent ones share one transaction and one commit
// (groupcommit.go). apply may run twice — inside a group that is then
// undone, and again alone — so it must derive everything it writes from
// what it reads in ctx and reset, at its start, what it sets outside
// itself. Nested in a transaction, or on a store that cannot undo part of
// one, it is change.
func (s *Service) changeGrouped(ctx context.Context, apply func(ctx context.Context, cs *changeSet) error) error {
	if _, nested := ctx.Value(notifyKey{}).(*[]string); nested || s.commits == nil || s.commits.changes == nil {
		return s.change(ctx, apply)
	}
	if err := s.commits.changes.submit(ctx, apply); err != errRunAlone {
		return err
	}
	return s.change(ctx, apply)
}

// changeSet holds the changes one transaction has stated, frozen as they
// were stated: details and payloads are marshalled at add, so a map the
// caller goes on filling (CheckChain's details, shared by its drops) is
// recorded as it was at that moment.
type changeSet struct {
	audits  []auditRecord
	events  []*countersign.Event
	wallets []string // events[i]'s ChangeEvent.WalletID
}

// auditRecord is an audit entry before it is chained.
type auditRecord struct {
	owner, actor, action, subject string
	details                       string // JSON
}

// add states one change: an audit entry on c.Owner's chain and c's events
// on c.Owner's outbox.
func (cs *changeSet) add(c countersign.Change) {
	cs.audits = append(cs.audits, auditRecord{owner: c.Owner, actor: c.Actor, action: c.Action, subject: c.Subject, details: jsonString(c.Details)})
	for _, e := range c.Events {
		cs.events = append(cs.events, &countersign.Event{OwnerID: c.Owner, Type: e.Type, Subject: e.Subject, Payload: jsonString(e.Payload)})
		cs.wallets = append(cs.wallets, e.WalletID)
	}
}

// merge appends o's changes after cs's.
func (cs *changeSet) merge(o *changeSet) {
	cs.audits = append(cs.audits, o.audits...)
	cs.events = append(cs.events, o.events...)
	cs.wallets = append(cs.wallets, o.wallets...)
}

// writeChanges records cs inside the current transaction: the audit
// entries chained onto their owners' chains (one statement), the events in
// the outbox (one statement) with their webhook deliveries, and the events'
// owners noted for waking after commit.
//
// The events' webhooks are looked up first: the audit append and the
// outbox take the store's change lock (PostgreSQL), held to commit, and
// those reads (two or three statements per event) need no lock, so every
// other state change waits for fewer statements.
func (s *Service) writeChanges(ctx context.Context, cs *changeSet) error {
	hooks := make([][]*countersign.Webhook, len(cs.events))
	for i, e := range cs.events {
		var err error
		if hooks[i], err = s.deliveryTargets(ctx, e, cs.wallets[i]); err != nil {
			return err
		}
	}
	if len(cs.audits) > 0 {
		if err := s.appendAudit(ctx, cs.audits); err != nil {
			return err
		}
	}
	if len(cs.events) == 0 {
		return nil
	}
	now := s.clock.Now().UTC()
	for _, e := range cs.events {
		if e.CreatedAt.IsZero() {
			e.CreatedAt = now
		}
	}
	if err := s.store.AddEvent(ctx, cs.events...); err != nil {
		return err
	}
	owners, _ := ctx.Value(notifyKey{}).(*[]string)
	for i, e := range cs.events {
		if err := s.addDeliveries(ctx, e, hooks[i]); err != nil {
			return err
		}
		if owners != nil && !slices.Contains(*owners, e.OwnerID) {
			*owners = append(*owners, e.OwnerID)
		}
	}
	return nil
}

// deliveryTargets returns the webhooks subscribed to e: its owner's and
// those of its wallet's approvers (approvers.go) — walletID when the
// writer named it (ChangeEvent.WalletID), else found from e's subject. It
// needs only e's owner, subject and type, not its id. (enqueueDeliveries
// in webhooks.go in two steps, so that the reads happen before the change
// lock.)
func (s *Service) deliveryTargets(ctx context.Context, e *countersign.Event, walletID string) ([]*countersign.Webhook, error) {
	memo := memoOf(ctx)
	hooks, ok := memo.webhooks(e.OwnerID)
	if !ok {
		var err error
		if hooks, err = s.store.WebhooksFor(ctx, e.OwnerID); err != nil {
			return nil, err
		}
		memo.setWebhooks(e.OwnerID, hooks)
	}
	extra, err := s.approverWebhooks(ctx, e, walletID)
	if err != nil {
		return nil, err
	}
	var out []*countersign.Webhook
	for _, w := range append(slices.Clip(hooks), extra...) {
		if subscribed(w, e.Type) {
			out = append(out, w)
		}
	}
	return out, nil
}

// addDeliveries queues e, now with its id, for each of hooks.
func (s *Service) addDeliveries(ctx context.Context, e *countersign.Event, hooks []*countersign.Webhook) error {
	for _, w := range hooks {
		body, _ := json.Marshal(map[string]any{"event_id": e.ID, "type": e.Type, "subject": e.Subject, "owner": e.OwnerID,
			"created_at": e.CreatedAt, "data": json.RawMessage(e.Payload)})
		d := &countersign.Delivery{ID: uuid.NewString(), WebhookID: w.ID, EventID: e.ID, EventType: e.Type, Payload: string(body),
			Status: countersign.DeliveryPending, NextAttemptAt: e.CreatedAt, CreatedAt: e.CreatedAt}
		if err := s.store.AddDelivery(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// appendAudit chains records onto their owners' chains, in order, and
// stores them in one statement.
func (s *Service) appendAudit(ctx context.Context, recs []auditRecord) error {
	memo := memoOf(ctx)
	heads := map[string]*countersign.AuditEntry{} // owner → newest entry (nil: an empty chain)
	entries := make([]*countersign.AuditEntry, 0, len(recs))
	now := s.clock.Now().UTC()
	for _, r := range recs {
		head, known := heads[r.owner]
		if !known {
			if head = memo.head(r.owner); head == nil {
				list, err := s.store.AuditEntries(ctx, r.owner, -1, 1)
				if err != nil {
					return err
				}
				if len(list) == 1 {
					head = list[0]
				}
			}
		}
		e := &countersign.AuditEntry{OwnerID: r.owner, Seq: 1, At: now, Actor: r.actor, Action: r.action,
			Subject: r.subject, Details: r.details, PrevHash: make([]byte, sha256.Size)}
		if head != nil {
			e.Seq = head.Seq + 1
			e.PrevHash = head.Hash
		}
		e.Hash = auditHash(e) // audit.go
		heads[r.owner] = e
		entries = append(entries, e)
	}
	if err := s.store.AppendAudit(ctx, entries...); err != nil {
		return err
	}
	for owner, e := range heads {
		memo.setHead(owner, e)
	}
	return nil
}

type notifyKey struct{}

// inTx runs fn in a store transaction and, once it has committed, wakes the
// listeners of every owner fn wrote an event for. Nested, it joins the
// caller's transaction (whose commit wakes them).
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

// jsonString marshals v for audit details and event payloads.
func jsonString(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// Close stops the group-commit worker after draining what it holds. Call it
// before closing the store.
func (s *Service) Close() { s.commits.close() }

// txMemo remembers, for the length of one store transaction, what the
// transaction itself last wrote or read: each owner's audit head and
// webhook list, each wallet's approvers' webhooks. A batch of signatures
// or of prepares then reads them once instead of once per request. It is only set where the transaction is the only
// writer of those rows (SQLite serialises writers): the group commit's.
type txMemo struct {
	heads    map[string]*countersign.AuditEntry
	hooks    map[string][]*countersign.Webhook
	approver map[string][]*countersign.Webhook // wallet → its approvers' webhooks
}

type txMemoKey struct{}

func withTxMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, txMemoKey{}, &txMemo{heads: map[string]*countersign.AuditEntry{}, hooks: map[string][]*countersign.Webhook{},
		approver: map[string][]*countersign.Webhook{}})
}

func memoOf(ctx context.Context) *txMemo {
	m, _ := ctx.Value(txMemoKey{}).(*txMemo)
	return m
}

func (m *txMemo) head(owner string) *countersign.AuditEntry {
	if m == nil {
		return nil
	}
	return m.heads[owner]
}

func (m *txMemo) setHead(owner string, e *countersign.AuditEntry) {
	if m != nil {
		m.heads[owner] = e
	}
}

func (m *txMemo) webhooks(owner string) ([]*countersign.Webhook, bool) {
	if m == nil {
		return nil, false
	}
	h, ok := m.hooks[owner]
	return h, ok
}

func (m *txMemo) setWebhooks(owner string, h []*countersign.Webhook) {
	if m != nil {
		m.hooks[owner] = h
	}
}

func (m *txMemo) approverHooks(walletID string) ([]*countersign.Webhook, bool) {
	if m == nil {
		return nil, false
	}
	h, ok := m.approver[walletID]
	return h, ok
}

func (m *txMemo) setApproverHooks(walletID string, h []*countersign.Webhook) {
	if m != nil {
		m.approver[walletID] = h
	}
}
