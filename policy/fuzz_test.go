package policy

import (
	"bytes"
	"math/big"
	"testing"
	"time"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(issueExample))
	f.Add([]byte(`{"rules":[]}`))
	f.Add([]byte(`{"rules":[{"id":"a","when":{"hours":{"tz":"Europe/Berlin","days":["fri"],"from":"22:00","to":"06:00"}},"then":"deny"}],"default":"deny"}`))
	f.Add([]byte(`{"rules":[{"id":"t","when":{"kind":["typed_data"],"asset":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48","typed_data":{"primary_type":"Permit"},"selectors":["0xA9059CBB"],"chain_id":[1],"not_to":["0x1111111111111111111111111111111111111111"]},"then":"auto","budget":{"max":"5","window":"30d","scope":"wallet"},"overflow":"quorum","quorum":2}]}`))
	f.Add([]byte(`{"rules":[{"id":"a","then":"human"},{"id":"a","then":"human"}]}`))
	f.Add([]byte(`{"rules":[],"rules":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		m := p.Marshal()
		p2, err := Parse(m)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, m)
		}
		if m2 := p2.Marshal(); !bytes.Equal(m, m2) {
			t.Fatalf("round trip changed the document:\n%s\n%s", m, m2)
		}
		if p.Hash() != p2.Hash() {
			t.Fatal("round trip changed the hash")
		}
		if l, why := Loosens(p, p2); l {
			t.Fatalf("a policy loosens itself: %v", why)
		}
	})
}

// fuzzHistory answers every budget with the same fuzzed amounts.
type fuzzHistory struct {
	spent, reserved *big.Int
	paid            bool
}

func (h fuzzHistory) BudgetUsed(BudgetQuery) (*big.Int, *big.Int, error) {
	return new(big.Int).Set(h.spent), new(big.Int).Set(h.reserved), nil
}
func (h fuzzHistory) PaidBefore(string, string) (bool, error) { return h.paid, nil }

var fuzzKinds = []Kind{KindNative, KindERC20, KindContractCall, KindPersonalSign, KindTypedData, KindX402, "bogus"}

func FuzzEvaluate(f *testing.F) {
	f.Add([]byte(issueExample), uint8(0), []byte{0x03, 0x8d, 0x7e, 0xa4, 0xc6, 0x80, 0x00}, []byte{}, []byte{}, uint8(0), int64(0), uint8(0))
	f.Add([]byte(issueExample), uint8(0), bytes.Repeat([]byte{0xff}, 32), []byte{0x01}, []byte{}, uint8(1), int64(3600), uint8(1))
	f.Add([]byte(`{"rules":[{"id":"u","when":{"asset":"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"},"then":"delay","delay":"1m","budget":{"max":"100","window":"1h"}}]}`), uint8(1), []byte{100}, []byte{}, []byte{1}, uint8(2), int64(0), uint8(0))
	f.Add([]byte(`{"rules":[{"id":"s","then":"auto"}]}`), uint8(3), []byte{}, []byte{}, []byte{}, uint8(8), int64(-86400), uint8(0))
	f.Fuzz(func(t *testing.T, doc []byte, kind uint8, amount, spent, reserved []byte, flags uint8, offset int64, recipient uint8) {
		p, err := Parse(doc)
		if err != nil {
			p = mustParse(t, issueExample)
		}
		if len(amount) > 40 || len(spent) > 40 || len(reserved) > 40 {
			return
		}
		req := Request{
			Kind: fuzzKinds[int(kind)%len(fuzzKinds)], ChainID: int64(flags % 3), WalletID: "w1", AgentID: "a1",
			Asset:             []string{AssetNative, "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48", ""}[int(recipient)%3],
			To:                []string{[]string{"0x0000000000000000000000000000000000000000", "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"}[int(recipient/3)%2]},
			Contract:          "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad",
			Selector:          "0xa9059cbb",
			UnlimitedApproval: flags&8 != 0,
			Authorization7702: flags&16 != 0,
			Unvalued:          flags&32 != 0,
		}
		if flags&4 == 0 {
			req.Amount = new(big.Int).SetBytes(amount)
		}
		if req.Kind == KindTypedData {
			req.TypedData = &TypedDataInfo{PrimaryType: "Permit", VerifyingContract: "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"}
		}
		h := fuzzHistory{spent: new(big.Int).SetBytes(spent), reserved: new(big.Int).SetBytes(reserved), paid: flags&64 != 0}
		at := time.Unix(1781000000+offset%(400*86400), 0)
		d := Evaluate(p, req, h, at)

		if d.RuleID == "" {
			t.Fatalf("evaluation failed with a working history: %v", d.Warnings)
		}
		switch d.Outcome {
		case Deny, Human, Quorum, Delay, Auto:
		default:
			t.Fatalf("outcome %q", d.Outcome)
		}
		if d.Outcome == Quorum && d.Quorum < 1 || d.Outcome == Delay && d.Delay <= 0 {
			t.Fatalf("decision %+v lacks its parameter", d)
		}
		if (d.Outcome == Auto || d.Outcome == Delay) && (req.UnlimitedApproval || req.Authorization7702 || req.Unvalued) {
			t.Fatalf("hard rule broken: %s for %+v", d.Outcome, req)
		}
		if d.Outcome != Auto {
			return
		}
		if req.Amount == nil {
			return // moves no value: auto needs no budget
		}
		// Auto for value only within the deciding rule's budget, and never
		// past what every auto budget has left.
		if d.Budget == nil || d.Reserve == nil || d.Reserve.Cmp(req.Amount) != 0 {
			t.Fatalf("auto for %s without a budget reservation: %+v", req.Amount, d)
		}
		used := new(big.Int).Add(h.spent, h.reserved)
		if req.Amount.Sign() > 0 && new(big.Int).Add(used, req.Amount).Cmp(d.Budget.Max) > 0 {
			t.Fatalf("auto past the budget: used %s + %s > %s", used, req.Amount, d.Budget.Max)
		}
		exceedsAll := req.Amount.Sign() > 0
		for i := range p.Rules {
			r := &p.Rules[i]
			if r.Then == Auto && r.Budget != nil && new(big.Int).Add(used, req.Amount).Cmp(r.Budget.Max) <= 0 {
				exceedsAll = false
			}
		}
		if exceedsAll {
			t.Fatalf("auto although the request exceeds every auto budget")
		}
	})
}
