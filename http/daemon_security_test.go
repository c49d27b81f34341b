package http

import (
	"context"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/daemon"
)

const testWalletToken = "0123456789abcdef0123456789abcdef" // 32 hex characters

// daemonReq is a request the local operator's CLI would send: loopback
// peer and Host, JSON body, the token. Each test then spoils one thing.
func daemonReq(method, path, body string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.RemoteAddr = "127.0.0.1:40000"
	r.Host = "127.0.0.1:8555"
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	r.Header.Set("X-Auth-Token", testWalletToken)
	return r
}

func testDaemonServer() *Server {
	return &Server{Daemon: &daemon.Service{}, WalletToken: testWalletToken}
}

// TestSecurity_DaemonBrowserShapedRequests performs, at the guard, each
// request a web page, a rebinding name, a proxy or an agent can make to a
// loopback daemon, with the right token where one is sent, and checks each
// is refused with its code — and that the operator's own request passes.
func TestSecurity_DaemonBrowserShapedRequests(t *testing.T) {
	tests := map[string]struct {
		method, body string
		spoil        func(r *http.Request)
		want         countersign.Code
	}{
		"ok/operator":                   {method: "POST", body: "{}", spoil: func(r *http.Request) {}},
		"ok/GET without a body":         {method: "GET", spoil: func(r *http.Request) {}},
		"ok/localhost":                  {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Host = "localhost:8555" }},
		"ok/LOCALHOST. with dot":        {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Host = "LOCALHOST.:8555" }},
		"ok/IPv6 loopback Host":         {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Host = "[::1]:8555" }},
		"ok/127.0.0.2":                  {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Host = "127.0.0.2" }},
		"ok/json with charset":          {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }},
		"ok/Sec-Fetch-Site none":        {method: "GET", spoil: func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "none") }},
		"fail/typeless body":            {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Del("Content-Type") }, want: countersign.UnsupportedMedia},
		"ok/typeless empty POST":        {method: "POST", spoil: func(r *http.Request) {}},
		"fail/text/plain empty POST":    {method: "POST", spoil: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, want: countersign.UnsupportedMedia},
		"fail/chunked typeless body":    {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Del("Content-Type"); r.ContentLength = -1 }, want: countersign.UnsupportedMedia},
		"fail/text/plain":               {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, want: countersign.UnsupportedMedia},
		"fail/form":                     {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Set("Content-Type", "application/x-www-form-urlencoded") }, want: countersign.UnsupportedMedia},
		"fail/multipart":                {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Set("Content-Type", "multipart/form-data; boundary=x") }, want: countersign.UnsupportedMedia},
		"fail/+json is not json":        {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Set("Content-Type", "text/x+json") }, want: countersign.UnsupportedMedia},
		"fail/two Content-Types":        {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Add("Content-Type", "text/plain") }, want: countersign.UnsupportedMedia},
		"fail/GET with typeless body":   {method: "GET", body: "{}", spoil: func(r *http.Request) { r.Header.Del("Content-Type") }, want: countersign.UnsupportedMedia},
		"fail/foreign Host":             {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Host = "evil.example:8555" }, want: countersign.Forbidden},
		"fail/rebinding name":           {method: "GET", spoil: func(r *http.Request) { r.Host = "127.0.0.1.rebind.attacker.example" }, want: countersign.Forbidden},
		"fail/localhost subdomain":      {method: "GET", spoil: func(r *http.Request) { r.Host = "wallet.localhost.attacker.example:8555" }, want: countersign.Forbidden},
		"fail/empty Host":               {method: "GET", spoil: func(r *http.Request) { r.Host = "" }, want: countersign.Forbidden},
		"fail/unbracketed IPv6 Host":    {method: "GET", spoil: func(r *http.Request) { r.Host = "::1" }, want: countersign.Forbidden},
		"fail/non-loopback IP Host":     {method: "GET", spoil: func(r *http.Request) { r.Host = "192.168.1.10:8555" }, want: countersign.Forbidden},
		"fail/cross-site Origin":        {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }, want: countersign.Forbidden},
		"fail/null Origin":              {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Set("Origin", "null") }, want: countersign.Forbidden},
		"fail/same-origin page":         {method: "POST", body: "{}", spoil: func(r *http.Request) { r.Header.Set("Origin", "http://127.0.0.1:8555") }, want: countersign.Forbidden},
		"fail/Sec-Fetch-Site cross":     {method: "GET", spoil: func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }, want: countersign.Forbidden},
		"fail/Sec-Fetch-Site same-site": {method: "GET", spoil: func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") }, want: countersign.Forbidden},
		"fail/Forwarded":                {method: "GET", spoil: func(r *http.Request) { r.Header.Set("Forwarded", "for=203.0.113.9") }, want: countersign.Forbidden},
		"fail/X-Forwarded-For":          {method: "GET", spoil: func(r *http.Request) { r.Header.Set("X-Forwarded-For", "203.0.113.9") }, want: countersign.Forbidden},
		"fail/X-Forwarded-Host":         {method: "GET", spoil: func(r *http.Request) { r.Header.Set("X-Forwarded-Host", "wallet.example") }, want: countersign.Forbidden},
		"fail/X-Real-Ip":                {method: "GET", spoil: func(r *http.Request) { r.Header.Set("X-Real-Ip", "203.0.113.9") }, want: countersign.Forbidden},
		"fail/no token":                 {method: "GET", spoil: func(r *http.Request) { r.Header.Del("X-Auth-Token") }, want: countersign.Unauthorized},
		"fail/empty token":              {method: "GET", spoil: func(r *http.Request) { r.Header.Set("X-Auth-Token", "") }, want: countersign.Unauthorized},
		"fail/wrong token":              {method: "GET", spoil: func(r *http.Request) { r.Header.Set("X-Auth-Token", testWalletToken[1:]+"0") }, want: countersign.Unauthorized},
		"fail/two tokens":               {method: "GET", spoil: func(r *http.Request) { r.Header.Add("X-Auth-Token", testWalletToken) }, want: countersign.BadRequest},
		"fail/token as Bearer": {method: "GET", spoil: func(r *http.Request) {
			r.Header.Del("X-Auth-Token")
			r.Header.Set("Authorization", "Bearer "+testWalletToken)
		}, want: countersign.Unauthorized},
		"fail/user session with token": {method: "GET", spoil: func(r *http.Request) { r.Header.Set("Authorization", "Bearer eyJhbGciOi.x.y") }, want: countersign.Unauthorized},
		"fail/X-API-KEY":               {method: "GET", spoil: func(r *http.Request) { r.Header.Set("X-API-KEY", "csk_abc") }, want: countersign.Forbidden},
		"fail/x-api-key lower case":    {method: "GET", spoil: func(r *http.Request) { r.Header["X-Api-Key"] = []string{"anything"} }, want: countersign.Forbidden},
		"fail/empty X-API-KEY":         {method: "GET", spoil: func(r *http.Request) { r.Header["X-Api-Key"] = []string{""} }, want: countersign.Forbidden},
		"fail/bearer csk_":             {method: "GET", spoil: func(r *http.Request) { r.Header.Set("Authorization", "bearer csk_abc") }, want: countersign.Forbidden},
		"fail/Bearer two spaces csk_":  {method: "GET", spoil: func(r *http.Request) { r.Header.Set("Authorization", "Bearer  csk_abc") }, want: countersign.Forbidden},
		"fail/BEARER CSK_":             {method: "GET", spoil: func(r *http.Request) { r.Header.Set("Authorization", "BEARER CSK_abc") }, want: countersign.Forbidden},
		"fail/tab csk_":                {method: "GET", spoil: func(r *http.Request) { r.Header.Set("Authorization", "Bearer\tcsk_abc") }, want: countersign.Forbidden},
		"fail/csk_ as X-Auth-Token":    {method: "GET", spoil: func(r *http.Request) { r.Header.Set("X-Auth-Token", "csk_abc") }, want: countersign.Forbidden},
		"fail/remote peer":             {method: "GET", spoil: func(r *http.Request) { r.RemoteAddr = "10.1.2.3:5" }, want: countersign.Forbidden},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			s := testDaemonServer()
			r := daemonReq(tt.method, "/v1/wallets", tt.body)
			tt.spoil(r)
			err := s.checkDaemon(r)
			if got := countersign.ErrorCode(err); got != tt.want {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
		})
	}
}

