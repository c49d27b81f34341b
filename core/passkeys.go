package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// Passkeys as the approval factor (docs/APPROVER.md). A user registers one
// or more passkeys with a current TOTP code, then approves a request with a
// tap. The assertion's challenge is SHA-256 over the request's id, its
// approval digest and a random nonce, so the authenticator signs that
// request's digest: an assertion approves that request, as it is, and
// nothing else. TOTP stays the fallback and the API's factor; an approval
// counts for its user whichever factor it used, so a quorum still needs
// distinct users.

const (
	passkeyTTL     = 5 * time.Minute
	maxPasskeys    = 10
	passkeyApprove = "approve"
	passkeyEnrol   = "register"
)

// passkeyOrigin is the relying party id and the one origin passkeys work
// on: PUBLIC_URL's host and origin. On a loopback PUBLIC_URL (the
// development default) the id is "localhost", which browsers accept as a
// secure context and a relying party id (an IP address is neither), on the
// port the browser used (host, the request's Host) when it is a loopback
// too: a development server's port is not always the configured one.
func (s *Service) passkeyOrigin(host string) (rpID, origin string, err error) {
	u, err := url.Parse(s.omni.PublicURL)
	if err != nil || u.Host == "" {
		return "", "", countersign.Errorf(countersign.BadRequest, "passkeys need PUBLIC_URL")
	}
	if !loopback(u.Hostname()) {
		if net.ParseIP(u.Hostname()) != nil {
			return "", "", countersign.Errorf(countersign.BadRequest, "passkeys need PUBLIC_URL with a host name, not an IP address")
		}
		return u.Hostname(), u.Scheme + "://" + u.Host, nil
	}
	port := u.Port()
	if h, p, err := net.SplitHostPort(host); err == nil && loopback(h) {
		port = p
	}
	origin = u.Scheme + "://localhost"
	if port != "" {
		origin += ":" + port
	}
	return "localhost", origin, nil
}

func loopback(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func (s *Service) passkeyRP(host string) (*auth.PasskeyRP, error) {
	id, origin, err := s.passkeyOrigin(host)
	if err != nil {
		return nil, err
	}
	rp, err := auth.NewPasskeyRP(id, "countersign", []string{origin})
	if err != nil {
		return nil, countersign.Wrap(countersign.Internal, err, "passkeys are misconfigured")
	}
	return rp, nil
}

// PasskeyOrigin is where passkeys work for a request to host: the browser
// must be on this origin.
func (s *Service) PasskeyOrigin(host string) string {
	_, origin, _ := s.passkeyOrigin(host)
	return origin
}

func (s *Service) passkeyUser(ctx context.Context, u *countersign.User) (auth.PasskeyUser, []*countersign.Passkey, error) {
	keys, err := s.store.Passkeys(ctx, u.ID)
	if err != nil {
		return auth.PasskeyUser{}, nil, err
	}
	pu := auth.PasskeyUser{Handle: []byte(u.ID), Name: u.Username}
	for _, k := range keys {
		pu.Credentials = append(pu.Credentials, k.Credential)
	}
	return pu, keys, nil
}

// Passkeys lists the caller's passkeys.
func (s *Service) Passkeys(ctx context.Context, p *Principal) ([]*countersign.Passkey, error) {
	return s.store.Passkeys(ctx, p.User.ID)
}

// BeginPasskeyRegistration starts registering a passkey for p, which needs
// a current TOTP code: a stolen session alone must not add a factor. It
// returns the options for navigator.credentials.create.
func (s *Service) BeginPasskeyRegistration(ctx context.Context, p *Principal, code, host string) ([]byte, error) {
	if !p.User.MFAEnabled {
		return nil, countersign.Errorf(countersign.MFARequired, "set up MFA first: a passkey is added with a code")
	}
	rp, err := s.passkeyRP(host)
	if err != nil {
		return nil, err
	}
	pu, keys, err := s.passkeyUser(ctx, p.User)
	if err != nil {
		return nil, err
	}
	if len(keys) >= maxPasskeys {
		return nil, countersign.Errorf(countersign.BadRequest, "at most %d passkeys: remove one first", maxPasskeys)
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	options, session, err := rp.BeginRegistration(pu)
	if err != nil {
		return nil, countersign.Wrap(countersign.Internal, err, "cannot start the passkey registration")
	}
	if err := s.putChallenge(ctx, p.User.ID, passkeyEnrol, "", nil, nil, session); err != nil {
		return nil, err
	}
	return options, nil
}

func (s *Service) putChallenge(ctx context.Context, userID, purpose, txID string, digest, nonce, session []byte) error {
	ch, err := auth.SessionChallenge(session)
	if err != nil {
		return countersign.Wrap(countersign.Internal, err, "cannot start the passkey ceremony")
	}
	return s.store.PutPasskeyChallenge(ctx, &countersign.PasskeyChallenge{ID: ch, UserID: userID, Purpose: purpose, TxID: txID, Digest: digest, Nonce: nonce,
		Session: session, ExpiresAt: s.clock.Now().Add(passkeyTTL)})
}

// takeChallenge consumes the ceremony challenge answers, which must be
// p's and for purpose.
func (s *Service) takeChallenge(ctx context.Context, p *Principal, challenge, purpose string) (*countersign.PasskeyChallenge, error) {
	if challenge == "" || len(challenge) > 128 {
		return nil, countersign.Errorf(countersign.MFAInvalid, "the passkey answer does not verify")
	}
	c, err := s.store.TakePasskeyChallenge(ctx, challenge, s.clock.Now())
	if err != nil || c.UserID != p.User.ID || c.Purpose != purpose {
		return nil, countersign.Errorf(countersign.MFAInvalid, "the passkey answer is not for this ceremony (or it expired): start again")
	}
	return c, nil
}

// FinishPasskeyRegistration verifies the browser's answer and stores the
// new passkey under name. Audited passkey.register.
func (s *Service) FinishPasskeyRegistration(ctx context.Context, p *Principal, name string, response []byte, host string) (*countersign.Passkey, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		name = "passkey"
	}
	if err := CheckText("name", name, MaxName, false); err != nil {
		return nil, err
	}
	rp, err := s.passkeyRP(host)
	if err != nil {
		return nil, err
	}
	chal, err := auth.RegistrationChallenge(response)
	if err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "the passkey answer cannot be read")
	}
	c, err := s.takeChallenge(ctx, p, chal, passkeyEnrol)
	if err != nil {
		return nil, err
	}
	pu, _, err := s.passkeyUser(ctx, p.User)
	if err != nil {
		return nil, err
	}
	id, record, err := rp.FinishRegistration(pu, c.Session, response)
	if err != nil {
		return nil, passkeyRefusal(err)
	}
	k := &countersign.Passkey{ID: id, UserID: p.User.ID, Name: name, Credential: record, CreatedAt: s.clock.Now().UTC()}
	err = s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "passkey.register", Subject: id, Details: map[string]string{"name": name}},
		func(ctx context.Context) error { return s.store.CreatePasskey(ctx, k) })
	if err != nil {
		return nil, err
	}
	return k, nil
}

