package http

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Behind a load balancer every request comes from the balancer's address,
// so the limits that key on the client's address (login and password
// checks, the token-failure limiters) would count every user as one, and
// a single attacker could lock everyone out. TRUSTED_PROXIES names the
// balancers: for a request from one of them, the client is the rightmost
// address of X-Forwarded-For that is not itself a trusted proxy — the
// address the outermost trusted proxy saw. Entries to its left were written
// by the client and are never believed. Requests from any other peer keep
// their peer address, whatever headers they carry.

// ParseTrustedProxies reads TRUSTED_PROXIES: comma-separated addresses or
// CIDR prefixes of the proxies in front of the server.
func ParseTrustedProxies(v string) ([]netip.Prefix, error) {
	return parsePrefixes("TRUSTED_PROXIES", v)
}

// peerAddr is the address of the connection's other end.
func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientAddrOf is the client's address as the limiters and logs should
// see it (see above).
func (s *Server) clientAddrOf(r *http.Request) string {
	peer := peerAddr(r)
	if len(s.TrustedProxies) == 0 {
		return peer
	}
	ip, err := netip.ParseAddr(peer)
	if err != nil || !allowed(s.TrustedProxies, ip.Unmap()) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			// not written by a proxy we trust: stop at the last one that was
			return peer
		}
		a = a.Unmap()
		if !allowed(s.TrustedProxies, a) {
			return a.String()
		}
		peer = a.String()
	}
	return peer
}
