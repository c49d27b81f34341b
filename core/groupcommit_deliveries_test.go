package core

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// writeChanges looks an event's webhooks up before the change lock
// (deliveryTargets) and queues them after (addDeliveries): together they
// must queue exactly what enqueueDeliveries (webhooks.go) queues — the
// owner's subscribed webhooks and those of the wallet's approvers, with the
// same payload. A new source of webhooks there fails here until record.go
// follows.
func TestWriteChangesDeliveriesMatchEnqueue(t *testing.T) {
	svc, ctx := newCommitService(t)
	st := svc.store
	now := time.Unix(1_800_000_000, 0).UTC()
	for _, id := range []string{"owner", "approver"} {
		if err := st.CreateUser(ctx, &countersign.User{ID: id, Username: id, CreatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "owner", Address: "0xF", KeySealed: []byte{1}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := st.AddApprover(ctx, &countersign.Approver{WalletID: "w1", UserID: "approver", AddedBy: "owner", AddedAt: now}); err != nil {
		t.Fatal(err)
	}
	txID := "7b0c4f5e-2a1d-4c3b-9e8f-0a1b2c3d4e5f"
	if err := st.CreateTransaction(ctx, &countersign.Transaction{ID: txID, OwnerID: "owner", WalletID: "w1", ChainID: 1337, Type: countersign.TxNative,
		From: "0xF", To: "0xT", Amount: "1", TxTo: "0xT", TxValue: "1", Digest: []byte{1}, Status: countersign.StatusPending, CreatedAt: now, UpdatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	hooks := []*countersign.Webhook{
		{ID: "h-all", OwnerID: "owner", URL: "https://a.example", Events: []string{"*"}},
		{ID: "h-tx", OwnerID: "owner", URL: "https://b.example", Events: []string{"transaction.*"}},
		{ID: "h-mfa", OwnerID: "owner", URL: "https://c.example", Events: []string{"mfa.*"}},
		{ID: "h-approver", OwnerID: "approver", URL: "https://d.example", Events: []string{"transaction.pending"}},
	}
	for _, h := range hooks {
		h.SecretSealed, h.CreatedAt = []byte{1}, now
		if err := st.CreateWebhook(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	// queued returns, per webhook, the payloads (without the delivery ids)
	// that way queues for an event on txID.
	queued := func(way func(ctx context.Context, e *countersign.Event) error) map[string][]map[string]any {
		out := map[string][]map[string]any{}
		err := st.InTx(ctx, func(ctx context.Context) error {
			e := &countersign.Event{OwnerID: "owner", Type: "transaction.pending", Subject: txID, Payload: `{"x":1}`, CreatedAt: now}
			if err := st.AddEvent(ctx, e); err != nil {
				return err
			}
			if err := way(ctx, e); err != nil {
				return err
			}
			for _, h := range hooks {
				list, err := st.Deliveries(ctx, h.ID, 10)
				if err != nil {
					return err
				}
				for _, d := range list {
					if d.EventID != e.ID || d.EventType != e.Type || !d.NextAttemptAt.Equal(e.CreatedAt) {
						t.Errorf("delivery %+v of event %+v", d, e)
					}
					var body map[string]any
					if err := json.Unmarshal([]byte(d.Payload), &body); err != nil {
						return err
					}
					delete(body, "event_id") // differs: one event per way
					out[h.ID] = append(out[h.ID], body)
				}
			}
			return errRollback // leave nothing for the other way
		})
		if err != errRollback {
			t.Fatal(err)
		}
		return out
	}
	want := queued(svc.enqueueDeliveries)
	ids := func(m map[string][]map[string]any) []string {
		var k []string
		for id := range m {
			k = append(k, id)
		}
		slices.Sort(k)
		return k
	}
	if len(want) != 3 || len(want["h-approver"]) != 1 || len(want["h-mfa"]) != 0 {
		t.Fatalf("the fixture does not exercise every source: %v", want)
	}
	// Whether the writer named the event's wallet (ChangeEvent.WalletID)
	// or it is looked up from the subject, and with the group commit's
	// memo (which remembers approvers and their webhooks) or without.
	for _, way := range []struct {
		wallet string
		memo   bool
	}{{"", false}, {"w1", false}, {"", true}, {"w1", true}} {
		got := queued(func(ctx context.Context, e *countersign.Event) error {
			if way.memo {
				ctx = withTxMemo(ctx)
			}
			var targets []*countersign.Webhook
			for range 2 { // with the memo, the second lookup answers from it
				var err error
				if targets, err = svc.deliveryTargets(ctx, e, way.wallet); err != nil {
					return err
				}
			}
			return svc.addDeliveries(ctx, e, targets)
		})
		if !slices.Equal(ids(got), ids(want)) {
			t.Fatalf("wallet %q, memo %v: writeChanges queues for %v, enqueueDeliveries for %v", way.wallet, way.memo, ids(got), ids(want))
		}
		for id := range want {
			a, _ := json.Marshal(want[id])
			b, _ := json.Marshal(got[id])
			if string(a) != string(b) {
				t.Fatalf("wallet %q, memo %v: webhook %s: writeChanges queues %s, enqueueDeliveries %s", way.wallet, way.memo, id, b, a)
			}
		}
	}
}

var errRollback = rollbackError{}

type rollbackError struct{}

func (rollbackError) Error() string { return "rollback" }
