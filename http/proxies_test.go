package http

import (
	"net/http/httptest"
	"strings"
	"testing"
)

func TestSecurity_TrustedProxiesClientAddress(t *testing.T) {
	nets, err := ParseTrustedProxies("10.0.0.0/8, 192.168.1.7")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{TrustedProxies: nets}
	for _, c := range []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no proxy header", "10.1.2.3:5000", nil, "10.1.2.3"},
		{"untrusted peer's header is not believed", "203.0.113.9:5000", []string{"198.51.100.1"}, "203.0.113.9"},
		{"trusted proxy names the client", "10.1.2.3:5000", []string{"198.51.100.1"}, "198.51.100.1"},
		{"client-written entries to the left are ignored", "10.1.2.3:5000", []string{"1.1.1.1, 198.51.100.1"}, "198.51.100.1"},
		{"a chain of trusted proxies is walked", "10.1.2.3:5000", []string{"198.51.100.1, 192.168.1.7", "10.9.9.9"}, "198.51.100.1"},
		{"garbage written by the client stops at the last proxy", "10.1.2.3:5000", []string{"not-an-ip, 10.9.9.9"}, "10.9.9.9"},
		{"only proxies: the outermost", "10.1.2.3:5000", []string{"10.9.9.9"}, "10.9.9.9"},
		{"IPv4-mapped peer", "[::ffff:10.1.2.3]:5000", []string{"198.51.100.1"}, "198.51.100.1"},
	} {
		r := httptest.NewRequest("GET", "/healthz", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientAddrOf(r); got != c.want {
			t.Errorf("%s: client %q, want %q", c.name, got, c.want)
		}
	}
	// without the setting nothing is believed
	r := httptest.NewRequest("GET", "/healthz", nil)
	r.RemoteAddr = "10.1.2.3:5000"
	r.Header.Set("X-Forwarded-For", "198.51.100.1")
	if got := (&Server{}).clientAddrOf(r); got != "10.1.2.3" {
		t.Errorf("without TRUSTED_PROXIES: client %q", got)
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8, nope"); err == nil || !strings.Contains(err.Error(), "TRUSTED_PROXIES") {
		t.Errorf("a bad list: %v", err)
	}
}
