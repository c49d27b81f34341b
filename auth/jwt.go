package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the iss claim of session tokens.
const Issuer = "countersign"

// TokenKey is one Ed25519 signing key with its key id.
type TokenKey struct {
	KID     string
	Private ed25519.PrivateKey
}

// NewTokenKey generates an Ed25519 key whose kid is derived from its public
// key (RFC 7638-style thumbprint, truncated).
func NewTokenKey() (TokenKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return TokenKey{}, err
	}
	return TokenKey{KID: KeyIDFor(priv.Public().(ed25519.PublicKey)), Private: priv}, nil
}

// KeyIDFor returns the kid of an Ed25519 public key.
func KeyIDFor(pub ed25519.PublicKey) string {
	jwk := fmt.Sprintf(`{"crv":"Ed25519","kty":"OKP","x":"%s"}`, base64.RawURLEncoding.EncodeToString(pub))
	h := sha256.Sum256([]byte(jwk))
	return base64.RawURLEncoding.EncodeToString(h[:12])
}

// Claims are the claims of a user session token.
type Claims struct {
	Username string `json:"name"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies session JWTs signed with EdDSA. The newest key
// signs; every key it holds verifies, so keys can rotate with overlap.
type Tokens struct {
	keys []TokenKey // keys[0] signs
	ttl  time.Duration
	now  func() time.Time
}

// NewTokens returns a Tokens that signs with keys[0].
func NewTokens(keys []TokenKey, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: no token signing key")
	}
	return &Tokens{keys: keys, ttl: ttl, now: now}, nil
}

// TTL returns the lifetime of issued tokens.
func (t *Tokens) TTL() time.Duration { return t.ttl }

// Issue returns a signed access token for a user, and its id and expiry.
func (t *Tokens) Issue(userID, username string) (token, jti string, exp time.Time, err error) {
	now := t.now()
	exp = now.Add(t.ttl)
	idb := make([]byte, 16)
	if _, err := rand.Read(idb); err != nil {
		return "", "", time.Time{}, err
	}
	jti = base64.RawURLEncoding.EncodeToString(idb)
	c := Claims{
		Username: username,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    Issuer,
			Subject:   userID,
			Audience:  jwt.ClaimStrings{Issuer},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        jti,
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = t.keys[0].KID
	token, err = tok.SignedString(t.keys[0].Private)
	return token, jti, exp, err
}

// ErrToken is returned for any token that does not verify.
var ErrToken = errors.New("auth: invalid or expired token")

// Verify checks the signature (EdDSA only: "none" and algorithm switching
// are refused), the kid, issuer, audience and time claims.
func (t *Tokens) Verify(token string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		for _, k := range t.keys {
			if k.KID == kid {
				return k.Private.Public(), nil
			}
		}
		return nil, ErrToken
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now),
		jwt.WithLeeway(5*time.Second),
	)
	if err != nil || c.Subject == "" || c.ID == "" {
		return nil, ErrToken
	}
	return &c, nil
}

// JWKS returns the public keys as a JSON Web Key Set.
func (t *Tokens) JWKS() []byte {
	type jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Kid string `json:"kid"`
		Alg string `json:"alg"`
		Use string `json:"use"`
	}
	set := struct {
		Keys []jwk `json:"keys"`
	}{Keys: []jwk{}}
	for _, k := range t.keys {
		pub := k.Private.Public().(ed25519.PublicKey)
		set.Keys = append(set.Keys, jwk{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: k.KID, Alg: "EdDSA", Use: "sig"})
	}
	b, _ := json.Marshal(set)
	return b
}
