// Package oidc verifies ID tokens from a configured OpenID Connect issuer
// (discovery and JWKS with coreos/go-oidc) for OIDC login (countersign.IDTokenVerifier).
package oidc

import (
	"context"
	"net/http"
	"sync"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/countersign/countersign"
)

// Verifier checks ID tokens of one issuer for one client id (aud).
type Verifier struct {
	issuer, clientID string
	client           *http.Client

	mu       sync.Mutex // guards provider: concurrent first logins discover it
	provider *gooidc.Provider
}

var _ countersign.IDTokenVerifier = (*Verifier)(nil)

// New discovers the issuer lazily, on the first login, so the server
// starts even when the issuer is briefly unreachable.
func New(issuer, clientID string, client *http.Client) *Verifier {
	if client == nil {
		client = http.DefaultClient
	}
	return &Verifier{issuer: issuer, clientID: clientID, client: client}
}

// Verify checks signature (via the issuer's JWKS), iss, aud and exp.
func (v *Verifier) Verify(ctx context.Context, raw string) (*countersign.VerifiedIDToken, error) {
	ctx = gooidc.ClientContext(ctx, v.client)
	provider, err := v.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := provider.Verifier(&gooidc.Config{ClientID: v.clientID}).Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	return &countersign.VerifiedIDToken{Issuer: tok.Issuer, Subject: tok.Subject, Nonce: tok.Nonce}, nil
}

// discover returns the issuer's provider, fetching its discovery document
// on first use; a failed fetch is retried on the next login.
func (v *Verifier) discover(ctx context.Context) (*gooidc.Provider, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.provider == nil {
		p, err := gooidc.NewProvider(ctx, v.issuer)
		if err != nil {
			return nil, err
		}
		v.provider = p
	}
	return v.provider, nil
}
