package main

import (
	"bufio"
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign/core"
)

// allowLoopbackHooks lets webhooks reach the tests' loopback receivers
// (WEBHOOK_ALLOW_NETS): without it they are refused as internal.
func allowLoopbackHooks(c *Config) { c.WebhookAllow = "127.0.0.0/8,::1/128" }

// receiver is a webhook endpoint that fails a number of times first.
type receiver struct {
	mu       sync.Mutex
	failures int
	got      []map[string]any
	headers  []http.Header
	bodies   [][]byte
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	var m map[string]any
	json.Unmarshal(body, &m)
	r.got, r.headers, r.bodies = append(r.got, m), append(r.headers, req.Header.Clone()), append(r.bodies, body)
}

func (r *receiver) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.got) }

// waitUntil polls cond (the worker runs every 20 ms in tests).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestWebhooksRetryAndSurviveRestart(t *testing.T) {
	rcv := &receiver{failures: 2}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	dataDir := t.TempDir()
	sameData := func(c *Config) { c.DataDir = dataDir }

	e := newEnv(t, fastDaemon, sameData, allowLoopbackHooks)
	wh := e.do("POST", "/v1/webhooks", anon, map[string]any{"url": srv.URL + "/hook", "events": []string{"signed", "transaction.*"}}).must(t, 201)
	secret, _ := hex.DecodeString(wh.str("secret"))
	e.do("POST", "/v1/webhooks", anon, map[string]any{"url": "ftp://x", "events": []string{"signed"}}).refused(t, 400, "BAD_REQUEST")

	// a signature makes a "signed" event
	k := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "k", "password": "pw", "curve": "ed25519", "private_key_hex": strings.Repeat("0d", 32)}).must(t, 201)
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": k.str("wallet_id"), "password": "pw"}).must(t, 200)
	e.do("POST", "/v1/sign/message", anon, map[string]string{"account_id": k.str("account_id"), "message_base64": "aGk="}).must(t, 200)

	log := func(e *env) []any {
		return e.do("GET", "/v1/webhooks/"+wh.str("webhook_id")+"/deliveries", anon, nil).must(t, 200).body["deliveries"].([]any)
	}
	attempts := func(e *env) float64 { return log(e)[0].(map[string]any)["attempts"].(float64) }
	waitUntil(t, "the first failed attempt", func() bool { return attempts(e) == 1 })
	if d := log(e)[0].(map[string]any); d["status"] != "pending" || d["last_status"].(float64) != 503 {
		t.Fatalf("after one failure: %v", d)
	}
	// restart before the retry: the delivery is in the database, not in memory
	if err := e.app.Close(); err != nil {
		t.Fatal(err)
	}
	e2 := newEnv(t, fastDaemon, sameData, allowLoopbackHooks)
	e2.clock.Advance(3 * time.Second) // past the 2 s backoff
	waitUntil(t, "the second attempt", func() bool { return attempts(e2) == 2 })
	e2.clock.Advance(5 * time.Second) // past the 4 s backoff
	waitUntil(t, "delivery", func() bool { return rcv.count() == 1 })
	waitUntil(t, "the log to say delivered", func() bool { return log(e2)[0].(map[string]any)["status"] == "delivered" })

	// what arrived, and that its signature checks out with the secret
	rcv.mu.Lock()
	got, h, body := rcv.got[0], rcv.headers[0], rcv.bodies[0]
	rcv.mu.Unlock()
	if got["type"] != "signed" || h.Get("X-Countersign-Event") != "signed" || h.Get("X-Countersign-Delivery") == "" {
		t.Fatalf("delivery: %v %v", got, h)
	}
	want := core.SignDelivery(secret, h.Get("X-Countersign-Timestamp"), body)
	if !hmac.Equal([]byte(h.Get("X-Countersign-Signature")), []byte(want)) {
		t.Fatal("the signature does not verify with the webhook secret")
	}
	if strings.Contains(string(body), "aGk=") {
		t.Fatal("the signed message itself was sent, not its hash")
	}
}

func TestWebhookDeadLetter(t *testing.T) {
	rcv := &receiver{failures: 1 << 30}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	e := newEnv(t, fastDaemon, allowLoopbackHooks)
	wh := e.do("POST", "/v1/webhooks", anon, map[string]any{"url": srv.URL, "events": []string{"*"}}).must(t, 201)
	k := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "k", "password": "pw", "curve": "ed25519", "private_key_hex": strings.Repeat("0e", 32)}).must(t, 201)
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": k.str("wallet_id"), "password": "pw"}).must(t, 200)
	e.do("POST", "/v1/sign/message", anon, map[string]string{"account_id": k.str("account_id"), "message_base64": "aGk="}).must(t, 200)
	status := func() (string, float64) {
		d := e.do("GET", "/v1/webhooks/"+wh.str("webhook_id")+"/deliveries", anon, nil).must(t, 200).body["deliveries"].([]any)[0].(map[string]any)
		return d["status"].(string), d["attempts"].(float64)
	}
	for i := 1; i <= core.MaxDeliveryAttempts; i++ {
		waitUntil(t, "attempt", func() bool { _, n := status(); return int(n) >= i })
		e.clock.Advance(2 * time.Hour)
	}
	if st, n := status(); st != "dead" || int(n) != core.MaxDeliveryAttempts {
		t.Fatalf("after %d failures: %s (%v attempts)", core.MaxDeliveryAttempts, st, n)
	}
}

