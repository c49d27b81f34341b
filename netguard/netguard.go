// Package netguard is the address policy of outbound webhook connections:
// which hosts and addresses the server may POST to. Both the registration
// check (core) and the sender's dialer (notify) use it, so it is a value
// package of its own rather than part of either. It resolves names but
// holds no state.
package netguard

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/countersign/countersign"
)

// Webhook targets are held to an address policy twice: when a webhook is
// registered (its host is resolved and every address checked) and again by
// the sender at dial time, against the address actually connected to, so a
// name that later resolves inward (DNS rebinding, a changed record) is
// still refused. Without it, whoever may register a webhook can make the
// server POST to its own loopback services, the cloud metadata endpoint or
// the private network, and read the answers' status in the delivery log.

// ErrRefusedAddress is returned (wrapped) when a webhook target is, or
// resolves to, an address the policy refuses.
var ErrRefusedAddress = errors.New("refused address")

// Resolver looks up a host's addresses; *net.Resolver is one. Tests inject
// their own.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard is the address policy of webhook targets. The zero value
// (and nil) refuses every internal address and resolves with the system
// resolver.
type Guard struct {
	// Allow lists networks an operator lets webhooks reach although they
	// are internal (WEBHOOK_ALLOW_NETS), e.g. 10.0.0.0/8 for a receiver on
	// the private network. Cloud metadata addresses need an entry of their
	// own (a /32 or /128): a wide private range never opens them.
	Allow    []netip.Prefix
	Resolver Resolver // nil: net.DefaultResolver
}

// AddressGuard lets a sender hand its guard to the registration check, so
// both checks hold webhooks to one policy (see core's Service.webhookGuard).
// It is a port, but its signature needs Guard, so it lives here and not in
// the root.
type AddressGuard interface {
	AddressGuard() *Guard
}

// ParseAllowNets reads WEBHOOK_ALLOW_NETS: comma-separated CIDRs (a bare
// address means just that address). Empty is no exceptions.
func ParseAllowNets(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		var p netip.Prefix
		var err error
		if strings.Contains(f, "/") {
			p, err = netip.ParsePrefix(f)
		} else {
			var a netip.Addr
			if a, err = netip.ParseAddr(f); err == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			}
		}
		if err != nil || p.Addr().Zone() != "" {
			return nil, countersign.Errorf(countersign.BadRequest, "WEBHOOK_ALLOW_NETS: %q is not a CIDR such as 10.0.0.0/8 or ::1/128", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// refusedNets are never reached without an allowlist entry: everything that
// is not a unicast address on the public internet.
var refusedNets = mustPrefixes(
	"0.0.0.0/8",       // "this network", 0.0.0.0 reaches the local host
	"10.0.0.0/8",      // RFC 1918
	"100.64.0.0/10",   // CGNAT (RFC 6598), also Alibaba's metadata 100.100.100.200
	"127.0.0.0/8",     // loopback
	"169.254.0.0/16",  // link-local, cloud metadata 169.254.169.254
	"172.16.0.0/12",   // RFC 1918
	"192.0.0.0/24",    // IETF protocol assignments (Oracle metadata 192.0.0.192)
	"192.0.2.0/24",    // TEST-NET-1
	"192.88.99.0/24",  // 6to4 relay anycast
	"192.168.0.0/16",  // RFC 1918
	"198.18.0.0/15",   // benchmarking
	"198.51.100.0/24", // TEST-NET-2
	"203.0.113.0/24",  // TEST-NET-3
	"224.0.0.0/4",     // multicast
	"240.0.0.0/4",     // reserved, and 255.255.255.255 broadcast
	"::/96",           // unspecified, loopback, IPv4-compatible
	"::ffff:0:0/96",   // IPv4-mapped: an IPv4 address in disguise
	"64:ff9b::/96",    // NAT64: reaches whatever IPv4 address it embeds
	"64:ff9b:1::/48",  // local-use NAT64
	"100::/64",        // discard
	"2001:db8::/32",   // documentation
	"fc00::/7",        // unique local, AWS metadata fd00:ec2::254
	"2002::/16",       // 6to4: embeds an IPv4 address
	"fe80::/10",       // link-local
	"fec0::/10",       // site-local (deprecated)
	"ff00::/8",        // multicast
)

// RefusedNets returns (a copy of) the networks the policy refuses unless
// an Allow entry opens them: a copy, so no caller can widen the policy.
func RefusedNets() []netip.Prefix { return append([]netip.Prefix(nil), refusedNets...) }

// metadataAddrs are cloud instance-metadata endpoints: they hand out the
// machine's credentials, so only an allowlist entry naming exactly them
// opens them.
var metadataAddrs = []netip.Addr{
	netip.MustParseAddr("169.254.169.254"), // AWS, GCP, Azure, OpenStack, DigitalOcean…
	netip.MustParseAddr("169.254.170.2"),   // AWS ECS task credentials
	netip.MustParseAddr("fd00:ec2::254"),   // AWS over IPv6
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("192.0.0.192"),     // Oracle Cloud
	netip.MustParseAddr("168.63.129.16"),   // Azure wire server (a public-looking address)
}

// metadataNames resolve to metadata endpoints on the machines that use
// them; refused by name, before any resolver is asked.
var metadataNames = map[string]bool{
	"metadata": true, "metadata.google.internal": true, "metadata.goog": true,
	"instance-data": true, "instance-data.ec2.internal": true, "metadata.azure.com": true,
	"metadata.tencentyun.com": true, "metadata.platformequinix.com": true,
}

// CheckIP returns an error wrapping ErrRefusedAddress unless webhooks may
// connect to ip.
func (g *Guard) CheckIP(ip netip.Addr) error {
	if !ip.IsValid() || ip.Zone() != "" {
		return ErrRefusedAddress // a zone names an interface: link-local by nature
	}
	un := ip.Unmap()
	for _, m := range metadataAddrs {
		if un == m {
			if g.allowedExactly(un) {
				return nil
			}
			return ErrRefusedAddress
		}
	}
	if g.allowed(ip) || g.allowed(un) {
		return nil
	}
	for _, p := range refusedNets {
		if p.Contains(ip) || p.Contains(un) {
			return ErrRefusedAddress
		}
	}
	return nil
}

func (g *Guard) allowed(ip netip.Addr) bool {
	if g == nil {
		return false
	}
	for _, p := range g.Allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func (g *Guard) allowedExactly(ip netip.Addr) bool {
	if g == nil {
		return false
	}
	for _, p := range g.Allow {
		if p.Bits() == ip.BitLen() && p.Addr() == ip {
			return true
		}
	}
	return false
}

// CheckDialAddr checks the "ip:port" a socket is about to connect to (for
// a net.Dialer's Control function, which sees the address after DNS).
func (g *Guard) CheckDialAddr(address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return ErrRefusedAddress
	}
	return g.CheckIP(ap.Addr())
}

// HostLiteral reports whether host is an IP literal, and refuses hosts
// that only look like a name: numeric forms some resolvers read as IPv4
// ("2130706433", "0x7f.1", "127.1") would dodge the literal check.
func HostLiteral(host string) (netip.Addr, bool, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip, true, nil
	}
	labels := strings.Split(strings.TrimSuffix(host, "."), ".")
	last := labels[len(labels)-1]
	numeric := last != ""
	for _, c := range strings.ToLower(last) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && c != 'x' {
			numeric = false
		}
	}
	if numeric && (strings.HasPrefix(strings.ToLower(last), "0x") || strings.Trim(last, "0123456789") == "") {
		return netip.Addr{}, false, countersign.Errorf(countersign.BadRequest, "url host %q is not a canonical IP address or a DNS name", host)
	}
	return netip.Addr{}, false, nil
}