// TestSecurity_DaemonAllowLists checks the operator's lists open exactly
// what they name.
func TestSecurity_DaemonAllowLists(t *testing.T) {
	hosts, err := ParseHostList(" Wallet.Internal:8555, 10.0.0.5 ,[fd00::5]")
	if err != nil || !slices.Equal(hosts, []string{"wallet.internal", "10.0.0.5", "fd00::5"}) {
		t.Fatalf("ParseHostList: %v %v", hosts, err)
	}
	for _, bad := range []string{"*", "*.example", "a/b", "user@host", "::1", "[::1", "host:port"} {
		if _, err := ParseHostList(bad); err == nil {
			t.Errorf("WALLET_ALLOWED_HOSTS=%q accepted", bad)
		}
	}
	origins, err := ParseOriginList("chrome-extension://abcdefgh, HTTPS://App.Example:443,http://localhost:3000")
	if err != nil || !slices.Equal(origins, []string{"chrome-extension://abcdefgh", "https://app.example", "http://localhost:3000"}) {
		t.Fatalf("ParseOriginList: %v %v", origins, err)
	}
	for _, bad := range []string{"*", "null", "https://app.example/path", "app.example", "https://*.example", "https://u@app.example"} {
		if _, err := ParseOriginList(bad); err == nil {
			t.Errorf("WALLET_ALLOWED_ORIGINS=%q accepted", bad)
		}
	}
	s := testDaemonServer()
	s.WalletAllowedHosts, s.WalletAllowedOrigins = hosts, origins
	for _, c := range []struct {
		host, origin, site string
		want               countersign.Code
	}{
		{"wallet.internal:8555", "", "", ""},
		{"WALLET.INTERNAL", "", "", ""},
		{"[fd00::5]:8555", "", "", ""},
		{"wallet.internal.evil.example", "", "", countersign.Forbidden},
		{"127.0.0.1:8555", "chrome-extension://abcdefgh", "cross-site", ""},
		{"127.0.0.1:8555", "https://app.example", "cross-site", ""},
		{"127.0.0.1:8555", "https://app.example:443", "", ""},
		{"127.0.0.1:8555", "https://app.example:8443", "", countersign.Forbidden},
		{"127.0.0.1:8555", "http://app.example", "", countersign.Forbidden},
		{"127.0.0.1:8555", "chrome-extension://other", "cross-site", countersign.Forbidden},
	} {
		r := daemonReq("POST", "/v1/wallets", "{}")
		r.Host = c.host
		if c.origin != "" {
			r.Header.Set("Origin", c.origin)
		}
		if c.site != "" {
			r.Header.Set("Sec-Fetch-Site", c.site)
		}
		if err := s.checkDaemon(r); countersign.ErrorCode(err) != c.want {
			t.Errorf("Host %q Origin %q: %v, want %q", c.host, c.origin, err, c.want)
		}
	}
	// a proxy's headers pass only with the operator's explicit token
	r := daemonReq("GET", "/v1/wallets", "")
	r.Header.Set("X-Forwarded-For", "203.0.113.9")
	if err := s.checkDaemon(r); countersign.ErrorCode(err) != countersign.Forbidden {
		t.Fatalf("forwarded with the generated token: %v", err)
	}
	s.WalletRemote = true
	if err := s.checkDaemon(r); err != nil {
		t.Fatalf("forwarded with WALLET_TOKEN: %v", err)
	}
}

