package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/auth"
	cshttp "github.com/countersign/countersign/http"
)

// The wallet daemon's door, attacked through the real wiring (finding 2,
// finding 9, and the /metrics part of finding 16 of the security review).

var benchWalletToken string // the daemon benchmark's token, for postSigned

// dataDir is the server's data directory, where the CLI finds wallet.token.
func (e *env) dataDir() string { return e.app.DataDir }

// cliEnv is the environment of a CLI run against e: only the data dir.
func (e *env) cliEnv(k string) string {
	if k == "COUNTERSIGN_DATA_DIR" {
		return e.dataDir()
	}
	return ""
}

// daemonDo sends a request the way the operator's CLI does (JSON body,
// the wallet token) after applying hdr: name/value pairs set as given
// (names are not canonicalised, so "x-api-key" goes out in lower case),
// "Host" sets the Host header, and the value "-" deletes a header.
func (e *env) daemonDo(method, path, body string, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("X-Auth-Token", e.app.walletToken)
	for i := 0; i+1 < len(hdr); i += 2 {
		switch k, v := hdr[i], hdr[i+1]; {
		case k == "Host":
			req.Host = v
		case v == "-":
			req.Header.Del(k)
		default:
			req.Header[k] = []string{v}
		}
	}
	return e.send(req)
}

// serveAs runs a request through the server's handler in process, from
// the peer address remote: how a test is a non-loopback client.
func (e *env) serveAs(remote string, r *http.Request) *httptest.ResponseRecorder {
	r.RemoteAddr = remote
	if r.Host == "" || r.Host == "example.com" {
		r.Host = "127.0.0.1:8555"
	}
	rec := httptest.NewRecorder()
	e.app.httpSrv.Handler.ServeHTTP(rec, r)
	return rec
}

func (e *env) daemonWalletCount() int {
	e.t.Helper()
	ws, _ := e.daemonDo("GET", "/v1/wallets", "").must(e.t, 200).body["wallets"].([]any)
	return len(ws)
}

const createWithMnemonic = `{"name":"stolen","password":"pw-123456","mnemonic_len":12,"show_mnemonic":true}`

// TestSecurity_DaemonTypelessBody: a web page's fetch with a typeless Blob
// body needs no CORS preflight. It must not create a wallet nor read its
// mnemonic back, over REST or /rpc.
func TestSecurity_DaemonTypelessBody(t *testing.T) {
	e := newEnv(t, fastDaemon)
	r := e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic, "Content-Type", "-").refused(t, 415, "UNSUPPORTED_MEDIA_TYPE")
	rpc := e.daemonDo("POST", "/rpc", `{"jsonrpc":"2.0","id":1,"method":"wallet_create","params":`+createWithMnemonic+`}`, "Content-Type", "-").refused(t, 415, "UNSUPPORTED_MEDIA_TYPE")
	// the browser's own shape: typeless, with its Origin and Sec-Fetch-Site
	e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic, "Content-Type", "-", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site").refused(t, 403, "FORBIDDEN")
	if strings.Contains(r.raw+rpc.raw, "mnemonic\"") || e.daemonWalletCount() != 0 {
		t.Fatalf("a typeless body created a wallet: %s %s", r.raw, rpc.raw)
	}
	e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic).must(t, 201) // the operator's request works
}

// TestSecurity_DaemonTextPlainBody: text/plain and the form types are the
// other bodies a page may send without a preflight.
func TestSecurity_DaemonTextPlainBody(t *testing.T) {
	e := newEnv(t, fastDaemon)
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/javascript"} {
		e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic, "Content-Type", ct).refused(t, 415, "UNSUPPORTED_MEDIA_TYPE")
		e.daemonDo("POST", "/rpc", `{"jsonrpc":"2.0","id":1,"method":"wallet_list"}`, "Content-Type", ct).refused(t, 415, "UNSUPPORTED_MEDIA_TYPE")
	}
	// the door refuses it whatever the handler does with the body (a GET
	// handler never reads one)
	e.daemonDo("GET", "/v1/wallets", "{}", "Content-Type", "text/plain").refused(t, 415, "UNSUPPORTED_MEDIA_TYPE")
	if e.daemonWalletCount() != 0 {
		t.Fatal("a text/plain body created a wallet")
	}
}

