package http

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/countersign/countersign"
)

type strictInner struct {
	Name string `json:"name"`
}

type strictBase struct {
	Password string `json:"password"`
}

type strictReq struct {
	strictBase
	Amount string          `json:"amount"`
	To     string          `json:"to_address"`
	Inner  *strictInner    `json:"inner,omitempty"`
	List   []strictInner   `json:"list,omitempty"`
	Raw    json.RawMessage `json:"raw,omitempty"`
}

// TestSecurity_RequestBodiesMeanOneThing: a body a proxy or policy layer
// could read differently from the server — a key twice (the last would
// win), a field in another case (matched anyway), invalid UTF-8 or a lone
// surrogate (replaced by U+FFFD) — is refused.
func TestSecurity_RequestBodiesMeanOneThing(t *testing.T) {
	for name, tc := range map[string]struct {
		body string
		ok   bool
	}{
		"ok/plain":                  {`{"amount":"1","to_address":"0xabc","password":"p"}`, true},
		"ok/nested and raw":         {`{"amount":"1","inner":{"name":"x"},"list":[{"name":"y"}],"raw":{"a":1,"A":2}}`, true},
		"ok/surrogate pair":         {`{"amount":"\ud83d\ude00"}`, true},
		"ok/escaped backslash u":    {`{"amount":"\\ud800"}`, true},
		"fail/duplicate key":        {`{"amount":"1","amount":"999999"}`, false},
		"fail/case variant":         {`{"Amount":"5"}`, false},
		"fail/case variant and key": {`{"AMOUNT":"5","amount":"1"}`, false},
		"fail/embedded case":        {`{"Password":"p"}`, false},
		"fail/nested duplicate":     {`{"inner":{"name":"a","name":"b"}}`, false},
		"fail/nested case":          {`{"list":[{"Name":"a"}]}`, false},
		"fail/raw duplicate":        {`{"raw":{"a":1,"a":2}}`, false},
		"fail/invalid utf-8":        {"{\"amount\":\"\xff\"}", false},
		"fail/lone high surrogate":  {`{"amount":"\ud800"}`, false},
		"fail/lone low surrogate":   {`{"amount":"\udc00x"}`, false},
		"fail/high then non-low":    {`{"amount":"\ud800\u0041"}`, false},
	} {
		t.Run(name, func(t *testing.T) {
			var v strictReq
			err := DecodeJSON([]byte(tc.body), &v)
			if tc.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if err != nil && countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("code %s, want BAD_REQUEST", countersign.ErrorCode(err))
			}
		})
	}
	// the detail names the problem
	var v strictReq
	if err := DecodeJSON([]byte(`{"amount":"1","amount":"2"}`), &v); !strings.Contains(countersign.ErrorDetail(err), `"amount" appears twice`) {
		t.Fatalf("detail: %v", err)
	}
}
