package core

import (
	"context"
	"crypto/subtle"
	"strings"
	"time"
	"unicode"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// Principal is who is calling: a user with a session token, or an agent
// with an API key.
type Principal struct {
	User  *countersign.User  // always set: the agent's owner for agents
	Agent *countersign.Agent // set for agents
	JTI   string             // session token id (users)
	Exp   time.Time          // session token expiry (users)
}

// IsAgent reports whether the caller is an agent.
func (p *Principal) IsAgent() bool { return p != nil && p.Agent != nil }

// Actor names the principal in audit entries.
func (p *Principal) Actor() string {
	if p.IsAgent() {
		return "agent:" + p.Agent.ID
	}
	return "user:" + p.User.ID
}

func validUsername(name string) error {
	if len(name) < 3 || len(name) > 64 {
		return countersign.Errorf(countersign.BadRequest, "username must be 3 to 64 characters")
	}
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("._-@+", r)) {
			return countersign.Errorf(countersign.BadRequest, "username may contain letters, digits and . _ - @ + only")
		}
	}
	return checkUsername(name) // NFKC form, letters of one script: no look-alike accounts (text.go)
}

// Register creates a user.
func (s *Service) Register(ctx context.Context, username, password string) (*countersign.User, error) {
	username, err := NormalizeUsername(username)
	if err != nil {
		return nil, err
	}
	if err := validUsername(username); err != nil {
		return nil, err
	}
	if err := auth.CheckPasswordPolicy(password); err != nil {
		return nil, err
	}
	if _, err := s.store.UserByName(ctx, username); err == nil {
		return nil, countersign.Errorf(countersign.Conflict, "username is taken")
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return nil, err
	}
	u := &countersign.User{ID: uuid.NewString(), Username: username, PasswordHash: hash, CreatedAt: s.clock.Now().UTC()}
	err = s.Record(ctx, countersign.Change{Owner: u.ID, Actor: "user:" + u.ID, Action: "user.register", Subject: u.ID, Details: map[string]string{"username": username}},
		func(ctx context.Context) error { return s.store.CreateUser(ctx, u) })
	if err != nil {
		return nil, err
	}
	return u, nil
}

// checkLogin verifies a username and password. Attempts are rate limited
// (counted before the hash is checked) and failures audited.
func (s *Service) checkLogin(ctx context.Context, username, password, clientAddr string) (*countersign.User, error) {
	username = loginUsername(username) // NFKC, as at registration: one name, one failure count
	if clientAddr != "" {
		ctx = WithClientAddr(ctx, clientAddr)
	}
	u, err := s.store.UserByName(ctx, username)
	if err != nil && countersign.ErrorCode(err) != countersign.NotFound {
		return nil, err
	}
	if err := s.guessPassword(ctx, username, u, password, "login.failure"); err != nil {
		return nil, err
	}
	return u, nil
}

// Login checks a username and password and issues an API session token.
func (s *Service) Login(ctx context.Context, username, password, clientAddr string) (token string, exp time.Time, err error) {
	u, err := s.checkLogin(ctx, username, password, clientAddr)
	if err != nil {
		return "", time.Time{}, err
	}
	token, jti, exp, err := s.tokens.Issue(u.ID, u.Username)
	if err != nil {
		return "", time.Time{}, err
	}
	err = s.Record(ctx, countersign.Change{Owner: u.ID, Actor: "user:" + u.ID, Action: "login", Subject: u.ID, Details: map[string]string{"client": clientAddr, "jti": jti}}, nil)
	return token, exp, err
}

// Logout revokes the session token of p.
func (s *Service) Logout(ctx context.Context, p *Principal) error {
	return s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "logout", Subject: p.User.ID, Details: map[string]string{"jti": p.JTI}},
		func(ctx context.Context) error { return s.store.RevokeToken(ctx, p.JTI, p.Exp) })
}

// AuthenticateUser verifies a session token and returns its principal.
func (s *Service) AuthenticateUser(ctx context.Context, token string) (*Principal, error) {
	c, err := s.tokens.Verify(token)
	if err != nil {
		return nil, countersign.Errorf(countersign.Unauthorized, "invalid or expired token")
	}
	revoked, err := s.store.TokenRevoked(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, countersign.Errorf(countersign.Unauthorized, "token has been revoked (logged out)")
	}
	u, err := s.store.UserByID(ctx, c.Subject)
	if err != nil {
		return nil, countersign.Errorf(countersign.Unauthorized, "invalid or expired token")
	}
	return &Principal{User: u, JTI: c.ID, Exp: c.ExpiresAt.Time}, nil
}

// AuthenticateAgent checks an API key and returns the agent's principal.
func (s *Service) AuthenticateAgent(ctx context.Context, key string) (*Principal, error) {
	if !auth.LooksLikeAPIKey(key) {
		return nil, countersign.Errorf(countersign.Unauthorized, "invalid API key")
	}
	h := auth.HashAPIKey(key)
	a, u, err := s.store.AgentWithOwner(ctx, h)
	if err != nil && countersign.ErrorCode(err) != countersign.NotFound {
		return nil, err
	}
	if err != nil || subtle.ConstantTimeCompare(a.KeyHash, h) != 1 {
		return nil, countersign.Errorf(countersign.Unauthorized, "invalid API key")
	}
	if a.Revoked() {
		return nil, countersign.Errorf(countersign.Unauthorized, "API key has been revoked")
	}
	now := s.clock.Now()
	if now.Sub(a.LastUsedAt) > time.Minute { // keep hot paths free of writes
		_ = s.store.TouchAgent(ctx, a.ID, now)
	}
	return &Principal{User: u, Agent: a}, nil
}

// checkPassword re-checks the user's own password for a sensitive action.
// It shares the login limiter: a stolen session is no oracle for the
// password.
func (s *Service) checkPassword(ctx context.Context, u *countersign.User, password string) error {
	if password == "" {
		return countersign.Errorf(countersign.BadRequest, "password is required")
	}
	err := s.guessPassword(ctx, u.Username, u, password, "password.failure")
	if err == errWrongPassword {
		return countersign.Errorf(countersign.BadPassword, "wrong password")
	}
	return err
}

// requireMFA refuses callers who have not set up MFA, before any other work.
func requireMFA(p *Principal) error {
	if !p.User.MFAEnabled {
		return countersign.Errorf(countersign.MFARequired, "MFA is not set up: call POST /api/setup_mfa first")
	}
	return nil
}

type principalKey struct{}

// WithPrincipal returns ctx carrying the authenticated caller, for handlers
// (such as the MCP server) that receive only a request.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the caller WithPrincipal stored, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
