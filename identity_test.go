package countersign

import "testing"

// The vectors of issue 5 (client_id "agentkeys").
func TestOmniAccountVectors(t *testing.T) {
	for _, v := range []struct{ typ, value, want string }{
		{"email", "onboard@example.com", "f677ce5629707f03b345d016721da17ddbe80cc23038e85dbf18ce71f9b340a9"},
		{"evm", "0x1234567890abcdef1234567890abcdef12345678", "43adfc06263716e1fe7b72513bb3d305aff6cf8f060c1b709cfa0d4977bf0373"},
		{"email", "  OnBoard@Example.COM ", "f677ce5629707f03b345d016721da17ddbe80cc23038e85dbf18ce71f9b340a9"},
		{"evm", "0x1234567890ABCDEF1234567890abcdef12345678", "43adfc06263716e1fe7b72513bb3d305aff6cf8f060c1b709cfa0d4977bf0373"},
	} {
		c, err := CanonicalIdentity(v.typ, v.value)
		if err != nil {
			t.Fatal(err)
		}
		if got := OmniAccount("agentkeys", v.typ, c); got != v.want || !ValidOmniAccount(got) {
			t.Errorf("%s %q: got %s, want %s", v.typ, v.value, got, v.want)
		}
	}
	for typ, bad := range map[string]string{"email": "not an email", "evm": "0x1234", "oidc": "http://insecure|sub", "twitter": "x", "oauth2_google": ""} {
		if _, err := CanonicalIdentity(typ, bad); err == nil {
			t.Errorf("%s %q accepted", typ, bad)
		}
	}
}
