package oidc_test

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign/oidc"
)

const clientID = "countersign-test-client"

// issuer is an OpenID Connect provider on loopback: discovery, a JWKS with
// one RSA key, and ID tokens it signs with that key (RS256).
type issuer struct {
	srv        *httptest.Server
	key        *rsa.PrivateKey
	kid        string
	discovered atomic.Int32
	down       atomic.Bool
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key, kid: "k1"}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		is.discovered.Add(1)
		json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.srv.URL, "jwks_uri": is.srv.URL + "/jwks", "authorization_endpoint": is.srv.URL + "/auth",
			"token_endpoint": is.srv.URL + "/token", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		pub := is.key.PublicKey
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "alg": "RS256", "use": "sig", "kid": is.kid,
			"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
		}}})
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	return is
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// token signs claims with key under header alg (RS256 signs; "none" leaves
// the signature empty).
func token(t *testing.T, key *rsa.PrivateKey, alg, kid string, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": kid})
	c, _ := json.Marshal(claims)
	signing := b64(h) + "." + b64(c)
	if alg == "none" {
		return signing + "."
	}
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return signing + "." + b64(sig)
}

func (is *issuer) claims(mod func(map[string]any)) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": is.srv.URL, "sub": "user-42", "aud": clientID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "nonce": "n-123"}
	if mod != nil {
		mod(c)
	}
	return c
}

func TestVerifyAgainstIssuer(t *testing.T) {
	is := newIssuer(t)
	ctx := context.Background()
	v := oidc.New(is.srv.URL, clientID, is.srv.Client())
	other, _ := rsa.GenerateKey(rand.Reader, 2048)

	t.Run("ok/signed token", func(t *testing.T) {
		got, err := v.Verify(ctx, token(t, is.key, "RS256", is.kid, is.claims(nil)))
		if err != nil {
			t.Fatal(err)
		}
		if got.Issuer != is.srv.URL || got.Subject != "user-42" || got.Nonce != "n-123" {
			t.Fatalf("%+v", got)
		}
	})
	t.Run("ok/aud among several", func(t *testing.T) {
		if _, err := v.Verify(ctx, token(t, is.key, "RS256", is.kid, is.claims(func(c map[string]any) { c["aud"] = []string{"other", clientID} }))); err != nil {
			t.Fatal(err)
		}
	})
	fails := map[string]string{
		"fail/wrong aud":              token(t, is.key, "RS256", is.kid, is.claims(func(c map[string]any) { c["aud"] = "another-client" })),
		"fail/no aud":                 token(t, is.key, "RS256", is.kid, is.claims(func(c map[string]any) { delete(c, "aud") })),
		"fail/expired":                token(t, is.key, "RS256", is.kid, is.claims(func(c map[string]any) { c["exp"] = time.Now().Add(-10 * time.Minute).Unix() })),
		"fail/wrong issuer":           token(t, is.key, "RS256", is.kid, is.claims(func(c map[string]any) { c["iss"] = "https://evil.example" })),
		"fail/alg none":               token(t, is.key, "none", is.kid, is.claims(nil)),
		"fail/signed by another key":  token(t, other, "RS256", is.kid, is.claims(nil)),
		"fail/HS256 with the RSA key": hs256WithPublicKey(t, is),
		"fail/tampered claims":        tamper(t, token(t, is.key, "RS256", is.kid, is.claims(nil))),
		"fail/not a JWT":              "not.a.jwt",
		"fail/empty":                  "",
	}
	for name, raw := range fails {
		t.Run(name, func(t *testing.T) {
			if got, err := v.Verify(ctx, raw); err == nil {
				t.Fatalf("accepted: %+v", got)
			}
		})
	}
}

// hs256WithPublicKey is the algorithm-confusion attack: an HMAC over the
// token keyed with the issuer's public key bytes.
func hs256WithPublicKey(t *testing.T, is *issuer) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "HS256", "typ": "JWT", "kid": is.kid})
	c, _ := json.Marshal(is.claims(nil))
	return b64(h) + "." + b64(c) + "." + b64(is.key.PublicKey.N.Bytes()[:32])
}

// tamper swaps the payload for one with another subject, keeping the
// signature.
func tamper(t *testing.T, raw string) string {
	parts := strings.Split(raw, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var c map[string]any
	_ = json.Unmarshal(b, &c)
	c["sub"] = "admin"
	nb, _ := json.Marshal(c)
	return parts[0] + "." + b64(nb) + "." + parts[2]
}

// Discovery is lazy: the server starts while the issuer is down, the
// first login fails while it stays down, and a later one succeeds once it
// is back; after that the discovered provider is reused.
func TestVerifyLazyDiscovery(t *testing.T) {
	is := newIssuer(t)
	is.down.Store(true)
	v := oidc.New(is.srv.URL, clientID, is.srv.Client())
	ctx := context.Background()
	raw := token(t, is.key, "RS256", is.kid, is.claims(nil))
	if _, err := v.Verify(ctx, raw); err == nil {
		t.Fatal("verified with the issuer down")
	}
	is.down.Store(false)
	for range 3 {
		if _, err := v.Verify(ctx, raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := is.discovered.Load(); n != 1 {
		t.Fatalf("discovery fetched %d times, want once", n)
	}
}

// A discovery document naming another issuer is refused (go-oidc's issuer
// check): a token "from" the configured issuer is never checked against
// keys another issuer published.
func TestSecurity_OIDCDiscoveryIssuerMismatch(t *testing.T) {
	is := newIssuer(t)
	v := oidc.New(is.srv.URL+"/other", clientID, is.srv.Client())
	if _, err := v.Verify(context.Background(), token(t, is.key, "RS256", is.kid, is.claims(nil))); err == nil {
		t.Fatal("verified against a discovery document for another issuer")
	}
}

// Two first logins at once both discover (or share) the provider without
// a data race (run with -race): on the old code Verify wrote its provider
// field unguarded.
func TestVerifyConcurrentFirstLogins(t *testing.T) {
	is := newIssuer(t)
	v := oidc.New(is.srv.URL, clientID, is.srv.Client())
	raw := token(t, is.key, "RS256", is.kid, is.claims(nil))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := v.Verify(context.Background(), raw)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}
