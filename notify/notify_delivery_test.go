package notify

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/netguard"
)

// receiver records what one delivery brought.
type receiver struct {
	mu     sync.Mutex
	header http.Header
	body   []byte
	method string
	status int
}

func newReceiver(t *testing.T, status int) (*receiver, *httptest.Server) {
	t.Helper()
	rc := &receiver{status: status}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.header, rc.body, rc.method = r.Header.Clone(), b, r.Method
		rc.mu.Unlock()
		w.WriteHeader(rc.status)
	}))
	t.Cleanup(srv.Close)
	return rc, srv
}

// A delivery arrives as the service built it: the body byte for byte and
// every header (the signature headers among them), so the receiver's HMAC
// check over timestamp and body passes; only User-Agent is the sender's
// own. The receiver's status comes back, whatever it is, without error.
func TestWebhookDeliveryHeadersAndBody(t *testing.T) {
	rc, srv := newReceiver(t, http.StatusAccepted)
	h := New(&netguard.Guard{Allow: loopback})
	secret := []byte("whsec_test")
	body := []byte(`{"type":"transaction.authorized","data":{"id":"tx_1","amount":"1000000000000000000"}}`)
	stamp := "1764614400"
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(stamp + "."))
	mac.Write(body)
	sig := "v1=" + hex.EncodeToString(mac.Sum(nil))
	headers := map[string]string{"Content-Type": "application/json", "X-Countersign-Event": "transaction.authorized",
		"X-Countersign-Delivery": "dlv_1", "X-Countersign-Timestamp": stamp, "X-Countersign-Signature": sig, "User-Agent": "spoofed/1"}
	st, err := h.Post(context.Background(), srv.URL+"/hook?x=1", headers, body)
	if err != nil || st != http.StatusAccepted {
		t.Fatalf("%d %v", st, err)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.method != "POST" || string(rc.body) != string(body) {
		t.Fatalf("%s %q", rc.method, rc.body)
	}
	for k, v := range headers {
		if k == "User-Agent" {
			continue
		}
		if got := rc.header.Get(k); got != v {
			t.Fatalf("header %s = %q, want %q", k, got, v)
		}
	}
	if ua := rc.header.Get("User-Agent"); ua != "countersign-webhooks/1" {
		t.Fatalf("User-Agent %q", ua)
	}
	// the receiver's check: HMAC-SHA256 over "timestamp.body"
	check := hmac.New(sha256.New, secret)
	check.Write([]byte(rc.header.Get("X-Countersign-Timestamp") + "."))
	check.Write(rc.body)
	if "v1="+hex.EncodeToString(check.Sum(nil)) != rc.header.Get("X-Countersign-Signature") {
		t.Fatal("the signature no longer matches what arrived")
	}
}

func TestWebhookStatusesAndFailures(t *testing.T) {
	h := New(&netguard.Guard{Allow: loopback})
	ctx := context.Background()
	for _, status := range []int{200, 204, 410, 500, 503} {
		_, srv := newReceiver(t, status)
		if st, err := h.Post(ctx, srv.URL, nil, []byte("{}")); err != nil || st != status {
			t.Fatalf("want %d: %d %v", status, st, err)
		}
	}
	t.Run("fail/bad URL", func(t *testing.T) {
		if _, err := h.Post(ctx, "http://[::1", nil, nil); err == nil {
			t.Fatal("posted to a malformed URL")
		}
	})
	t.Run("fail/closed port", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		u := srv.URL
		srv.Close()
		if _, err := h.Post(ctx, u, nil, nil); err == nil {
			t.Fatal("posted to a closed port")
		}
	})
	t.Run("fail/unknown name", func(t *testing.T) {
		g := New(&netguard.Guard{Allow: loopback, Resolver: &fakeDNS{}})
		if _, err := g.Post(ctx, "http://nowhere.example.com/", nil, nil); err == nil {
			t.Fatal("posted to a name that does not resolve")
		}
	})
}

