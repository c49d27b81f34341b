package core

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"strings"
	"time"

	qrcode "github.com/skip2/go-qrcode"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// WebSessionTTL is how long a browser session of the approval UI lasts.
const WebSessionTTL = 12 * time.Hour

// RecoveryCodes is how many one-time recovery codes an enrolment yields.
const RecoveryCodes = 10

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
	now := s.Clock.Now().UTC()
	ws := &countersign.WebSession{TokenHash: tokenHash(tok), UserID: u.ID, CSRF: randomToken(32), CreatedAt: now, ExpiresAt: now.Add(WebSessionTTL)}
	err = s.inTx(ctx, func(ctx context.Context) error {
		if err := s.Store.CreateWebSession(ctx, ws); err != nil {
			return err
		}
		return s.audit(ctx, u.ID, "user:"+u.ID, "login", u.ID, map[string]string{"client": clientAddr, "via": "web"})
	})
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
	ws, err := s.Store.WebSession(ctx, tokenHash(tok), s.Clock.Now())
	if err != nil {
		return nil, nil, countersign.Errorf(countersign.Unauthorized, "not logged in")
	}
	u, err := s.Store.UserByID(ctx, ws.UserID)
	if err != nil {
		return nil, nil, countersign.Errorf(countersign.Unauthorized, "not logged in")
	}
	return &Principal{User: u}, ws, nil
}

// WebLogout ends a browser session.
func (s *Service) WebLogout(ctx context.Context, p *Principal, tok string) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		if err := s.Store.DeleteWebSession(ctx, tokenHash(tok)); err != nil {
			return err
		}
		return s.audit(ctx, p.User.ID, p.Actor(), "logout", p.User.ID, map[string]string{"via": "web"})
	})
}

// BeginMFA starts an enrolment in the web UI: a new secret that becomes
// active only once ConfirmMFA sees a code from it. Replacing an active
// secret needs a code from it first.
func (s *Service) BeginMFA(ctx context.Context, p *Principal, currentCode string) (*MFAEnrolment, error) {
	secret, err := s.newMFASecret(ctx, p, currentCode, "enter a code from your current authenticator to replace it")
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	sealed, err := s.Sealer.Seal("mfa-pending:"+p.User.ID, secret)
	if err != nil {
		return nil, err
	}
	err = s.inTx(ctx, func(ctx context.Context) error {
		u, err := s.Store.UserByID(ctx, p.User.ID)
		if err != nil {
			return err
		}
		u.MFAPending = sealed
		return s.Store.UpdateUserMFA(ctx, u)
	})
	if err != nil {
		return nil, err
	}
	return s.enrolment(p.User.Username, secret)
}

func (s *Service) enrolment(username string, secret []byte) (*MFAEnrolment, error) {
	uri := auth.TOTPURI(s.Config.MFAIssuer, username, secret)
	png, err := qrcode.Encode(uri, qrcode.Medium, 256)
	if err != nil {
		return nil, err
	}
	return &MFAEnrolment{URI: uri, Secret: auth.EncodeSecret(secret), QRPNGBase64: base64.StdEncoding.EncodeToString(png)}, nil
}

// PendingMFA returns the enrolment in progress, to show it again.
func (s *Service) PendingMFA(ctx context.Context, p *Principal) (*MFAEnrolment, error) {
	u, err := s.Store.UserByID(ctx, p.User.ID)
	if err != nil || len(u.MFAPending) == 0 {
		return nil, countersign.Errorf(countersign.NotFound, "no MFA enrolment in progress")
	}
	secret, err := s.Sealer.Open("mfa-pending:"+u.ID, u.MFAPending)
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	return s.enrolment(u.Username, secret)
}

var recoveryEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

func normalizeRecovery(code string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
}

