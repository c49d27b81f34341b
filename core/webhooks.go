package core

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/netguard"
)

// Webhooks: every event written to the outbox is also queued, in the same
// database transaction, for each webhook that subscribes to it. A worker
// POSTs due deliveries, signed with HMAC-SHA256, retrying with exponential
// backoff; after MaxDeliveryAttempts a delivery is dead (kept, with its last
// error, in the delivery log).

// MaxDeliveryAttempts is how often a delivery is tried before it is dead.
const MaxDeliveryAttempts = 8

// backoff is the wait before attempt n+1: 2^n seconds, at most an hour.
func backoff(attempts int) time.Duration {
	d := time.Duration(1<<min(attempts, 12)) * time.Second
	return min(d, time.Hour)
}

// CreateWebhook subscribes url to events for owner and returns the webhook
// and its signing secret (shown once; stored sealed). The url must be, and
// resolve to, a public address unless the operator's allowlist
// (WEBHOOK_ALLOW_NETS) says otherwise; events must be known event types.
func (s *Service) CreateWebhook(ctx context.Context, owner, rawURL string, events []string) (*countersign.Webhook, string, error) {
	return s.createWebhook(ctx, owner, "operator", rawURL, events)
}

// createWebhook is CreateWebhook audited as actor: "operator" for the
// daemon's, "user:<id>" for a user's own (approvers.go).
func (s *Service) createWebhook(ctx context.Context, owner, actor, rawURL string, events []string) (*countersign.Webhook, string, error) {
	if err := ValidateWebhookEvents(events); err != nil {
		return nil, "", err
	}
	if _, err := s.webhookGuard().CheckWebhookURL(ctx, rawURL); err != nil {
		return nil, "", err
	}
	var err error
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	w := &countersign.Webhook{ID: uuid.NewString(), OwnerID: owner, URL: rawURL, Events: events, CreatedAt: s.clock.Now().UTC()}
	if w.SecretSealed, err = s.sealer.Seal("webhook:"+w.ID, secret); err != nil {
		return nil, "", err
	}
	err = s.Record(ctx, countersign.Change{Owner: owner, Actor: actor, Action: "webhook.create", Subject: w.ID, Details: map[string]any{"url": rawURL, "events": events}},
		func(ctx context.Context) error { return s.store.CreateWebhook(ctx, w) })
	return w, hex.EncodeToString(secret), err
}

// EventTypes lists every event type the outbox carries: a webhook may
// subscribe to these, to a prefix of them ending in "*" (transaction.*), or
// to "*" for everything.
func EventTypes() []string {
	types := []string{"signed", "transfer"}
	for _, st := range countersign.Statuses {
		types = append(types, "transaction."+string(st))
	}
	types = append(types, "wallet.low_balance", "wallet.balance_restored") // balancealerts.go
	types = append(types, TopupEventTypes...)                              // topups.go
	return append(types, PolicyEventTypes...)                              // approvers.go
}

// ValidateWebhookEvents checks a subscription list: 1 to 32 entries, each a
// known event type or a "*" pattern that matches at least one. A typo would
// otherwise subscribe to nothing, silently.
func ValidateWebhookEvents(events []string) error {
	if len(events) == 0 || len(events) > 32 {
		return countersign.Errorf(countersign.BadRequest, "events must list 1 to 32 event types (e.g. signed, transfer, transaction.*)")
	}
	known := EventTypes()
	for _, e := range events {
		ok := false
		if prefix, wild := strings.CutSuffix(e, "*"); wild && !strings.Contains(prefix, "*") {
			for _, k := range known {
				ok = ok || strings.HasPrefix(k, prefix)
			}
		} else {
			ok = slices.Contains(known, e)
		}
		if !ok {
			shown := e
			if len(shown) > 64 || !printable(shown) {
				shown = "(an unprintable or overlong name)"
			}
			return countersign.Errorf(countersign.BadRequest, "unknown event type %q: use one of %s, a prefix ending in * (transaction.*), or *", shown, strings.Join(known, ", "))
		}
	}
	return nil
}