// TestSecurity_DaemonWrongTokenBackoff guesses tokens: after five wrong
// ones every token — the right one too — gets 429 with Retry-After, for a
// time that grows; other clients are not affected; it ends.
func TestSecurity_DaemonWrongTokenBackoff(t *testing.T) {
	var l tokenLimiter
	now := time.Unix(1_700_000_000, 0)
	for i := range tokenFreeFailures {
		if err := l.check("a", now, false, "X-Auth-Token"); countersign.ErrorCode(err) != countersign.Unauthorized {
			t.Fatalf("guess %d: %v", i+1, err)
		}
	}
	err := l.check("a", now, true, "X-Auth-Token")
	var ce *countersign.Error
	if countersign.ErrorCode(err) != countersign.RateLimit || !errorAs(err, &ce) || ce.RetryAfter != int(tokenBaseLockout/time.Second) {
		t.Fatalf("the right token while locked: %v", err)
	}
	if err := l.check("b", now, true, "X-Auth-Token"); err != nil {
		t.Fatalf("another client: %v", err)
	}
	now = now.Add(tokenBaseLockout)
	if err := l.check("a", now, false, "X-Auth-Token"); countersign.ErrorCode(err) != countersign.Unauthorized {
		t.Fatalf("after the lockout: %v", err)
	}
	if err := l.check("a", now.Add(tokenBaseLockout), true, "X-Auth-Token"); countersign.ErrorCode(err) != countersign.RateLimit {
		t.Fatalf("the lockout did not double: %v", err)
	}
	if err := l.check("a", now.Add(2*tokenBaseLockout), true, "X-Auth-Token"); err != nil {
		t.Fatalf("after the doubled lockout: %v", err)
	}
	// the right token reset the count
	if err := l.check("a", now.Add(2*tokenBaseLockout), false, "X-Auth-Token"); countersign.ErrorCode(err) != countersign.Unauthorized {
		t.Fatalf("after success: %v", err)
	}
	// the lockout is capped
	for range 40 {
		_ = l.check("c", now, false, "t")
		now = now.Add(tokenMaxLockout)
	}
	if err := l.check("c", now.Add(-time.Second), true, "t"); countersign.ErrorCode(err) != countersign.RateLimit {
		t.Fatalf("cap: %v", err)
	}
	if err := l.check("c", now, true, "t"); err != nil {
		t.Fatalf("the lockout is longer than %s: %v", tokenMaxLockout, err)
	}
}