// ConfirmMFA activates the pending secret with its first code and returns
// new one-time recovery codes, shown to the user once and stored hashed.
func (s *Service) ConfirmMFA(ctx context.Context, p *Principal, code string) ([]string, error) {
	var codes []string
	var verr error
	err := s.inTx(ctx, func(ctx context.Context) error {
		u, err := s.Store.UserByID(ctx, p.User.ID)
		if err != nil {
			return err
		}
		if len(u.MFAPending) == 0 {
			verr = countersign.Errorf(countersign.Conflict, "no MFA enrolment in progress: start again")
			return nil
		}
		secret, err := s.Sealer.Open("mfa-pending:"+u.ID, u.MFAPending)
		if err != nil {
			return err
		}
		step, ok := auth.VerifyTOTP(secret, code, s.Clock.Now(), 0)
		if !ok {
			clear(secret)
			verr = countersign.Errorf(countersign.MFAInvalid, "that code does not match the new secret: check the app's clock and try the next code")
			return nil
		}
		sealed, err := s.Sealer.Seal("mfa:"+u.ID, secret)
		clear(secret)
		if err != nil {
			return err
		}
		replacing := u.MFAEnabled
		u.MFASealed, u.MFAPending, u.MFAEnabled, u.MFALastStep, u.MFAFailures, u.MFALockedUntil = sealed, nil, true, step, 0, time.Time{}
		if err := s.Store.UpdateUserMFA(ctx, u); err != nil {
			return err
		}
		var hashes [][]byte
		codes = codes[:0]
		for range RecoveryCodes {
			b := make([]byte, 10)
			_, _ = rand.Read(b)
			c := recoveryEnc.EncodeToString(b) // 16 characters, 80 bits
			codes = append(codes, c[:4]+"-"+c[4:8]+"-"+c[8:12]+"-"+c[12:])
			hashes = append(hashes, tokenHash(normalizeRecovery(c)))
		}
		if err := s.Store.SetRecoveryCodes(ctx, u.ID, hashes); err != nil {
			return err
		}
		return s.audit(ctx, u.ID, p.Actor(), "mfa.setup", u.ID, map[string]any{"replaced": replacing, "recovery_codes": RecoveryCodes, "via": "web"})
	})
	if err != nil {
		return nil, err
	}
	return codes, verr
}

// RecoverMFA spends a recovery code to turn MFA off so the user can enrol
// a new authenticator. Each code works once; wrong codes count towards the
// MFA lockout.
func (s *Service) RecoverMFA(ctx context.Context, p *Principal, code string) error {
	if !p.User.MFAEnabled {
		return countersign.Errorf(countersign.Conflict, "MFA is not set up")
	}
	if now := s.Clock.Now(); now.Before(p.User.MFALockedUntil) {
		return &countersign.Error{Code: countersign.MFALocked, RetryAfter: int(p.User.MFALockedUntil.Sub(now).Seconds()) + 1,
			Detail: "too many wrong MFA codes: locked until " + p.User.MFALockedUntil.UTC().Format(time.RFC3339)}
	}
	var verr error
	err := s.inTx(ctx, func(ctx context.Context) error {
		u, err := s.Store.UserByID(ctx, p.User.ID)
		if err != nil {
			return err
		}
		if err := s.Store.UseRecoveryCode(ctx, u.ID, tokenHash(normalizeRecovery(code)), s.Clock.Now()); err != nil {
			if countersign.ErrorCode(err) != countersign.NotFound {
				return err
			}
			verr = countersign.Errorf(countersign.MFAInvalid, "that recovery code is wrong or was already used")
			return nil
		}
		u.MFAEnabled, u.MFASealed, u.MFAPending, u.MFALastStep = false, nil, nil, 0
		if err := s.Store.UpdateUserMFA(ctx, u); err != nil {
			return err
		}
		return s.audit(ctx, u.ID, p.Actor(), "mfa.recover", u.ID, map[string]string{"via": "web"})
	})
	if err != nil {
		return err
	}
	if verr != nil {
		// count the failure like a wrong TOTP code (and lock out guessing)
		_ = s.VerifyMFA(ctx, p.User.ID, "------")
	}
	return verr
}