// TestSecurity_DaemonForeignHost: DNS rebinding points an attacker's name
// at 127.0.0.1; the browser then sends that name as Host.
func TestSecurity_DaemonForeignHost(t *testing.T) {
	e := newEnv(t, fastDaemon)
	for _, host := range []string{"evil.example:8555", "evil.example", "127.0.0.1.rebind.attacker.example:8555", "localhost.attacker.example", "0.0.0.0:8555", "192.168.1.20:8555"} {
		e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic, "Host", host).refused(t, 403, "FORBIDDEN")
		e.daemonDo("GET", "/v1/wallets", "", "Host", host).refused(t, 403, "FORBIDDEN")
	}
	if e.daemonWalletCount() != 0 {
		t.Fatal("a foreign Host created a wallet")
	}
	for _, host := range []string{"localhost:8555", "127.0.0.1", "[::1]:8555"} {
		e.daemonDo("GET", "/v1/wallets", "", "Host", host).must(t, 200)
	}
	// WALLET_ALLOWED_HOSTS opens the names it lists, and only those
	e2 := newEnv(t, fastDaemon, func(c *Config) { c.WalletHosts = "wallet.internal" })
	e2.daemonDo("GET", "/v1/wallets", "", "Host", "wallet.internal:8555").must(t, 200)
	e2.daemonDo("GET", "/v1/wallets", "", "Host", "evil.example").refused(t, 403, "FORBIDDEN")
}

// TestSecurity_DaemonCrossSiteOrigin: a page's request carries its Origin.
func TestSecurity_DaemonCrossSiteOrigin(t *testing.T) {
	e := newEnv(t, fastDaemon)
	for _, o := range []string{"https://evil.example", "null", "http://localhost:3000", e.url} {
		e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic, "Origin", o).refused(t, 403, "FORBIDDEN")
		e.daemonDo("GET", "/v1/wallets", "", "Origin", o).refused(t, 403, "FORBIDDEN")
	}
	if e.daemonWalletCount() != 0 {
		t.Fatal("a cross-site Origin created a wallet")
	}
	e2 := newEnv(t, fastDaemon, func(c *Config) { c.WalletOrigins = "chrome-extension://walletext" })
	e2.daemonDo("GET", "/v1/wallets", "", "Origin", "chrome-extension://walletext", "Sec-Fetch-Site", "cross-site").must(t, 200)
	e2.daemonDo("GET", "/v1/wallets", "", "Origin", "https://evil.example").refused(t, 403, "FORBIDDEN")
}

// TestSecurity_DaemonSecFetchSiteCrossSite: a page's GET (an <img>, a
// no-cors fetch) may carry no Origin, but the browser marks it.
func TestSecurity_DaemonSecFetchSiteCrossSite(t *testing.T) {
	e := newEnv(t, fastDaemon)
	for _, site := range []string{"cross-site", "same-site", "same-origin"} {
		e.daemonDo("GET", "/v1/wallets", "", "Sec-Fetch-Site", site).refused(t, 403, "FORBIDDEN")
		e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic, "Sec-Fetch-Site", site).refused(t, 403, "FORBIDDEN")
	}
	e.daemonDo("GET", "/v1/wallets", "", "Sec-Fetch-Site", "none").must(t, 200) // typed into the address bar
	if e.daemonWalletCount() != 0 {
		t.Fatal("a cross-site request created a wallet")
	}
}

