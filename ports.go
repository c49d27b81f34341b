package countersign

import "context"

// The ports below are implemented by adapters (mailer, oidc, notify) and
// consumed by core. They live in the root so that an adapter imports only
// the domain, never the services that use it.

// Mailer sends email (the SMTP adapter, or a test sink).
type Mailer interface {
	Send(ctx context.Context, to, subject, body string) error
}

// VerifiedIDToken is what an OIDC login proves.
type VerifiedIDToken struct {
	Issuer, Subject, Nonce string
}

// IDTokenVerifier checks an ID token from a configured issuer (discovery,
// JWKS, aud, exp).
type IDTokenVerifier interface {
	Verify(ctx context.Context, rawIDToken string) (*VerifiedIDToken, error)
}

// WebhookSender POSTs a delivery (the notify package).
type WebhookSender interface {
	Post(ctx context.Context, url string, headers map[string]string, body []byte) (status int, err error)
}

// EventFeed is every owner's events in order, for the operator's local
// event socket (notify): a wake-up on each append, and the stored events.
type EventFeed interface {
	// Wake returns a channel that is signalled after events are added, and
	// a func that ends the subscription.
	Wake() (wake <-chan struct{}, stop func())
	// LastEventIDAll and AllEventsAfter are Store's: they span every owner.
	LastEventIDAll(ctx context.Context) (int64, error)
	AllEventsAfter(ctx context.Context, afterID int64, limit int) ([]*Event, error)
}

// A Change is one state change as the audit log and the event outbox
// record it: one entry on Owner's hash-chained audit log, and the events
// that webhooks and live streams see.
type Change struct {
	Owner   string // whose audit chain (a user id, or "daemon")
	Actor   string // who did it ("user:…", "agent:…", "operator", …)
	Action  string // e.g. "tx.authorize", "daemon.sign.tx"
	Subject string // the object's id
	Details any    // audit details, stored as JSON: never secrets
	Events  []ChangeEvent
}

// ChangeEvent is an event enqueued on the Change's owner's outbox.
type ChangeEvent struct {
	Type    string // e.g. "transaction.authorized", "signed"
	Subject string
	Payload any // stored as JSON
	// WalletID is the wallet the event is about when its writer has it at
	// hand (a transaction's own events): the webhooks of that wallet's
	// approvers are found from it instead of by reading Subject back. It
	// must be a wallet of the Change's Owner (its approvers receive the
	// event). Empty: looked up from Subject, as for every other event.
	WalletID string
}

// Recorder is the one state-change path every service uses. Record runs
// apply (which may be nil) in a store transaction and, in the same
// transaction, appends c's audit entry and enqueues its events: all of it
// commits or none does, and Record returns only once it is durable.
// Records without apply may share a transaction with concurrent ones
// (group commit); a failing piece never fails another caller's.
type Recorder interface {
	Record(ctx context.Context, c Change, apply func(ctx context.Context) error) error
}
