package core

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/url"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// The identity side (the identity design): one user-facing identity (email, an OIDC
// login, an EVM wallet) anchors an omni_account; more identities can be
// linked to it, each proven; any of them gets a session back (recovery).
// Sessions can mint OIDC JWTs that a cloud accepts for role assumption.

// OmniConfig configures identities, SIWE and the OIDC issuer.
type OmniConfig struct {
	ClientID      string        // omni_account client_id (default "countersign")
	PublicURL     string        // this server as users reach it: SIWE domain and URI
	SessionTTL    time.Duration // omni session lifetime (default 1 h)
	OIDCIssuer    string        // https URL without port, query or fragment; "" disables minting
	OIDCAudience  string        // default sts.amazonaws.com
	OIDCTokenTTL  time.Duration // minted token lifetime (default 1 h)
	OIDCRotation  time.Duration // new signing key after this (default 30 days); the old one stays published one more period
	EmailCodeTTL  time.Duration // default 10 min
	EmailPerHour  int           // codes per address per hour (default 5)
	EmailAttempts int           // wrong codes before a code is void (default 5)
}

func (c *OmniConfig) defaults() {
	if c.ClientID == "" {
		c.ClientID = "countersign"
	}
	if c.PublicURL == "" {
		c.PublicURL = "http://127.0.0.1:8555"
	}
	if c.SessionTTL == 0 {
		c.SessionTTL = time.Hour
	}
	if c.OIDCAudience == "" {
		c.OIDCAudience = "sts.amazonaws.com"
	}
	if c.OIDCTokenTTL == 0 {
		c.OIDCTokenTTL = time.Hour
	}
	if c.OIDCRotation == 0 {
		c.OIDCRotation = 30 * 24 * time.Hour
	}
	if c.EmailCodeTTL == 0 {
		c.EmailCodeTTL = 10 * time.Minute
	}
	if c.EmailPerHour == 0 {
		c.EmailPerHour = 5
	}
	if c.EmailAttempts == 0 {
		c.EmailAttempts = 5
	}
}

// CheckIssuerURL applies AWS's rules for an OIDC provider URL: https, a
// host, no port, no query or fragment.
func CheckIssuerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.Port() != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || strings.HasSuffix(s, "/") {
		return fmt.Errorf("OIDC issuer %q must be an https URL with a host and no port, query, fragment or trailing slash", s)
	}
	return nil
}

// OmniSession is a session for an omni_account.
type OmniSession struct {
	Token        string
	OmniAccount  string
	IdentityType string
	ExpiresAt    time.Time
}

func (s *Service) omniTokens() *auth.Tokens {
	t, _ := auth.NewTokensFor("countersign-omni", s.tokens.Keys(), s.omni.SessionTTL, s.clock.Now)
	return t
}

// masterOmni resolves an identity to its omni_account: the account it is
// linked to, or its own.
func (s *Service) masterOmni(ctx context.Context, typ, value string) (string, error) {
	if omni, err := s.store.LinkedOmni(ctx, typ, value); err == nil {
		return omni, nil
	} else if countersign.ErrorCode(err) != countersign.NotFound {
		return "", err
	}
	return countersign.OmniAccount(s.omni.ClientID, typ, value), nil
}

// sessionFor issues a session for a proven identity.
func (s *Service) sessionFor(ctx context.Context, typ, value string) (*OmniSession, error) {
	omni, err := s.masterOmni(ctx, typ, value)
	if err != nil {
		return nil, err
	}
	tok, jti, exp, err := s.omniTokens().Issue(omni, typ)
	if err != nil {
		return nil, err
	}
	err = s.Record(ctx, countersign.Change{Owner: "omni:" + omni, Actor: "identity:" + typ, Action: "omni.session", Subject: omni, Details: map[string]string{"identity_type": typ, "jti": jti}}, nil)
	return &OmniSession{Token: tok, OmniAccount: omni, IdentityType: typ, ExpiresAt: exp}, err
}