func TestEventSocket(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "ev.sock")
	e := newEnv(t, fastDaemon, func(c *Config) { c.EventsSocket = sock })
	var conn net.Conn
	waitUntil(t, "the socket", func() bool {
		var err error
		conn, err = net.Dial("unix", sock)
		return err == nil
	})
	defer conn.Close()
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode: %v %v", fi, err)
	}
	time.Sleep(100 * time.Millisecond) // the stream starts after the current last event
	k := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "k", "password": "pw", "curve": "secp256k1", "private_key_hex": strings.Repeat("0f", 32)}).must(t, 201)
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": k.str("wallet_id"), "password": "pw"}).must(t, 200)
	e.do("POST", "/v1/sign/message", anon, map[string]string{"account_id": k.str("account_id"), "message_base64": "aGk="}).must(t, 200)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var ev map[string]any
	if err := json.Unmarshal([]byte(line), &ev); err != nil || ev["type"] != "signed" || ev["owner"] != "daemon" {
		t.Fatalf("event line: %s", line)
	}
}

// switchDNS is a DNS record the attacker controls: it answers what the
// test last set.
type switchDNS struct {
	mu sync.Mutex
	m  map[string]netip.Addr
}

func (d *switchDNS) set(host, ip string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[host] = netip.MustParseAddr(ip)
}

func (d *switchDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if ip, ok := d.m[host]; ok {
		return []netip.Addr{ip}, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// signOnce makes one "signed" event on the daemon.
func signOnce(t *testing.T, e *env, keyByte string) {
	t.Helper()
	k := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "k", "password": "pw", "curve": "ed25519", "private_key_hex": strings.Repeat(keyByte, 32)}).must(t, 201)
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": k.str("wallet_id"), "password": "pw"}).must(t, 200)
	e.do("POST", "/v1/sign/message", anon, map[string]string{"account_id": k.str("account_id"), "message_base64": "aGk="}).must(t, 200)
}

// TestSecurity_WebhookSSRF: through the real wiring, with no allowlist,
// every internal target of the finding is refused at registration and
// nothing is stored; a name that resolves inward is refused at
// registration, and a name that resolved outward at registration but
// inward at delivery (DNS rebinding) is refused at delivery: nothing
// reaches the internal receiver, and the log says "refused_address".
func TestSecurity_WebhookSSRF(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	dns := &switchDNS{m: map[string]netip.Addr{}}
	dns.set("inward.example.com", "10.1.2.3")
	dns.set("rebind.example.com", "93.184.215.14")
	e := newEnv(t, fastDaemon, func(c *Config) { c.WebhookDNS = dns })
	for _, u := range []string{"http://127.0.0.1:" + port, "http://[::1]:" + port, "http://localhost:" + port, "http://0.0.0.0:" + port,
		"http://[::ffff:127.0.0.1]:" + port, "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/", "http://metadata.google.internal/",
		"http://inward.example.com:" + port, "http://2130706433:" + port} {
		r := e.do("POST", "/v1/webhooks", anon, map[string]any{"url": u, "events": []string{"signed"}}).refused(t, 400, "BAD_REQUEST")
		if strings.Contains(r.raw, "10.1.2.3") {
			t.Errorf("%s: the error maps the network: %s", u, r.raw)
		}
	}
	e.do("POST", "/v1/webhooks", anon, map[string]any{"url": "https://hooks.example.org/", "events": []string{"sgined"}}).refused(t, 400, "BAD_REQUEST")
	if rcv.count() != 0 {
		t.Fatal("a refused registration reached the receiver")
	}

	// registered while the name points outward, delivered after it points at loopback
	wh := e.do("POST", "/v1/webhooks", anon, map[string]any{"url": "http://rebind.example.com:" + port + "/hook", "events": []string{"signed"}}).must(t, 201)
	dns.set("rebind.example.com", "127.0.0.1")
	signOnce(t, e, "1a")
	var d map[string]any
	waitUntil(t, "the delivery attempt", func() bool {
		list := e.do("GET", "/v1/webhooks/"+wh.str("webhook_id")+"/deliveries", anon, nil).must(t, 200).body["deliveries"].([]any)
		d = list[0].(map[string]any)
		return d["attempts"].(float64) >= 1
	})
	if rcv.count() != 0 {
		t.Fatal("the delivery reached the loopback receiver through a name that resolves inward")
	}
	if st, _ := d["last_status"].(float64); d["status"] != "pending" || d["last_error"] != "refused_address" || st != 0 {
		t.Fatalf("delivery log after a rebinding: %v", d)
	}
}

// TestSecurity_WebhookDeliveryLogClasses: a failed delivery's log keeps the
// HTTP status and an error class, never the dial error's text (which names
// the internal host and port and how it answered).
func TestSecurity_WebhookDeliveryLogClasses(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close() // nothing listens here: connection refused
	e := newEnv(t, fastDaemon, allowLoopbackHooks)
	wh := e.do("POST", "/v1/webhooks", anon, map[string]any{"url": "http://" + closed + "/x", "events": []string{"signed"}}).must(t, 201)
	signOnce(t, e, "1b")
	var raw string
	waitUntil(t, "the delivery attempt", func() bool {
		r := e.do("GET", "/v1/webhooks/"+wh.str("webhook_id")+"/deliveries", anon, nil).must(t, 200)
		raw = r.raw
		return r.body["deliveries"].([]any)[0].(map[string]any)["attempts"].(float64) >= 1
	})
	if !strings.Contains(raw, `"last_error":"connect"`) {
		t.Fatalf("delivery log: %s", raw)
	}
	for _, leak := range []string{"dial", "refused", closed, "tcp"} {
		if strings.Contains(raw, leak) {
			t.Errorf("the delivery log carries the dial error (%q): %s", leak, raw)
		}
	}
}
