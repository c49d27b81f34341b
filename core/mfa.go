package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
	"math"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// MFA enrolment has one code path for the API and the web UI. The rules,
// because the TOTP secret is what stands between a stolen password and
// every spend:
//
//   - while MFA is off, anyone holding the session may enrol (that is the
//     password's strength, and nothing else is protected yet);
//   - enabling MFA anywhere discards any enrolment in progress;
//   - while MFA is on, starting, confirming or replacing an enrolment needs
//     a current code (or a recovery code) in that same request;
//   - an enrolment in progress expires after MFAPendingTTL and is never
//     shown again once MFA is on.

// RecoveryCodes is how many one-time recovery codes an enrolment yields.
const RecoveryCodes = 10

// MFAPendingTTL is how long an enrolment started in the web UI may be
// confirmed.
const MFAPendingTTL = 10 * time.Minute

// MFAEnrolment is what a user needs to add the TOTP secret to an app.
type MFAEnrolment struct {
	URI           string
	Secret        string
	QRPNGBase64   string
	RecoveryCodes []string // set when the secret is active at once (API)
}

// SetupMFA creates (or, with a current code or a recovery code, replaces)
// the user's TOTP secret. It is usable at once, and comes with new
// recovery codes (shown once) that replace any earlier ones.
func (s *Service) SetupMFA(ctx context.Context, p *Principal, currentCode string) (*MFAEnrolment, error) {
	proved, secret, err := s.newSecret(ctx, p, currentCode, "send mfa_code (a code from the current authenticator, or a recovery code) to replace it")
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	sealed, err := s.sealer.Seal("mfa:"+p.User.ID, secret)
	if err != nil {
		return nil, err
	}
	enr, err := s.enrolment(p.User.Username, secret) // before anything is written
	if err != nil {
		return nil, err
	}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		u, err := s.store.UserByID(ctx, p.User.ID)
		if err != nil {
			return err
		}
		if u.MFAEnabled && !proved {
			return countersign.Errorf(countersign.MFARequired, "MFA was turned on meanwhile: send mfa_code to replace it")
		}
		enr.RecoveryCodes, err = s.activateMFA(ctx, cs, p, u, sealed, 0, "api")
		return err
	})
	if err != nil {
		return nil, err
	}
	return enr, nil
}

