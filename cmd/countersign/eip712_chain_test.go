package main

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

// typedFor is EIP-712 typed data whose domain says chainID (a JSON number
// of any size, or "" for no chainId at all).
func typedFor(chainID string) string {
	domainType, domain := `{"name":"name","type":"string"}`, `"name":"test"`
	if chainID != "" {
		domainType += `,{"name":"chainId","type":"uint256"}`
		domain += `,"chainId":` + chainID
	}
	return `{"types":{"EIP712Domain":[` + domainType + `],"Mail":[{"name":"contents","type":"string"}]},"primaryType":"Mail","domain":{` + domain + `},"message":{"contents":"hi"}}`
}

// TestSecurity_TypedDataChainID: domain.chainId = 2^64 + 1337 used to pass
// as 1337 (an int64 comparison) and the review page said "Chain 1337".
// Now the chain id is compared as an integer of any size, typed data
// without a chainId is refused (its signature is valid on every chain),
// over the API and /eth alike; what is accepted shows its domain's chain
// on the review page.
func TestSecurity_TypedDataChainID(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ApprovalWait = time.Second }) // an accepted /eth request would wait for a human
	u, wallet, _, key := setup(t, e)
	for name, chain := range map[string]string{"2^64+1337": "18446744073709552953", "2^256-1+1338 wraps": "115792089237316195423570985008687907853269984665640564039457584007913129641273",
		"no chainId": "", "-1337": "-1337"} {
		r := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]any{"type": "typed_data", "message": typedFor(chain)})
		if r.status != 400 || r.code() != "BAD_REQUEST" {
			t.Errorf("%s: prepared: %d %s", name, r.status, r.raw)
		}
		if ts := e.rpc(key, "eth_signTypedData_v4", wallet, typedFor(chain)); ts.Error == nil || ts.Error.Code != -32602 {
			t.Errorf("%s: /eth accepted it: %+v", name, ts)
		}
	}
	if list := e.do("GET", "/api/transactions", bearer(u.token), nil).must(t, 200).body["transactions"].([]any); len(list) != 0 {
		t.Fatalf("refused requests were stored: %d", len(list))
	}

	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]any{"type": "typed_data", "message": typedFor(`"0x539"`)}).must(t, 202).str("transaction_id")
	f := newFormClient(t, e)
	f.get("/login")
	f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}})
	if p := f.get("/tx/" + id); !strings.Contains(p, "Signed for chain (domain.chainId)</dt><dd>1337</dd>") {
		t.Fatalf("the review page does not state the domain's chain: %s", p)
	}
}
