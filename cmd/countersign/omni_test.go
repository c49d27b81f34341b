package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/golang-jwt/jwt/v5"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/contracts"
)

const testIssuer = "https://issuer.countersign.test"

func withOIDCIssuer(c *Config) { c.Omni.OIDCIssuer = testIssuer }

// siweSign signs a message the way a wallet does (EIP-191, v = 27/28).
func siweSign(t *testing.T, key *ecdsa.PrivateKey, msg string) string {
	sig, err := crypto.Sign(accounts.TextHash([]byte(msg)), key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	return hexutil.Encode(sig)
}

// siweLogin runs start → sign → verify for key.
func (e *env) siweLogin(t *testing.T, key *ecdsa.PrivateKey) resp {
	addr := crypto.PubkeyToAddress(key.PublicKey).Hex()
	st := e.do("POST", "/v1/auth/wallet/start", anon, map[string]any{"address": addr, "chain_id": 1337}).must(t, 200)
	return e.do("POST", "/v1/auth/wallet/verify", anon, map[string]string{"request_id": st.str("request_id"), "signature": siweSign(t, key, st.str("siwe_message"))})
}

func TestSIWELogin(t *testing.T) {
	e := newEnv(t)
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey).Hex()
	st := e.do("POST", "/v1/auth/wallet/start", anon, map[string]any{"address": strings.ToLower(addr), "chain_id": 1337}).must(t, 200)
	msg := st.str("siwe_message")
	m, err := auth.ParseSIWE(msg)
	if err != nil || m.Address != addr || m.Nonce != st.str("nonce") || m.ChainID != 1337 || m.ExpirationTime == "" || !strings.HasPrefix(m.URI, "http") {
		t.Fatalf("issued message: %v\n%s", err, msg)
	}
	good := siweSign(t, key, msg)
	v := e.do("POST", "/v1/auth/wallet/verify", anon, map[string]string{"request_id": st.str("request_id"), "signature": good}).must(t, 200)
	if v.str("omni_account") != countersign.OmniAccount("countersign", "evm", strings.ToLower(addr)) || v.str("wallet_address") != addr || v.str("session_jwt") == "" {
		t.Fatalf("verify: %s", v.raw)
	}
	// replay of the same request and signature
	e.do("POST", "/v1/auth/wallet/verify", anon, map[string]string{"request_id": st.str("request_id"), "signature": good}).refused(t, 401, "UNAUTHORIZED")

	start := func() resp {
		return e.do("POST", "/v1/auth/wallet/start", anon, map[string]any{"address": addr, "chain_id": 1337}).must(t, 200)
	}
	other, _ := crypto.GenerateKey()
	for name, sign := range map[string]func(msg string) string{
		"another key":  func(msg string) string { return siweSign(t, other, msg) },
		"wrong domain": func(msg string) string { return siweSign(t, key, strings.Replace(msg, m.Domain, "evil.example", 1)) },
		"garbage":      func(string) string { return "0x1234" },
	} {
		s := start()
		if r := e.do("POST", "/v1/auth/wallet/verify", anon, map[string]string{"request_id": s.str("request_id"), "signature": sign(s.str("siwe_message"))}); r.status != 401 {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	// v = 0/1 is accepted as well as 27/28
	s := start()
	sig, _ := hexutil.Decode(siweSign(t, key, s.str("siwe_message")))
	sig[64] -= 27
	e.do("POST", "/v1/auth/wallet/verify", anon, map[string]string{"request_id": s.str("request_id"), "signature": hexutil.Encode(sig)}).must(t, 200)
	// expired nonce
	s = start()
	e.clock.Advance(6 * time.Minute)
	e.do("POST", "/v1/auth/wallet/verify", anon, map[string]string{"request_id": s.str("request_id"), "signature": siweSign(t, key, s.str("siwe_message"))}).refused(t, 401, "UNAUTHORIZED")
	// another chain
	e.do("POST", "/v1/auth/wallet/start", anon, map[string]any{"address": addr, "chain_id": 1}).refused(t, 400, "BAD_REQUEST")

	// the npm siwe package parses and verifies our message and signature
	node := needTool(t, "node")
	s = start()
	sg := siweSign(t, key, s.str("siwe_message"))
	out := runExample(t, e, "unused", []string{"MESSAGE=" + s.str("siwe_message"), "SIGNATURE=" + sg, "NONCE=" + s.str("nonce"), "DOMAIN=" + m.Domain,
		"TIME=" + e.clock.Now().UTC().Format(time.RFC3339)}, node, "checks/siwe_checks.mjs")
	var chk struct {
		Success bool
		Address string
		ChainID int `json:"chainId"`
	}
	if err := json.Unmarshal(out, &chk); err != nil || !chk.Success || chk.Address != addr || chk.ChainID != 1337 {
		t.Fatalf("npm siwe: %s", out)
	}
}

// smtpSink is a minimal SMTP server that keeps the messages it receives.
type smtpSink struct {
	ln   net.Listener
	mu   sync.Mutex
	msgs []string
}

func newSMTPSink(t *testing.T) *smtpSink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &smtpSink{ln: ln}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serve(c)
		}
	}()
	return s
}

