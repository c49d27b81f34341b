package http

import (
	"encoding/json"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/daemon"
)

func TestDecodeJSON(t *testing.T) {
	type req struct {
		Name   string   `json:"name"`
		Amount string   `json:"amount"`
		IDs    []string `json:"ids,omitempty"`
	}
	tests := map[string]struct {
		body, detail string
	}{
		"ok/object":           {body: `{"name":"a","amount":"1"}`},
		"ok/trailing space":   {body: "{\"name\":\"a\"}\n  "},
		"fail/empty":          {body: ``, detail: "body is required"},
		"fail/spaces":         {body: `   `, detail: "body is required"},
		"fail/malformed":      {body: `{"name":`, detail: "malformed JSON"},
		"fail/syntax":         {body: `{"name" "a"}`, detail: "malformed JSON at byte"},
		"fail/unknown field":  {body: `{"nme":"a"}`, detail: `unknown field "nme"`},
		"fail/number amount":  {body: `{"amount":1}`, detail: `field "amount" must be a string`},
		"fail/array":          {body: `[1,2]`, detail: "must be a JSON object"},
		"fail/two objects":    {body: `{"name":"a"}{"name":"b"}`, detail: "single JSON object"},
		"fail/ids not array":  {body: `{"ids":"x"}`, detail: `field "ids" must be an array`},
		"fail/null bytes ids": {body: `{"ids":[1]}`, detail: `must be a string`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var r req
			err := DecodeJSON([]byte(tt.body), &r)
			if tt.detail == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if countersign.ErrorCode(err) != countersign.BadRequest || !strings.Contains(countersign.ErrorDetail(err), tt.detail) {
				t.Fatalf("err = %v, want detail containing %q", err, tt.detail)
			}
		})
	}
}