// AuthenticateOmni verifies an omni session token.
func (s *Service) AuthenticateOmni(ctx context.Context, tok string) (*OmniSession, error) {
	c, err := s.omniTokens().Verify(tok)
	if err != nil || !countersign.ValidOmniAccount(c.Subject) {
		return nil, countersign.Errorf(countersign.Unauthorized, "invalid or expired session")
	}
	return &OmniSession{Token: tok, OmniAccount: c.Subject, IdentityType: c.Username, ExpiresAt: c.ExpiresAt.Time}, nil
}

// ---- SIWE

// SIWEChallenge is an issued sign-in message.
type SIWEChallenge struct {
	RequestID, Message, Nonce string
	ExpiresAt                 time.Time
}

func (s *Service) siweDomain() (domain, uri string) {
	u, err := url.Parse(s.omni.PublicURL)
	if err != nil || u.Host == "" {
		return "127.0.0.1:8555", "http://127.0.0.1:8555"
	}
	return u.Host, strings.TrimRight(s.omni.PublicURL, "/")
}

func randomNonce() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
	b := make([]byte, 17)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[n.Int64()]
	}
	return string(b)
}

// SIWEStart issues an EIP-4361 message for address on this chain.
func (s *Service) SIWEStart(ctx context.Context, address string, chainID int64) (*SIWEChallenge, error) {
	a, err := ParseAddress("address", address)
	if err != nil {
		return nil, err
	}
	if chainID != s.chainID.Int64() {
		return nil, countersign.Errorf(countersign.BadRequest, "chain_id %d is not this server's chain (%s)", chainID, s.chainID)
	}
	now := s.clock.Now().UTC()
	domain, uri := s.siweDomain()
	m := &auth.SIWE{Domain: domain, Address: a.Hex(), Statement: "Sign in to countersign with this wallet.", URI: uri, Version: "1",
		ChainID: chainID, Nonce: randomNonce(), IssuedAt: now.Format("2006-01-02T15:04:05.000Z"),
		ExpirationTime: now.Add(5 * time.Minute).Format("2006-01-02T15:04:05.000Z"), RequestID: uuid.NewString()}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	r := &countersign.SIWERequest{ID: m.RequestID, Address: m.Address, Message: m.String(), Nonce: m.Nonce, ExpiresAt: now.Add(5 * time.Minute)}
	if err := s.store.CreateSIWERequest(ctx, r); err != nil {
		return nil, err
	}
	return &SIWEChallenge{RequestID: r.ID, Message: r.Message, Nonce: r.Nonce, ExpiresAt: r.ExpiresAt}, nil
}

// erc1271Magic is isValidSignature(bytes32,bytes)'s success value.
var erc1271Magic = []byte{0x16, 0x26, 0xba, 0x7e}

// siweProve checks a signature of an issued challenge, once, and returns
// the proven address.
func (s *Service) siweProve(ctx context.Context, requestID, signature string) (common.Address, error) {
	fail := func(format string, args ...any) (common.Address, error) {
		return common.Address{}, countersign.Errorf(countersign.Unauthorized, "sign-in refused: "+format, args...)
	}
	r, err := s.store.TakeSIWERequest(ctx, requestID, s.clock.Now())
	if err != nil {
		return fail("unknown or already used request (each nonce works once)")
	}
	now := s.clock.Now()
	if !now.Before(r.ExpiresAt) {
		return fail("the request expired")
	}
	m, err := auth.ParseSIWE(r.Message)
	if err != nil {
		return fail("%v", err)
	}
	domain, _ := s.siweDomain()
	if err := m.Check(auth.SIWECheck{Domain: domain, Nonce: r.Nonce, ChainID: s.chainID.Int64(), Time: now}); err != nil {
		return fail("%v", err)
	}
	sig, err := hexDecode(signature)
	if err != nil || len(sig) != 65 {
		return fail("signature must be 65 bytes of 0x-hex")
	}
	want := common.HexToAddress(m.Address)
	if got, err := auth.RecoverSIWE(r.Message, sig); err == nil && got == want {
		return want, nil
	}
	// A contract wallet signs by code: ask it (ERC-1271).
	if code, err := s.chain.CodeAt(ctx, want.Hex()); err == nil && len(code) > 0 {
		data, _ := erc1271ABI.Pack("isValidSignature", [32]byte(accounts.TextHash([]byte(r.Message))), sig)
		if out, err := s.chain.Call(ctx, countersign.CallMsg{To: want.Hex(), Data: data}); err == nil && len(out) >= 4 && bytes.Equal(out[:4], erc1271Magic) {
			return want, nil
		}
	}
	return fail("the signature is not from %s", m.Address)
}