// Resolve returns the addresses host stands for, each checked: an IP
// literal as is, a name through the resolver. Any refused address refuses
// the host (a name that resolves both outward and inward is a rebinding
// trick), as do metadata names and names that do not resolve.
func (g *Guard) Resolve(ctx context.Context, host string) ([]netip.Addr, error) {
	if host == "" {
		return nil, countersign.Errorf(countersign.BadRequest, "url needs a host")
	}
	ip, literal, err := HostLiteral(host)
	if err != nil {
		return nil, err
	}
	if literal {
		if err := g.CheckIP(ip); err != nil {
			return nil, err
		}
		return []netip.Addr{ip}, nil
	}
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if metadataNames[name] {
		return nil, ErrRefusedAddress
	}
	var r Resolver = net.DefaultResolver
	if g != nil && g.Resolver != nil {
		r = g.Resolver
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ips, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, &DNSError{err}
	}
	if len(ips) == 0 {
		return nil, &DNSError{errors.New("no addresses")}
	}
	for _, ip := range ips {
		if err := g.CheckIP(ip); err != nil {
			return nil, err
		}
	}
	return ips, nil
}

// DNSError marks a failed lookup, for the delivery log's error class.
type DNSError struct{ Err error }

func (e *DNSError) Error() string { return "dns: " + e.Err.Error() }
func (e *DNSError) Unwrap() error { return e.Err }

// MaxURL bounds a webhook URL.
const MaxURL = 2048

// ParseURL checks a webhook URL's shape: http(s), a host, no
// credentials, no fragment, not too long.
func ParseURL(rawURL string) (*url.URL, error) {
	bad := countersign.Errorf(countersign.BadRequest, "url must be an http(s) URL with a host and without credentials or fragment, at most %d bytes", MaxURL)
	if len(rawURL) > MaxURL {
		return nil, bad
	}
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Opaque != "" || u.Hostname() == "" || u.User != nil || u.Fragment != "" || strings.Contains(rawURL, "#") {
		return nil, bad
	}
	if p := u.Port(); p != "" {
		if n, ok := parsePort(p); !ok || n == 0 {
			return nil, bad
		}
	}
	return u, nil
}

func parsePort(p string) (int, bool) {
	if len(p) > 5 {
		return 0, false
	}
	n := 0
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n <= 65535
}

// CheckWebhookURL validates a webhook URL and resolves its host under the
// policy. The error says why in general terms; it never echoes what a name
// resolved to (that would map the internal network).
func (g *Guard) CheckWebhookURL(ctx context.Context, rawURL string) (*url.URL, error) {
	u, err := ParseURL(rawURL)
	if err != nil {
		return nil, err
	}
	_, err = g.Resolve(ctx, u.Hostname())
	switch {
	case err == nil:
		return u, nil
	case errors.Is(err, ErrRefusedAddress):
		return nil, countersign.Wrap(countersign.BadRequest, err, "url is or resolves to an internal address (loopback, private, link-local, metadata…): webhooks go to public receivers unless WEBHOOK_ALLOW_NETS lists the network")
	case countersign.ErrorCode(err) == countersign.BadRequest:
		return nil, err
	default:
		return nil, countersign.Wrap(countersign.BadRequest, err, "url host does not resolve")
	}
}