// BeginMFA starts an enrolment (web UI): a new secret that becomes active
// only once ConfirmMFA sees a code from it. While MFA is on, it needs a
// current code or a recovery code.
func (s *Service) BeginMFA(ctx context.Context, p *Principal, currentCode string) (*MFAEnrolment, error) {
	proved, secret, err := s.newSecret(ctx, p, currentCode, "enter a code from your current authenticator (or a recovery code) to replace it")
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	sealed, err := s.sealPending(p.User.ID, secret)
	if err != nil {
		return nil, err
	}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		u, err := s.store.UserByID(ctx, p.User.ID)
		if err != nil {
			return err
		}
		if u.MFAEnabled && !proved {
			return countersign.Errorf(countersign.MFARequired, "MFA was turned on meanwhile: enter a current code to replace it")
		}
		u.MFAPending = sealed
		if err := s.store.UpdateUserMFA(ctx, u); err != nil {
			return err
		}
		cs.add(countersign.Change{Owner: u.ID, Actor: p.Actor(), Action: "mfa.begin", Subject: u.ID, Details: map[string]bool{"replacing": u.MFAEnabled}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.enrolment(p.User.Username, secret)
}

// PendingMFA returns the enrolment in progress, to show it again. It is
// shown only while MFA is off: once a secret is active, a pending one is
// never displayed again (whoever replaces it saw it when they began, with
// a current code).
func (s *Service) PendingMFA(ctx context.Context, p *Principal) (*MFAEnrolment, error) {
	u, err := s.store.UserByID(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	if u.MFAEnabled {
		return nil, countersign.Errorf(countersign.NotFound, "no MFA enrolment to show")
	}
	secret, err := s.openPending(u)
	if err != nil {
		return nil, err
	}
	if secret == nil {
		return nil, countersign.Errorf(countersign.NotFound, "no MFA enrolment in progress")
	}
	defer clear(secret)
	return s.enrolment(u.Username, secret)
}

// ConfirmMFA activates the pending secret with its first code and returns
// new one-time recovery codes, shown to the user once and stored hashed.
// While MFA is on, currentCode (a code of the active secret or a recovery
// code) must come in the same request.
func (s *Service) ConfirmMFA(ctx context.Context, p *Principal, code, currentCode string) ([]string, error) {
	proved, err := s.proveCurrentMFA(ctx, p, currentCode, "enter a code from your current authenticator (or a recovery code) as well")
	if err != nil {
		return nil, err
	}
	var codes []string
	var verr error
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		u, err := s.store.UserByID(ctx, p.User.ID)
		if err != nil {
			return err
		}
		if u.MFAEnabled && !proved {
			verr = countersign.Errorf(countersign.MFARequired, "MFA is on: enter a code from your current authenticator as well")
			return nil
		}
		secret, err := s.openPending(u)
		if err != nil {
			return err
		}
		if secret == nil {
			verr = countersign.Errorf(countersign.Conflict, "no MFA enrolment in progress (or it expired): start again")
			return nil
		}
		defer clear(secret)
		step, ok := auth.VerifyTOTP(secret, code, s.clock.Now(), 0)
		if !ok {
			verr = countersign.Errorf(countersign.MFAInvalid, "that code does not match the new secret: check the app's clock and try the next code")
			return nil
		}
		sealed, err := s.sealer.Seal("mfa:"+u.ID, secret)
		if err != nil {
			return err
		}
		codes, err = s.activateMFA(ctx, cs, p, u, sealed, step, "web")
		return err
	})
	if err != nil {
		return nil, err
	}
	if verr != nil {
		return nil, verr
	}
	return codes, nil
}

// activateMFA makes sealed u's active secret (lastStep: the step of the
// code that proved it, 0 if none), discards any pending enrolment, issues
// new recovery codes and states the change in cs, inside the caller's
// transaction: the one place where a secret becomes active.
func (s *Service) activateMFA(ctx context.Context, cs *changeSet, p *Principal, u *countersign.User, sealed []byte, lastStep int64, via string) ([]string, error) {
	replacing := u.MFAEnabled
	u.MFASealed, u.MFAPending, u.MFAEnabled, u.MFALastStep, u.MFAFailures, u.MFALockedUntil = sealed, nil, true, lastStep, 0, time.Time{}
	if err := s.store.UpdateUserMFA(ctx, u); err != nil {
		return nil, err
	}
	codes, err := s.newRecoveryCodes(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	cs.add(countersign.Change{Owner: u.ID, Actor: p.Actor(), Action: "mfa.setup", Subject: u.ID, Details: map[string]any{"replaced": replacing, "recovery_codes": RecoveryCodes, "via": via}})
	return codes, nil
}

// NewRecoveryCodes replaces the user's recovery codes with new ones, shown
// once, after checking a current TOTP code.
// Who may call is the route's rule; VerifyMFA refuses a user whose MFA is
// off (MFA_REQUIRED), so the /api/mfa/recover form of the call (a User
// route) cannot reach the codes either.
func (s *Service) NewRecoveryCodes(ctx context.Context, p *Principal, code string) ([]string, error) {
	if !looksLikeTOTP(code) {
		return nil, countersign.Errorf(countersign.BadRequest, "mfa_code must be a current 6-digit code")
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	var codes []string
	err := s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "mfa.recovery_codes", Subject: p.User.ID, Details: map[string]int{"recovery_codes": RecoveryCodes}},
		func(ctx context.Context) error {
			var err error
			codes, err = s.newRecoveryCodes(ctx, p.User.ID)
			return err
		})
	if err != nil {
		return nil, err
	}
	return codes, nil
}

// RecoverMFA spends a recovery code to turn MFA off so the user can enrol
// a new authenticator. Each code works once; wrong codes count towards the
// MFA lockout.
func (s *Service) RecoverMFA(ctx context.Context, p *Principal, code string) error {
	if err := requireMFA(p); err != nil {
		return countersign.Errorf(countersign.Conflict, "MFA is not set up")
	}
	if err := s.useRecoveryCode(ctx, p.User.ID, code); err != nil {
		return err
	}
	return s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "mfa.recover", Subject: p.User.ID},
		func(ctx context.Context) error {
			u, err := s.store.UserByID(ctx, p.User.ID)
			if err != nil {
				return err
			}
			u.MFAEnabled, u.MFASealed, u.MFAPending, u.MFALastStep = false, nil, nil, 0
			return s.store.UpdateUserMFA(ctx, u)
		})
}

