package http

import (
	"crypto/subtle"
	"fmt"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign"
)

// The wallet daemon's door. Loopback
// alone proves nothing: a web page in the operator's browser, a DNS
// rebinding name, a same-host reverse proxy and an agent process on the
// machine all reach 127.0.0.1. So every daemon request must:
//
//   - name a loopback Host, or one in WALLET_ALLOWED_HOSTS (DNS rebinding
//     sends the attacker's name);
//   - not come from a web page: an Origin header or a Sec-Fetch-Site other
//     than "none" is refused unless the origin is in WALLET_ALLOWED_ORIGINS.
//     Same-origin pages are refused too: the approval UI shares this origin
//     and never calls the daemon, so a script there must not reach it;
//   - carry application/json when it has a body or names a type (a
//     typeless or text/plain body is a "simple" cross-site request that
//     needs no CORS preflight);
//   - carry no proxy headers (Forwarded, X-Forwarded-*, X-Real-Ip, Via)
//     unless the operator set WALLET_TOKEN for clients beyond this machine;
//   - carry no agent credential in any form;
//   - carry the wallet token in X-Auth-Token, with wrong guesses backed off.

// WalletTokenMinLen is the shortest WALLET_TOKEN accepted: 32 characters,
// 128 bits as hex.
const WalletTokenMinLen = 32

// CheckTokenStrength refuses a token too weak to be the only thing between
// the network and the operator's keys. name is the variable, for the
// message; the token itself never appears in it.
func CheckTokenStrength(name, tok string) error {
	if len(tok) < WalletTokenMinLen {
		return fmt.Errorf("%s must be at least %d characters (128 bits: e.g. openssl rand -hex 32); it has %d", name, WalletTokenMinLen, len(tok))
	}
	distinct := map[rune]bool{}
	for _, r := range tok {
		if r <= ' ' || r > '~' {
			return fmt.Errorf("%s must be printable ASCII without spaces (it is sent in a header)", name)
		}
		distinct[r] = true
	}
	if len(distinct) < 8 {
		return fmt.Errorf("%s repeats too few characters to hold 128 bits: use a random one (e.g. openssl rand -hex 32)", name)
	}
	if strings.Contains(strings.ToLower(tok), "csk_") {
		return fmt.Errorf("%s must not contain \"csk_\": that prefix marks agent keys, which the daemon refuses", name)
	}
	return nil
}

// proxyHeaders are set by reverse proxies; their presence on a loopback
// connection means the network is talking through one.
var proxyHeaders = []string{"Forwarded", "X-Real-Ip", "Via"}

func forwarded(r *http.Request) bool {
	for _, h := range proxyHeaders {
		if _, ok := r.Header[h]; ok {
			return true
		}
	}
	for h := range r.Header {
		if strings.HasPrefix(h, "X-Forwarded-") {
			return true
		}
	}
	return false
}