func subscribed(w *countersign.Webhook, typ string) bool {
	for _, e := range w.Events {
		if e == typ || e == "*" || (strings.HasSuffix(e, "*") && strings.HasPrefix(typ, strings.TrimSuffix(e, "*"))) {
			return true
		}
	}
	return false
}

// enqueueDeliveries queues e for every subscribed webhook, inside the
// transaction that wrote e.
func (s *Service) enqueueDeliveries(ctx context.Context, e *countersign.Event) error {
	memo := memoOf(ctx)
	hooks, ok := memo.webhooks(e.OwnerID)
	if !ok {
		var err error
		if hooks, err = s.store.WebhooksFor(ctx, e.OwnerID); err != nil {
			return err
		}
		memo.setWebhooks(e.OwnerID, hooks)
	}
	// The wallet's approvers' own webhooks too (approvers.go).
	extra, err := s.approverWebhooks(ctx, e, "")
	if err != nil {
		return err
	}
	for _, w := range append(slices.Clip(hooks), extra...) {
		if !subscribed(w, e.Type) {
			continue
		}
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

// SignDelivery is the signature header value: "v1=" + hex(HMAC-SHA256(
// secret, timestamp + "." + body)). Receivers recompute it and compare in
// constant time, and refuse timestamps older than a few minutes.
func SignDelivery(secret []byte, timestamp string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp + "."))
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}

// Claims. Every replica runs the delivery worker, so a due delivery is
// claimed before it is sent: the claim (store.ClaimDeliveries, FOR UPDATE
// SKIP LOCKED on PostgreSQL) hides it from the other workers until its
// lease passes, and the outcome is written only by the claim's holder. A
// worker that dies mid-send frees its claims when the lease passes; the
// delivery is then sent again (at least once, the webhook contract: the
// X-Countersign-Delivery id lets receivers drop the repeat).
const (
	deliveryTimeout    = 10 * time.Second // one POST
	deliveryClaimBatch = 10               // claimed at once
	deliveryPassMax    = 50               // sent per pass
	// deliveryClaimLease covers a whole batch sent one after another at
	// the longest timeout, with room to write the outcomes: a claim never
	// passes to another worker while its holder may still be sending.
	deliveryClaimLease = deliveryClaimBatch*deliveryTimeout + 30*time.Second
)

// DeliverDue POSTs every due delivery once (up to deliveryPassMax a pass),
// each claimed first so no other replica sends it at the same time.
func (s *Service) DeliverDue(ctx context.Context) error {
	if s.webhooks == nil {
		return nil
	}
	holder := "deliver:" + uuid.NewString() // this pass: claims of a dead pass are not ours
	for sent := 0; sent < deliveryPassMax; {
		now := s.clock.Now()
		cctx, cancel := claimContext(ctx)
		due, err := s.store.ClaimDeliveries(cctx, holder, now, now.Add(deliveryClaimLease), min(deliveryClaimBatch, deliveryPassMax-sent))
		cancel()
		if err != nil || len(due) == 0 {
			return err
		}
		for i, d := range due {
			before := *d
			if err := s.deliver(ctx, d, holder); err != nil {
				// The rest of the batch is still claimed: give it back for
				// the next pass rather than leave it to the lease.
				back := due[i+1:]
				if ctx.Err() != nil {
					// A shutdown cut the POST or its outcome's write short:
					// d goes back too — as delivered when the receiver
					// answered 2xx, else as it was (a cut-off POST is not
					// the receiver's failure and costs no attempt).
					if d.Status != countersign.DeliveryDelivered {
						*d = before
					}
					back = due[i:]
				}
				// Otherwise d keeps its claim to the lease's end: a
				// delivery that fails this way every time (its secret
				// cannot be opened, say) must not be claimed first by every
				// pass and hold up the rest.
				rctx, cancel := claimContext(ctx)
				for _, rest := range back {
					_ = s.finishDelivery(rctx, rest, holder)
				}
				cancel()
				return err
			}
		}
		sent += len(due)
	}
	return nil
}