// TestSecurity_DaemonForwarded: a same-host reverse proxy relays the
// network to 127.0.0.1; its headers give it away. With the generated
// token the daemon refuses; with the operator's WALLET_TOKEN it answers.
func TestSecurity_DaemonForwarded(t *testing.T) {
	e := newEnv(t, fastDaemon)
	for _, h := range [][2]string{{"Forwarded", "for=203.0.113.9;proto=https"}, {"X-Forwarded-For", "203.0.113.9"}, {"X-Forwarded-Proto", "https"},
		{"X-Forwarded-Host", "wallet.example"}, {"X-Real-Ip", "203.0.113.9"}, {"Via", "1.1 nginx"}} {
		e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic, h[0], h[1]).refused(t, 403, "FORBIDDEN")
		e.daemonDo("GET", "/v1/wallets", "", h[0], h[1]).refused(t, 403, "FORBIDDEN")
	}
	if e.daemonWalletCount() != 0 {
		t.Fatal("a forwarded request created a wallet")
	}
	const tok = "operator-chosen-token-0123456789abcdef"
	e2 := newEnv(t, fastDaemon, func(c *Config) { c.WalletToken = tok })
	e2.daemonDo("GET", "/v1/wallets", "", "X-Forwarded-For", "203.0.113.9").must(t, 200)
	e2.daemonDo("GET", "/v1/wallets", "", "X-Forwarded-For", "203.0.113.9", "X-Auth-Token", "-").refused(t, 401, "UNAUTHORIZED")
}

// TestSecurity_DaemonNoToken: an agent process on the machine that simply
// omits its key used to get full operator access on loopback.
func TestSecurity_DaemonNoToken(t *testing.T) {
	e := newEnv(t, fastDaemon)
	for _, rt := range cshttp.Routes() {
		if rt.Access != cshttp.Daemon {
			continue
		}
		body := ""
		if rt.Method == "POST" {
			body = "{}"
		}
		e.daemonDo(rt.Method, samplePath(rt.Path), body, "X-Auth-Token", "-").refused(t, 401, "UNAUTHORIZED")
		e.daemonDo(rt.Method, samplePath(rt.Path), body, "X-Auth-Token", "").refused(t, 401, "UNAUTHORIZED")
	}
	e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic, "X-Auth-Token", "-").refused(t, 401, "UNAUTHORIZED")
	if e.daemonWalletCount() != 0 {
		t.Fatal("a request without the token created a wallet")
	}
}

// TestSecurity_DaemonWrongTokenBackoff429 guesses the token: after five
// wrong ones the client gets 429 RATE_LIMIT with Retry-After, the right
// token included, until the lockout passes. Missing tokens and refused
// web pages do not spend the allowance.
func TestSecurity_DaemonWrongTokenBackoff429(t *testing.T) {
	e := newEnv(t, fastDaemon)
	wrong := strings.Repeat("0", 64)
	for range 10 {
		e.daemonDo("GET", "/v1/wallets", "", "X-Auth-Token", "-").refused(t, 401, "UNAUTHORIZED")
		e.daemonDo("GET", "/v1/wallets", "", "X-Auth-Token", wrong, "Origin", "https://evil.example").refused(t, 403, "FORBIDDEN")
	}
	e.daemonDo("GET", "/v1/wallets", "").must(t, 200)
	for i := range 5 {
		if r := e.daemonDo("GET", "/v1/wallets", "", "X-Auth-Token", wrong); r.status != 401 {
			t.Fatalf("guess %d: %d %s", i+1, r.status, r.raw)
		}
	}
	r := e.daemonDo("GET", "/v1/wallets", "", "X-Auth-Token", wrong).refused(t, 429, "RATE_LIMIT")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	e.daemonDo("POST", "/rpc", `{"jsonrpc":"2.0","id":1,"method":"wallet_list"}`).refused(t, 429, "RATE_LIMIT") // the right token too
	e.clock.Advance(31 * time.Second)
	e.daemonDo("GET", "/v1/wallets", "").must(t, 200)
	if strings.Contains(e.logs.String(), e.app.walletToken) {
		t.Fatal("the wallet token reached the log")
	}
}