// hostName returns the host of a Host header or list entry without its
// port or brackets, lower case, without a trailing dot. ok is false for a
// malformed value (an IPv6 address must be bracketed).
func hostName(h string) (string, bool) {
	h = strings.ToLower(strings.TrimSpace(h))
	if h == "" {
		return "", false
	}
	if strings.HasPrefix(h, "[") {
		end := strings.IndexByte(h, ']')
		if end < 0 || (end+1 < len(h) && h[end+1] != ':') {
			return "", false
		}
		return h[1:end], true
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		if strings.Count(h, ":") > 1 {
			return "", false
		}
		if _, err := strconv.ParseUint(h[i+1:], 10, 16); err != nil {
			return "", false
		}
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || strings.ContainsAny(h, "/\\@*%, \t") {
		return "", false
	}
	return h, true
}

// loopbackHost reports whether name is "localhost" or a loopback address:
// names no DNS answer can point elsewhere.
func loopbackHost(name string) bool {
	if name == "localhost" {
		return true
	}
	a, err := netip.ParseAddr(name)
	return err == nil && a.Zone() == "" && a.Unmap().IsLoopback()
}

// LoopbackHostOnly refuses (403) every request whose Host is not a
// loopback name or address, the daemon's DNS-rebinding check, for
// listeners that are for this machine alone (the PPROF_ADDR profiles).
func LoopbackHostOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := hostName(r.Host); !ok || !loopbackHost(name) {
			http.Error(w, "forbidden: Host must be a loopback name or address", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// ParseHostList reads WALLET_ALLOWED_HOSTS: comma-separated host names or
// addresses (a port, if given, is ignored) the daemon accepts in Host.
func ParseHostList(v string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if strings.TrimSpace(f) == "" {
			continue
		}
		h, ok := hostName(f)
		if !ok {
			return nil, fmt.Errorf("WALLET_ALLOWED_HOSTS: %q is not a host name or address (IPv6 in brackets; no wildcards)", strings.TrimSpace(f))
		}
		out = append(out, h)
	}
	return out, nil
}

// ParseOriginList reads WALLET_ALLOWED_ORIGINS: comma-separated origins
// (scheme://host[:port], e.g. chrome-extension://<id>) whose requests the
// daemon answers. No CORS headers are sent, so an ordinary web page still
// cannot read the answers; this is for extensions and apps that bypass
// CORS. "*" and "null" are refused: they would let any page in.
func ParseOriginList(v string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		o, ok := normalizeOrigin(f)
		if !ok {
			return nil, fmt.Errorf("WALLET_ALLOWED_ORIGINS: %q is not an origin (scheme://host[:port], no path; not * or null)", f)
		}
		out = append(out, o)
	}
	return out, nil
}

// normalizeOrigin lower-cases an origin and drops a default port, the
// way browsers serialise Origin.
func normalizeOrigin(o string) (string, bool) {
	u, err := url.Parse(strings.ToLower(o))
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", false
	}
	host := u.Host
	if p := u.Port(); u.Scheme == "http" && p == "80" || u.Scheme == "https" && p == "443" {
		host = strings.TrimSuffix(host, ":"+p)
	}
	if strings.ContainsAny(host, "*,") {
		return "", false
	}
	return u.Scheme + "://" + host, true
}

func (s *Server) originAllowed(origin string) bool {
	o, ok := normalizeOrigin(origin)
	if !ok {
		return false
	}
	for _, a := range s.WalletAllowedOrigins {
		if subtle.ConstantTimeCompare([]byte(a), []byte(o)) == 1 {
			return true
		}
	}
	return false
}

// checkBrowserShape refuses the requests a web page, a rebinding name or a
// proxy can make. It runs before any credential is looked at, so a page
// cannot even spend the operator's wrong-token allowance.
func (s *Server) checkBrowserShape(r *http.Request) error {
	name, ok := hostName(r.Host)
	if !ok || !loopbackHost(name) && !containsStr(s.WalletAllowedHosts, name) {
		return countersign.Errorf(countersign.Forbidden, "Host %q is neither a loopback name or address nor in WALLET_ALLOWED_HOSTS: the wallet daemon refuses it (DNS rebinding)", truncateStr(r.Host, 64))
	}
	origins := r.Header.Values("Origin")
	if len(origins) > 1 || len(origins) == 1 && !s.originAllowed(origins[0]) {
		o := strings.Join(origins, ", ")
		return countersign.Errorf(countersign.Forbidden, "the wallet daemon does not answer web pages: Origin %q is not in WALLET_ALLOWED_ORIGINS", truncateStr(o, 64))
	}
	if site := r.Header.Values("Sec-Fetch-Site"); len(site) > 0 && !(len(site) == 1 && site[0] == "none") && len(origins) == 0 {
		// a browser made this request for a page; with an allowed Origin
		// (checked above) it may pass, without one it may not
		return countersign.Errorf(countersign.Forbidden, "the wallet daemon does not answer web pages (Sec-Fetch-Site: %s); allow an origin with WALLET_ALLOWED_ORIGINS", truncateStr(strings.Join(site, ","), 32))
	}
	// A body (or a length not known in advance) must be typed JSON; so must
	// any request that names a type. An empty POST (wallet lock) may omit it.
	if cts := r.Header.Values("Content-Type"); r.ContentLength != 0 || len(cts) > 0 {
		if len(cts) != 1 {
			return countersign.Errorf(countersign.UnsupportedMedia, "the wallet daemon takes Content-Type: application/json (this request has %d Content-Type headers)", len(cts))
		}
		if mt, _, err := mime.ParseMediaType(cts[0]); err != nil || mt != "application/json" {
			return countersign.Errorf(countersign.UnsupportedMedia, "the wallet daemon takes Content-Type: application/json only")
		}
	}
	if forwarded(r) && !s.WalletRemote {
		return countersign.Errorf(countersign.Forbidden, "the wallet daemon refuses requests relayed by a proxy (Forwarded, X-Forwarded-*, X-Real-Ip or Via) unless the operator set WALLET_TOKEN")
	}
	return nil
}

