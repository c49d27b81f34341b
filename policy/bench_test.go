package policy

import (
	"fmt"
	"math/big"
	"strings"
	"testing"
)

// fiftyRules is a 50-rule policy in which a small native payment to a
// known payee is decided by the last rule: every matcher kind is tried on
// the way, and the budget is counted.
func fiftyRules() string {
	var rules []string
	for i := range 49 {
		switch i % 7 {
		case 0:
			rules = append(rules, fmt.Sprintf(`{"id":"deny-%d","when":{"to":["0x%040x","0x%040x"]},"then":"deny"}`, i, i+1, i+1000))
		case 1:
			rules = append(rules, fmt.Sprintf(`{"id":"token-%d","when":{"kind":["erc20"],"asset":"0x%040x","max_amount":"1000000"},"then":"auto","budget":{"max":"100000000","window":"24h"}}`, i, i+1))
		case 2:
			rules = append(rules, fmt.Sprintf(`{"id":"big-%d","when":{"min_amount":"%d000000000000000000"},"then":"quorum","quorum":2}`, i, i+1))
		case 3:
			rules = append(rules, fmt.Sprintf(`{"id":"call-%d","when":{"kind":["contract_call"],"to":["0x%040x"],"selectors":["0xa9059cbb","0x095ea7b3"]},"then":"delay","delay":"15m"}`, i, i+1))
		case 4:
			rules = append(rules, fmt.Sprintf(`{"id":"night-%d","when":{"kind":["native"],"hours":{"tz":"Europe/Berlin","days":["sat","sun"],"from":"22:00","to":"06:00"}},"then":"human"}`, i))
		case 5:
			rules = append(rules, fmt.Sprintf(`{"id":"chain-%d","when":{"chain_id":[%d]},"then":"deny"}`, i, 100+i))
		case 6:
			rules = append(rules, fmt.Sprintf(`{"id":"permit-%d","when":{"typed_data":{"primary_type":"Permit","verifying_contract":"0x%040x"}},"then":"human"}`, i, i+1))
		}
	}
	rules = append(rules, `{"id":"inference","when":{"kind":["native"],"not_to":["0x0000000000000000000000000000000000000000"],"max_amount":"1000000000000000"},"then":"auto","budget":{"max":"10000000000000000","window":"24h"}}`)
	return `{"rules":[` + strings.Join(rules, ",") + `]}`
}

type benchHistory struct{}

var (
	benchSpent    = big.NewInt(3_000_000_000_000_000)
	benchReserved = big.NewInt(1_000_000_000_000_000)
)

func (benchHistory) BudgetUsed(BudgetQuery) (*big.Int, *big.Int, error) {
	return benchSpent, benchReserved, nil
}
func (benchHistory) PaidBefore(string, string) (bool, error) { return true, nil }

func BenchmarkEvaluate50Rules(b *testing.B) {
	p := mustParse(b, fiftyRules())
	if len(p.Rules) != 50 {
		b.Fatalf("%d rules", len(p.Rules))
	}
	req := native(big.NewInt(1_000_000_000_000), "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb")
	if d := Evaluate(p, req, benchHistory{}, now); d.Outcome != Auto || d.RuleID != "inference" {
		b.Fatalf("decision = %+v", d)
	}
	b.ReportAllocs()
	for b.Loop() {
		Evaluate(p, req, benchHistory{}, now)
	}
}
