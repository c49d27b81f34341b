package core

import (
	"context"
	"crypto/subtle"
	"strings"
	"sync"
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
	return nil
}

// Register creates a user.
func (s *Service) Register(ctx context.Context, username, password string) (*countersign.User, error) {
	if err := validUsername(username); err != nil {
		return nil, err
	}
	if err := auth.CheckPasswordPolicy(password); err != nil {
		return nil, err
	}
	if _, err := s.Store.UserByName(ctx, username); err == nil {
		return nil, countersign.Errorf(countersign.Conflict, "username is taken")
	}
	hash, err := auth.HashPassword(password, s.Config.Argon2)
	if err != nil {
		return nil, err
	}
	u := &countersign.User{ID: uuid.NewString(), Username: username, PasswordHash: hash, CreatedAt: s.Clock.Now().UTC()}
	err = s.inTx(ctx, func(ctx context.Context) error {
		if err := s.Store.CreateUser(ctx, u); err != nil {
			return err
		}
		return s.audit(ctx, u.ID, "user:"+u.ID, "user.register", u.ID, map[string]string{"username": username})
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// dummyHash is verified against when the username does not exist, so a
// failed login takes the same time whether or not the user exists.
var (
	dummyOnce sync.Once
	dummyHash string
)

// checkLogin verifies a username and password. Failures are rate limited
// per username and per client address and audited.
func (s *Service) checkLogin(ctx context.Context, username, password, clientAddr string) (*countersign.User, error) {
	now := s.Clock.Now()
	if wait := s.logins.blocked(username, clientAddr, now); wait > 0 {
		return nil, &countersign.Error{Code: countersign.RateLimit, RetryAfter: int(wait.Seconds()) + 1,
			Detail: "too many failed logins; try again later"}
	}
	u, err := s.Store.UserByName(ctx, username)
	if err != nil && countersign.ErrorCode(err) != countersign.NotFound {
		return nil, err
	}
	ok := false
	if u != nil {
		ok, err = auth.VerifyPassword(password, u.PasswordHash)
		if err != nil {
			return nil, err
		}
	} else {
		dummyOnce.Do(func() { dummyHash, _ = auth.HashPassword("countersign-dummy-password", s.Config.Argon2) })
		_, _ = auth.VerifyPassword(password, dummyHash)
	}
	if !ok {
		s.logins.fail(username, clientAddr, now)
		owner := SystemOwner
		if u != nil {
			owner = u.ID
		}
		if err := s.inTx(ctx, func(ctx context.Context) error {
			return s.audit(ctx, owner, "anonymous", "login.failure", username, map[string]string{"client": clientAddr})
		}); err != nil {
			return nil, err
		}
		return nil, countersign.Errorf(countersign.Unauthorized, "invalid username or password")
	}
	s.logins.succeed(username)
	return u, nil
}

// Login checks a username and password and issues an API session token.
func (s *Service) Login(ctx context.Context, username, password, clientAddr string) (token string, exp time.Time, err error) {
	u, err := s.checkLogin(ctx, username, password, clientAddr)
	if err != nil {
		return "", time.Time{}, err
	}
	token, jti, exp, err := s.Tokens.Issue(u.ID, u.Username)
	if err != nil {
		return "", time.Time{}, err
	}
	err = s.inTx(ctx, func(ctx context.Context) error {
		return s.audit(ctx, u.ID, "user:"+u.ID, "login", u.ID, map[string]string{"client": clientAddr, "jti": jti})
	})
	return token, exp, err
}

// Logout revokes the session token of p.
func (s *Service) Logout(ctx context.Context, p *Principal) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		if err := s.Store.RevokeToken(ctx, p.JTI, p.Exp); err != nil {
			return err
		}
		return s.audit(ctx, p.User.ID, p.Actor(), "logout", p.User.ID, map[string]string{"jti": p.JTI})
	})
}