// TestSecurity_DaemonAgentKeyForms: an agent key is refused however it is
// sent — X-API-KEY in any case, Bearer in any case or spacing — even next
// to the right wallet token.
func TestSecurity_DaemonAgentKeyForms(t *testing.T) {
	e := newEnv(t, fastDaemon)
	_, _, _, key := setup(t, e)
	for _, h := range [][2]string{{"X-API-KEY", key}, {"x-api-key", key}, {"X-Api-Key", ""}, {"Authorization", "Bearer " + key},
		{"Authorization", "bearer " + key}, {"Authorization", "Bearer  " + key}, {"Authorization", "BEARER " + key},
		{"Authorization", "BEARER " + strings.ToUpper(key)}, {"authorization", "bearer\t" + key}, {"Authorization", key}} {
		e.daemonDo("POST", "/v1/wallet/create", createWithMnemonic, h[0], h[1]).refused(t, 403, "FORBIDDEN")
		e.daemonDo("POST", "/rpc", `{"jsonrpc":"2.0","id":1,"method":"wallet_create","params":`+createWithMnemonic+`}`, h[0], h[1]).refused(t, 403, "FORBIDDEN")
	}
	// the agent's key in place of the wallet token
	e.daemonDo("GET", "/v1/wallets", "", "X-Auth-Token", key).refused(t, 403, "FORBIDDEN")
	if e.daemonWalletCount() != 0 {
		t.Fatal("an agent key created a daemon wallet")
	}
}

// testCfg is newEnv's configuration, for tests that start and stop the
// wiring themselves.
func testCfg(dir string) *Config {
	_ = os.Chmod(dir, 0o700) // the start refuses a data dir others can enter
	cfg := &Config{Addr: "127.0.0.1:0", DataDir: dir, Clock: &testClock{now: time.Now()}, PollInterval: 20 * time.Millisecond,
		Argon2: auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1}}
	fastDaemon(cfg)
	_ = cfg.defaults()
	return cfg
}

// TestSecurity_DaemonShortWalletTokenRefused: a WALLET_TOKEN (or
// METRICS_TOKEN) under 128 bits stops the start, before anything is
// written, and the message does not repeat it.
func TestSecurity_DaemonShortWalletTokenRefused(t *testing.T) {
	for _, c := range []struct{ wallet, metrics, want string }{
		{"x", "", "WALLET_TOKEN must be at least 32 characters"},
		{"daemon-token-0123456789", "", "WALLET_TOKEN must be at least 32 characters"},
		{strings.Repeat("a", 40), "", "WALLET_TOKEN repeats too few characters"},
		{"", "short-metrics", "METRICS_TOKEN must be at least 32 characters"},
	} {
		dir := t.TempDir()
		cfg := testCfg(dir)
		cfg.WalletToken, cfg.MetricsToken = c.wallet, c.metrics
		logs := &syncBuffer{}
		log, _ := newLogger("json", "debug", logs)
		a, err := Start(context.Background(), cfg, log)
		if err == nil {
			a.Close()
			t.Fatalf("started with WALLET_TOKEN %q METRICS_TOKEN %q", c.wallet, c.metrics)
		}
		if !strings.Contains(err.Error(), c.want) || len(c.wallet) > 3 && strings.Contains(err.Error(), c.wallet) {
			t.Fatalf("error %q, want %q", err, c.want)
		}
		if _, err := os.Stat(filepath.Join(dir, "master.key")); c.wallet != "" && !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("a refused start wrote the master key: %v", err)
		}
	}
	// parseServeConfig → Start: the same refusal from the environment
	var stderr bytes.Buffer
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir},
		func(k string) string { return map[string]string{"WALLET_TOKEN": "hunter2"}[k] }, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "WALLET_TOKEN must be at least 32") {
		t.Fatalf("serve with WALLET_TOKEN=hunter2: %v", err)
	}
}