// newSecret proves the current MFA (when on) and returns a fresh TOTP
// secret; see proveCurrentMFA for what proved means.
func (s *Service) newSecret(ctx context.Context, p *Principal, code, hint string) (proved bool, secret []byte, err error) {
	if proved, err = s.proveCurrentMFA(ctx, p, code, hint); err != nil {
		return false, nil, err
	}
	secret, err = auth.NewTOTPSecret()
	return proved, secret, err
}

// proveCurrentMFA checks, when p has MFA on, that code is a current TOTP
// code or an unused recovery code (spending it). It reports whether a
// proof was made; with MFA off and no code it is false and no error.
func (s *Service) proveCurrentMFA(ctx context.Context, p *Principal, code, hint string) (bool, error) {
	if !p.User.MFAEnabled {
		// Re-read: the principal was loaded at authentication, and MFA may
		// have been enabled since. The write transactions check again.
		u, err := s.store.UserByID(ctx, p.User.ID)
		if err != nil {
			return false, err
		}
		if !u.MFAEnabled {
			return false, nil
		}
	}
	if strings.TrimSpace(code) == "" {
		return false, countersign.Errorf(countersign.MFARequired, "MFA is already set up: %s", hint)
	}
	if looksLikeTOTP(code) {
		return true, s.VerifyMFA(ctx, p.User.ID, code)
	}
	return true, s.useRecoveryCode(ctx, p.User.ID, code)
}

func looksLikeTOTP(code string) bool {
	if len(code) != auth.TOTPDigits {
		return false
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// VerifyMFA checks a TOTP code for userID. A code is accepted once; wrong
// codes count towards a lockout. A code that was right but is already used
// (a replay, or the same code submitted twice in parallel) is refused
// without counting as a failure, so a double submit cannot lock the owner
// out. It commits on its own, so a failure is recorded even when the
// action it guarded is refused.
func (s *Service) VerifyMFA(ctx context.Context, userID, code string) error {
	if code == "" {
		return countersign.Errorf(countersign.BadRequest, "mfa_code is required")
	}
	var verr error
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		u, err := s.store.UserByID(ctx, userID)
		if err != nil {
			return err
		}
		if !u.MFAEnabled {
			verr = countersign.Errorf(countersign.MFARequired, "MFA is not set up: call POST /api/setup_mfa first")
			return nil
		}
		now := s.clock.Now()
		if verr = lockedErr(u, now); verr != nil {
			return nil
		}
		secret, err := s.sealer.Open("mfa:"+u.ID, u.MFASealed)
		if err != nil {
			return err
		}
		step, ok := auth.VerifyTOTP(secret, code, now, u.MFALastStep)
		_, replay := auth.VerifyTOTP(secret, code, now, math.MinInt64)
		clear(secret)
		if ok {
			u.MFALastStep, u.MFAFailures = step, 0
			return s.store.UpdateUserMFA(ctx, u)
		}
		if replay {
			verr = countersign.Errorf(countersign.MFAInvalid, "that MFA code was already used: wait for the next one")
			return nil
		}
		verr, err = s.countMFAFailure(ctx, cs, u, now)
		return err
	})
	if err != nil {
		return err
	}
	return verr
}

func lockedErr(u *countersign.User, now time.Time) error {
	if !now.Before(u.MFALockedUntil) {
		return nil
	}
	return &countersign.Error{Code: countersign.MFALocked, RetryAfter: int(u.MFALockedUntil.Sub(now).Seconds()) + 1,
		Detail: "too many wrong MFA codes: locked until " + u.MFALockedUntil.UTC().Format(time.RFC3339)}
}

// countMFAFailure counts one wrong code (TOTP or recovery) inside the
// caller's transaction, states it in cs and returns the error to show.
func (s *Service) countMFAFailure(ctx context.Context, cs *changeSet, u *countersign.User, now time.Time) (error, error) {
	u.MFAFailures++
	action := "mfa.failure"
	var verr error = countersign.Errorf(countersign.MFAInvalid, "invalid or already used MFA code")
	if u.MFAFailures >= s.cfg.MFAMaxFailures {
		u.MFAFailures = 0
		u.MFALockedUntil = now.Add(s.cfg.MFALockout)
		action = "mfa.locked"
		verr = &countersign.Error{Code: countersign.MFALocked, RetryAfter: int(s.cfg.MFALockout.Seconds()),
			Detail: "too many wrong MFA codes: locked until " + u.MFALockedUntil.UTC().Format(time.RFC3339)}
	}
	if err := s.store.UpdateUserMFA(ctx, u); err != nil {
		return nil, err
	}
	cs.add(countersign.Change{Owner: u.ID, Actor: "user:" + u.ID, Action: action, Subject: u.ID, Details: map[string]int{"failures": u.MFAFailures}})
	return verr, nil
}