// FuzzDecodePrepare fuzzes the decoder of the largest request body: it
// must return a BadRequest or a value that re-encodes, never panic.
func FuzzDecodePrepare(f *testing.F) {
	for _, s := range []string{
		`{"type":"native","to_address":"0x000000000000000000000000000000000000dEaD","amount":"1","memo":"x"}`,
		`{"type":"contract_call","contract_abi":[{"type":"function","name":"f","inputs":[]}],"function_args":[1,"a",{"b":[]}]}`,
		`{"amount":1}`, `[]`, `{`, `{"type":"\u0000"}`, `{"memo":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req core.PrepareRequest
		if err := DecodeJSON(b, &req); err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("non-BadRequest error %v", err)
			}
			return
		}
		if _, err := json.Marshal(req); err != nil {
			t.Fatalf("decoded value does not re-encode: %v", err)
		}
	})
}

func TestOpenAPICoversEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(buildOpenAPI(Routes()), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	n := 0
	for _, rt := range Routes() {
		if rt.UI {
			if _, ok := doc.Paths[rt.Path]; ok && !strings.HasPrefix(rt.Path, "/api/") {
				t.Errorf("UI route %s %s is in the OpenAPI document", rt.Method, rt.Path)
			}
			continue
		}
		op, ok := doc.Paths[rt.Path][strings.ToLower(rt.Method)]
		if !ok {
			t.Errorf("%s %s is not in the OpenAPI document", rt.Method, rt.Path)
			continue
		}
		if !strings.Contains(string(op), `"x-access": "`+rt.Access.String()+`"`) && !strings.Contains(string(op), `"x-access":"`+rt.Access.String()+`"`) {
			t.Errorf("%s %s: access not documented", rt.Method, rt.Path)
		}
		n++
	}
	// and nothing documented that does not exist
	total := 0
	for p, ops := range doc.Paths {
		if p != "/metrics" {
			total += len(ops)
		}
	}
	if total != n {
		t.Errorf("document has %d operations, route table %d", total, n)
	}
}

func TestRouteTable(t *testing.T) {
	seen := map[string]bool{}
	for _, rt := range Routes() {
		k := rt.Method + " " + rt.Path
		if seen[k] {
			t.Errorf("%s twice", k)
		}
		seen[k] = true
		switch {
		case rt.Summary == "":
			t.Errorf("%s: no summary", k)
		case rt.UI && (rt.ui == nil || rt.h != nil || rt.Req != nil || rt.Status != 0):
			t.Errorf("%s: a UI route has a page handler only", k)
		case rt.UI && rt.Access != Anonymous && !rt.Access.web():
			t.Errorf("%s: a UI route is anonymous or needs a web session, not %s", k, rt.Access)
		case rt.UI && (rt.Access == WebMFA) != (rt.Back != ""):
			t.Errorf("%s: a WebMFA form needs its Back page (and only it)", k)
		case !rt.UI && (rt.h == nil || rt.ui != nil || rt.Status == 0):
			t.Errorf("%s: incomplete route entry", k)
		case !rt.UI && rt.Access.web():
			t.Errorf("%s: an API route cannot take a web session", k)
		}
		if (strings.HasPrefix(rt.Path, "/api/") || strings.HasPrefix(rt.Path, "/v1/")) && rt.Access == Anonymous && !map[string]bool{"/api/register": true, "/api/login": true, "/api/dev/info": true,
			"/v1/auth/wallet/start": true, "/v1/auth/wallet/verify": true, "/v1/verify/receipt": true, "/v1/auth/email/start": true, "/v1/auth/email/verify": true, "/v1/auth/oidc/verify": true}[rt.Path] {
			t.Errorf("%s is anonymous", k)
		}
	}
	for a := Anonymous; a <= WebMFA; a++ {
		if a.String() == "" {
			t.Errorf("access %d has no name", a)
		}
	}
	// The codes come from the one error table, never from a list kept
	// here: every code any package declares has a row (declaredCodes parses
	// the declarations), and every error a route documents is a code of
	// the table with a status.
	for code, where := range declaredCodes(t) {
		if _, ok := errorTable[code]; !ok {
			t.Errorf("%s (%s) is not in errorTable", code, where)
		}
	}
	for _, rt := range Routes() {
		if rt.Access != Anonymous && len(rt.Errors()) == 0 {
			t.Errorf("%s %s: a protected route documents no errors", rt.Method, rt.Path)
		}
		for _, code := range rt.Errors() {
			if row, ok := errorTable[code]; !ok || row.Status < 400 {
				t.Errorf("%s %s documents %s, which is not a code of errorTable", rt.Method, rt.Path, code)
			}
		}
	}
}

// FuzzDecodeRPCRequest: the JSON-RPC request decoder of /rpc and /eth
// returns a request or a standard error, never panics.
func FuzzDecodeRPCRequest(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"method":"wallet_list"}`, `{"jsonrpc":"2.0","method":"x","params":[1,{"a":null}]}`,
		`{"jsonrpc":"2.0","id":{},"method":"x"}`, `[]`, `{`, `{"jsonrpc":"2.0","id":"a","method":""}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := DecodeRPCRequest(b)
		if err != nil {
			if e, ok := err.(*rpcError); !ok || (e.Code != rpcParseError && e.Code != rpcInvalidRequest) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if req.JSONRPC != "2.0" || req.Method == "" {
			t.Fatalf("accepted %q", b)
		}
		// the daemon's params, by name or by position, become one JSON object
		obj, err := paramsObject(req.Params, []string{"a", "b"})
		if err != nil {
			if e, ok := err.(*rpcError); !ok || e.Code != rpcInvalidParams {
				t.Fatalf("params error %v", err)
			}
			return
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(obj, &m) != nil || len(m) > 2 && req.Params[0] == '[' {
			t.Fatalf("params %s became %s", req.Params, obj)
		}
	})
}

func TestDaemonAccessRules(t *testing.T) {
	allow, err := ParseAllowList(" 10.0.0.0/8, 192.168.1.7 ,fd00::/8")
	if err != nil || len(allow) != 3 {
		t.Fatalf("ParseAllowList: %v %v", allow, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "nope", "1.2.3"} {
		if _, err := ParseAllowList(bad); err == nil {
			t.Errorf("WALLET_ALLOW=%q accepted", bad)
		}
	}
	const tok = "daemon-token-0123456789abcdef0123"
	cases := []struct {
		name, remote, token string
		allow               []netip.Prefix
		walletToken         string
		remoteOK            bool             // the operator set WALLET_TOKEN
		want                countersign.Code // "" = allowed
	}{
		{"loopback with the token", "127.0.0.1:5", tok, nil, tok, false, ""},
		{"IPv6 loopback with the token", "[::1]:5", tok, nil, tok, false, ""},
		{"loopback needs the token", "127.0.0.1:5", "", nil, tok, false, countersign.Unauthorized},
		{"no token configured: no one", "127.0.0.1:5", "", nil, "", false, countersign.Forbidden},
		{"remote, generated token", "10.1.2.3:5", tok, nil, tok, false, countersign.Forbidden},
		{"remote with the operator's token", "10.1.2.3:5", tok, nil, tok, true, ""},
		{"remote with a wrong token", "10.1.2.3:5", "nope", nil, tok, true, countersign.Unauthorized},
		{"allow-listed with the token", "10.1.2.3:5", tok, allow, tok, false, ""},
		{"allow-listed single address", "192.168.1.7:5", tok, allow, tok, false, ""},
		{"v4-mapped v6 allow-listed", "[::ffff:10.9.9.9]:5", tok, allow, tok, false, ""},
		{"not allow-listed, even with the token", "192.168.1.8:5", tok, allow, tok, true, countersign.Forbidden},
		{"IPv6 allow-listed", "[fd00::1]:5", tok, allow, tok, false, ""},
		{"loopback is always allowed by the list", "127.0.0.1:5", tok, allow, tok, false, ""},
	}
	for _, c := range cases {
		s := &Server{Daemon: &daemon.Service{}, WalletToken: c.walletToken, WalletAllow: c.allow, WalletRemote: c.remoteOK}
		r := httptest.NewRequest("GET", "/v1/wallets", nil)
		r.RemoteAddr = c.remote
		r.Host = "127.0.0.1:8555"
		if c.token != "" {
			r.Header.Set("X-Auth-Token", c.token)
		}
		err := s.checkDaemon(r)
		if got := countersign.ErrorCode(err); (err == nil) != (c.want == "") || err != nil && got != c.want {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
}