// TestSecurity_DaemonTokenFile0600Reused: the generated token is 32
// random bytes in hex, mode 0600, kept across restarts; the log names the
// file and never the token; a file others can read stops the start.
func TestSecurity_DaemonTokenFile0600Reused(t *testing.T) {
	dir := t.TempDir()
	start := func() (*App, *syncBuffer, error) {
		logs := &syncBuffer{}
		log, _ := newLogger("json", "debug", logs)
		a, err := Start(context.Background(), testCfg(dir), log)
		return a, logs, err
	}
	a, logs, err := start()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "wallet.token")
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 || a.WalletTokenFile != path {
		t.Fatalf("token file: %v %v %q", err, fi, a.WalletTokenFile)
	}
	b, _ := os.ReadFile(path)
	tok := strings.TrimSpace(string(b))
	if raw, err := hex.DecodeString(tok); err != nil || len(raw) != 32 || tok != a.walletToken {
		t.Fatalf("token file holds %d characters, not 64 hex", len(tok))
	}
	if !strings.Contains(logs.String(), path) || strings.Contains(logs.String(), tok) {
		t.Fatal("the log must name the token file and never the token")
	}
	a.Close()
	a, _, err = start()
	if err != nil {
		t.Fatal(err)
	}
	if a.walletToken != tok {
		t.Fatal("a restart replaced the token")
	}
	a.Close()
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		os.Chmod(path, mode)
		if a, _, err := start(); err == nil || !strings.Contains(err.Error(), "readable by others") {
			if a != nil {
				a.Close()
			}
			t.Fatalf("mode %v: %v", mode, err)
		}
	}
	os.Chmod(path, 0o600)
	os.WriteFile(path, []byte("short\n"), 0o600)
	if a, _, err := start(); err == nil {
		a.Close()
		t.Fatal("started with a weak token file")
	}
	os.Remove(path)
	os.Symlink(filepath.Join(dir, "master.key"), path)
	if a, _, err := start(); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		if a != nil {
			a.Close()
		}
		t.Fatalf("a symlinked token file: %v", err)
	}
}

// TestSecurity_DaemonTokenFileConcurrentCreate: servers starting together
// on one data dir agree on one token; none replaces another's.
func TestSecurity_DaemonTokenFileConcurrentCreate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "wallet.token")
	const n = 16
	toks, created := make([]string, n), make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if toks[i], created[i], err = loadOrCreateWalletToken(path); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	c := 0
	for i := range n {
		if toks[i] != toks[0] {
			t.Fatal("two tokens")
		}
		if created[i] {
			c++
		}
	}
	if c != 1 {
		t.Fatalf("%d creators", c)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".wallet.token-*")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestSecurity_DaemonCLIGeneratedToken: with no configuration the CLI
// finds the generated token in the data directory (--data-dir or
// COUNTERSIGN_DATA_DIR); pointed elsewhere it is refused and says where it
// looked.
func TestSecurity_DaemonCLIGeneratedToken(t *testing.T) {
	e := newEnv(t, fastDaemon)
	w := e.cliOK(map[string]string{"COUNTERSIGN_WALLET_PASSWORD": "cli-pw-123456"}, "", "wallet", "create", "--name", "ops")
	if w["wallet_id"] == nil {
		t.Fatalf("create: %v", w)
	}
	elsewhere := t.TempDir()
	_, err := e.cli(map[string]string{"COUNTERSIGN_DATA_DIR": elsewhere}, "", "wallet", "list")
	if err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") || !strings.Contains(err.Error(), filepath.Join(elsewhere, "wallet.token")) {
		t.Fatalf("list with no token file: %v", err)
	}
	if list := e.cliOK(map[string]string{"COUNTERSIGN_DATA_DIR": elsewhere}, "", "wallet", "list", "--data-dir", e.dataDir()); len(list["wallets"].([]any)) != 1 {
		t.Fatalf("list with --data-dir: %v", list)
	}
	if _, err := e.cli(nil, "", "sign", "message", "--account", "nope", "--text", "hi"); err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("sign message reached the daemon: %v", err)
	}
	// WALLET_TOKEN wins over the file
	if _, err := e.cli(map[string]string{"WALLET_TOKEN": strings.Repeat("0", 64)}, "", "wallet", "list"); err == nil || !strings.Contains(err.Error(), "WALLET_TOKEN") {
		t.Fatalf("a wrong WALLET_TOKEN: %v", err)
	}
}