// useRecoveryCode spends one recovery code of userID, honouring and
// feeding the MFA lockout. It commits on its own.
func (s *Service) useRecoveryCode(ctx context.Context, userID, code string) error {
	var verr error
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		u, err := s.store.UserByID(ctx, userID)
		if err != nil {
			return err
		}
		now := s.clock.Now()
		if verr = lockedErr(u, now); verr != nil {
			return nil
		}
		err = s.store.UseRecoveryCode(ctx, u.ID, tokenHash(normalizeRecovery(code)), now)
		if err == nil {
			cs.add(countersign.Change{Owner: u.ID, Actor: "user:" + u.ID, Action: "mfa.recovery_code.used", Subject: u.ID})
			return nil
		}
		if countersign.ErrorCode(err) == countersign.Conflict {
			// spent or replaced a moment ago: a replay (a double submit, or
			// one of several parallel copies), refused without counting, as
			// for a TOTP code
			verr = countersign.Errorf(countersign.MFAInvalid, "that recovery code is wrong or was already used")
			return nil
		}
		if countersign.ErrorCode(err) != countersign.NotFound {
			return err
		}
		verr, err = s.countMFAFailure(ctx, cs, u, now)
		if countersign.ErrorCode(verr) == countersign.MFAInvalid {
			verr = countersign.Errorf(countersign.MFAInvalid, "that recovery code is wrong or was already used")
		}
		return err
	})
	if err != nil {
		return err
	}
	return verr
}

var recoveryEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

func normalizeRecovery(code string) string {
	return strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
}

// newRecoveryCodes replaces userID's recovery codes inside the caller's
// transaction and returns them (16 base32 characters, 80 bits each).
func (s *Service) newRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	codes := make([]string, 0, RecoveryCodes)
	hashes := make([][]byte, 0, RecoveryCodes)
	for range RecoveryCodes {
		b := make([]byte, 10)
		_, _ = rand.Read(b)
		c := recoveryEnc.EncodeToString(b)
		codes = append(codes, c[:4]+"-"+c[4:8]+"-"+c[8:12]+"-"+c[12:])
		hashes = append(hashes, tokenHash(normalizeRecovery(c)))
	}
	if err := s.store.SetRecoveryCodes(ctx, userID, hashes); err != nil {
		return nil, err
	}
	return codes, nil
}

func (s *Service) enrolment(username string, secret []byte) (*MFAEnrolment, error) {
	uri := auth.TOTPURI(s.cfg.MFAIssuer, username, secret)
	qr, err := QRPNGBase64(uri, 256)
	if err != nil {
		return nil, err
	}
	return &MFAEnrolment{URI: uri, Secret: auth.EncodeSecret(secret), QRPNGBase64: qr}, nil
}

// pendingMagic marks a pending secret sealed with its expiry; a sealed
// pending secret from before (no expiry) reads as expired.
var pendingMagic = []byte("MFP1")

func (s *Service) sealPending(userID string, secret []byte) ([]byte, error) {
	b := make([]byte, 0, len(pendingMagic)+8+len(secret))
	b = append(b, pendingMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(s.clock.Now().Add(MFAPendingTTL).Unix()))
	b = append(b, secret...)
	defer clear(b)
	return s.sealer.Seal("mfa-pending:"+userID, b)
}

// openPending returns u's pending secret, or nil when none is pending or
// it has expired.
func (s *Service) openPending(u *countersign.User) ([]byte, error) {
	if len(u.MFAPending) == 0 {
		return nil, nil
	}
	b, err := s.sealer.Open("mfa-pending:"+u.ID, u.MFAPending)
	if err != nil {
		return nil, err
	}
	n := len(pendingMagic) + 8
	if len(b) <= n || !bytes.Equal(b[:len(pendingMagic)], pendingMagic) ||
		s.clock.Now().Unix() >= int64(binary.BigEndian.Uint64(b[len(pendingMagic):n])) {
		clear(b)
		return nil, nil
	}
	secret := bytes.Clone(b[n:])
	clear(b)
	return secret, nil
}