func hexDecode(s string) ([]byte, error) {
	return hex.DecodeString(strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X"))
}

// SIWEVerify checks a signed challenge and opens a session for the wallet.
func (s *Service) SIWEVerify(ctx context.Context, requestID, signature string) (*OmniSession, string, error) {
	a, err := s.siweProve(ctx, requestID, signature)
	if err != nil {
		return nil, "", err
	}
	sess, err := s.sessionFor(ctx, countersign.IdentityEVM, strings.ToLower(a.Hex()))
	return sess, a.Hex(), err
}

// ---- email

func (s *Service) emailCodeHash(email, code string) []byte {
	return tokenHash("email-code\x00" + email + "\x00" + code)
}

// EmailStart sends a one-time login code. Sending is rate limited per
// address; the answer is the same whether or not the address is known.
func (s *Service) EmailStart(ctx context.Context, email string) error {
	if s.mailer == nil {
		return countersign.Errorf(countersign.NotFound, "email login is not configured on this server (set SMTP_ADDR)")
	}
	e, err := countersign.CanonicalIdentity(countersign.IdentityEmail, email)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	tooMany := &countersign.Error{Code: countersign.RateLimit, RetryAfter: 600, Detail: "too many login codes for this address; try again later"}
	// The count of codes sent and the next code are two statements: many
	// starts at once would all read a count under the limit. The store's
	// atomic counter (shared by every replica) admits at most EmailPerHour
	// starts per address and hour; the count of stored codes stays as the
	// record across windows.
	wait, err := s.store.CountAttempt(ctx, []countersign.LimitKey{{Key: "email-code:" + e, Max: s.omni.EmailPerHour}}, time.Hour, now)
	if err != nil {
		return err
	}
	if wait > 0 {
		tooMany.RetryAfter = int(wait.Seconds()) + 1
		return tooMany
	}
	n, err := s.store.EmailCodesSince(ctx, e, now.Add(-time.Hour))
	if err != nil {
		return err
	}
	if n >= s.omni.EmailPerHour {
		return tooMany
	}
	nb, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	code := fmt.Sprintf("%06d", nb.Int64())
	if err := s.store.AddEmailCode(ctx, &countersign.EmailCode{Email: e, CodeHash: s.emailCodeHash(e, code), CreatedAt: now, ExpiresAt: now.Add(s.omni.EmailCodeTTL)}); err != nil {
		return err
	}
	body := fmt.Sprintf("Your countersign login code is %s\r\n\r\nIt expires in %d minutes and works once. If you did not ask for it, ignore this email.\r\n",
		code, int(s.omni.EmailCodeTTL.Minutes()))
	if err := s.mailer.Send(ctx, e, "Your countersign login code", body); err != nil {
		return countersign.Wrap(countersign.Internal, err, "could not send the email")
	}
	return nil
}

// emailProve checks a code for email, once.
func (s *Service) emailProve(ctx context.Context, email, code string) (string, error) {
	e, err := countersign.CanonicalIdentity(countersign.IdentityEmail, email)
	if err != nil {
		return "", err
	}
	refused := countersign.Errorf(countersign.Unauthorized, "wrong or expired login code")
	var out error
	err = s.store.InTx(ctx, func(ctx context.Context) error {
		c, err := s.store.LatestEmailCode(ctx, e, s.clock.Now())
		if err != nil {
			out = refused
			return nil
		}
		if c.Attempts >= s.omni.EmailAttempts {
			out = countersign.Errorf(countersign.RateLimit, "too many wrong codes: ask for a new one")
			return nil
		}
		if subtle.ConstantTimeCompare(c.CodeHash, s.emailCodeHash(e, strings.TrimSpace(code))) != 1 {
			c.Attempts++
			out = refused
			return s.store.UpdateEmailCode(ctx, c)
		}
		c.UsedAt = s.clock.Now()
		return s.store.UpdateEmailCode(ctx, c)
	})
	if err != nil {
		return "", err
	}
	return e, out
}

// EmailVerify checks a login code and opens a session.
func (s *Service) EmailVerify(ctx context.Context, email, code string) (*OmniSession, error) {
	e, err := s.emailProve(ctx, email, code)
	if err != nil {
		return nil, err
	}
	return s.sessionFor(ctx, countersign.IdentityEmail, e)
}

// ---- OIDC login

func (s *Service) oidcIdentity(ctx context.Context, idToken, nonce string) (typ, value string, err error) {
	if s.idTokens == nil {
		return "", "", countersign.Errorf(countersign.NotFound, "OIDC login is not configured on this server (set OIDC_LOGIN_ISSUER)")
	}
	v, err := s.idTokens.Verify(ctx, idToken)
	if err != nil {
		return "", "", countersign.Wrap(countersign.Unauthorized, err, "the ID token does not verify")
	}
	if nonce == "" || subtle.ConstantTimeCompare([]byte(v.Nonce), []byte(nonce)) != 1 {
		return "", "", countersign.Errorf(countersign.Unauthorized, "the ID token's nonce does not match")
	}
	if v.Issuer == "https://accounts.google.com" {
		return countersign.IdentityOAuth2Google, v.Subject, nil
	}
	value, err = countersign.CanonicalIdentity(countersign.IdentityOIDC, v.Issuer+"|"+v.Subject)
	return countersign.IdentityOIDC, value, err
}

// OIDCLogin verifies an ID token from the configured issuer and opens a
// session for its issuer-qualified subject.
func (s *Service) OIDCLogin(ctx context.Context, idToken, nonce string) (*OmniSession, error) {
	typ, value, err := s.oidcIdentity(ctx, idToken, nonce)
	if err != nil {
		return nil, err
	}
	return s.sessionFor(ctx, typ, value)
}

// ---- linking

// LinkProof proves control of the identity being linked: a SIWE request
// and signature for evm, a login code for email, an ID token and nonce for
// oidc.
type LinkProof struct {
	RequestID, Signature, Code, IDToken, Nonce string
}

// Link links another identity to the session's omni_account. An identity
// already owned by another account (linked, or used on its own) is refused.
func (s *Service) Link(ctx context.Context, sess *OmniSession, typ, value string, proof LinkProof) (string, error) {
	canonical, err := countersign.CanonicalIdentity(typ, value)
	if err != nil {
		return "", err
	}
	switch typ {
	case countersign.IdentityEVM:
		a, err := s.siweProve(ctx, proof.RequestID, proof.Signature)
		if err != nil {
			return "", err
		}
		if strings.ToLower(a.Hex()) != canonical {
			return "", countersign.Errorf(countersign.Unauthorized, "the signature proves %s, not %s", a.Hex(), value)
		}
	case countersign.IdentityEmail:
		if _, err := s.emailProve(ctx, canonical, proof.Code); err != nil {
			return "", err
		}
	case countersign.IdentityOIDC, countersign.IdentityOAuth2Google:
		t, v, err := s.oidcIdentity(ctx, proof.IDToken, proof.Nonce)
		if err != nil {
			return "", err
		}
		if t != typ || v != canonical {
			return "", countersign.Errorf(countersign.Unauthorized, "the ID token proves another identity")
		}
	default:
		return "", countersign.Errorf(countersign.BadRequest, "linking %s identities is not supported yet", typ)
	}
	own := countersign.OmniAccount(s.omni.ClientID, typ, canonical)
	if own == sess.OmniAccount {
		return "", countersign.Errorf(countersign.Conflict, "this identity is the account's own anchor")
	}
	if linked, err := s.store.LinkedOmni(ctx, typ, canonical); err == nil && linked != sess.OmniAccount {
		return "", countersign.Errorf(countersign.Conflict, "this identity already belongs to another account")
	} else if err == nil {
		return sess.OmniAccount, nil // already linked here
	}
	err = s.Record(ctx, countersign.Change{Owner: "omni:" + sess.OmniAccount, Actor: "omni:" + sess.OmniAccount, Action: "omni.link", Subject: sess.OmniAccount, Details: map[string]string{"identity_type": typ}},
		func(ctx context.Context) error {
			return s.store.LinkIdentity(ctx, typ, canonical, sess.OmniAccount, s.clock.Now())
		})
	return sess.OmniAccount, err
}

// ---- OIDC issuer

// OIDCKeys returns the OIDC signing keys to publish (newest first), adding
// a new key when the newest is older than the rotation period. A retired key
// stays published for one more period, so tokens it signed still verify.
func (s *Service) OIDCKeys(ctx context.Context) ([]auth.TokenKey, error) {
	stored, err := s.store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var newest time.Time
	for _, k := range stored {
		if k.Alg == oidcAlg && k.CreatedAt.After(newest) {
			newest = k.CreatedAt
		}
	}
	if newest.IsZero() || now.Sub(newest) >= s.omni.OIDCRotation {
		if _, err := s.addSigningKey(ctx, oidcAlg); err != nil && countersign.ErrorCode(err) != countersign.Conflict {
			return nil, err
		}
		if stored, err = s.store.SigningKeys(ctx); err != nil {
			return nil, err
		}
	}
	var keys []auth.TokenKey
	for _, sk := range stored { // newest first
		if sk.Alg != oidcAlg || (len(keys) > 0 && now.Sub(sk.CreatedAt) >= 2*s.omni.OIDCRotation) {
			continue
		}
		k, err := s.openSigningKey(sk)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, nil
}

const oidcAlg = "ES256-oidc"

// JWKS is the public key set served at /.well-known/jwks.json: session
// keys and OIDC keys, all ES256.
func (s *Service) JWKS(ctx context.Context) (auth.JWKSet, error) {
	set := auth.JWKS(s.tokens.Keys())
	if s.omni.OIDCIssuer != "" {
		keys, err := s.OIDCKeys(ctx)
		if err != nil {
			return set, err
		}
		set = auth.JWKS(s.tokens.Keys(), keys)
	}
	return set, nil
}

// MintedToken is an OIDC JWT for a cloud provider.
type MintedToken struct {
	JWT        string
	Expiration time.Time
}

// MintOIDC issues an OIDC JWT for the session's omni_account with AWS
// session tags.
func (s *Service) MintOIDC(ctx context.Context, sess *OmniSession) (*MintedToken, error) {
	if s.omni.OIDCIssuer == "" {
		return nil, countersign.Errorf(countersign.NotFound, "the OIDC issuer is not configured (set OIDC_ISSUER)")
	}
	keys, err := s.OIDCKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	exp := now.Add(s.omni.OIDCTokenTTL)
	claims := jwt.MapClaims{
		"iss": s.omni.OIDCIssuer, "sub": sess.OmniAccount, "aud": s.omni.OIDCAudience,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": exp.Unix(), "jti": uuid.NewString(),
		"https://aws.amazon.com/tags": map[string]any{
			"principal_tags":      map[string][]string{"omni_account": {sess.OmniAccount}, "identity_type": {sess.IdentityType}},
			"transitive_tag_keys": []string{"omni_account"},
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, claims)
	tok.Header["kid"] = keys[0].KID
	signed, err := tok.SignedString(keys[0].Private)
	if err != nil {
		return nil, err
	}
	err = s.Record(ctx, countersign.Change{Owner: "omni:" + sess.OmniAccount, Actor: "omni:" + sess.OmniAccount, Action: "oidc.mint", Subject: sess.OmniAccount, Details: map[string]string{"aud": s.omni.OIDCAudience, "kid": keys[0].KID}}, nil)
	return &MintedToken{JWT: signed, Expiration: exp}, err
}
