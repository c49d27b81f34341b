package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Issuer is the iss claim of session tokens.
const Issuer = "countersign"

// TokenKey is one ECDSA P-256 signing key with its key id. ES256 is used
// because it is what cloud providers accept for OIDC (AWS takes RS256 or
// ES256), so one JWKS serves session tokens and minted OIDC tokens alike.
type TokenKey struct {
	KID     string
	Private *ecdsa.PrivateKey
}

// NewTokenKey generates a P-256 key whose kid is its RFC 7638 thumbprint.
func NewTokenKey() (TokenKey, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return TokenKey{}, err
	}
	return TokenKey{KID: KeyIDFor(&priv.PublicKey), Private: priv}, nil
}

// ParseTokenKey rebuilds a key from its 32-byte private scalar.
func ParseTokenKey(scalar []byte) (TokenKey, error) {
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), scalar)
	if err != nil {
		return TokenKey{}, err
	}
	return TokenKey{KID: KeyIDFor(&priv.PublicKey), Private: priv}, nil
}

// Scalar returns the private scalar, for sealing.
func (k TokenKey) Scalar() ([]byte, error) { return k.Private.Bytes() }

// ecJWK is the public JWK of a P-256 key.
type ecJWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
	Kid string `json:"kid,omitempty"`
	Alg string `json:"alg,omitempty"`
	Use string `json:"use,omitempty"`
}

func publicJWK(pub *ecdsa.PublicKey) ecJWK {
	b, _ := pub.Bytes() // 0x04 ‖ X ‖ Y
	return ecJWK{Kty: "EC", Crv: "P-256", X: base64.RawURLEncoding.EncodeToString(b[1:33]), Y: base64.RawURLEncoding.EncodeToString(b[33:65])}
}

// KeyIDFor returns the RFC 7638 JWK thumbprint of a P-256 public key.
func KeyIDFor(pub *ecdsa.PublicKey) string {
	j := publicJWK(pub)
	canonical := fmt.Sprintf(`{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}`, j.X, j.Y)
	h := sha256.Sum256([]byte(canonical))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// Claims are the claims of a user session token.
type Claims struct {
	Username string `json:"name"`
	jwt.RegisteredClaims
}

// Tokens issues and verifies session JWTs signed with ES256. The newest key
// signs; every key it holds verifies, so keys can rotate with overlap.
type Tokens struct {
	keys     []TokenKey // keys[0] signs
	ttl      time.Duration
	now      func() time.Time
	audience string
}

// NewTokens returns a Tokens for user sessions (audience "countersign")
// that signs with keys[0].
func NewTokens(keys []TokenKey, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	return NewTokensFor(Issuer, keys, ttl, now)
}

// NewTokensFor is NewTokens for another audience, so a token of one kind
// (say an omni_account session) is never accepted as another.
func NewTokensFor(audience string, keys []TokenKey, ttl time.Duration, now func() time.Time) (*Tokens, error) {
	if len(keys) == 0 {
		return nil, errors.New("auth: no token signing key")
	}
	return &Tokens{keys: keys, ttl: ttl, now: now, audience: audience}, nil
}

// Keys returns the keys, newest (signing) first.
func (t *Tokens) Keys() []TokenKey { return t.keys }

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
			Audience:  jwt.ClaimStrings{t.audience},
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(exp),
			ID:        jti,
		},
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tok.Header["kid"] = t.keys[0].KID
	if token, err = tok.SignedString(t.keys[0].Private); err != nil {
		return "", "", time.Time{}, err
	}
	return lowS(token), jti, exp, nil
}

// p256HalfN is n/2 for P-256. ECDSA signatures are malleable: (r, n−s)
// verifies whenever (r, s) does. Tokens are issued with s ≤ n/2 and Verify
// refuses the other half, so each token has exactly one accepted spelling
// (with strict base64, which refuses set padding bits, too).
var p256HalfN = new(big.Int).Rsh(elliptic.P256().Params().N, 1)

// lowS rewrites a freshly signed ES256 token so its s is at most n/2.
func lowS(token string) string {
	dot := strings.LastIndexByte(token, '.')
	sig, err := base64.RawURLEncoding.DecodeString(token[dot+1:])
	if err != nil || len(sig) != 64 {
		return token // cannot happen for ES256; Verify would refuse it anyway
	}
	s := new(big.Int).SetBytes(sig[32:])
	if s.Cmp(p256HalfN) <= 0 {
		return token
	}
	s.Sub(elliptic.P256().Params().N, s).FillBytes(sig[32:])
	return token[:dot+1] + base64.RawURLEncoding.EncodeToString(sig)
}

// ErrToken is returned for any token that does not verify.
var ErrToken = errors.New("auth: invalid or expired token")

// Verify checks the signature (ES256 only: "none" and algorithm switching
// are refused; only the one spelling Issue produces: strict base64 and a
// low-s signature), the kid, issuer, audience and time claims.
func (t *Tokens) Verify(token string) (*Claims, error) {
	var c Claims
	parsed, err := jwt.ParseWithClaims(token, &c, func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		for _, k := range t.keys {
			if k.KID == kid {
				return &k.Private.PublicKey, nil
			}
		}
		return nil, ErrToken
	},
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}),
		jwt.WithIssuer(Issuer),
		jwt.WithAudience(t.audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(t.now),
		jwt.WithLeeway(5*time.Second),
		jwt.WithStrictDecoding(),
	)
	if err != nil || c.Subject == "" || c.ID == "" {
		return nil, ErrToken
	}
	if len(parsed.Signature) != 64 || new(big.Int).SetBytes(parsed.Signature[32:]).Cmp(p256HalfN) > 0 {
		return nil, ErrToken
	}
	return &c, nil
}

// JWKS returns the public keys as a JSON Web Key Set.
func (t *Tokens) JWKS() []byte {
	b, _ := json.Marshal(JWKS(t.keys))
	return b
}

// JWKSet is a JSON Web Key Set of public keys.
type JWKSet struct {
	Keys []ecJWK `json:"keys"`
}

// JWKS builds the public key set of keys.
func JWKS(keys ...[]TokenKey) JWKSet {
	set := JWKSet{Keys: []ecJWK{}}
	for _, ks := range keys {
		for _, k := range ks {
			j := publicJWK(&k.Private.PublicKey)
			j.Kid, j.Alg, j.Use = k.KID, "ES256", "sig"
			set.Keys = append(set.Keys, j)
		}
	}
	return set
}