// TestSecurity_WebhookSlowReceiverBounded: a receiver cannot hold a
// delivery worker: the caller's deadline ends a request whose headers never
// come, an endless response body is read only to 64 KiB, and the client's
// own limits are set (10 s overall, 10 s for headers, 64 KiB of headers).
func TestSecurity_WebhookSlowReceiverBounded(t *testing.T) {
	h := New(&netguard.Guard{Allow: loopback})
	if h.Client.Timeout != 10*time.Second {
		t.Fatalf("client timeout %v", h.Client.Timeout)
	}
	tr := h.Client.Transport.(*http.Transport)
	if tr.ResponseHeaderTimeout != 10*time.Second || tr.MaxResponseHeaderBytes != 64<<10 || tr.TLSHandshakeTimeout != 5*time.Second {
		t.Fatalf("transport limits %v %v %v", tr.ResponseHeaderTimeout, tr.MaxResponseHeaderBytes, tr.TLSHandshakeTimeout)
	}

	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := h.Post(ctx, hung.URL, nil, []byte("{}")); err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("a receiver that never answers: %v after %v", err, time.Since(start))
	}

	var sent atomic.Int64
	endless := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
		chunk := make([]byte, 32<<10)
		for sent.Load() < 64<<20 {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer endless.Close()
	start = time.Now()
	st, err := h.Post(context.Background(), endless.URL, nil, []byte("{}"))
	if err != nil || st != 200 || time.Since(start) > 5*time.Second {
		t.Fatalf("an endless body: %d %v after %v", st, err, time.Since(start))
	}
	if n := sent.Load(); n >= 64<<20 {
		t.Fatalf("the sender read the whole %d-byte body", n)
	}
}

// TestSecurity_WebhookIgnoresProxyEnvironment: with HTTP_PROXY set, the
// delivery still goes straight to the receiver; a proxy would stand
// between the guard and the real destination. (net/http reads the
// environment once per process, so this catches a proxy taken from it
// when run alone or first; TestSecurity_WebhookNoRedirectNoProxy checks
// the transport's field whatever the order.)
func TestSecurity_WebhookIgnoresProxyEnvironment(t *testing.T) {
	var proxied atomic.Int32
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proxied.Add(1)
		w.WriteHeader(200)
	}))
	defer proxy.Close()
	t.Setenv("HTTP_PROXY", proxy.URL)
	t.Setenv("http_proxy", proxy.URL)
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	rc, srv := newReceiver(t, 201)
	// a name, not a literal IP, so Go's own "no proxy for loopback" rule
	// is not what keeps the proxy out
	dns := &fakeDNS{}
	dns.set("receiver.example.com", "127.0.0.1")
	h := New(&netguard.Guard{Allow: loopback, Resolver: dns})
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	st, err := h.Post(context.Background(), "http://receiver.example.com:"+port+"/", nil, []byte(`{"a":1}`))
	if err != nil || st != 201 || proxied.Load() != 0 {
		t.Fatalf("%d %v, %d requests through the proxy", st, err, proxied.Load())
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if string(rc.body) != `{"a":1}` {
		t.Fatalf("body %q", rc.body)
	}
}

// fakeFeed is a countersign.EventFeed over a slice.
type fakeFeed struct {
	mu      sync.Mutex
	events  []*countersign.Event
	subs    map[int]chan struct{}
	next    int
	stopped atomic.Int32
}

func (f *fakeFeed) Wake() (<-chan struct{}, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[int]chan struct{}{}
	}
	id := f.next
	f.next++
	ch := make(chan struct{}, 1)
	f.subs[id] = ch
	return ch, func() {
		f.mu.Lock()
		delete(f.subs, id)
		f.mu.Unlock()
		f.stopped.Add(1)
	}
}

func (f *fakeFeed) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakeFeed) LastEventIDAll(context.Context) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.events) == 0 {
		return 0, nil
	}
	return f.events[len(f.events)-1].ID, nil
}

func (f *fakeFeed) AllEventsAfter(_ context.Context, after int64, limit int) ([]*countersign.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*countersign.Event
	for _, e := range f.events {
		if e.ID > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

// add appends n events and wakes every subscriber.
func (f *fakeFeed) add(n int, owner string) {
	f.mu.Lock()
	for range n {
		id := int64(len(f.events) + 1)
		f.events = append(f.events, &countersign.Event{ID: id, OwnerID: owner, Type: "signed", Subject: "w" + string(rune('0'+id%10)),
			Payload: `{"n":` + jsonInt(id) + `}`, CreatedAt: time.Unix(1764614400+id, 0).UTC()})
	}
	subs := make([]chan struct{}, 0, len(f.subs))
	for _, ch := range f.subs {
		subs = append(subs, ch)
	}
	f.mu.Unlock()
	for _, ch := range subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func jsonInt(n int64) string { b, _ := json.Marshal(n); return string(b) }

type sockEvent struct {
	ID        int64           `json:"id"`
	Type      string          `json:"type"`
	Subject   string          `json:"subject"`
	Owner     string          `json:"owner"`
	CreatedAt time.Time       `json:"created_at"`
	Data      json.RawMessage `json:"data"`
}

// startSocket serves feed on a fresh socket path; it returns the path and
// a stop func that waits for ServeEventSocket to return.
func startSocket(t *testing.T, feed countersign.EventFeed) (string, func() error) {
	t.Helper()
	dir, err := os.MkdirTemp("", "cs-sock") // short: a socket path has ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "events.sock")
	// a stale socket file from an unclean stop
	if err := os.WriteFile(path, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeEventSocket(ctx, path, feed, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the socket never appeared")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(5 * time.Second):
			t.Fatal("ServeEventSocket did not return after its context ended")
			return nil
		}
	}
	t.Cleanup(func() { stop() })
	return path, stop
}

func dialSocket(t *testing.T, path string) (net.Conn, *bufio.Scanner) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return c, sc
}

func readEvents(t *testing.T, c net.Conn, sc *bufio.Scanner, n int) []sockEvent {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var out []sockEvent
	for len(out) < n {
		if !sc.Scan() {
			t.Fatalf("after %d of %d events: %v", len(out), n, sc.Err())
		}
		var e sockEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Bytes())
		}
		out = append(out, e)
	}
	return out
}