func (s *smtpSink) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(l string) { c.Write([]byte(l + "\r\n")) }
	say("220 sink ready")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.TrimSpace(line))
		switch {
		case strings.HasPrefix(cmd, "EHLO"), strings.HasPrefix(cmd, "HELO"):
			say("250 sink")
		case strings.HasPrefix(cmd, "DATA"):
			say("354 go ahead")
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil || l == ".\r\n" {
					break
				}
				b.WriteString(l)
			}
			s.mu.Lock()
			s.msgs = append(s.msgs, b.String())
			s.mu.Unlock()
			say("250 queued")
		case strings.HasPrefix(cmd, "QUIT"):
			say("221 bye")
			return
		default:
			say("250 ok")
		}
	}
}

var codeRE = regexp.MustCompile(`login code is (\d{6})`)

func (s *smtpSink) lastCode(t *testing.T, to string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.msgs) - 1; i >= 0; i-- {
		if strings.Contains(s.msgs[i], "To: "+to) {
			if m := codeRE.FindStringSubmatch(s.msgs[i]); m != nil {
				return m[1]
			}
		}
	}
	t.Fatalf("no code mailed to %s", to)
	return ""
}

func TestEmailLoginAndLinking(t *testing.T) {
	sink := newSMTPSink(t)
	e := newEnv(t, func(c *Config) { c.SMTPAddr, c.SMTPFrom = sink.ln.Addr().String(), "login@countersign.test" })
	email := "Onboard@Example.com"
	login := func(addr string) resp {
		e.do("POST", "/v1/auth/email/start", anon, map[string]string{"email": addr}).must(t, 202)
		return e.do("POST", "/v1/auth/email/verify", anon, map[string]string{"email": addr, "code": sink.lastCode(t, strings.ToLower(addr))})
	}
	r := login(email).must(t, 200)
	omni := r.str("omni_account")
	if omni != countersign.OmniAccount("countersign", "email", "onboard@example.com") {
		t.Fatalf("omni %s", omni)
	}
	// a code works once; a wrong one is refused; an old one expires
	code := sink.lastCode(t, "onboard@example.com")
	e.do("POST", "/v1/auth/email/verify", anon, map[string]string{"email": email, "code": code}).refused(t, 401, "UNAUTHORIZED")
	e.do("POST", "/v1/auth/email/start", anon, map[string]string{"email": email}).must(t, 202)
	e.do("POST", "/v1/auth/email/verify", anon, map[string]string{"email": email, "code": "000000"}).refused(t, 401, "UNAUTHORIZED")
	e.clock.Advance(11 * time.Minute)
	e.do("POST", "/v1/auth/email/verify", anon, map[string]string{"email": email, "code": sink.lastCode(t, "onboard@example.com")}).refused(t, 401, "UNAUTHORIZED")
	// sending is rate limited per address
	for range 3 {
		e.do("POST", "/v1/auth/email/start", anon, map[string]string{"email": email}).must(t, 202)
	}
	e.do("POST", "/v1/auth/email/start", anon, map[string]string{"email": email}).refused(t, 429, "RATE_LIMIT")
	e.clock.Advance(61 * time.Minute)
	r = login(email).must(t, 200)
	sess := bearer(r.str("session_jwt"))

	// link a wallet, proven by SIWE; then the wallet alone gets the same account back
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey).Hex()
	e.do("POST", "/v1/wallet/link", sess, map[string]string{"identity_type": "evm", "identity_value": addr}).refused(t, 401, "UNAUTHORIZED") // no proof
	st := e.do("POST", "/v1/auth/wallet/start", anon, map[string]any{"address": addr, "chain_id": 1337}).must(t, 200)
	lk := e.do("POST", "/v1/wallet/link", sess, map[string]string{"identity_type": "evm", "identity_value": addr,
		"request_id": st.str("request_id"), "signature": siweSign(t, key, st.str("siwe_message"))}).must(t, 200)
	if lk.str("omni_account") != omni {
		t.Fatalf("link: %s", lk.raw)
	}
	if got := e.siweLogin(t, key).must(t, 200).str("omni_account"); got != omni {
		t.Fatalf("recovery through the linked wallet gave %s, want %s", got, omni)
	}
	// another account cannot take the wallet
	other := login("someone@example.com").must(t, 200)
	st = e.do("POST", "/v1/auth/wallet/start", anon, map[string]any{"address": addr, "chain_id": 1337}).must(t, 200)
	e.do("POST", "/v1/wallet/link", bearer(other.str("session_jwt")), map[string]string{"identity_type": "evm", "identity_value": addr,
		"request_id": st.str("request_id"), "signature": siweSign(t, key, st.str("siwe_message"))}).refused(t, 409, "CONFLICT")
	// an API user token is not an omni session
	u := e.newUser(false)
	e.do("POST", "/v1/mint-oidc-jwt", bearer(u.token), nil).refused(t, 401, "UNAUTHORIZED")
}