// AuthenticateUser verifies a session token and returns its principal.
func (s *Service) AuthenticateUser(ctx context.Context, token string) (*Principal, error) {
	c, err := s.Tokens.Verify(token)
	if err != nil {
		return nil, countersign.Errorf(countersign.Unauthorized, "invalid or expired token")
	}
	revoked, err := s.Store.TokenRevoked(ctx, c.ID)
	if err != nil {
		return nil, err
	}
	if revoked {
		return nil, countersign.Errorf(countersign.Unauthorized, "token has been revoked (logged out)")
	}
	u, err := s.Store.UserByID(ctx, c.Subject)
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
	a, err := s.Store.AgentByKeyHash(ctx, h)
	if err != nil || subtle.ConstantTimeCompare(a.KeyHash, h) != 1 {
		return nil, countersign.Errorf(countersign.Unauthorized, "invalid API key")
	}
	if a.Revoked() {
		return nil, countersign.Errorf(countersign.Unauthorized, "API key has been revoked")
	}
	u, err := s.Store.UserByID(ctx, a.OwnerID)
	if err != nil {
		return nil, err
	}
	now := s.Clock.Now()
	if now.Sub(a.LastUsedAt) > time.Minute { // keep hot paths free of writes
		_ = s.Store.TouchAgent(ctx, a.ID, now)
	}
	return &Principal{User: u, Agent: a}, nil
}

// checkPassword re-checks the user's own password for a sensitive action.
func (s *Service) checkPassword(u *countersign.User, password string) error {
	if password == "" {
		return countersign.Errorf(countersign.BadRequest, "password is required")
	}
	ok, err := auth.VerifyPassword(password, u.PasswordHash)
	if err != nil {
		return err
	}
	if !ok {
		return countersign.Errorf(countersign.BadPassword, "wrong password")
	}
	return nil
}

// MFAEnrolment is what a user needs to add the TOTP secret to an app.
type MFAEnrolment struct {
	URI         string
	Secret      string
	QRPNGBase64 string
}

// SetupMFA creates (or, with a current code, replaces) the user's TOTP
// secret. It is usable at once.
func (s *Service) SetupMFA(ctx context.Context, p *Principal, currentCode string) (*MFAEnrolment, error) {
	secret, err := s.newMFASecret(ctx, p, currentCode, "send mfa_code from the current secret to replace it")
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	sealed, err := s.Sealer.Seal("mfa:"+p.User.ID, secret)
	if err != nil {
		return nil, err
	}
	enr, err := s.enrolment(p.User.Username, secret) // before anything is written
	if err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(ctx context.Context) error {
		u, err := s.Store.UserByID(ctx, p.User.ID)
		if err != nil {
			return err
		}
		replacing := u.MFAEnabled
		u.MFASealed, u.MFAEnabled, u.MFALastStep, u.MFAFailures, u.MFALockedUntil = sealed, true, 0, 0, time.Time{}
		if err := s.Store.UpdateUserMFA(ctx, u); err != nil {
			return err
		}
		return s.audit(ctx, u.ID, p.Actor(), "mfa.setup", u.ID, map[string]bool{"replaced": replacing})
	})
	if err != nil {
		return nil, err
	}
	return enr, nil
}

// newMFASecret returns a fresh TOTP secret for p, after checking a code of
// the current secret when MFA is already on: replacing a secret needs the
// old one. hint tells the caller how to send that code.
func (s *Service) newMFASecret(ctx context.Context, p *Principal, currentCode, hint string) ([]byte, error) {
	if p.User.MFAEnabled {
		if currentCode == "" {
			return nil, countersign.Errorf(countersign.MFARequired, "MFA is already set up: %s", hint)
		}
		if err := s.VerifyMFA(ctx, p.User.ID, currentCode); err != nil {
			return nil, err
		}
	}
	return auth.NewTOTPSecret()
}

