package http

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/envelope"
	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/signer/local"
	"github.com/countersign/countersign/store/sqlite"
)

// ---- the open redirect after login (safeNext)

func TestSafeNext(t *testing.T) {
	tests := map[string]struct{ next, want string }{
		"ok/inbox":              {"/inbox", "/inbox"},
		"ok/tx":                 {"/tx/0b6f3c1e-1f0a-4a55-9d55-555555555555", "/tx/0b6f3c1e-1f0a-4a55-9d55-555555555555"},
		"ok/query":              {"/activity?status=pending&before=2026-01-01T00:00:00Z", "/activity?status=pending&before=2026-01-01T00:00:00Z"},
		"ok/encoded backslash":  {"/%5Cevil.example/", "/%5Cevil.example/"}, // browsers do not decode it into the authority
		"ok/encoded slash":      {"/%2F/evil.example", "/%2F/evil.example"},
		"ok/root":               {"/", "/"},
		"fail/empty":            {"", "/inbox"},
		"fail/backslash":        {`/\evil.example/`, "/inbox"},
		"fail/backslash later":  {`/a\b`, "/inbox"},
		"fail/tab":              {"/\t/evil.example", "/inbox"},
		"fail/newline":          {"/\n/evil.example", "/inbox"},
		"fail/cr":               {"/\r/evil.example", "/inbox"},
		"fail/nul":              {"/\x00/evil.example", "/inbox"},
		"fail/del":              {"/\x7f", "/inbox"},
		"fail/space":            {"/ /evil.example", "/inbox"},
		"fail/nbsp":             {"/\u00a0/evil", "/inbox"},
		"fail/bidi":             {"/\u202e/evil", "/inbox"},
		"fail/c1 control":       {"/\u0085/evil", "/inbox"},
		"fail/double slash":     {"//evil.example", "/inbox"},
		"fail/triple slash":     {"///evil.example", "/inbox"},
		"fail/absolute":         {"https://evil.example/", "/inbox"},
		"fail/scheme relative":  {"https:/evil.example", "/inbox"},
		"fail/javascript":       {"javascript:alert(1)", "/inbox"},
		"fail/relative":         {"inbox", "/inbox"},
		"fail/invalid utf8":     {"/\xff", "/inbox"},
		"fail/very long":        {"/" + strings.Repeat("a", 4096), "/inbox"},
		"fail/backslash double": {`/\\evil.example`, "/inbox"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			if got := safeNext(tt.next); got != tt.want {
				t.Fatalf("safeNext(%q) = %q, want %q", tt.next, got, tt.want)
			}
		})
	}
}

