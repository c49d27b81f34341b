package policy

import (
	"math/big"
	"os"
	"strings"
	"testing"
	"time"
)

// TestPolicyDocExamples parses every policy document in docs/POLICY.md and
// checks what the worked examples claim.
func TestPolicyDocExamples(t *testing.T) {
	raw, err := os.ReadFile("../docs/POLICY.md")
	if err != nil {
		t.Fatal(err)
	}
	var docs []*Policy
	for _, block := range strings.Split(string(raw), "```json\n")[1:] {
		block = block[:strings.Index(block, "```")]
		if strings.HasPrefix(block, `{"rules"`) {
			docs = append(docs, mustParse(t, block))
		}
	}
	if len(docs) != 4 {
		t.Fatalf("%d policy documents in POLICY.md, want 4 (the language example and three worked ones)", len(docs))
	}
	if docs[0].Hash() != mustParse(t, issueExample).Hash() {
		t.Fatal("the first example is not the issue's document")
	}
	api := "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
	h := &fakeHistory{entries: []entry{spentAgo("a1", "inference", "native", time.Hour, n("9000000000000000"), false)}}
	if d := Evaluate(docs[1], native(pow10(15), api), h, now); d.Outcome != Auto || d.RuleID != "inference" {
		t.Fatalf("example 1: %+v", d)
	}
	h.entries[0].amount = n("9000000000000001")
	if d := Evaluate(docs[1], native(pow10(15), api), h, now); d.Outcome != Human || !strings.Contains(d.Warnings[0], "would exceed the budget") {
		t.Fatalf("example 1 over budget: %+v", d)
	}
	usdcReq := Request{Kind: KindERC20, ChainID: 1, WalletID: "w1", AgentID: "a1", Asset: usdc, Amount: mul(1000, pow10(6)), To: []string{bob}}
	if d := Evaluate(docs[2], usdcReq, h, now); d.Outcome != Quorum || d.Quorum != 2 {
		t.Fatalf("example 2: %+v", d)
	}
	night := time.Date(2026, 6, 10, 21, 0, 0, 0, time.UTC) // 23:00 in Berlin
	if d := Evaluate(docs[2], usdcReq, h, night); d.Outcome != Deny || d.RuleID != "night" {
		t.Fatalf("example 2 at night: %+v", d)
	}
	call := Request{Kind: KindContractCall, ChainID: 8453, WalletID: "w1", AgentID: "a1", Asset: AssetNative, Amount: big.NewInt(0),
		Contract: "0x3fC91A3afd70395Cd496C647d5a6CC9D4B2b7FAD", Selector: "0x3593564c"}
	if d := Evaluate(docs[3], call, &fakeHistory{}, now); d.Outcome != Auto || d.RuleID != "router-swaps" {
		t.Fatalf("example 3: %+v", d)
	}
	call.Selector = "0x095ea7b3"
	if d := Evaluate(docs[3], call, &fakeHistory{}, now); d.Outcome != Human || d.RuleID != "router-other" {
		t.Fatalf("example 3, other function: %+v", d)
	}
}