// checkAgentCredential refuses an agent key wherever it is put: X-API-KEY
// (any value), or csk_ anywhere in Authorization or X-Auth-Token, whatever
// the case or spacing ("bearer  csk_…", "BEARER csk_…"). Authorization is
// not a daemon credential at all: a user session or anything else sent
// there is refused too, so what the daemon accepts is never ambiguous.
func checkAgentCredential(r *http.Request) error {
	agent := countersign.Errorf(countersign.Forbidden, "agent keys cannot use the wallet daemon: agents go through the countersigned flow (/api/prepare_transaction)")
	if _, ok := r.Header["X-Api-Key"]; ok {
		return agent
	}
	for _, h := range []string{"Authorization", "X-Auth-Token"} {
		for _, v := range r.Header.Values(h) {
			if strings.Contains(strings.ToLower(v), "csk_") {
				return agent
			}
		}
	}
	if _, ok := r.Header["Authorization"]; ok {
		return countersign.Errorf(countersign.Unauthorized, "the wallet daemon takes X-Auth-Token: <wallet token>, not Authorization")
	}
	return nil
}

func containsStr(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// tokenLimiter backs off a client that sends wrong tokens. After
// tokenFreeFailures wrong tokens it refuses every token from that client —
// the right one too, or the lockout would still answer guesses — for a
// time that doubles with each further wrong token. The decision and its
// bookkeeping happen under one lock, so concurrent guesses cannot all slip
// in before the first failure is counted.
type tokenLimiter struct {
	mu      sync.Mutex
	clients map[string]*tokenFailures
}

type tokenFailures struct {
	n     int
	last  time.Time
	until time.Time
}

const (
	tokenFreeFailures = 5
	tokenBaseLockout  = 30 * time.Second
	tokenMaxLockout   = 15 * time.Minute
	tokenForget       = time.Hour // failures older than this are forgotten
	tokenMaxClients   = 4096
)

// limiterKey groups a client's addresses: all loopback addresses are one
// client (the same machine), an IPv6 client is its /64.
func limiterKey(r *http.Request) string {
	a, err := netip.ParseAddr(clientAddr(r))
	if err != nil {
		return "?" + clientAddr(r)
	}
	a = a.Unmap().WithZone("")
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.Is6():
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// check records the outcome of one token comparison (good) for key and
// returns nil when the caller may pass. what names the credential.
func (l *tokenLimiter) check(key string, now time.Time, good bool, what string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients == nil {
		l.clients = map[string]*tokenFailures{}
	}
	f := l.clients[key]
	if f != nil && now.Before(f.until) {
		return lockedOut(what, f.until.Sub(now))
	}
	if good {
		delete(l.clients, key)
		return nil
	}
	if f == nil || now.Sub(f.last) > tokenForget {
		if f == nil && len(l.clients) >= tokenMaxClients {
			l.prune(now)
			if len(l.clients) >= tokenMaxClients {
				// too many failing clients to track: refuse rather than forget
				return lockedOut(what, time.Minute)
			}
		}
		f = &tokenFailures{}
		l.clients[key] = f
	}
	f.n++
	f.last = now
	if over := f.n - tokenFreeFailures; over >= 0 {
		d := tokenMaxLockout
		if over < 10 {
			d = min(tokenBaseLockout<<over, tokenMaxLockout)
		}
		f.until = now.Add(d)
	}
	return countersign.Errorf(countersign.Unauthorized, "%s is wrong", what)
}

func (l *tokenLimiter) prune(now time.Time) {
	for k, f := range l.clients {
		if !now.Before(f.until) && now.Sub(f.last) > tokenForget {
			delete(l.clients, k)
		}
	}
}

func lockedOut(what string, d time.Duration) error {
	secs := int((d + time.Second - 1) / time.Second)
	return &countersign.Error{Code: countersign.RateLimit, RetryAfter: secs,
		Detail: fmt.Sprintf("too many wrong %s values from this client: try again in %d s", what, secs)}
}

// daemonGates holds the gate SetDaemonGate gave each Server. (A map
// beside the Server, not a field of it, so the gate stays in this file.)
var daemonGates sync.Map // *Server → func() error

// SetDaemonGate makes every daemon route (the /v1 routes, /rpc, /about)
// ask gate once the caller has passed every other daemon check: a non-nil
// error is the answer. The wiring uses it for DAEMON_MODE — a replica
// that does not hold the daemon's lease answers UNAVAILABLE naming the
// holder, and DAEMON_MODE=off answers NOT_FOUND. nil removes the gate
// (call it when the server is done, so the Server can be collected).
func (s *Server) SetDaemonGate(gate func() error) {
	if gate == nil {
		daemonGates.Delete(s)
		return
	}
	daemonGates.Store(s, gate)
}

func (s *Server) daemonGate() error {
	if g, ok := daemonGates.Load(s); ok {
		return g.(func() error)()
	}
	return nil
}

func (s *Server) now() time.Time {
	if s.Svc != nil {
		return s.Svc.Now()
	}
	return time.Now()
}

func clientIsLoopback(r *http.Request) bool {
	a, err := netip.ParseAddr(clientAddr(r))
	return err == nil && a.Unmap().IsLoopback()
}

// checkMetrics guards /metrics: with METRICS_TOKEN, Authorization: Bearer
// <METRICS_TOKEN> from anyone (wrong tokens backed off); without it,
// loopback clients only and nothing relayed by a proxy.
func (s *Server) checkMetrics(r *http.Request) error {
	if s.MetricsToken == "" {
		if !clientIsLoopback(r) || forwarded(r) {
			return countersign.Errorf(countersign.Forbidden, "/metrics answers loopback clients only: set METRICS_TOKEN to scrape it from elsewhere")
		}
		return nil
	}
	vals := r.Header.Values("Authorization")
	var tok string
	if len(vals) == 1 {
		if f := strings.Fields(vals[0]); len(f) == 2 && strings.EqualFold(f[0], "Bearer") {
			tok = f[1]
		}
	}
	if tok == "" {
		return countersign.Errorf(countersign.Unauthorized, "/metrics needs Authorization: Bearer <METRICS_TOKEN>")
	}
	good := subtle.ConstantTimeCompare([]byte(tok), []byte(s.MetricsToken)) == 1
	return s.metricsLimiter.check(limiterKey(r), s.now(), good, "METRICS_TOKEN")
}

func (s *Server) metricsGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := s.checkMetrics(r); err != nil {
			writeError(w, r, s.Log, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}
