package core

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/store/sqlite"
)

// The state-change path's own tests (record.go): apply, audit entry and
// events commit together or not at all, in every way one of them can fail.

// faultStore fails the writes the state-change path makes, on demand.
type faultStore struct {
	countersign.Store
	mu                                 sync.Mutex
	failAudit, failEvent, failDelivery bool
}

var errInjected = errors.New("injected store failure")

func (f *faultStore) fail(which *bool) bool { f.mu.Lock(); defer f.mu.Unlock(); return *which }

func (f *faultStore) AppendAudit(ctx context.Context, e ...*countersign.AuditEntry) error {
	if f.fail(&f.failAudit) {
		return errInjected
	}
	return f.Store.AppendAudit(ctx, e...)
}

func (f *faultStore) AddEvent(ctx context.Context, e ...*countersign.Event) error {
	if f.fail(&f.failEvent) {
		return errInjected
	}
	return f.Store.AddEvent(ctx, e...)
}

func (f *faultStore) AddDelivery(ctx context.Context, d *countersign.Delivery) error {
	if f.fail(&f.failDelivery) {
		return errInjected
	}
	return f.Store.AddDelivery(ctx, d)
}

// newRecordService is a Service with only what the state-change path
// needs (store, clock, broker, group commit), over a faultStore.
func newRecordService(t *testing.T) (*Service, *faultStore, context.Context) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fs := &faultStore{Store: st}
	svc := &Service{store: fs, clock: &fixedClock{t: time.Unix(1_800_000_000, 0)}, broker: NewBroker()}
	svc.commits = newGroupCommit(svc, 64)
	t.Cleanup(svc.Close)
	return svc, fs, ctx
}

// createUser is an apply that writes a row the test can look for.
func createUser(svc *Service, id string) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		return svc.store.CreateUser(ctx, &countersign.User{ID: id, Username: "u-" + id[:8], PasswordHash: "x", CreatedAt: svc.clock.Now()})
	}
}

func userChange(owner string) countersign.Change {
	return countersign.Change{Owner: owner, Actor: "user:" + owner, Action: "test.create", Subject: owner,
		Details: map[string]string{"k": "v"},
		Events:  []countersign.ChangeEvent{{Type: "transaction.pending", Subject: owner, Payload: map[string]int{"p": 1}}}}
}

// state is what the path left behind for owner: whether the user row
// exists, the audit entries and the events.
func state(t *testing.T, svc *Service, ctx context.Context, owner string) (bool, []*countersign.AuditEntry, []*countersign.Event) {
	t.Helper()
	_, err := svc.store.UserByID(ctx, owner)
	entries, aerr := svc.store.AuditEntries(ctx, owner, 0, 100)
	events, eerr := svc.store.EventsAfter(ctx, owner, 0, 100)
	if aerr != nil || eerr != nil {
		t.Fatal(aerr, eerr)
	}
	return err == nil, entries, events
}