// deliver POSTs one claimed delivery and writes its outcome.
func (s *Service) deliver(ctx context.Context, d *countersign.Delivery, holder string) error {
	w, err := s.store.Webhook(ctx, d.WebhookID)
	if countersign.ErrorCode(err) == countersign.NotFound {
		return nil // deleted since it was claimed (with its deliveries)
	}
	if err != nil {
		return err
	}
	// The sender checks the address it dials; this catches a literal
	// target the policy no longer allows without dialing at all.
	if u, perr := netguard.ParseURL(w.URL); perr != nil || s.literalRefused(u.Hostname()) {
		return s.failDelivery(ctx, d, holder, 0, DeliveryRefusedAddress)
	}
	secret, err := s.sealer.Open("webhook:"+w.ID, w.SecretSealed)
	if err != nil {
		return err
	}
	stamp := strconv.FormatInt(s.clock.Now().Unix(), 10)
	headers := map[string]string{"Content-Type": "application/json", "X-Countersign-Event": d.EventType,
		"X-Countersign-Delivery": d.ID, "X-Countersign-Timestamp": stamp, "X-Countersign-Signature": SignDelivery(secret, stamp, []byte(d.Payload))}
	clear(secret)
	cctx, cancel := context.WithTimeout(ctx, deliveryTimeout)
	status, err := s.webhooks.Post(cctx, w.URL, headers, []byte(d.Payload))
	cancel()
	if err == nil && status >= 200 && status < 300 {
		d.Attempts++
		d.Status, d.DeliveredAt, d.LastStatus, d.LastError = countersign.DeliveryDelivered, s.clock.Now().UTC(), status, ""
		return s.finishDelivery(ctx, d, holder)
	}
	class := DeliveryHTTPStatus
	if err != nil {
		class = deliveryErrorClass(err)
		// The cause goes to the operator's log only: the delivery log
		// is readable over the API and must not map internal hosts.
		if s.log != nil {
			s.log.WarnContext(ctx, "webhook delivery failed", "webhook_id", w.ID, "delivery_id", d.ID, "class", class, "err", err)
		}
	}
	return s.failDelivery(ctx, d, holder, status, class)
}

// finishDelivery writes a claimed delivery's outcome and ends the claim. A
// claim that passed to another worker (this one outlived its lease) is not
// an error of the pass: that worker owns the delivery now.
func (s *Service) finishDelivery(ctx context.Context, d *countersign.Delivery, holder string) error {
	err := s.store.FinishDelivery(ctx, d, holder)
	if countersign.ErrorCode(err) == countersign.Conflict {
		if s.log != nil {
			s.log.WarnContext(ctx, "webhook delivery: the claim passed to another worker before the outcome was written", "delivery_id", d.ID)
		}
		return nil
	}
	return err
}

// literalRefused reports whether host is an IP literal the policy refuses
// (or a malformed numeric host).
func (s *Service) literalRefused(host string) bool {
	ip, literal, err := netguard.HostLiteral(host)
	return err != nil || (literal && s.webhookGuard().CheckIP(ip) != nil)
}

// failDelivery records a failed attempt: the HTTP status (0 when there was
// no answer) and the error class, never the error text; the delivery is
// retried with backoff, or dead after MaxDeliveryAttempts.
func (s *Service) failDelivery(ctx context.Context, d *countersign.Delivery, holder string, status int, class string) error {
	d.Attempts++
	d.LastStatus, d.LastError = status, class
	if d.Attempts >= MaxDeliveryAttempts {
		d.Status = countersign.DeliveryDead
	} else {
		d.NextAttemptAt = s.clock.Now().Add(backoff(d.Attempts))
	}
	return s.finishDelivery(ctx, d, holder)
}

// Deliveries is a webhook's delivery log, newest first.
func (s *Service) Deliveries(ctx context.Context, owner, webhookID string) ([]*countersign.Delivery, error) {
	w, err := s.store.Webhook(ctx, webhookID)
	if err != nil || w.OwnerID != owner {
		return nil, countersign.Errorf(countersign.NotFound, "webhook not found")
	}
	list, err := s.store.Deliveries(ctx, webhookID, 200)
	for _, d := range list {
		// Rows written before the log kept classes hold raw error text.
		if d.LastError != "" && !slices.Contains(deliveryClasses, d.LastError) {
			d.LastError = DeliveryTransport
			if d.LastStatus != 0 {
				d.LastError = DeliveryHTTPStatus
			}
		}
	}
	return list, err
}
