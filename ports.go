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