// VerifyMFA checks a TOTP code for userID. A code is accepted once; wrong
// codes count towards a lockout. It commits on its own, so a failure is
// recorded even when the action it guarded is refused.
func (s *Service) VerifyMFA(ctx context.Context, userID, code string) error {
	if code == "" {
		return countersign.Errorf(countersign.BadRequest, "mfa_code is required")
	}
	var verr error
	err := s.Store.InTx(ctx, func(ctx context.Context) error {
		u, err := s.Store.UserByID(ctx, userID)
		if err != nil {
			return err
		}
		if !u.MFAEnabled {
			verr = countersign.Errorf(countersign.MFARequired, "MFA is not set up: call POST /api/setup_mfa first")
			return nil
		}
		now := s.Clock.Now()
		if now.Before(u.MFALockedUntil) {
			wait := u.MFALockedUntil.Sub(now)
			verr = &countersign.Error{Code: countersign.MFALocked, RetryAfter: int(wait.Seconds()) + 1,
				Detail: "too many wrong MFA codes: locked until " + u.MFALockedUntil.UTC().Format(time.RFC3339)}
			return nil
		}
		secret, err := s.Sealer.Open("mfa:"+u.ID, u.MFASealed)
		if err != nil {
			return err
		}
		step, ok := auth.VerifyTOTP(secret, code, now, u.MFALastStep)
		clear(secret)
		if ok {
			u.MFALastStep, u.MFAFailures = step, 0
			return s.Store.UpdateUserMFA(ctx, u)
		}
		u.MFAFailures++
		action := "mfa.failure"
		verr = countersign.Errorf(countersign.MFAInvalid, "invalid or already used MFA code")
		if u.MFAFailures >= s.Config.MFAMaxFailures {
			u.MFAFailures = 0
			u.MFALockedUntil = now.Add(s.Config.MFALockout)
			action = "mfa.locked"
			verr = &countersign.Error{Code: countersign.MFALocked, RetryAfter: int(s.Config.MFALockout.Seconds()),
				Detail: "too many wrong MFA codes: locked until " + u.MFALockedUntil.UTC().Format(time.RFC3339)}
		}
		if err := s.Store.UpdateUserMFA(ctx, u); err != nil {
			return err
		}
		return s.audit(ctx, u.ID, "user:"+u.ID, action, u.ID, map[string]int{"failures": u.MFAFailures})
	})
	if err != nil {
		return err
	}
	return verr
}

// requireMFA refuses callers who have not set up MFA, before any other work.
func requireMFA(p *Principal) error {
	if !p.User.MFAEnabled {
		return countersign.Errorf(countersign.MFARequired, "MFA is not set up: call POST /api/setup_mfa first")
	}
	return nil
}

// loginLimiter counts failed logins per username and per client address in
// a fixed window. It is per process: behind several replicas the effective
// limit is multiplied by their number (see docs/SECURITY.md).
type loginLimiter struct {
	mu               sync.Mutex
	perUser, perAddr int
	window           time.Duration
	users, addrs     map[string]*failWindow
}

type failWindow struct {
	start time.Time
	n     int
}

func newLoginLimiter(perUser, perAddr int, window time.Duration) *loginLimiter {
	return &loginLimiter{perUser: perUser, perAddr: perAddr, window: window,
		users: map[string]*failWindow{}, addrs: map[string]*failWindow{}}
}

func (l *loginLimiter) blocked(user, addr string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var wait time.Duration
	for _, c := range []struct {
		m   map[string]*failWindow
		k   string
		max int
	}{{l.users, strings.ToLower(user), l.perUser}, {l.addrs, addr, l.perAddr}} {
		w := c.m[c.k]
		if w == nil {
			continue
		}
		if now.Sub(w.start) >= l.window {
			delete(c.m, c.k)
			continue
		}
		if w.n >= c.max {
			if d := w.start.Add(l.window).Sub(now); d > wait {
				wait = d
			}
		}
	}
	return wait
}

func (l *loginLimiter) fail(user, addr string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range []struct {
		m map[string]*failWindow
		k string
	}{{l.users, strings.ToLower(user)}, {l.addrs, addr}} {
		w := c.m[c.k]
		if w == nil || now.Sub(w.start) >= l.window {
			w = &failWindow{start: now}
			c.m[c.k] = w
		}
		w.n++
	}
	if len(l.users) > 100_000 || len(l.addrs) > 100_000 { // bound memory under a spray
		for k, w := range l.users {
			if now.Sub(w.start) >= l.window {
				delete(l.users, k)
			}
		}
		for k, w := range l.addrs {
			if now.Sub(w.start) >= l.window {
				delete(l.addrs, k)
			}
		}
	}
}

func (l *loginLimiter) succeed(user string) {
	l.mu.Lock()
	delete(l.users, strings.ToLower(user))
	l.mu.Unlock()
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
