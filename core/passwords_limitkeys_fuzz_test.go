package core

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzLoginLimitKeys: the login limiter's store keys are storable text
// (valid UTF-8 without NUL, which PostgreSQL refuses: an unstorable key
// would fail every login from its client) and one pair key never stands
// for two (user, address) pairs, whatever the two parts hold.
func FuzzLoginLimitKeys(f *testing.F) {
	f.Add("alice", "192.0.2.7", "alic", "e192.0.2.7")
	f.Add("a\"b", "1.2.3.4", "a", "\"b1.2.3.4")
	f.Add("bob\x00", "\xff", "bob", "\x00\xff")
	f.Add("Ünï", "2001:db8::/64", "ünï", "2001:db8::/64")
	f.Fuzz(func(t *testing.T, u1, a1, u2, a2 string) {
		for _, k := range []string{pairKey(u1, a1), addrKey(a1), userKey(u1)} {
			if !utf8.ValidString(k) || strings.ContainsRune(k, 0) {
				t.Fatalf("unstorable key %q", k)
			}
		}
		//lint:ignore SA6005 the limiter keys on strings.ToLower, so "the same user" is what ToLower says, not EqualFold's folding
		same := strings.ToLower(u1) == strings.ToLower(u2) && a1 == a2
		if (pairKey(u1, a1) == pairKey(u2, a2)) != same {
			t.Fatalf("pair keys of (%q,%q) and (%q,%q): equal=%v, pairs equal=%v", u1, a1, u2, a2, !same, same)
		}
	})
}
