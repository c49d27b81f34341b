package auth

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

// Passkeys (WebAuthn) as an approval factor: the relying party's side of
// registration and assertion, over go-webauthn. Everything crossing this
// API is bytes and JSON, so core never sees the library's types.

// PasskeyRP verifies passkey ceremonies for one relying party (a host and
// its exact origins).
type PasskeyRP struct {
	w *webauthn.WebAuthn
}

// NewPasskeyRP returns the relying party rpID (a host name) accepting
// assertions from origins only.
func NewPasskeyRP(rpID, displayName string, origins []string) (*PasskeyRP, error) {
	w, err := webauthn.New(&webauthn.Config{RPID: rpID, RPDisplayName: displayName, RPOrigins: origins})
	if err != nil {
		return nil, err
	}
	return &PasskeyRP{w: w}, nil
}

// PasskeyUser is the account a ceremony is for: an opaque handle, a name
// and the credential records (JSON) it registered.
type PasskeyUser struct {
	Handle      []byte
	Name        string
	Credentials [][]byte
}

type waUser struct {
	u     PasskeyUser
	creds []webauthn.Credential
}

func (w waUser) WebAuthnID() []byte                         { return w.u.Handle }
func (w waUser) WebAuthnName() string                       { return w.u.Name }
func (w waUser) WebAuthnDisplayName() string                { return w.u.Name }
func (w waUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

func (u PasskeyUser) wa() (waUser, error) {
	out := waUser{u: u}
	for _, b := range u.Credentials {
		var c webauthn.Credential
		if err := json.Unmarshal(b, &c); err != nil {
			return out, fmt.Errorf("passkey record: %w", err)
		}
		out.creds = append(out.creds, c)
	}
	return out, nil
}

// ErrPasskey is a ceremony that does not verify: wrong origin or relying
// party, a bad signature, another challenge, a replayed counter.
var ErrPasskey = errors.New("the passkey answer does not verify")

// BeginRegistration starts registering a new passkey for u: the options for
// navigator.credentials.create (JSON) and the session to keep until Finish.
func (rp *PasskeyRP) BeginRegistration(u PasskeyUser) (options, session []byte, err error) {
	wu, err := u.wa()
	if err != nil {
		return nil, nil, err
	}
	exclude := make([]protocol.CredentialDescriptor, 0, len(wu.creds))
	for _, c := range wu.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, sess, err := rp.w.BeginRegistration(wu, webauthn.WithExclusions(exclude),
		webauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementPreferred))
	if err != nil {
		return nil, nil, err
	}
	if options, err = json.Marshal(creation); err != nil {
		return nil, nil, err
	}
	session, err = json.Marshal(sess)
	return options, session, err
}

// RegistrationChallenge is the challenge a registration answer claims to
// answer (base64url), to find its session.
func RegistrationChallenge(response []byte) (string, error) {
	p, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return "", ErrPasskey
	}
	return p.Response.CollectedClientData.Challenge, nil
}

// FinishRegistration verifies the answer to BeginRegistration and returns
// the new credential's id (base64url) and record (JSON).
func (rp *PasskeyRP) FinishRegistration(u PasskeyUser, session, response []byte) (id string, record []byte, err error) {
	wu, err := u.wa()
	if err != nil {
		return "", nil, err
	}
	var sess webauthn.SessionData
	if err := json.Unmarshal(session, &sess); err != nil {
		return "", nil, err
	}
	p, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return "", nil, ErrPasskey
	}
	c, err := rp.w.CreateCredential(wu, sess, p)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	record, err = json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(c.ID), record, err
}

// BeginAssertion starts an assertion by one of u's passkeys over exactly
// challenge (the caller derives it from what is being approved), with user
// verification required.
func (rp *PasskeyRP) BeginAssertion(u PasskeyUser, challenge []byte) (options, session []byte, err error) {
	wu, err := u.wa()
	if err != nil {
		return nil, nil, err
	}
	a, sess, err := rp.w.BeginLogin(wu, webauthn.WithChallenge(challenge), webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, nil, err
	}
	if options, err = json.Marshal(a); err != nil {
		return nil, nil, err
	}
	session, err = json.Marshal(sess)
	return options, session, err
}

// AssertionChallenge is the challenge an assertion answers (base64url).
func AssertionChallenge(response []byte) (string, error) {
	p, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return "", ErrPasskey
	}
	return p.Response.CollectedClientData.Challenge, nil
}

// SessionChallenge is the challenge a session was started with (base64url).
func SessionChallenge(session []byte) (string, error) {
	var sess webauthn.SessionData
	if err := json.Unmarshal(session, &sess); err != nil {
		return "", err
	}
	return sess.Challenge, nil
}

// FinishAssertion verifies an assertion against the session and u's
// passkeys and returns the credential used (base64url id) with its updated
// record (the sign counter moves on).
func (rp *PasskeyRP) FinishAssertion(u PasskeyUser, session, response []byte) (id string, record []byte, err error) {
	wu, err := u.wa()
	if err != nil {
		return "", nil, err
	}
	var sess webauthn.SessionData
	if err := json.Unmarshal(session, &sess); err != nil {
		return "", nil, err
	}
	p, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return "", nil, ErrPasskey
	}
	c, err := rp.w.ValidateLogin(wu, sess, p)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrPasskey, err)
	}
	if c.Authenticator.CloneWarning {
		return "", nil, fmt.Errorf("%w: the sign counter went backwards (a cloned authenticator?)", ErrPasskey)
	}
	record, err = json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(c.ID), record, err
}