// waitSubscribers waits until n clients are subscribed (have read their
// starting point), so events added after it are "after they connected".
func waitSubscribers(t *testing.T, f *fakeFeed, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.subscribers() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d subscribers, want %d", f.subscribers(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // past LastEventIDAll, which follows Wake
}

// The socket streams, to each client, every event added after it
// connected (all owners), in order, as NDJSON with the documented fields;
// a backlog of more than one page (100) arrives whole.
func TestEventSocketStreams(t *testing.T) {
	feed := &fakeFeed{}
	feed.add(3, "u0") // before anyone connects: not replayed
	path, _ := startSocket(t, feed)
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v %v, want 0600 (other local users must not read every owner's events)", fi.Mode().Perm(), err)
	}
	c1, sc1 := dialSocket(t, path)
	c2, sc2 := dialSocket(t, path)
	waitSubscribers(t, feed, 2)

	feed.add(2, "u1")
	feed.add(1, "u2")
	for i, cl := range []struct {
		c  net.Conn
		sc *bufio.Scanner
	}{{c1, sc1}, {c2, sc2}} {
		evs := readEvents(t, cl.c, cl.sc, 3)
		for j, e := range evs {
			if e.ID != int64(4+j) {
				t.Fatalf("client %d event %d: id %d, want %d (events before the connection are not replayed)", i, j, e.ID, 4+j)
			}
		}
		e := evs[2]
		if e.Type != "signed" || e.Owner != "u2" || e.Subject == "" || string(e.Data) != `{"n":6}` || !e.CreatedAt.Equal(time.Unix(1764614406, 0)) {
			t.Fatalf("client %d: %+v", i, e)
		}
	}

	feed.add(250, "u3") // more than two pages at once
	evs := readEvents(t, c1, sc1, 250)
	for j, e := range evs {
		if e.ID != int64(7+j) {
			t.Fatalf("backlog event %d: id %d, want %d", j, e.ID, 7+j)
		}
	}
}

// A client that goes away ends its own stream and subscription only; the
// others go on; ending the context closes the listener and
// ServeEventSocket returns nil.
func TestEventSocketClientGoneAndShutdown(t *testing.T) {
	feed := &fakeFeed{}
	path, stop := startSocket(t, feed)
	gone, _ := dialSocket(t, path)
	stay, sc := dialSocket(t, path)
	waitSubscribers(t, feed, 2)
	gone.Close()
	feed.add(1, "u1") // the write to the closed client fails: it unsubscribes
	if evs := readEvents(t, stay, sc, 1); evs[0].ID != 1 {
		t.Fatalf("%+v", evs)
	}
	deadline := time.Now().Add(5 * time.Second)
	for feed.stopped.Load() < 1 {
		feed.add(1, "u1")
		if time.Now().After(deadline) {
			t.Fatal("the gone client's subscription was never ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if feed.subscribers() != 1 {
		t.Fatalf("%d subscribers, want the one still connected", feed.subscribers())
	}

	if err := stop(); err != nil {
		t.Fatalf("ServeEventSocket: %v", err)
	}
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("the socket still accepts after shutdown")
	}
}

// A socket path that cannot be listened on is an error at once, not a
// silent stream to nobody.
func TestEventSocketBadPath(t *testing.T) {
	err := ServeEventSocket(context.Background(), filepath.Join(t.TempDir(), "no", "such", "dir", "s.sock"), &fakeFeed{}, slog.Default())
	if err == nil {
		t.Fatal("listened on a path in a missing directory")
	}
}