// issuerClient reaches the test server under the issuer's https URL, as a
// cloud provider would reach the real issuer.
func issuerClient(e *env) *http.Client {
	target, _ := url.Parse(e.url)
	return &http.Client{Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host, r.Host = target.Scheme, target.Host, target.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestOIDCIssuer(t *testing.T) {
	e := newEnv(t, withOIDCIssuer)
	key, _ := crypto.GenerateKey()
	sess := bearer(e.siweLogin(t, key).must(t, 200).str("session_jwt"))
	mint := func() string {
		return e.do("POST", "/v1/mint-oidc-jwt", sess, nil).must(t, 200).str("jwt")
	}
	tok := mint()

	// the discovery document meets AWS's stated rules
	d := e.do("GET", "/.well-known/openid-configuration", anon, nil).must(t, 200)
	if err := checkAWSDiscovery(d.body); err != nil {
		t.Fatalf("discovery: %v\n%s", err, d.raw)
	}
	// go-oidc verifies with nothing but the discovery document
	ctx := gooidc.ClientContext(context.Background(), issuerClient(e))
	provider, err := gooidc.NewProvider(ctx, testIssuer)
	if err != nil {
		t.Fatal(err)
	}
	verifier := provider.Verifier(&gooidc.Config{ClientID: "sts.amazonaws.com", Now: e.clock.Now})
	idt, err := verifier.Verify(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	idt.Claims(&claims)
	tags, _ := claims["https://aws.amazon.com/tags"].(map[string]any)
	pt, _ := tags["principal_tags"].(map[string]any)
	if idt.Subject == "" || pt["omni_account"].([]any)[0] != idt.Subject || claims["jti"] == nil {
		t.Fatalf("claims: %v", claims)
	}
	// tampered, wrong audience, unknown kid, expired: refused
	parts := strings.Split(tok, ".")
	payload := strings.Replace(parts[1], parts[1][:8], "eyJzdWIi", 1)
	for name, bad := range map[string]string{
		"tampered":  parts[0] + "." + payload + "." + parts[2],
		"wrong aud": signWith(t, e, jwt.MapClaims{"iss": testIssuer, "sub": idt.Subject, "aud": "someone-else", "exp": e.clock.Now().Add(time.Hour).Unix()}, ""),
		"wrong kid": signWith(t, e, jwt.MapClaims{"iss": testIssuer, "sub": idt.Subject, "aud": "sts.amazonaws.com", "exp": e.clock.Now().Add(time.Hour).Unix()}, "not-a-kid"),
	} {
		if _, err := verifier.Verify(ctx, bad); err == nil {
			t.Errorf("%s token verified", name)
		}
	}
	e.clock.Advance(2 * time.Hour)
	if _, err := verifier.Verify(ctx, tok); err == nil {
		t.Error("expired token verified")
	}

	// rotation with overlap: after 31 days a new key signs, the old one stays published
	e.clock.Advance(31 * 24 * time.Hour)
	sess = bearer(e.siweLogin(t, key).must(t, 200).str("session_jwt"))
	tok2 := mint()
	if kid(tok2) == kid(tok) {
		t.Fatal("no rotation after 31 days")
	}
	jw := e.do("GET", "/.well-known/jwks.json", anon, nil).must(t, 200).raw
	if !strings.Contains(jw, kid(tok)) || !strings.Contains(jw, kid(tok2)) {
		t.Fatal("the old key is not published during the overlap")
	}
	e.clock.Advance(61 * 24 * time.Hour)
	sess = bearer(e.siweLogin(t, key).must(t, 200).str("session_jwt"))
	mint()
	if jw = e.do("GET", "/.well-known/jwks.json", anon, nil).must(t, 200).raw; strings.Contains(jw, kid(tok)) {
		t.Fatal("a key two periods old is still published")
	}
	// without an issuer there is no discovery and no minting
	plain := newEnv(t)
	plain.do("GET", "/.well-known/openid-configuration", anon, nil).refused(t, 404, "NOT_FOUND")
}

func kid(tok string) string {
	h, _, _ := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	k, _ := h.Header["kid"].(string)
	return k
}

// signWith signs claims with the issuer's current key (or a made-up kid).
func signWith(t *testing.T, e *env, c jwt.MapClaims, kidOverride string) string {
	keys, err := e.app.Svc.OIDCKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c["iat"] = e.clock.Now().Unix()
	tk := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	tk.Header["kid"] = keys[0].KID
	if kidOverride != "" {
		tk.Header["kid"] = kidOverride
	}
	s, err := tk.SignedString(keys[0].Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// checkAWSDiscovery applies the rules AWS states for an OIDC identity
// provider's discovery document.
func checkAWSDiscovery(d map[string]any) error {
	iss, _ := d["issuer"].(string)
	u, err := url.Parse(iss)
	switch {
	case err != nil || u.Scheme != "https" || u.Port() != "" || u.RawQuery != "" || u.Fragment != "":
		return errString("issuer must be https with no port, query or fragment")
	case iss != testIssuer:
		return errString("issuer must equal the configured URL")
	}
	jwks, _ := d["jwks_uri"].(string)
	if ju, err := url.Parse(jwks); err != nil || ju.Scheme != "https" || ju.Host != u.Host {
		return errString("jwks_uri must be https on the issuer's host")
	}
	algs := strings.Join(toStrings(d["id_token_signing_alg_values_supported"]), ",")
	if !strings.Contains(algs, "RS256") && !strings.Contains(algs, "ES256") {
		return errString("id_token_signing_alg_values_supported must include RS256 or ES256")
	}
	if !strings.Contains(strings.Join(toStrings(d["response_types_supported"]), ","), "id_token") || len(toStrings(d["subject_types_supported"])) == 0 {
		return errString("response_types_supported must include id_token, and subject_types_supported be set")
	}
	return nil
}

type errString string

func (e errString) Error() string { return string(e) }

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// TestOIDCLogin: an ID token from a configured (TLS) issuer logs in; the
// wrong nonce or audience does not.
func TestOIDCLogin(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tk := auth.TokenKey{KID: auth.KeyIDFor(&priv.PublicKey), Private: priv}
	var issuer string
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "jwks_uri": issuer + "/jwks", "id_token_signing_alg_values_supported": []string{"ES256"},
				"response_types_supported": []string{"id_token"}, "subject_types_supported": []string{"public"}, "authorization_endpoint": issuer + "/auth"})
		case "/jwks":
			json.NewEncoder(w).Encode(auth.JWKS([]auth.TokenKey{tk}))
		default:
			http.NotFound(w, r)
		}
	}))
	defer ts.Close()
	issuer = ts.URL
	e := newEnv(t, withSigner, withOIDCIssuer, func(c *Config) {
		c.OIDCLoginIss, c.OIDCLoginAud, c.OIDCLoginHTTP = issuer, "countersign-client", ts.Client()
	})
	idToken := func(aud, nonce string) string {
		c := jwt.MapClaims{"iss": issuer, "sub": "user-42", "aud": aud, "nonce": nonce, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		j := jwt.NewWithClaims(jwt.SigningMethodES256, c)
		j.Header["kid"] = tk.KID
		s, _ := j.SignedString(priv)
		return s
	}
	r := e.do("POST", "/v1/auth/oidc/verify", anon, map[string]string{"id_token": idToken("countersign-client", "n0nce-1"), "nonce": "n0nce-1"}).must(t, 200)
	if r.str("omni_account") != countersign.OmniAccount("countersign", "oidc", issuer+"|user-42") {
		t.Fatalf("omni %s", r.raw)
	}
	e.do("POST", "/v1/auth/oidc/verify", anon, map[string]string{"id_token": idToken("countersign-client", "n0nce-1"), "nonce": "other"}).refused(t, 401, "UNAUTHORIZED")
	e.do("POST", "/v1/auth/oidc/verify", anon, map[string]string{"id_token": idToken("another-client", "n"), "nonce": "n"}).refused(t, 401, "UNAUTHORIZED")

	// the CLI flow with an ID token instead of an email code
	var out, errb bytes.Buffer
	env := map[string]string{"COUNTERSIGN_URL": e.url, "SIGNER_TOKEN": testSignerToken}
	if err := run(context.Background(), []string{"login", "--oidc-token", idToken("countersign-client", "cli-nonce"), "--nonce", "cli-nonce"},
		func(k string) string { return env[k] }, &out, &errb); err != nil {
		t.Fatalf("login --oidc-token: %v\n%s", err, errb.String())
	}
	var tokens map[string]any
	if json.Unmarshal(out.Bytes(), &tokens); tokens["omni_account"] != r.str("omni_account") || tokens["oidc_jwt"] == "" {
		t.Fatalf("login --oidc-token: %s", out.String())
	}
}