// DeletePasskey removes one of the caller's passkeys. Audited.
func (s *Service) DeletePasskey(ctx context.Context, p *Principal, id string) error {
	return s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "passkey.delete", Subject: id},
		func(ctx context.Context) error { return s.store.DeletePasskey(ctx, p.User.ID, id) })
}

// approvalChallenge is what a passkey signs to approve transaction id at
// digest: domain-separated, with a fresh nonce so no two ceremonies share
// a challenge.
func approvalChallenge(id string, digest, nonce []byte) []byte {
	h := sha256.New()
	h.Write([]byte("countersign passkey approval v1\x00"))
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write(digest)
	h.Write([]byte{0})
	h.Write(nonce)
	return h.Sum(nil)
}

// BeginPasskeyApproval starts a passkey approval of the pending request id
// by p: the options for navigator.credentials.get, whose challenge commits
// to the request's digest.
func (s *Service) BeginPasskeyApproval(ctx context.Context, p *Principal, id, host string) ([]byte, error) {
	t, err := s.load(ctx, p, id)
	if err != nil {
		return nil, err
	}
	if t.Status != countersign.StatusPending {
		return nil, countersign.Errorf(countersign.Conflict, "transaction %s is %s, not pending", t.ID, t.Status)
	}
	rp, err := s.passkeyRP(host)
	if err != nil {
		return nil, err
	}
	pu, keys, err := s.passkeyUser(ctx, p.User)
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		return nil, countersign.Errorf(countersign.BadRequest, "you have no passkey: register one first, or approve with a code")
	}
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	options, session, err := rp.BeginAssertion(pu, approvalChallenge(t.ID, t.Digest, nonce))
	if err != nil {
		return nil, countersign.Wrap(countersign.Internal, err, "cannot start the passkey approval")
	}
	if err := s.putChallenge(ctx, p.User.ID, passkeyApprove, t.ID, t.Digest, nonce, session); err != nil {
		return nil, err
	}
	return options, nil
}

// verifyPasskeyApproval checks a passkey assertion as the factor of p's
// decision on ids: exactly one request, the ceremony started for it, by p,
// over its digest as it is now, signed by one of p's passkeys.
func (s *Service) verifyPasskeyApproval(ctx context.Context, p *Principal, ids []string, response []byte, host string) error {
	if len(ids) != 1 {
		return countersign.Errorf(countersign.BadRequest, "a passkey approves one request at a time")
	}
	rp, err := s.passkeyRP(host)
	if err != nil {
		return err
	}
	chal, err := auth.AssertionChallenge(response)
	if err != nil {
		return countersign.Errorf(countersign.MFAInvalid, "the passkey answer cannot be read")
	}
	c, err := s.takeChallenge(ctx, p, chal, passkeyApprove)
	if err != nil {
		return err
	}
	t, err := s.store.Transaction(ctx, ids[0])
	if err != nil {
		return err
	}
	want := base64.RawURLEncoding.EncodeToString(approvalChallenge(t.ID, t.Digest, c.Nonce))
	if c.TxID != t.ID || !bytes.Equal(c.Digest, t.Digest) || chal != want {
		return countersign.Errorf(countersign.MFAInvalid, "this passkey answer approves another request: it approves only the one it was started for")
	}
	pu, _, err := s.passkeyUser(ctx, p.User)
	if err != nil {
		return err
	}
	id, record, err := rp.FinishAssertion(pu, c.Session, response)
	if err != nil {
		return passkeyRefusal(err)
	}
	return s.store.UpdatePasskey(ctx, id, record, s.clock.Now().UTC())
}

func passkeyRefusal(err error) error {
	if errors.Is(err, auth.ErrPasskey) {
		return countersign.Wrap(countersign.MFAInvalid, err, "the passkey answer does not verify")
	}
	return countersign.Wrap(countersign.Internal, err, "the passkey could not be checked")
}
