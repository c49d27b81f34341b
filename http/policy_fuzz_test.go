package http

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzSplitMFA: splitMFA (the PUT body of a policy) never panics, and
// what it accepts is one JSON object holding every member of the body but
// mfa_code, unchanged, with mfa_code the body's string.
func FuzzSplitMFA(f *testing.F) {
	for _, s := range []string{
		`{"mfa_code":"123456","rules":[],"default":"human"}`,
		`{"rules":[{"id":"a","when":{},"then":"human"}],"mfa_code":"1"}`,
		`{"rules":[],"rules":[]}`,
		`{"mfa_code":1}`,
		`{"mfa_code":"1","mfa_code":"2","rules":[]}`,
		`[]`, `{`, `{"a":1}{}`, `{"rules":[]} x`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		doc, code, err := splitMFA(body)
		if err != nil {
			return
		}
		var in, out map[string]json.RawMessage
		if err := json.Unmarshal(body, &in); err != nil {
			t.Fatalf("accepted a body that is not a JSON object: %q", body)
		}
		if err := json.Unmarshal(doc, &out); err != nil {
			t.Fatalf("the document is not a JSON object: %q → %q", body, doc)
		}
		if _, ok := out["mfa_code"]; ok {
			t.Fatalf("mfa_code left in the document: %q", doc)
		}
		if raw, ok := in["mfa_code"]; ok {
			var c string
			if json.Unmarshal(raw, &c) != nil || c != code {
				t.Fatalf("mfa_code %q, want %s", code, raw)
			}
			delete(in, "mfa_code")
		} else if code != "" {
			t.Fatalf("a code out of nowhere: %q", code)
		}
		if len(in) != len(out) {
			t.Fatalf("members changed: %q → %q", body, doc)
		}
		for k, v := range in {
			if !bytes.Equal(bytes.TrimSpace(v), bytes.TrimSpace(out[k])) {
				t.Fatalf("member %q changed: %s → %s", k, v, out[k])
			}
		}
	})
}