// TestSIWEContractWallet: a contract wallet (ERC-1271) signs in through
// its owner's signature, checked by eth_call on the chain.
func TestSIWEContractWallet(t *testing.T) {
	e := newEnv(t)
	owner, _ := crypto.GenerateKey()
	deployer, _ := crypto.GenerateKey()
	if _, err := e.app.Dev.Fund(context.Background(), crypto.PubkeyToAddress(deployer.PublicKey), ether(1)); err != nil {
		t.Fatal(err)
	}
	wallet, err := contracts.DeployWith(context.Background(), e.app.Dev.Client(), deployer, "SmartWallet", crypto.PubkeyToAddress(owner.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	st := e.do("POST", "/v1/auth/wallet/start", anon, map[string]any{"address": wallet.Hex(), "chain_id": 1337}).must(t, 200)
	v := e.do("POST", "/v1/auth/wallet/verify", anon, map[string]string{"request_id": st.str("request_id"), "signature": siweSign(t, owner, st.str("siwe_message"))}).must(t, 200)
	if v.str("wallet_address") != wallet.Hex() {
		t.Fatalf("contract wallet: %s", v.raw)
	}
	// someone else's signature does not satisfy the contract
	other, _ := crypto.GenerateKey()
	st = e.do("POST", "/v1/auth/wallet/start", anon, map[string]any{"address": wallet.Hex(), "chain_id": 1337}).must(t, 200)
	e.do("POST", "/v1/auth/wallet/verify", anon, map[string]string{"request_id": st.str("request_id"), "signature": siweSign(t, other, st.str("siwe_message"))}).refused(t, 401, "UNAUTHORIZED")
}
