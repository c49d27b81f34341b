package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"time"

	"github.com/countersign/countersign"
)

// WebSessionTTL is how long a browser session of the approval UI lasts.
const WebSessionTTL = 12 * time.Hour

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func tokenHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

// WebLogin checks a password (with the same rate limits as the API) and
// opens a browser session. It returns the cookie token and the session.
func (s *Service) WebLogin(ctx context.Context, username, password, clientAddr string) (string, *countersign.WebSession, error) {
	u, err := s.checkLogin(ctx, username, password, clientAddr)
	if err != nil {
		return "", nil, err
	}
	tok := randomToken(32)
	now := s.clock.Now().UTC()
	ws := &countersign.WebSession{TokenHash: tokenHash(tok), UserID: u.ID, CSRF: randomToken(32), CreatedAt: now, ExpiresAt: now.Add(WebSessionTTL)}
	err = s.Record(ctx, countersign.Change{Owner: u.ID, Actor: "user:" + u.ID, Action: "login", Subject: u.ID, Details: map[string]string{"client": clientAddr, "via": "web"}},
		func(ctx context.Context) error { return s.store.CreateWebSession(ctx, ws) })
	if err != nil {
		return "", nil, err
	}
	return tok, ws, nil
}

// WebAuthenticate returns the principal and session of a cookie token.
func (s *Service) WebAuthenticate(ctx context.Context, tok string) (*Principal, *countersign.WebSession, error) {
	if tok == "" || len(tok) > 128 {
		return nil, nil, countersign.Errorf(countersign.Unauthorized, "not logged in")
	}
	ws, err := s.store.WebSession(ctx, tokenHash(tok), s.clock.Now())
	if err != nil {
		return nil, nil, countersign.Errorf(countersign.Unauthorized, "not logged in")
	}
	u, err := s.store.UserByID(ctx, ws.UserID)
	if err != nil {
		return nil, nil, countersign.Errorf(countersign.Unauthorized, "not logged in")
	}
	return &Principal{User: u}, ws, nil
}

// WebLogout ends a browser session.
func (s *Service) WebLogout(ctx context.Context, p *Principal, tok string) error {
	return s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "logout", Subject: p.User.ID, Details: map[string]string{"via": "web"}},
		func(ctx context.Context) error { return s.store.DeleteWebSession(ctx, tokenHash(tok)) })
}
