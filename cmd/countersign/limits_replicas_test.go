package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/store/postgres/pgtest"
)

// Two replicas of countersign serve on one PostgreSQL: the limits that stop
// guessing and the claims on shared work hold across them, and the wallet
// daemon runs on one of them (DAEMON_MODE).

// limitReplicas starts two servers on one fresh PostgreSQL database with one
// master key file and one clock, as OPERATIONS.md lays out replicas. opts
// apply to both.
func limitReplicas(t *testing.T, opts ...envOption) (a, b *env) {
	t.Helper()
	dsn := pgtest.Start(t)
	var cfg, cfg2 *Config
	a = newEnv(t, append([]envOption{onPostgres(dsn, &cfg)}, opts...)...)
	b = newEnv(t, append([]envOption{onPostgres(dsn, &cfg2), func(c *Config) {
		c.MasterKeyFile = cfg.MasterKeyFile
		c.AcceptNewChain = true // its own embedded dev chain: only the database is shared here
		c.Clock = a.clock
	}}, opts...)...)
	b.clock = a.clock
	t.Cleanup(func() {
		if t.Failed() { // what the servers said, for the failure's cause
			t.Logf("replica a:\n%s\nreplica b:\n%s", a.logs, b.logs)
		}
	})
	return a, b
}

// TestSecurity_PostgresPasswordSprayMeetsOneLimit: wrong passwords sent to
// two replicas in turn meet one set of limits: the pair's five, and the
// user's fifty from ten addresses. With the limiter in each process's
// memory, each replica granted its own allowance: ten guesses per pair and
// a hundred per user.
func TestSecurity_PostgresPasswordSprayMeetsOneLimit(t *testing.T) {
	a, b := limitReplicas(t)
	replicas := []*env{a, b}
	u := a.newUser(false)
	wrong := map[string]string{"username": u.name, "password": "wrong password 123"}
	for i := range 5 {
		replicas[i%2].from("127.0.3.1").do("POST", "/api/login", anon, wrong).refused(t, 401, "UNAUTHORIZED")
	}
	for _, r := range replicas {
		r.from("127.0.3.1").do("POST", "/api/login", anon, wrong).refused(t, 429, "RATE_LIMIT")
	}
	// the per-user ceiling, sprayed over both replicas from ten addresses
	// (45 more: the pair above counted five)
	for i := range 45 {
		replicas[i%2].from("127.0.4."+itoa(i/5+1)).do("POST", "/api/login", anon, wrong).refused(t, 401, "UNAUTHORIZED")
	}
	for _, r := range replicas {
		r.from("127.0.5.1").do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).refused(t, 429, "RATE_LIMIT")
	}
	a.clock.Advance(16 * time.Minute) // the window ends for both
	b.from("127.0.5.1").do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).must(t, 200)
}

// TestSecurity_PostgresSigningRateShared: with the daemon on both replicas
// (DAEMON_MODE=sticky), SIGN_BURST is one burst for the server, not one
// per replica.
func TestSecurity_PostgresSigningRateShared(t *testing.T) {
	a, b := limitReplicas(t, fastDaemon, func(c *Config) {
		c.DaemonMode = daemonSticky
		c.SignRate, c.SignBurst = 1e-6, 3 // no refill during the test
	})
	k := a.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "k", "password": "pw", "curve": "ed25519", "private_key_hex": strings.Repeat("0e", 32)}).must(t, 201)
	replicas := []*env{a, b}
	for _, r := range replicas { // each replica's memory holds its own unlocked copy
		r.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": k.str("wallet_id"), "password": "pw"}).must(t, 200)
	}
	signed, limited := 0, 0
	for i := range 6 {
		r := replicas[i%2].do("POST", "/v1/sign/message", anon, map[string]string{"account_id": k.str("account_id"), "message_base64": "aGk="})
		switch {
		case r.status == 200:
			signed++
		case r.status == 429 && r.code() == "RATE_LIMIT" && r.header.Get("Retry-After") != "":
			limited++
		default:
			t.Fatalf("signature %d: %d %s", i, r.status, r.raw)
		}
	}
	if signed != 3 || limited != 3 {
		t.Fatalf("two replicas with SIGN_BURST=3: %d signed, %d limited", signed, limited)
	}
}

// TestSecurity_PostgresDaemonOnOneReplica: DAEMON_MODE=single (the
// default): the first replica holds the daemon lease and serves the
// daemon routes; the second answers them 503 UNAVAILABLE naming the holder
// and the setting, and serves everything else. When the holder stops, the
// lease passes and the second replica serves the daemon.
func TestSecurity_PostgresDaemonOnOneReplica(t *testing.T) {
	a, b := limitReplicas(t, fastDaemon, func(c *Config) { c.DaemonLeaseTTL = 1500 * time.Millisecond })
	a.do("GET", "/v1/wallets", anon, nil).must(t, 200)
	r := b.do("GET", "/v1/wallets", anon, nil).refused(t, 503, "UNAVAILABLE")
	if !strings.Contains(r.raw, a.url) || !strings.Contains(r.raw, "DAEMON_MODE") || r.header.Get("Retry-After") == "" {
		t.Fatalf("the standby's answer does not name the holder (%s) and the setting: %s", a.url, r.raw)
	}
	b.do("POST", "/rpc", anon, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "wallet_list"}).refused(t, 503, "UNAVAILABLE")
	// the standby's other routes work, and they share the database
	u := b.newUser(false)
	a.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).must(t, 200)
	// still there after several renewals
	time.Sleep(2 * time.Second)
	a.do("GET", "/v1/wallets", anon, nil).must(t, 200)
	b.do("GET", "/v1/wallets", anon, nil).refused(t, 503, "UNAVAILABLE")
	// the holder stops: the lease passes
	if err := a.app.Close(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the standby to take the daemon over", func() bool { return b.do("GET", "/v1/wallets", anon, nil).status == 200 })
	if !strings.Contains(b.logs.String(), "serves the daemon now") {
		t.Fatal("the takeover was not logged")
	}
}

