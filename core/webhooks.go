package core

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// Webhooks: every event written to the outbox is also queued, in the same
// database transaction, for each webhook that subscribes to it. A worker
// POSTs due deliveries, signed with HMAC-SHA256, retrying with exponential
// backoff; after MaxDeliveryAttempts a delivery is dead (kept, with its last
// error, in the delivery log).

// WebhookSender POSTs a delivery (the notify package).
type WebhookSender interface {
	Post(ctx context.Context, url string, headers map[string]string, body []byte) (status int, err error)
}

// MaxDeliveryAttempts is how often a delivery is tried before it is dead.
const MaxDeliveryAttempts = 8

// backoff is the wait before attempt n+1: 2^n seconds, at most an hour.
func backoff(attempts int) time.Duration {
	d := time.Duration(1<<min(attempts, 12)) * time.Second
	return min(d, time.Hour)
}

// CreateWebhook subscribes url to events for owner and returns the webhook
// and its signing secret (shown once; stored sealed).
func (s *Service) CreateWebhook(ctx context.Context, owner, rawURL string, events []string) (*countersign.Webhook, string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || len(rawURL) > 2048 {
		return nil, "", countersign.Errorf(countersign.BadRequest, "url must be an http(s) URL without credentials")
	}
	if len(events) == 0 || len(events) > 32 {
		return nil, "", countersign.Errorf(countersign.BadRequest, "events must list 1 to 32 event types (e.g. signed, transfer, transaction.*)")
	}
	for _, e := range events {
		if e == "" || len(e) > 64 || strings.ContainsAny(e, " \t\n") {
			return nil, "", countersign.Errorf(countersign.BadRequest, "invalid event type %q", e)
		}
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	w := &countersign.Webhook{ID: uuid.NewString(), OwnerID: owner, URL: rawURL, Events: events, CreatedAt: s.Clock.Now().UTC()}
	if w.SecretSealed, err = s.Sealer.Seal("webhook:"+w.ID, secret); err != nil {
		return nil, "", err
	}
	err = s.inTx(ctx, func(ctx context.Context) error {
		if err := s.Store.CreateWebhook(ctx, w); err != nil {
			return err
		}
		return s.audit(ctx, owner, "operator", "webhook.create", w.ID, map[string]any{"url": rawURL, "events": events})
	})
	return w, hex.EncodeToString(secret), err
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
		if hooks, err = s.Store.WebhooksFor(ctx, e.OwnerID); err != nil {
			return err
		}
		memo.setWebhooks(e.OwnerID, hooks)
	}
	for _, w := range hooks {
		if !subscribed(w, e.Type) {
			continue
		}
		body, _ := json.Marshal(map[string]any{"event_id": e.ID, "type": e.Type, "subject": e.Subject, "owner": e.OwnerID,
			"created_at": e.CreatedAt, "data": json.RawMessage(e.Payload)})
		d := &countersign.Delivery{ID: uuid.NewString(), WebhookID: w.ID, EventID: e.ID, EventType: e.Type, Payload: string(body),
			Status: countersign.DeliveryPending, NextAttemptAt: e.CreatedAt, CreatedAt: e.CreatedAt}
		if err := s.Store.AddDelivery(ctx, d); err != nil {
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

// DeliverDue POSTs every due delivery once.
func (s *Service) DeliverDue(ctx context.Context) error {
	if s.Webhooks == nil {
		return nil
	}
	now := s.Clock.Now()
	due, err := s.Store.DueDeliveries(ctx, now, 50)
	if err != nil {
		return err
	}
	for _, d := range due {
		w, err := s.Store.Webhook(ctx, d.WebhookID)
		if err != nil {
			return err
		}
		secret, err := s.Sealer.Open("webhook:"+w.ID, w.SecretSealed)
		if err != nil {
			return err
		}
		stamp := strconv.FormatInt(now.Unix(), 10)
		headers := map[string]string{"Content-Type": "application/json", "X-Countersign-Event": d.EventType,
			"X-Countersign-Delivery": d.ID, "X-Countersign-Timestamp": stamp, "X-Countersign-Signature": SignDelivery(secret, stamp, []byte(d.Payload))}
		clear(secret)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		status, err := s.Webhooks.Post(cctx, w.URL, headers, []byte(d.Payload))
		cancel()
		d.Attempts++
		d.LastStatus = status
		switch {
		case err == nil && status >= 200 && status < 300:
			d.Status, d.DeliveredAt, d.LastError = countersign.DeliveryDelivered, s.Clock.Now().UTC(), ""
		default:
			if err != nil {
				d.LastError = err.Error()
			} else {
				d.LastError = fmt.Sprintf("HTTP %d", status)
			}
			if d.Attempts >= MaxDeliveryAttempts {
				d.Status = countersign.DeliveryDead
			} else {
				d.NextAttemptAt = s.Clock.Now().Add(backoff(d.Attempts))
			}
		}
		if err := s.Store.UpdateDelivery(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

// Deliveries is a webhook's delivery log, newest first.
func (s *Service) Deliveries(ctx context.Context, owner, webhookID string) ([]*countersign.Delivery, error) {
	w, err := s.Store.Webhook(ctx, webhookID)
	if err != nil || w.OwnerID != owner {
		return nil, countersign.Errorf(countersign.NotFound, "webhook not found")
	}
	return s.Store.Deliveries(ctx, webhookID, 200)
}
