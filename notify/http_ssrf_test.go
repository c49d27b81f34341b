package notify

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/countersign/countersign/netguard"
)

// fakeDNS answers from a table the test changes, like a DNS record an
// attacker controls.
type fakeDNS struct {
	mu sync.Mutex
	m  map[string][]netip.Addr
}

func (f *fakeDNS) set(host string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = map[string][]netip.Addr{}
	}
	f.m[host] = nil
	for _, ip := range ips {
		f.m[host] = append(f.m[host], netip.MustParseAddr(ip))
	}
}

func (f *fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ips, ok := f.m[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// counting is a receiver that counts what reaches it.
func counting(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1) }))
	t.Cleanup(srv.Close)
	return srv, &n
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// TestSecurity_WebhookDialRefusesInward: with no allowlist the sender
// refuses to connect to loopback, whether the URL names it literally, as
// "localhost", or through a name whose DNS answer points inward at
// delivery time. Nothing reaches the internal server.
func TestSecurity_WebhookDialRefusesInward(t *testing.T) {
	srv, hits := counting(t)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	dns := &fakeDNS{}
	dns.set("rebind.example.com", "127.0.0.1")
	dns.set("mixed.example.com", "93.184.215.14", "127.0.0.1")
	h := New(&netguard.Guard{Resolver: dns})
	for u, h := range map[string]*HTTP{
		srv.URL:                              h,
		"http://localhost:" + port:           New(nil), // the system resolver: localhost is loopback
		"http://rebind.example.com:" + port:  h,
		"http://mixed.example.com:" + port:   h,
		"http://[::ffff:127.0.0.1]:" + port:  h,
		"http://0.0.0.0:" + port:             h,
		"http://[::]:" + port:                h,
		"http://rebind.example.com.:" + port: h,
	} {
		if _, err := h.Post(context.Background(), u, nil, []byte("{}")); !errors.Is(err, netguard.ErrRefusedAddress) {
			t.Errorf("posted to %s: %v", u, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the loopback server", hits.Load())
	}

	// the operator's allowlist opens loopback, and only loopback
	ok := New(&netguard.Guard{Allow: loopback, Resolver: dns})
	if st, err := ok.Post(context.Background(), "http://rebind.example.com:"+port, nil, []byte("{}")); err != nil || st != 200 || hits.Load() != 1 {
		t.Fatalf("allowlisted delivery: %d %v (%d hits)", st, err, hits.Load())
	}
}

// TestSecurity_WebhookDialerControl: the dialer's Control function checks
// the socket's actual destination, so even a caller that hands it an
// address directly (no guard.Resolve) cannot reach loopback.
func TestSecurity_WebhookDialerControl(t *testing.T) {
	srv, hits := counting(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	c, err := Dialer(&netguard.Guard{}).DialContext(context.Background(), "tcp", addr)
	if err == nil {
		c.Close()
		t.Fatal("dialed loopback")
	}
	if !errors.Is(err, netguard.ErrRefusedAddress) {
		t.Fatalf("want a refused address, got %v", err)
	}
	c, err = Dialer(&netguard.Guard{Allow: loopback}).DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("allowlisted dial: %v", err)
	}
	c.Close()
	if hits.Load() != 0 {
		t.Fatal("a request was sent")
	}
}

// TestSecurity_WebhookNoRedirectNoProxy: a receiver's redirect is not
// followed (it could point anywhere, past the registration check), and no
// proxy from the environment sits between the guard and the destination.
func TestSecurity_WebhookNoRedirectNoProxy(t *testing.T) {
	target, hits := counting(t)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/inside", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	h := New(&netguard.Guard{Allow: loopback})
	st, err := h.Post(context.Background(), redirector.URL, nil, []byte("{}"))
	if err != nil || st != http.StatusTemporaryRedirect || hits.Load() != 0 {
		t.Fatalf("redirect followed: %d %v (%d hits)", st, err, hits.Load())
	}
	if tr, ok := h.Client.Transport.(*http.Transport); !ok || tr.Proxy != nil {
		t.Fatal("the webhook transport takes a proxy (from the environment)")
	}
}