// FuzzSafeNext: whatever comes in, the redirect stays on this site, also
// as a browser reads it (dropping tabs and newlines, '\' as '/').
func FuzzSafeNext(f *testing.F) {
	for _, s := range []string{"/inbox", `/\evil.example/`, "/\t/evil", "//evil", "https://evil", "/%5Cevil", "/tx/1?x=//y", "", "/\u3000/x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://wallet.example/login")
	f.Fuzz(func(t *testing.T, next string) {
		got := safeNext(next)
		if got == "/inbox" {
			return
		}
		if got != next {
			t.Fatalf("safeNext(%q) = %q: neither next nor /inbox", next, got)
		}
		browser := strings.NewReplacer("\t", "", "\n", "", "\r", "", `\`, "/").Replace(strings.TrimLeft(got, " \x00\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f"))
		if !strings.HasPrefix(browser, "/") || strings.HasPrefix(browser, "//") {
			t.Fatalf("safeNext(%q) passes a redirect a browser reads as %q", next, browser)
		}
		u, err := url.Parse(got)
		if err != nil {
			t.Fatalf("safeNext(%q) passes an unparsable URL: %v", next, err)
		}
		if to := base.ResolveReference(u); to.Host != "wallet.example" || to.Scheme != "https" {
			t.Fatalf("safeNext(%q) leads to %s", next, to)
		}
	})
}

// ---- a real Server over a real core.Service (SQLite, local signer)

// stubChain answers ChainID; nothing else these tests do reaches the
// chain.
type stubChain struct{ countersign.Chain }

func (stubChain) ChainID(context.Context) (*big.Int, error) { return big.NewInt(31337), nil }

// The calls a request that got past validation would make answer an
// error, so a regression fails the assertion rather than panicking.
var errUnreached = errors.New("stub chain: this test should not reach the chain")

func (stubChain) BalanceAt(context.Context, string) (*big.Int, error) { return nil, errUnreached }
func (stubChain) CodeAt(context.Context, string) ([]byte, error)      { return nil, errUnreached }
func (stubChain) PendingNonceAt(context.Context, string) (uint64, error) {
	return 0, errUnreached
}
func (stubChain) Call(context.Context, countersign.CallMsg) ([]byte, error) { return nil, errUnreached }
func (stubChain) EstimateGas(context.Context, countersign.CallMsg) (uint64, error) {
	return 0, errUnreached
}
func (stubChain) SuggestFees(context.Context) (*big.Int, *big.Int, error) {
	return nil, nil, errUnreached
}

func newUITestServer(t *testing.T, publicURL string) (*httptest.Server, *core.Service) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ui.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, 32)
	if _, err := io.ReadFull(rand.Reader, kek); err != nil {
		t.Fatal(err)
	}
	sealer, err := envelope.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := core.New(ctx, st, stubChain{}, local.New(sealer, keystore.Dir{Path: filepath.Join(t.TempDir(), "ks")}), sealer, nil, log,
		core.Config{Argon2: auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1}, Omni: core.OmniConfig{PublicURL: publicURL}})
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(svc, log, nil, prometheus.NewRegistry())
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts, svc
}

const uiTestPassword = "correct horse battery staple"

var csrfInputRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// browserless is a cookie-keeping client that, unlike net/http/cookiejar,
// also sends Secure cookies over the test's plain http: it stands for the
// browser on the far side of a TLS-terminating proxy.
type browserless struct {
	t       *testing.T
	base    string
	cookies map[string]*http.Cookie
	c       *http.Client
}

func newBrowserless(t *testing.T, base string) *browserless {
	return &browserless{t: t, base: base, cookies: map[string]*http.Cookie{},
		c: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browserless) do(method, path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, ck := range b.cookies {
		req.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(b.cookies, ck.Name)
		} else {
			b.cookies[ck.Name] = ck
		}
	}
	return res, string(raw)
}

// login logs in through the form with ?next=next and returns the answer.
func (b *browserless) login(user, next string) *http.Response {
	b.t.Helper()
	_, page := b.do("GET", "/login", nil)
	m := csrfInputRE.FindStringSubmatch(page)
	if m == nil {
		b.t.Fatalf("no CSRF token on the login page: %s", page)
	}
	res, _ := b.do("POST", "/login?next="+url.QueryEscape(next), url.Values{"csrf": {m[1]}, "username": {user}, "password": {uiTestPassword}})
	return res
}

// POST /login?next=/\evil.example/ used to answer 303 Location:
// /\evil.example/, which browsers follow to evil.example. Now every
// off-site next lands on /inbox, and a same-site one still works.
func TestSecurity_LoginOpenRedirect(t *testing.T) {
	ts, svc := newUITestServer(t, "")
	for i, tc := range []struct{ next, want string }{
		{`/\evil.example/`, "/inbox"},
		{"/\t/evil.example/", "/inbox"},
		{"//evil.example/", "/inbox"},
		{"/activity?status=pending", "/activity?status=pending"},
	} {
		name := "user" + string(rune('a'+i))
		if _, err := svc.Register(context.Background(), name, uiTestPassword); err != nil {
			t.Fatal(err)
		}
		res := newBrowserless(t, ts.URL).login(name, tc.next)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != tc.want {
			t.Errorf("next=%q: %d Location %q, want 303 %q", tc.next, res.StatusCode, res.Header.Get("Location"), tc.want)
		}
	}
}

// Behind a TLS-terminating proxy (PUBLIC_URL https, r.TLS nil) the UI's
// cookies are Secure and __Host- prefixed, and the session works under
// that name; a bare cs_session cookie is not read there. On the old code
// the cookies had no Secure attribute.
func TestSecurity_SecureCookiesBehindTLSProxy(t *testing.T) {
	ts, svc := newUITestServer(t, "https://wallet.example")
	if _, err := svc.Register(context.Background(), "carol", uiTestPassword); err != nil {
		t.Fatal(err)
	}
	b := newBrowserless(t, ts.URL)
	res := b.login("carol", "/wallets")
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/wallets" {
		t.Fatalf("login: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	session := b.cookies["__Host-cs_session"]
	if session == nil || !session.Secure || !session.HttpOnly || session.Path != "/" || session.Domain != "" || session.SameSite != http.SameSiteStrictMode {
		t.Fatalf("session cookie: %+v (all cookies %v)", session, b.cookies)
	}
	if _, ok := b.cookies["cs_session"]; ok {
		t.Fatal("a bare cs_session cookie was set as well")
	}
	for _, sc := range res.Header.Values("Set-Cookie") {
		if !strings.Contains(sc, "; Secure") || !strings.HasPrefix(sc, "__Host-") {
			t.Errorf("cookie without Secure or the __Host- prefix: %s", sc)
		}
	}
	if res, _ := b.do("GET", "/wallets", nil); res.StatusCode != 200 {
		t.Fatalf("the __Host- session is not accepted: %d", res.StatusCode)
	}
	// The same token under the bare name is not read here.
	bare := newBrowserless(t, ts.URL)
	bare.cookies["cs_session"] = &http.Cookie{Name: "cs_session", Value: session.Value}
	if res, _ := bare.do("GET", "/wallets", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("a bare cs_session cookie was accepted behind https: %d", res.StatusCode)
	}

	// Plain-http development (the default PUBLIC_URL) keeps bare names
	// without Secure, which a browser on http would otherwise drop.
	ts2, svc2 := newUITestServer(t, "")
	if _, err := svc2.Register(context.Background(), "dave", uiTestPassword); err != nil {
		t.Fatal(err)
	}
	b2 := newBrowserless(t, ts2.URL)
	b2.login("dave", "/wallets")
	if ck := b2.cookies["cs_session"]; ck == nil || ck.Secure {
		t.Fatalf("plain http session cookie: %+v", ck)
	}
}

// Wallet names with ESC, BEL or NUL and a bidi override are refused over
// the real API with 400 BAD_REQUEST, and no wallet appears.
func TestSecurity_WalletNameControlCharsOverHTTP(t *testing.T) {
	ts, svc := newUITestServer(t, "")
	if _, err := svc.Register(context.Background(), "erin", uiTestPassword); err != nil {
		t.Fatal(err)
	}
	call := func(method, path, token string, body any) (int, map[string]any) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			j, _ := json.Marshal(body)
			rd = strings.NewReader(string(j))
		}
		req, _ := http.NewRequest(method, ts.URL+path, rd)
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(res.Body).Decode(&out)
		return res.StatusCode, out
	}
	st, out := call("POST", "/api/login", "", map[string]string{"username": "erin", "password": uiTestPassword})
	tok, _ := out["access_token"].(string)
	if st != 200 || tok == "" {
		t.Fatalf("login: %d %v", st, out)
	}
	for _, name := range []string{"a\x1b[31mred", "bell\x07", "nul\x00", "cold \u202etellaw", "\u2066x\u2069"} {
		st, out := call("POST", "/api/create_wallet", tok, map[string]string{"password": uiTestPassword, "name": name})
		e, _ := out["error"].(map[string]any)
		if st != 400 || e["code"] != "BAD_REQUEST" || !strings.Contains(e["detail"].(string), "name") {
			t.Errorf("name %q: %d %v", name, st, out)
		}
	}
	st, out = call("GET", "/api/wallets", tok, nil)
	if ws, _ := out["wallets"].([]any); st != 200 || len(ws) != 0 {
		t.Fatalf("refused names created wallets: %d %v", st, out)
	}
}
