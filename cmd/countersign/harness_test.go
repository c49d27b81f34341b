package main

import (
	"bytes"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/auth"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// syncBuffer collects the server's log output for inspection.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	t     testing.TB
	app   *App
	url   string
	clock *testClock
	logs  *syncBuffer
	http  *http.Client
}

type envOption func(*Config)

// newEnv starts the real server wiring on a free port with a fresh data
// dir, cheap Argon2 parameters and an injected clock.
func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e, _, err := startAt(t, t.TempDir(), restartClock(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// cred is how a request authenticates.
type cred struct {
	bearer string
	apiKey string
}

func bearer(tok string) cred { return cred{bearer: tok} }
func apiKey(k string) cred   { return cred{apiKey: k} }

var anon = cred{}

type resp struct {
	status int
	body   map[string]any
	raw    string
	header http.Header
}

func (r resp) str(k string) string {
	v, _ := r.body[k].(string)
	return v
}

func (r resp) code() string {
	e, _ := r.body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

// do sends a JSON request. body may be a string (sent as is) or a value.
func (e *env) do(method, path string, c cred, body any, extra ...string) resp {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.app.walletToken != "" {
		req.Header.Set("X-Auth-Token", e.app.walletToken) // the local operator on daemon routes; other routes ignore it
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.apiKey != "" {
		req.Header.Set("X-API-KEY", c.apiKey)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		req.Header.Set(extra[i], extra[i+1])
	}
	return e.send(req)
}

// send runs req and reads the answer (JSON decoded when it is JSON).
func (e *env) send(req *http.Request) resp {
	e.t.Helper()
	res, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, raw: string(raw), header: res.Header}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// must fails the test unless the response has status want.
func (r resp) must(t testing.TB, want int) resp {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d: %s", r.status, want, r.raw)
	}
	return r
}

// refused fails the test unless the response is the error code with status.
func (r resp) refused(t testing.TB, status int, code string) resp {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Fatalf("got %d %s, want %d %s: %s", r.status, r.code(), status, code, r.raw)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Fatalf("error response without X-Request-Id")
	}
	return r
}

type user struct {
	name, password, token string
	secret                []byte
}

const testPassword = "correct horse battery staple"

var userSeq = 0
var userMu sync.Mutex

// newUser registers, logs in and (with mfa) enrols TOTP.
func (e *env) newUser(mfa bool) *user {
	e.t.Helper()
	userMu.Lock()
	userSeq++
	u := &user{name: fmt.Sprintf("user%d", userSeq), password: testPassword}
	userMu.Unlock()
	e.do("POST", "/api/register", anon, map[string]string{"username": u.name, "password": u.password}).must(e.t, 201)
	r := e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).must(e.t, 200)
	u.token = r.str("access_token")
	if mfa {
		r := e.do("POST", "/api/setup_mfa", bearer(u.token), nil).must(e.t, 201)
		sec, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(r.str("secret"))
		if err != nil {
			e.t.Fatal(err)
		}
		u.secret = sec
	}
	return u
}

// code moves the clock to the next TOTP step and returns that step's code,
// so every code the test sends is fresh.
func (e *env) code(u *user) string {
	e.clock.Advance(auth.TOTPPeriod * time.Second)
	return auth.TOTPCode(u.secret, e.clock.Now())
}

func (e *env) createWallet(u *user) string {
	r := e.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password}).must(e.t, 201)
	return r.str("address")
}

func (e *env) createAgent(u *user, wallet string) (id, key string) {
	r := e.do("POST", "/api/agents", bearer(u.token), map[string]string{"name": "agent", "wallet_address": wallet, "mfa_code": e.code(u)}).must(e.t, 201)
	return r.str("agent_id"), r.str("api_key")
}

// waitStatus long-polls until the transaction reaches want.
func (e *env) waitStatus(c cred, id, want string) resp {
	e.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		r := e.do("GET", "/api/transaction_status?transaction_id="+id+"&wait=5s", c, nil).must(e.t, 200)
		if r.str("status") == want {
			return r
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("transaction %s is %s, want %s: %s", id, r.str("status"), want, r.raw)
		}
	}
}