// TestSecurity_MetricsLoopbackOrToken: /metrics answers loopback clients
// only, unless METRICS_TOKEN is set; then it wants that bearer token from
// everyone.
func TestSecurity_MetricsLoopbackOrToken(t *testing.T) {
	e := newEnv(t)
	get := func(remote string, hdr ...string) int {
		r := httptest.NewRequest("GET", "/metrics", nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return e.serveAs(remote, r).Code
	}
	if r := e.do("GET", "/metrics", anon, nil); r.status != 200 || !strings.Contains(r.raw, "go_goroutines") {
		t.Fatalf("loopback /metrics: %d", r.status)
	}
	if c := get("10.0.0.7:4000"); c != 403 {
		t.Fatalf("non-loopback /metrics: %d", c)
	}
	if c := get("127.0.0.1:4000", "X-Forwarded-For", "203.0.113.9"); c != 403 {
		t.Fatalf("proxied /metrics: %d", c)
	}
	const mt = "metrics-token-0123456789abcdef-xyz"
	e2 := newEnv(t, func(c *Config) { c.MetricsToken = mt })
	e2.do("GET", "/metrics", anon, nil).refused(t, 401, "UNAUTHORIZED")
	e2.do("GET", "/metrics", bearer("wrong-token"), nil).refused(t, 401, "UNAUTHORIZED")
	if r := e2.do("GET", "/metrics", bearer(mt), nil); r.status != 200 {
		t.Fatalf("/metrics with METRICS_TOKEN: %d", r.status)
	}
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.Header.Set("Authorization", "bearer "+mt)
	if c := e2.serveAs("10.0.0.7:4000", r).Code; c != 200 {
		t.Fatalf("remote /metrics with METRICS_TOKEN: %d", c)
	}
}

// TestSecurity_DaemonNonLoopbackClient: the generated token is for this
// machine; a remote peer needs the operator's WALLET_TOKEN (or WALLET_ALLOW).
func TestSecurity_DaemonNonLoopbackClient(t *testing.T) {
	req := func(tok string) *http.Request {
		r := httptest.NewRequest("GET", "/v1/wallets", nil)
		r.Header.Set("X-Auth-Token", tok)
		return r
	}
	e := newEnv(t, fastDaemon)
	if c := e.serveAs("10.1.2.3:5", req(e.app.walletToken)).Code; c != 403 {
		t.Fatalf("remote with the generated token: %d", c)
	}
	const tok = "operator-chosen-token-0123456789abcdef"
	e2 := newEnv(t, fastDaemon, func(c *Config) { c.WalletToken = tok })
	if c := e2.serveAs("10.1.2.3:5", req(tok)).Code; c != 200 {
		t.Fatalf("remote with WALLET_TOKEN: %d", c)
	}
	e3 := newEnv(t, fastDaemon, func(c *Config) { c.WalletAllow = "10.1.2.0/24" })
	if c := e3.serveAs("10.1.2.3:5", req(e3.app.walletToken)).Code; c != 200 {
		t.Fatalf("allow-listed with the generated token: %d", c)
	}
	if c := e3.serveAs("10.1.3.3:5", req(e3.app.walletToken)).Code; c != 403 {
		t.Fatalf("not allow-listed: %d", c)
	}
	// and the listener: no non-loopback bind on the generated token alone
	cfg := testCfg(t.TempDir())
	cfg.Addr = "0.0.0.0:0"
	log, _ := newLogger("json", "error", &syncBuffer{})
	if a, err := Start(context.Background(), cfg, log); err == nil || !strings.Contains(err.Error(), "WALLET_TOKEN") {
		if a != nil {
			a.Close()
		}
		t.Fatalf("non-loopback bind with the generated token: %v", err)
	}
}

var pathParam = regexp.MustCompile(`\{[^}]+\}`)

func samplePath(p string) string { return pathParam.ReplaceAllString(p, "x") }

// daemonAuthorizationMatrix is TestAuthorizationMatrix's part for the
// wallet daemon: every Daemon route of the route table, called by each
// daemon principal — the token right and wrong, none, agent keys, a user
// session, and the browser-shaped requests of finding 2 (cross-site
// Origin, Sec-Fetch-Site, foreign Host, no or text/plain Content-Type,
// forwarded) — with the right token unless the principal is about the
// token. It returns the routes it covered.
func daemonAuthorizationMatrix(t *testing.T, e *env, agentKey, userToken string) map[string]bool {
	const pass = "pass" // reaches the handler (which may still refuse the empty input)
	principals := []struct {
		name string
		hdr  []string
		body bool // send a body even on GET
		want string
	}{
		{"wrong daemon token", []string{"X-Auth-Token", strings.Repeat("f", 64)}, false, "401 UNAUTHORIZED"},
		{"daemon token", nil, false, pass}, // after the wrong one: it resets the backoff
		{"no daemon token", []string{"X-Auth-Token", "-"}, false, "401 UNAUTHORIZED"},
		{"agent key", []string{"X-API-KEY", agentKey}, false, "403 FORBIDDEN"},
		{"agent key as bearer", []string{"Authorization", "bearer  " + agentKey}, false, "403 FORBIDDEN"},
		{"user session", []string{"Authorization", "Bearer " + userToken}, false, "401 UNAUTHORIZED"},
		{"cross-site Origin", []string{"Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"}, false, "403 FORBIDDEN"},
		{"Sec-Fetch-Site cross-site", []string{"Sec-Fetch-Site", "cross-site"}, false, "403 FORBIDDEN"},
		{"foreign Host", []string{"Host", "evil.example:8555"}, false, "403 FORBIDDEN"},
		{"rebinding Host", []string{"Host", "127.0.0.1.attacker.example:8555"}, false, "403 FORBIDDEN"},
		{"no Content-Type", []string{"Content-Type", "-"}, true, "415 UNSUPPORTED_MEDIA_TYPE"},
		{"text/plain", []string{"Content-Type", "text/plain"}, true, "415 UNSUPPORTED_MEDIA_TYPE"},
		{"forwarded", []string{"X-Forwarded-For", "203.0.113.9"}, false, "403 FORBIDDEN"},
	}
	covered := map[string]bool{}
	n := 0
	for _, rt := range cshttp.Routes() {
		if rt.Access != cshttp.Daemon {
			continue
		}
		n++
		covered[rt.Method+" "+rt.Path] = true
		for _, p := range principals {
			t.Run(rt.Method+" "+rt.Path+"/"+p.name, func(t *testing.T) {
				body := ""
				if rt.Method == "POST" || p.body {
					body = "{}"
				}
				hdr := p.hdr
				if body != "" && rt.Method == "GET" && p.want == pass {
					hdr = append(hdr, "Content-Type", "application/json")
				}
				r := e.daemonDo(rt.Method, samplePath(rt.Path), body, hdr...)
				if p.want == pass {
					switch r.code() {
					case "UNAUTHORIZED", "FORBIDDEN", "UNSUPPORTED_MEDIA_TYPE", "RATE_LIMIT":
						t.Fatalf("the operator is refused: %s", r.raw)
					}
					if r.status >= 500 {
						t.Fatalf("server error: %s", r.raw)
					}
					return
				}
				if got := itoa(r.status) + " " + r.code(); got != p.want {
					t.Fatalf("got %s, want %s: %s", got, p.want, r.raw)
				}
			})
		}
	}
	if n == 0 {
		t.Fatal("no daemon routes in the route table")
	}
	return covered
}
