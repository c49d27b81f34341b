package evm

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzNodeName: the node as error details name it never shows the URL's
// user info, path or query (where providers put API keys), whatever the
// URL looks like.
func FuzzNodeName(f *testing.F) {
	for _, s := range []string{"http://127.0.0.1:8545", "https://user:pass@mainnet.infura.io/v3/0123456789abcdef?x=1",
		"wss://base-mainnet.g.alchemy.com/v2/KEY", "/var/run/geth.ipc", "http://[::1]:8545/#frag", "http://a@b@c/d", "http://%zz@host/p",
		"https://host:443/path;param?q#f", "http://host?apikey=SECRET", "http://user@host"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name := nodeName(raw)
		if !strings.Contains(raw, "://") {
			return // a local socket path: shown as it is
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			if name != "(unparsable URL)" {
				t.Fatalf("%q named %q", raw, name)
			}
			return
		}
		if name != u.Scheme+"://"+u.Host {
			t.Fatalf("%q named %q, want scheme and host only", raw, name)
		}
		if rest := strings.TrimPrefix(name, u.Scheme+"://"); strings.ContainsAny(rest, "@/?#") {
			t.Fatalf("%q named %q: more than a host", raw, name)
		}
		for _, secret := range []string{u.User.String(), u.RawQuery, u.Fragment} {
			if len(secret) > 2 && strings.Contains(name, secret) && !strings.Contains(u.Host, secret) {
				t.Fatalf("%q named %q: shows %q", raw, name, secret)
			}
		}
	})
}