func errorAs(err error, ce **countersign.Error) bool {
	e, ok := err.(*countersign.Error)
	*ce = e
	return ok
}

// TestSecurity_DaemonWrongTokenBackoffConcurrent fires many wrong guesses
// at once: no more than the free ones may be answered 401.
func TestSecurity_DaemonWrongTokenBackoffConcurrent(t *testing.T) {
	s := testDaemonServer()
	const n = 200
	codes := make(chan countersign.Code, n)
	for range n {
		go func() {
			r := daemonReq("GET", "/v1/wallets", "")
			r.Header.Set("X-Auth-Token", strings.Repeat("f", 32))
			codes <- countersign.ErrorCode(s.checkDaemon(r))
		}()
	}
	unauthorized := 0
	for range n {
		if c := <-codes; c == countersign.Unauthorized {
			unauthorized++
		} else if c != countersign.RateLimit {
			t.Fatalf("code %s", c)
		}
	}
	if unauthorized != tokenFreeFailures {
		t.Fatalf("%d guesses were compared, want %d", unauthorized, tokenFreeFailures)
	}
}

func TestSecurity_DaemonLimiterKeys(t *testing.T) {
	for remote, want := range map[string]string{
		"127.0.0.1:1": "loopback", "[::1]:1": "loopback", "127.9.9.9:1": "loopback", "[::ffff:127.0.0.1]:1": "loopback",
		"10.0.0.1:1": "10.0.0.1", "[::ffff:10.0.0.1]:1": "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:1": "2001:db8:1:2::/64", "[2001:db8:1:2:ffff::1]:1": "2001:db8:1:2::/64",
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = remote
		if got := limiterKey(r); got != want {
			t.Errorf("%s: %s, want %s", remote, got, want)
		}
	}
}

