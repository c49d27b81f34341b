package repospec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/countersign/countersign/policy"
)

func TestPolicyDocument(t *testing.T) {
	const token = "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913"
	w := &OperatorWallet{Budgets: []Budget{
		{Asset: "native", Period: "transaction", Limit: "1000"},
		{Asset: "native", Period: "day", Limit: "1500"},
		{Asset: token, Period: "week", Limit: "50000000", Reason: "transfer"},
	}}
	doc, err := w.PolicyDocument("")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(doc)
	if err != nil {
		t.Fatalf("the document does not parse as a policy: %v\n%s", err, doc)
	}
	if len(p.Rules) != 2 || p.Default != policy.Human {
		t.Fatalf("rules %d, default %s: %s", len(p.Rules), p.Default, doc)
	}
	// the specific reason first, then "any"
	tr, any := p.Rules[0], p.Rules[1]
	if tr.ID != "spec-transfer-0x833589fc" || tr.Then != policy.Auto || tr.Budget == nil || tr.Budget.Max.String() != "50000000" || tr.Budget.WindowText() != "168h" ||
		tr.When.Asset != strings.ToLower(token) || len(tr.When.Kind) != 2 || tr.When.MaxAmount != nil {
		t.Fatalf("transfer rule: %+v", tr)
	}
	if any.ID != "spec-any-native" || any.Then != policy.Auto || any.When.MaxAmount.String() != "1000" || any.Budget.Max.String() != "1500" || any.Budget.WindowText() != "24h" || len(any.When.Kind) != 0 {
		t.Fatalf("native rule: %+v", any)
	}
	// x402 budgets pin the x402 kind
	x, err := (&OperatorWallet{Budgets: []Budget{{Asset: token, Period: "day", Limit: "1", Reason: "x402"}}}).PolicyDocument("")
	if err != nil {
		t.Fatal(err)
	}
	var raw struct {
		Rules []struct {
			When struct{ Kind []string } `json:"when"`
		} `json:"rules"`
	}
	if json.Unmarshal(x, &raw) != nil || len(raw.Rules) != 1 || len(raw.Rules[0].When.Kind) != 1 || raw.Rules[0].When.Kind[0] != "x402" {
		t.Fatalf("x402 budget: %s", x)
	}
	if d, err := (&OperatorWallet{}).PolicyDocument(""); d != nil || err != nil {
		t.Fatalf("no budgets: %s %v", d, err)
	}
}

// A top-up budget pins the Transfers contract; one in a token, or without
// a known contract, is refused.
func TestPolicyDocumentTopups(t *testing.T) {
	const transfers = "0xeADE6bE02d043b3550bE19E960504dbA14A14971"
	doc, err := (&OperatorWallet{Budgets: []Budget{{Asset: "native", Period: "day", Limit: "100", Reason: "openrouter_topup"}}}).PolicyDocument(transfers)
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(doc)
	if err != nil || len(p.Rules) != 1 || len(p.Rules[0].When.To) != 1 || p.Rules[0].When.To[0] != strings.ToLower(transfers) || len(p.Rules[0].When.Kind) != 1 {
		t.Fatalf("top-up rule: %v %s", err, doc)
	}
	for name, c := range map[string]struct {
		b         Budget
		transfers string
	}{
		"token":       {Budget{Asset: "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", Period: "day", Limit: "1", Reason: "openrouter_topup"}, transfers},
		"no contract": {Budget{Asset: "native", Period: "day", Limit: "1", Reason: "openrouter_topup"}, ""},
	} {
		if _, err := (&OperatorWallet{Budgets: []Budget{c.b}}).PolicyDocument(c.transfers); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Two rolling budgets for one asset and reason cannot both be enforced by
// one rule: spec validate refuses them with the line, rather than the
// server silently enforcing one.
func TestPolicyDocumentRefusesTwoWindows(t *testing.T) {
	spec := "operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: 1\n  signer: keystore\n  budgets:\n    - {asset: native, period: day, limit: \"1\"}\n    - {asset: native, period: week, limit: \"5\"}\n"
	_, err := Parse([]byte(spec))
	if err == nil || !strings.Contains(err.Error(), "one rolling budget per asset and reason") || !strings.Contains(err.Error(), "line 5") {
		t.Fatalf("two windows: %v", err)
	}
}