// TestPostgresDaemonSticky: DAEMON_MODE=sticky serves the daemon on every
// replica (the operator routes each client to one).
func TestPostgresDaemonSticky(t *testing.T) {
	a, b := limitReplicas(t, func(c *Config) { c.DaemonMode = daemonSticky })
	a.do("GET", "/v1/wallets", anon, nil).must(t, 200)
	b.do("GET", "/v1/wallets", anon, nil).must(t, 200)
	if !strings.Contains(a.logs.String(), "DAEMON_MODE=sticky") {
		t.Fatal("sticky mode was not warned about")
	}
}

// TestDaemonModeOff: DAEMON_MODE=off answers the daemon routes 404 naming
// the setting, on SQLite too; an unknown mode stops the start.
func TestDaemonModeOff(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DaemonMode = daemonOff })
	r := e.do("GET", "/v1/wallets", anon, nil).refused(t, 404, "NOT_FOUND")
	if !strings.Contains(r.raw, "DAEMON_MODE=off") {
		t.Fatalf("the answer does not name the setting: %s", r.raw)
	}
	e.do("GET", "/healthz", anon, nil).must(t, 200)
	if _, _, err := startAt(t, t.TempDir(), restartClock(), func(c *Config) { c.DaemonMode = "both" }); err == nil || !strings.Contains(err.Error(), "DAEMON_MODE") {
		t.Fatalf("DAEMON_MODE=both: %v", err)
	}
}

// TestSecurity_PostgresWebhookDeliveredOnce: both replicas run the
// webhook worker over one outbox; every delivery reaches the receiver
// exactly once. The receiver is slow, so a worker is still sending when
// the other looks for due deliveries: without the claim, both sent.
func TestSecurity_PostgresWebhookDeliveredOnce(t *testing.T) {
	var mu sync.Mutex
	got := map[string]int{}
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		time.Sleep(30 * time.Millisecond)
		mu.Lock()
		got[r.Header.Get("X-Countersign-Delivery")]++
		mu.Unlock()
	}))
	defer rcv.Close()
	a, b := limitReplicas(t, fastDaemon, allowLoopbackHooks, func(c *Config) { c.SignRate, c.SignBurst = 1e6, 1e6 })
	a.do("POST", "/v1/webhooks", anon, map[string]any{"url": rcv.URL + "/hook", "events": []string{"signed"}}).must(t, 201)
	k := a.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "k", "password": "pw", "curve": "ed25519", "private_key_hex": strings.Repeat("0f", 32)}).must(t, 201)
	a.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": k.str("wallet_id"), "password": "pw"}).must(t, 200)
	const n = 30
	for range n {
		a.do("POST", "/v1/sign/message", anon, map[string]string{"account_id": k.str("account_id"), "message_base64": "aGk="}).must(t, 200)
	}
	total := func() int {
		mu.Lock()
		defer mu.Unlock()
		s := 0
		for _, c := range got {
			s += c
		}
		return s
	}
	waitUntil(t, "every delivery", func() bool { return total() >= n })
	time.Sleep(300 * time.Millisecond) // room for a duplicate to arrive
	mu.Lock()
	defer mu.Unlock()
	for id, c := range got {
		if c != 1 {
			t.Errorf("delivery %s arrived %d times", id, c)
		}
	}
	if len(got) != n {
		t.Fatalf("%d distinct deliveries, want %d", len(got), n)
	}
	_ = b
}

// TestSecurity_SQLiteDaemonInOneProcess: two servers on one SQLite
// database (a rolling deploy on a shared volume): the first serves the
// daemon routes, the second answers them 503 UNAVAILABLE naming the
// setting; when the first stops, the second takes them over at once (the
// lock is the kernel's, released with its holder, however it ends).
// DAEMON_MODE=sticky serves them on both.
func TestSecurity_SQLiteDaemonInOneProcess(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	a, stopA, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	b, stopB, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	defer stopB()
	a.do("GET", "/v1/wallets", anon, nil).must(t, 200)
	r := b.do("GET", "/v1/wallets", anon, nil).refused(t, 503, "UNAVAILABLE")
	if !strings.Contains(r.raw, "DAEMON_MODE") || r.header.Get("Retry-After") == "" {
		t.Fatalf("the second process's answer does not name the setting: %s", r.raw)
	}
	b.do("POST", "/rpc", anon, map[string]any{"jsonrpc": "2.0", "id": 1, "method": "wallet_list"}).refused(t, 503, "UNAVAILABLE")
	b.do("GET", "/healthz", anon, nil).must(t, 200)
	stopA()
	b.do("GET", "/v1/wallets", anon, nil).must(t, 200)

	c, stopC, err := startAt(t, dir, clock, func(c *Config) { c.DaemonMode = daemonSticky })
	if err != nil {
		t.Fatal(err)
	}
	defer stopC()
	c.do("GET", "/v1/wallets", anon, nil).must(t, 200)
}