func TestRecord(t *testing.T) {
	t.Run("ok/apply-audit-event", func(t *testing.T) {
		svc, _, ctx := newRecordService(t)
		owner := uuid.NewString()
		if err := svc.Record(ctx, userChange(owner), createUser(svc, owner)); err != nil {
			t.Fatal(err)
		}
		row, entries, events := state(t, svc, ctx, owner)
		if !row || len(entries) != 1 || len(events) != 1 {
			t.Fatalf("row %v, %d entries, %d events", row, len(entries), len(events))
		}
		e, ev := entries[0], events[0]
		if e.Actor != "user:"+owner || e.Action != "test.create" || e.Subject != owner || e.Details != `{"k":"v"}` || e.Seq != 1 {
			t.Fatalf("audit entry %+v", e)
		}
		if ev.Type != "transaction.pending" || ev.Subject != owner || ev.Payload != `{"p":1}` || ev.CreatedAt.IsZero() {
			t.Fatalf("event %+v", ev)
		}
		if _, err := VerifyAudit(ctx, svc.store); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("ok/pure-record", func(t *testing.T) {
		svc, _, ctx := newRecordService(t)
		owner := uuid.NewString()
		if err := svc.Record(ctx, userChange(owner), nil); err != nil {
			t.Fatal(err)
		}
		if row, entries, events := state(t, svc, ctx, owner); row || len(entries) != 1 || len(events) != 1 {
			t.Fatalf("row %v, %d entries, %d events", row, len(entries), len(events))
		}
	})
	t.Run("ok/listeners-woken-after-commit", func(t *testing.T) {
		svc, _, ctx := newRecordService(t)
		owner := uuid.NewString()
		ch, stop := svc.broker.Subscribe(owner)
		defer stop()
		if err := svc.Record(ctx, userChange(owner), createUser(svc, owner)); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		default:
			t.Fatal("the owner's listeners were not woken")
		}
	})
	t.Run("ok/details-frozen-when-stated", func(t *testing.T) {
		svc, _, ctx := newRecordService(t)
		details := map[string]any{"n": 1}
		err := svc.change(ctx, func(ctx context.Context, cs *changeSet) error {
			cs.add(countersign.Change{Owner: "o", Actor: "system", Action: "a", Subject: "1", Details: details})
			details["n"] = 2 // CheckChain fills its details after its drops
			cs.add(countersign.Change{Owner: "o", Actor: "system", Action: "b", Subject: "2", Details: details})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		entries, _ := svc.store.AuditEntries(ctx, "o", 0, 10)
		if len(entries) != 2 || entries[0].Details != `{"n":1}` || entries[1].Details != `{"n":2}` || entries[1].Seq != 2 {
			t.Fatalf("entries %+v", entries)
		}
	})
	t.Run("ok/nothing-stated-records-nothing", func(t *testing.T) {
		svc, _, ctx := newRecordService(t)
		owner := uuid.NewString()
		if err := svc.change(ctx, func(ctx context.Context, _ *changeSet) error { return createUser(svc, owner)(ctx) }); err != nil {
			t.Fatal(err)
		}
		if row, entries, events := state(t, svc, ctx, owner); !row || len(entries) != 0 || len(events) != 0 {
			t.Fatalf("row %v, %d entries, %d events", row, len(entries), len(events))
		}
	})

	// Each way the transaction can fail leaves nothing of it: no row, no
	// audit entry, no event, no delivery.
	fails := []struct {
		name   string
		inject func(fs *faultStore)
		apply  func(svc *Service, owner string) func(ctx context.Context) error
	}{
		{"fail/apply-fails", func(*faultStore) {}, func(svc *Service, owner string) func(ctx context.Context) error {
			return func(ctx context.Context) error {
				if err := createUser(svc, owner)(ctx); err != nil {
					return err
				}
				return errInjected // after writing: the write must be rolled back
			}
		}},
		{"fail/audit-append-fails", func(fs *faultStore) { fs.failAudit = true }, createUser},
		{"fail/event-add-fails", func(fs *faultStore) { fs.failEvent = true }, createUser},
		{"fail/delivery-enqueue-fails", func(fs *faultStore) { fs.failDelivery = true }, createUser},
	}
	for _, f := range fails {
		for _, pure := range []bool{false, true} {
			if pure && f.name == "fail/apply-fails" {
				continue // a pure record has no apply to fail
			}
			name := f.name
			if pure {
				name += "/pure"
			}
			t.Run(name, func(t *testing.T) {
				svc, fs, ctx := newRecordService(t)
				owner := uuid.NewString()
				hook := &countersign.Webhook{ID: uuid.NewString(), OwnerID: owner, URL: "https://example.com/h", Events: []string{"*"}, SecretSealed: []byte{1}, CreatedAt: svc.clock.Now()}
				if err := svc.store.CreateWebhook(ctx, hook); err != nil {
					t.Fatal(err)
				}
				f.inject(fs)
				apply := f.apply(svc, owner)
				if pure {
					apply = nil
				}
				if err := svc.Record(ctx, userChange(owner), apply); !errors.Is(err, errInjected) {
					t.Fatalf("err = %v, want the injected failure", err)
				}
				row, entries, events := state(t, svc, ctx, owner)
				ds, _ := svc.store.Deliveries(ctx, hook.ID, 10)
				if row || len(entries) != 0 || len(events) != 0 || len(ds) != 0 {
					t.Fatalf("left behind: row %v, %d entries, %d events, %d deliveries", row, len(entries), len(events), len(ds))
				}
			})
		}
	}
}

// Concurrent records, pure and with apply, of several owners: every
// owner's chain has every entry, in sequence, and verifies.
func TestRecordConcurrent(t *testing.T) {
	svc, _, ctx := newRecordService(t)
	owners := []string{"a", "b", "c", "d"}
	const each = 25
	var wg sync.WaitGroup
	errs := make(chan error, len(owners)*each)
	for _, o := range owners {
		for i := range each {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := countersign.Change{Owner: o, Actor: "test", Action: "test.concurrent", Subject: fmt.Sprint(i), Details: map[string]int{"i": i}}
				var apply func(ctx context.Context) error
				if i%2 == 0 {
					apply = createUser(svc, uuid.NewString())
				}
				errs <- svc.Record(ctx, c, apply)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	n, err := VerifyAudit(ctx, svc.store)
	if err != nil || n != len(owners)*each {
		t.Fatalf("VerifyAudit: %d entries, %v", n, err)
	}
	for _, o := range owners {
		entries, _ := svc.store.AuditEntries(ctx, o, 0, 100)
		if len(entries) != each || entries[each-1].Seq != each {
			t.Fatalf("owner %s: %d entries", o, len(entries))
		}
	}
}

// An event is queued for exactly the webhooks of its owner that subscribe
// to its type, in the transaction that wrote it, with the event in the body.
func TestWebhookEnqueue(t *testing.T) {
	svc, _, ctx := newRecordService(t)
	owner, other := uuid.NewString(), uuid.NewString()
	hook := func(owner string, events ...string) *countersign.Webhook {
		w := &countersign.Webhook{ID: uuid.NewString(), OwnerID: owner, URL: "https://example.com/h", Events: events, SecretSealed: []byte{1}, CreatedAt: svc.clock.Now()}
		if err := svc.store.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	all, prefix, exact := hook(owner, "*"), hook(owner, "transaction.*"), hook(owner, "transaction.pending")
	unsubscribed, others := hook(owner, "signed", "transaction.confirmed"), hook(other, "*")
	if err := svc.Record(ctx, userChange(owner), createUser(svc, owner)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		w    *countersign.Webhook
		want int
	}{{"ok/star", all, 1}, {"ok/prefix", prefix, 1}, {"ok/exact", exact, 1}, {"fail/other-type", unsubscribed, 0}, {"fail/other-owner", others, 0}} {
		t.Run(c.name, func(t *testing.T) {
			ds, err := svc.store.Deliveries(ctx, c.w.ID, 10)
			if err != nil || len(ds) != c.want {
				t.Fatalf("%d deliveries (%v), want %d", len(ds), err, c.want)
			}
			if c.want == 1 {
				d := ds[0]
				if d.EventType != "transaction.pending" || d.Status != countersign.DeliveryPending || !strings.Contains(d.Payload, `"data":{"p":1}`) || !strings.Contains(d.Payload, `"owner":"`+owner+`"`) {
					t.Fatalf("delivery %+v", d)
				}
			}
		})
	}
}
