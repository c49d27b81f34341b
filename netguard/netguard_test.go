package netguard_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/netguard"
)

// The webhook address policy's own tests: registration-time checks of every
// internal target and its disguises, and a fuzzer over URL spellings.
// tableDNS resolves from a fixed table; other names do not exist.
type tableDNS map[string][]string

func (d tableDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	ss, ok := d[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out, nil
}

var testDNS = tableDNS{
	"hooks.example.com":        {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
	"inward.example.com":       {"10.0.0.5"},
	"mixed.example.com":        {"93.184.215.14", "192.168.1.1"},
	"localhost":                {"127.0.0.1", "::1"},
	"metadata.google.internal": {"93.184.215.14"}, // refused by name, whatever it resolves to
}

// TestSecurity_WebhookSSRFRegistration: every internal target of the
// finding (and its disguises) is refused at registration, with a detail
// that does not echo what the name resolved to; public targets pass; the
// allowlist opens exactly what it lists, and never the metadata endpoint
// through a wide range.
func TestSecurity_WebhookSSRFRegistration(t *testing.T) {
	ctx := context.Background()
	g := &netguard.Guard{Resolver: testDNS}
	for _, u := range []string{
		"http://127.0.0.1/", "http://127.0.0.1:8555/v1/wallet/export", "http://[::1]/", "http://localhost/", "http://0.0.0.0/",
		"http://[::ffff:127.0.0.1]/", "http://[::ffff:7f00:1]/", "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
		"http://172.16.0.1/", "http://192.168.0.1/", "http://100.64.0.1/", "http://[fd00:ec2::254]/", "http://[fe80::1]/",
		"http://[fe80::1%25eth0]/", "http://[::]/", "http://224.0.0.1/", "http://255.255.255.255/", "http://[64:ff9b::7f00:1]/",
		"http://metadata.google.internal/computeMetadata/v1/", "http://METADATA.google.internal./", "http://168.63.129.16/",
		"http://inward.example.com/", "http://mixed.example.com/", "http://2130706433/", "http://127.1/", "http://0x7f.1/",
		"http://017700000001/", "http://nowhere.example.com/",
	} {
		_, err := g.CheckWebhookURL(ctx, u)
		if countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("%s: registered (%v)", u, err)
			continue
		}
		if d := countersign.ErrorDetail(err); strings.Contains(d, "10.0.0.5") || strings.Contains(d, "192.168.1.1") {
			t.Errorf("%s: the detail maps the network: %s", u, d)
		}
	}
	for _, u := range []string{"https://hooks.example.com/x", "http://93.184.215.14:8080/", "https://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/"} {
		if _, err := g.CheckWebhookURL(ctx, u); err != nil {
			t.Errorf("%s: refused: %v", u, err)
		}
	}
	for _, u := range []string{"ftp://hooks.example.com/", "http://user:pw@hooks.example.com/", "http:///x", "http://hooks.example.com/#f",
		"hooks.example.com", "http://hooks.example.com:0/", "http://hooks.example.com:99999/", "http://:80/", "https://" + strings.Repeat("a", 2050)} {
		if _, err := g.CheckWebhookURL(ctx, u); countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("%s: accepted (%v)", u, err)
		}
	}

	allow, err := netguard.ParseAllowNets(" 127.0.0.0/8, 10.0.0.0/8 ,169.254.0.0/16")
	if err != nil {
		t.Fatal(err)
	}
	g = &netguard.Guard{Allow: allow, Resolver: testDNS}
	for u, ok := range map[string]bool{
		"http://127.0.0.1:9/": true, "http://inward.example.com/": true, "http://[::1]/": false, "http://192.168.0.1/": false,
		"http://169.254.10.10/": true, "http://169.254.169.254/": false, // a wide range does not open the metadata endpoint
	} {
		if _, err := g.CheckWebhookURL(ctx, u); (err == nil) != ok {
			t.Errorf("allowlist %v: %s: %v", allow, u, err)
		}
	}
	g.Allow = append(g.Allow, netip.MustParsePrefix("169.254.169.254/32"))
	if _, err := g.CheckWebhookURL(ctx, "http://169.254.169.254/"); err != nil {
		t.Errorf("an exact allowlist entry does not open the metadata address: %v", err)
	}
	for _, bad := range []string{"10.0.0.0/33", "nonsense", "fe80::1%eth0/64", "10.0.0.0/8;"} {
		if _, err := netguard.ParseAllowNets(bad); err == nil {
			t.Errorf("WEBHOOK_ALLOW_NETS=%q accepted", bad)
		}
	}
	if p, err := netguard.ParseAllowNets("::1, 192.0.2.7"); err != nil || len(p) != 2 || p[0].Bits() != 128 || p[1].Bits() != 32 {
		t.Errorf("bare addresses: %v %v", p, err)
	}
}

// fuzzDNS resolves any name to an address derived from its hash, so the
// fuzzer meets names that resolve inward as well as outward.
type fuzzDNS struct{}

func (fuzzDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	h := sha256.Sum256([]byte(host))
	switch h[0] % 4 {
	case 0:
		return nil, errors.New("no such host")
	case 1:
		return []netip.Addr{netip.AddrFrom4([4]byte{h[1], h[2], h[3], h[4]})}, nil
	case 2:
		return []netip.Addr{netip.AddrFrom16([16]byte(h[1:17]))}, nil
	default:
		return []netip.Addr{netip.AddrFrom4([4]byte{h[1], h[2], h[3], h[4]}), netip.AddrFrom4([4]byte{10, h[5], h[6], h[7]})}, nil
	}
}

// FuzzWebhookURL: a URL the guard accepts has the registered shape and its
// host, resolved again, is only public addresses: never an internal one,
// whatever the spelling.
func FuzzWebhookURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/x", "http://127.0.0.1/", "http://[::ffff:127.0.0.1]/", "http://2130706433/",
		"http://0x7f.1/", "http://[fe80::1%25eth0]/", "http://metadata.google.internal./", "http://a@b/", "http://x:65535/", "http://[::1]:80/",
		"HTTP://Hooks.Example.COM./", "http://1.1.1.1.", "http://%31%32%37.0.0.1/", "http://127.0.0.1%2f@x/"} {
		f.Add(s)
	}
	g := &netguard.Guard{Resolver: fuzzDNS{}}
	f.Fuzz(func(t *testing.T, raw string) {
		u, err := g.CheckWebhookURL(context.Background(), raw)
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("%q: %v is not BAD_REQUEST", raw, err)
			}
			return
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.User != nil || u.Hostname() == "" || len(raw) > netguard.MaxURL {
			t.Fatalf("%q accepted with the wrong shape", raw)
		}
		ips, err := g.Resolve(context.Background(), u.Hostname())
		if err != nil {
			t.Fatalf("%q accepted but its host no longer resolves: %v", raw, err)
		}
		for _, ip := range ips {
			if (&netguard.Guard{}).CheckIP(ip) != nil {
				t.Fatalf("%q accepted, resolving to internal %s", raw, ip)
			}
			for _, p := range netguard.RefusedNets() {
				if p.Contains(ip.Unmap()) {
					t.Fatalf("%q accepted, resolving to %s in %s", raw, ip, p)
				}
			}
		}
		// What the HTTP client will dial is the same host.
		if again, err := url.Parse(u.String()); err != nil || again.Hostname() != u.Hostname() {
			t.Fatalf("%q: host %q re-parses as %v %v", raw, u.Hostname(), again, err)
		}
	})
}