// TestSecurity_MetricsGuard: /metrics from a non-loopback client or
// through a proxy is refused without METRICS_TOKEN; with it, the bearer
// token is required from everyone, loopback included.
func TestSecurity_MetricsGuard(t *testing.T) {
	req := func(remote string, hdr ...string) *http.Request {
		r := httptest.NewRequest("GET", "/metrics", nil)
		r.RemoteAddr = remote
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	s := &Server{}
	for _, c := range []struct {
		r    *http.Request
		want countersign.Code
	}{
		{req("127.0.0.1:1"), ""},
		{req("[::1]:1"), ""},
		{req("10.0.0.1:1"), countersign.Forbidden},
		{req("127.0.0.1:1", "X-Forwarded-For", "203.0.113.9"), countersign.Forbidden},
		{req("127.0.0.1:1", "Forwarded", "for=203.0.113.9"), countersign.Forbidden},
	} {
		if err := s.checkMetrics(c.r); countersign.ErrorCode(err) != c.want {
			t.Errorf("%s %v: %v, want %q", c.r.RemoteAddr, c.r.Header, err, c.want)
		}
	}
	s.MetricsToken = "metrics-0123456789abcdef-0123456789"
	for _, c := range []struct {
		r    *http.Request
		want countersign.Code
	}{
		{req("127.0.0.1:1"), countersign.Unauthorized},
		{req("10.0.0.1:1", "Authorization", "Bearer "+s.MetricsToken), ""},
		{req("10.0.0.1:1", "Authorization", "bearer  "+s.MetricsToken), ""},
		{req("10.0.0.1:1", "Authorization", "Basic "+s.MetricsToken), countersign.Unauthorized},
		{req("10.0.0.2:1", "Authorization", "Bearer wrong"), countersign.Unauthorized},
	} {
		if err := s.checkMetrics(c.r); countersign.ErrorCode(err) != c.want {
			t.Errorf("%s %v: %v, want %q", c.r.RemoteAddr, c.r.Header, err, c.want)
		}
	}
	for range tokenFreeFailures {
		_ = s.checkMetrics(req("10.0.0.3:1", "Authorization", "Bearer wrong"))
	}
	if err := s.checkMetrics(req("10.0.0.3:1", "Authorization", "Bearer "+s.MetricsToken)); countersign.ErrorCode(err) != countersign.RateLimit {
		t.Fatalf("wrong METRICS_TOKEN guesses are not backed off: %v", err)
	}
}

func TestSecurity_DaemonTokenStrength(t *testing.T) {
	for tok, ok := range map[string]bool{
		"":                                     false,
		"x":                                    false,
		"0123456789abcdef0123456789abcde":      false, // 31
		"0123456789abcdef0123456789abcdef":     true,
		strings.Repeat("ab", 16):               false, // 32 characters, 2 distinct
		"0123456789abcdef 123456789abcdef0":    false, // a space
		"csk_0123456789abcdef0123456789abcde":  false, // looks like an agent key
		"0123456789abcdef0123456789abcdef\n":   false,
		"Zm9vYmFyYmF6cXV4cXV1eGNvcmdlZ3JhdWx0": true,
	} {
		if err := CheckTokenStrength("WALLET_TOKEN", tok); (err == nil) != ok {
			t.Errorf("%q: %v", tok, err)
		}
		if err := CheckTokenStrength("WALLET_TOKEN", tok); err != nil && len(tok) > 3 && strings.Contains(err.Error(), tok) {
			t.Errorf("the error shows the token: %v", err)
		}
	}
}

// FuzzDaemonRequestShape: whatever Host, Origin, Sec-Fetch-Site,
// Content-Type and credentials a request carries, the guard never panics,
// and a request it lets through has a loopback Host, no Origin, JSON
// content when it has a body, no proxy headers, no agent key, and the
// token.
func FuzzDaemonRequestShape(f *testing.F) {
	f.Add("POST", "127.0.0.1:8555", "", "", "application/json", "", testWalletToken, "", "{}")
	f.Add("GET", "localhost", "", "none", "", "", testWalletToken, "", "")
	f.Add("POST", "evil.example", "https://evil.example", "cross-site", "text/plain", "bearer csk_x", "", "203.0.113.9", "{}")
	f.Add("GET", "[::1]:1", "null", "same-origin", "", "Bearer  CSK_", testWalletToken, "", "x")
	f.Add("POST", "127.0.0.1.nip.io", "", "", "application/json;;", "", "x", "", "")
	f.Fuzz(func(t *testing.T, method, host, origin, site, ctype, authz, token, xff, body string) {
		if method != "GET" && method != "POST" {
			method = "POST"
		}
		r := httptest.NewRequest(method, "/v1/wallets", strings.NewReader(body))
		r.RemoteAddr = "127.0.0.1:40000"
		r.Host = host
		for k, v := range map[string]string{"Origin": origin, "Sec-Fetch-Site": site, "Content-Type": ctype, "Authorization": authz, "X-Auth-Token": token, "X-Forwarded-For": xff} {
			if v != "" {
				r.Header.Set(k, v)
			}
		}
		s := testDaemonServer()
		if s.checkDaemon(r) != nil {
			return
		}
		name, ok := hostName(host)
		mt, _, _ := mime.ParseMediaType(ctype)
		switch {
		case !ok || !loopbackHost(name):
			t.Fatalf("passed with Host %q", host)
		case origin != "":
			t.Fatalf("passed with Origin %q", origin)
		case site != "" && site != "none":
			t.Fatalf("passed with Sec-Fetch-Site %q", site)
		case (body != "" || ctype != "") && mt != "application/json":
			t.Fatalf("passed a %s body typed %q", method, ctype)
		case authz != "":
			t.Fatalf("passed with Authorization %q", authz)
		case xff != "":
			t.Fatal("passed a forwarded request")
		case strings.TrimSpace(token) != testWalletToken:
			t.Fatalf("passed with token %q", token)
		}
	})
}

// FuzzRPCBridgeRequest: the JSON-RPC bridge's mapping of params onto a
// route's path, query and body never panics; it fails with invalid params
// or builds a request for exactly the method's route, whose path values
// are non-empty, whose query names only the method's params and whose
// body (POST) is a JSON object.
func FuzzRPCBridgeRequest(f *testing.F) {
	methods := make([]string, 0, len(rpcBridge))
	for m := range rpcBridge {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	for i, seed := range []string{`{"account_id":"a"}`, `["a","b"]`, `null`, `{"txid":"x","extra":1}`, `[{"a":1},2,"3",null]`, `{"address":""}`,
		`{"wallet_id":"w","tag":"role=payout"}`, `{"id":["x"]}`, `"str"`, `[]`, `{"wallet_id":"a%2F..%2F","tag":"\u0000"}`} {
		f.Add(uint8(i*3), []byte(seed))
	}
	f.Fuzz(func(t *testing.T, mi uint8, params []byte) {
		if !json.Valid(params) {
			return // DecodeRPCRequest only passes valid JSON on
		}
		method := methods[int(mi)%len(methods)]
		b := rpcBridge[method]
		req, err := bridgeRequest(context.Background(), method, params)
		if err != nil {
			if e, ok := err.(*rpcError); !ok || e.Code != rpcInvalidParams {
				t.Fatalf("%s: error %v is not invalid params", method, err)
			}
			return
		}
		if req.Method != b.method || req.URL.Path != b.path {
			t.Fatalf("%s became %s %s", method, req.Method, req.URL.Path)
		}
		for _, name := range b.params {
			if strings.Contains(b.path, "{"+name+"}") && req.PathValue(name) == "" {
				t.Fatalf("%s: empty path value %s", method, name)
			}
		}
		for name := range req.URL.Query() {
			if !slices.Contains(b.params, name) || strings.Contains(b.path, "{"+name+"}") {
				t.Fatalf("%s: query has %q", method, name)
			}
		}
		raw, _ := io.ReadAll(req.Body)
		if b.method == "GET" {
			if len(raw) != 0 {
				t.Fatalf("%s: GET with a body", method)
			}
			return
		}
		if req.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: bridged body without its type", method)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil {
			t.Fatalf("%s: body %q is not an object: %v", method, raw, err)
		}
	})
}
