package policy

import (
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// fakeHistory is an in-memory History with the store's rules: entries
// after Since count, exactly-Since ones do not.
type fakeHistory struct {
	entries []entry
	paid    map[string]bool // wallet + "/" + recipient
	err     error
	panics  bool
	calls   int
}

type entry struct {
	wallet, agent, rule, asset string
	at                         time.Time
	amount                     *big.Int
	reserved                   bool
}

func (h *fakeHistory) BudgetUsed(q BudgetQuery) (spent, reserved *big.Int, err error) {
	h.calls++
	if h.panics {
		panic("store exploded")
	}
	if h.err != nil {
		return nil, nil, h.err
	}
	spent, reserved = new(big.Int), new(big.Int)
	for _, e := range h.entries {
		if e.wallet != q.WalletID || e.rule != q.RuleID || e.asset != q.Asset || !e.at.After(q.Since) {
			continue
		}
		if q.Scope == ScopeAgent && e.agent != q.AgentID {
			continue
		}
		if e.reserved {
			reserved.Add(reserved, e.amount)
		} else {
			spent.Add(spent, e.amount)
		}
	}
	return spent, reserved, nil
}

func (h *fakeHistory) PaidBefore(wallet, recipient string) (bool, error) {
	h.calls++
	if h.panics {
		panic("store exploded")
	}
	if h.err != nil {
		return false, h.err
	}
	return h.paid[wallet+"/"+recipient], nil
}

func n(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return v
}

func pow10(k int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(k)), nil) }

func mul(a int64, b *big.Int) *big.Int { return new(big.Int).Mul(big.NewInt(a), b) }

func add(a, b *big.Int) *big.Int { return new(big.Int).Add(a, b) }

var (
	now    = time.Date(2026, 6, 10, 12, 0, 0, 0, time.UTC) // a Wednesday
	alice  = "0xaAaAaAaaAaAaAaaAaAAAAAAAAaaaAaAaAaaAaaAa"  // EIP-55
	bob    = "0xbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	burn   = "0x0000000000000000000000000000000000000000"
	usdc   = "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48" // 6 decimals
	dai    = "0x6b175474e89094c44da98b954eedeac495271d0f" // 18 decimals
	router = "0x3fc91a3afd70395cd496c647d5a6cc9d4b2b7fad"
)

func native(amount *big.Int, to string) Request {
	return Request{Kind: KindNative, ChainID: 1, WalletID: "w1", AgentID: "a1", Asset: AssetNative, Amount: amount, To: []string{to}}
}

func spentAgo(agent, rule, asset string, ago time.Duration, amount *big.Int, reserved bool) entry {
	return entry{wallet: "w1", agent: agent, rule: rule, asset: asset, at: now.Add(-ago), amount: amount, reserved: reserved}
}

type evalCase struct {
	doc     string
	req     Request
	hist    *fakeHistory
	at      time.Time
	want    Outcome
	rule    string
	reserve *big.Int // nil: no reservation expected
	warn    string   // a warning must contain it ("" : no warnings)
	quorum  int
	delay   time.Duration
}

func runEval(t *testing.T, tests map[string]evalCase) {
	t.Helper()
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p := mustParse(t, tt.doc)
			h := tt.hist
			if h == nil {
				h = &fakeHistory{paid: map[string]bool{"w1/" + strings.ToLower(bob): true}}
			}
			at := tt.at
			if at.IsZero() {
				at = now
			}
			d := Evaluate(p, tt.req, h, at)
			if d.Outcome != tt.want || d.RuleID != tt.rule {
				t.Fatalf("decision = %s by %q (%v), want %s by %q", d.Outcome, d.RuleID, d.Warnings, tt.want, tt.rule)
			}
			if (d.Reserve == nil) != (tt.reserve == nil) || d.Reserve != nil && d.Reserve.Cmp(tt.reserve) != 0 {
				t.Fatalf("reserve = %v, want %v", d.Reserve, tt.reserve)
			}
			if tt.warn == "" && len(d.Warnings) > 0 {
				t.Fatalf("unexpected warnings %v", d.Warnings)
			}
			if tt.warn != "" && !strings.Contains(strings.Join(d.Warnings, "\n"), tt.warn) {
				t.Fatalf("warnings %v lack %q", d.Warnings, tt.warn)
			}
			if d.Quorum != tt.quorum || d.Delay != tt.delay {
				t.Fatalf("quorum %d delay %s, want %d %s", d.Quorum, d.Delay, tt.quorum, tt.delay)
			}
			if d.Outcome == Auto && d.Reserve == nil && tt.req.Amount != nil {
				t.Fatal("auto for a value-moving request without a reservation")
			}
		})
	}
}

func TestEvaluate_IssueExample(t *testing.T) {
	finney := pow10(15)
	ether := pow10(18)
	h := func(es ...entry) *fakeHistory {
		return &fakeHistory{entries: es, paid: map[string]bool{"w1/" + bob: true}}
	}
	runEval(t, map[string]evalCase{
		"ok/first match: burn is denied although inference matches too": {
			doc: issueExample, req: native(big.NewInt(1), burn), want: Deny, rule: "no-burn",
		},
		"ok/inference within budget is auto and reserves the amount": {
			doc: issueExample, req: native(finney, bob), want: Auto, rule: "inference", reserve: finney,
		},
		"ok/amount == max_amount matches (inclusive)": {
			doc: issueExample, req: native(finney, bob), want: Auto, rule: "inference", reserve: finney,
		},
		"ok/max_amount + 1 falls through to the default": {
			doc: issueExample, req: native(add(finney, big.NewInt(1)), bob), want: Human, rule: DefaultRuleID,
		},
		"ok/max_amount + 1 to a new payee is delayed": {
			doc: issueExample, req: native(add(finney, big.NewInt(1)), alice), want: Delay, rule: "new-payee", delay: 15 * time.Minute,
		},
		"ok/budget exactly used up by this request is still auto": {
			doc: issueExample, req: native(finney, bob), hist: h(spentAgo("a1", "inference", "native", time.Hour, mul(9, finney), false)),
			want: Auto, rule: "inference", reserve: finney,
		},
		"ok/one wei over the remaining budget overflows to human": {
			doc: issueExample, req: native(finney, bob),
			hist: h(spentAgo("a1", "inference", "native", time.Hour, add(mul(9, finney), big.NewInt(1)), false)),
			want: Human, rule: "inference", warn: "exceed the budget",
		},
		"ok/reservations count like spends": {
			doc: issueExample, req: native(finney, bob),
			hist: h(spentAgo("a1", "inference", "native", time.Hour, mul(5, finney), false), spentAgo("a1", "inference", "native", time.Minute, mul(5, finney), true)),
			want: Human, rule: "inference", warn: "exceed the budget",
		},
		"ok/a spend exactly one window old no longer counts": {
			doc: issueExample, req: native(finney, bob), hist: h(spentAgo("a1", "inference", "native", 24*time.Hour, mul(10, finney), false)),
			want: Auto, rule: "inference", reserve: finney,
		},
		"ok/a spend one nanosecond inside the window still counts": {
			doc: issueExample, req: native(finney, bob), hist: h(spentAgo("a1", "inference", "native", 24*time.Hour-1, mul(10, finney), false)),
			want: Human, rule: "inference", warn: "exceed the budget",
		},
		"ok/another agent's spend does not count in agent scope": {
			doc: issueExample, req: native(finney, bob), hist: h(spentAgo("a2", "inference", "native", time.Hour, mul(10, finney), false)),
			want: Auto, rule: "inference", reserve: finney,
		},
		"ok/another rule's spend does not count": {
			doc: issueExample, req: native(finney, bob), hist: h(spentAgo("a1", "other", "native", time.Hour, mul(10, finney), false)),
			want: Auto, rule: "inference", reserve: finney,
		},
		"ok/min_amount == 1 ether is quorum (inclusive)": {
			doc: issueExample, req: native(ether, bob), want: Quorum, rule: "big", quorum: 2,
		},
		"ok/1 ether - 1 wei is not big": {
			doc: issueExample, req: native(new(big.Int).Sub(ether, big.NewInt(1)), bob), want: Human, rule: DefaultRuleID,
		},
		"ok/2^256-1 wei is big": {
			doc: issueExample, req: native(maxUint256, bob), want: Quorum, rule: "big", quorum: 2,
		},
		"ok/2^256-1 to the burn address is denied": {
			doc: issueExample, req: native(maxUint256, burn), want: Deny, rule: "no-burn",
		},
		"ok/EIP-55 addresses compare lower-cased": {
			doc:  `{"rules":[{"id":"a","when":{"to":["` + alice + `"]},"then":"deny"}]}`,
			req:  native(big.NewInt(1), strings.ToUpper(alice[:2])+strings.ToLower(alice[2:])),
			want: Deny, rule: "a",
		},
	})
}

func TestEvaluate_Budgets(t *testing.T) {
	tokens := `{"rules":[
	  {"id":"usdc","when":{"asset":"` + usdc + `","kind":["erc20"]},"then":"auto","budget":{"max":"100000000","window":"24h"}},
	  {"id":"dai","when":{"asset":"` + dai + `","kind":["erc20"]},"then":"auto","budget":{"max":"100000000000000000000","window":"24h","scope":"wallet"},"overflow":"quorum","quorum":2}
	]}`
	erc20 := func(token string, amount *big.Int) Request {
		r := native(amount, bob)
		r.Kind, r.Asset = KindERC20, token
		return r
	}
	h := func(es ...entry) *fakeHistory { return &fakeHistory{entries: es} }
	runEval(t, map[string]evalCase{
		"ok/100 USDC (6 decimals) fills the budget": {
			doc: tokens, req: erc20(usdc, mul(100, pow10(6))), want: Auto, rule: "usdc", reserve: mul(100, pow10(6)),
		},
		"ok/100.000001 USDC overflows": {
			doc: tokens, req: erc20(usdc, add(mul(100, pow10(6)), big.NewInt(1))), want: Human, rule: "usdc", warn: "exceed",
		},
		"ok/100 DAI (18 decimals) fills the budget": {
			doc: tokens, req: erc20(dai, mul(100, pow10(18))), want: Auto, rule: "dai", reserve: mul(100, pow10(18)),
		},
		"ok/DAI-sized amount of USDC is 10^12 times over the USDC budget": {
			doc: tokens, req: erc20(usdc, mul(50, pow10(18))), want: Human, rule: "usdc", warn: "exceed",
		},
		"ok/USDC token address in EIP-55 form is the same asset": {
			doc: tokens, req: erc20("0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48", big.NewInt(1)), want: Auto, rule: "usdc", reserve: big.NewInt(1),
		},
		"ok/wallet scope counts every agent's spend and overflows to quorum": {
			doc: tokens, req: erc20(dai, pow10(18)), hist: h(spentAgo("a2", "dai", dai, time.Hour, mul(100, pow10(18)), false)),
			want: Quorum, rule: "dai", quorum: 2, warn: "exceed",
		},
		"ok/usdc spends do not drain the dai budget": {
			doc: tokens, req: erc20(dai, pow10(18)), hist: h(spentAgo("a1", "dai", usdc, time.Hour, mul(100, pow10(18)), false)),
			want: Auto, rule: "dai", reserve: pow10(18),
		},
		"ok/2^256-1 over any budget": {
			doc: tokens, req: erc20(usdc, maxUint256), want: Human, rule: "usdc", warn: "exceed",
		},
		"ok/2^256-1 budget takes 2^256-1": {
			doc:  `{"rules":[{"id":"all","when":{"asset":"native"},"then":"auto","budget":{"max":"115792089237316195423570985008687907853269984665640564039457584007913129639935","window":"1h"}}]}`,
			req:  native(maxUint256, bob),
			want: Auto, rule: "all", reserve: maxUint256,
		},
		"ok/history over the cap leaves remaining 0, not negative": {
			doc: tokens, req: erc20(usdc, big.NewInt(0)), hist: h(spentAgo("a1", "usdc", usdc, time.Hour, mul(500, pow10(6)), false)),
			want: Auto, rule: "usdc", reserve: big.NewInt(0),
		},
		"ok/overflow deny": {
			doc:  `{"rules":[{"id":"cap","when":{"asset":"native"},"then":"human","budget":{"max":"10","window":"1h"},"overflow":"deny"}]}`,
			req:  native(big.NewInt(11), bob),
			want: Deny, rule: "cap", warn: "exceed",
		},
		"ok/human within a budget reserves too": {
			doc:  `{"rules":[{"id":"cap","when":{"asset":"native"},"then":"human","budget":{"max":"10","window":"1h"},"overflow":"deny"}]}`,
			req:  native(big.NewInt(10), bob),
			want: Human, rule: "cap", reserve: big.NewInt(10),
		},
		"ok/delay within a budget": {
			doc:  `{"rules":[{"id":"d","when":{"asset":"native"},"then":"delay","delay":"1h","budget":{"max":"10","window":"1h"}}]}`,
			req:  native(big.NewInt(10), bob),
			want: Delay, rule: "d", reserve: big.NewInt(10), delay: time.Hour,
		},
		"ok/budget max 0 lets nothing of value through": {
			doc:  `{"rules":[{"id":"z","when":{"asset":"native"},"then":"auto","budget":{"max":"0","window":"1h"}}]}`,
			req:  native(big.NewInt(1), bob),
			want: Human, rule: "z", warn: "exceed",
		},
	})
}

func TestEvaluate_Matchers(t *testing.T) {
	call := func(contract, selector string) Request {
		return Request{Kind: KindContractCall, ChainID: 1, WalletID: "w1", AgentID: "a1", Asset: AssetNative, Amount: big.NewInt(0), Contract: contract, Selector: selector}
	}
	sign := Request{Kind: KindPersonalSign, ChainID: 1, WalletID: "w1", AgentID: "a1"}
	typed := func(primary, contract string) Request {
		return Request{Kind: KindTypedData, ChainID: 1, WalletID: "w1", AgentID: "a1", TypedData: &TypedDataInfo{PrimaryType: primary, VerifyingContract: contract}}
	}
	on := func(r Request, chain int64) Request { r.ChainID = chain; return r }
	knownBob := &fakeHistory{paid: map[string]bool{"w1/" + bob: true}}
	yes, no := true, false
	flagged := func(r Request, b *bool) Request { r.NewRecipient = b; return r }
	one := big.NewInt(1)
	const d = `{"rules":[{"id":"m","when":`
	const e = `,"then":"deny"}]}`
	runEval(t, map[string]evalCase{
		"ok/kind matches":                {doc: d + `{"kind":["erc20","native"]}` + e, req: native(one, bob), want: Deny, rule: "m"},
		"fail/kind does not match":       {doc: d + `{"kind":["erc20"]}` + e, req: native(one, bob), want: Human, rule: DefaultRuleID},
		"ok/asset native":                {doc: d + `{"asset":"native"}` + e, req: native(one, bob), want: Deny, rule: "m"},
		"fail/asset token vs native":     {doc: d + `{"asset":"` + usdc + `"}` + e, req: native(one, bob), want: Human, rule: DefaultRuleID},
		"fail/min_amount on a signature": {doc: d + `{"min_amount":"0"}` + e, req: sign, want: Human, rule: DefaultRuleID},
		"fail/max_amount on a signature": {doc: d + `{"max_amount":"100"}` + e, req: sign, want: Human, rule: DefaultRuleID},
		"ok/to lists the recipient":      {doc: d + `{"to":["` + bob + `","` + alice + `"]}` + e, req: native(one, bob), want: Deny, rule: "m"},
		"fail/to lacks the recipient":    {doc: d + `{"to":["` + alice + `"]}` + e, req: native(one, bob), want: Human, rule: DefaultRuleID},
		"fail/to needs every recipient listed": {doc: d + `{"to":["` + bob + `"]}` + e,
			req: Request{Kind: KindNative, Asset: AssetNative, Amount: one, To: []string{bob, alice}}, want: Human, rule: DefaultRuleID},
		"fail/to on a signature (no recipient)":          {doc: d + `{"to":["` + bob + `"]}` + e, req: sign, want: Human, rule: DefaultRuleID},
		"ok/to is the contract for calls":                {doc: d + `{"to":["` + router + `"]}` + e, req: call(router, "0x12345678"), want: Deny, rule: "m"},
		"ok/not_to holds for others":                     {doc: d + `{"not_to":["` + alice + `"]}` + e, req: native(one, bob), want: Deny, rule: "m"},
		"fail/not_to excludes the recipient":             {doc: d + `{"not_to":["` + bob + `"]}` + e, req: native(one, bob), want: Human, rule: DefaultRuleID},
		"fail/not_to excludes the contract":              {doc: d + `{"not_to":["` + router + `"]}` + e, req: call(router, "0x12345678"), want: Human, rule: DefaultRuleID},
		"ok/not_to holds without recipients":             {doc: d + `{"not_to":["` + bob + `"]}` + e, req: sign, want: Deny, rule: "m"},
		"ok/selector listed":                             {doc: d + `{"selectors":["0x38ED1739","0xa9059cbb"]}` + e, req: call(router, "0x38ed1739"), want: Deny, rule: "m"},
		"ok/selector compared lower-cased":               {doc: d + `{"selectors":["0x38ed1739"]}` + e, req: call(router, "0x38ED1739"), want: Deny, rule: "m"},
		"fail/selector not listed":                       {doc: d + `{"selectors":["0xa9059cbb"]}` + e, req: call(router, "0x095ea7b3"), want: Human, rule: DefaultRuleID},
		"fail/selector on empty calldata":                {doc: d + `{"selectors":["0xa9059cbb"]}` + e, req: call(router, ""), want: Human, rule: DefaultRuleID},
		"fail/selector on a transfer":                    {doc: d + `{"selectors":["0xa9059cbb"]}` + e, req: native(one, bob), want: Human, rule: DefaultRuleID},
		"ok/chain_id listed":                             {doc: d + `{"chain_id":[8453,1]}` + e, req: native(one, bob), want: Deny, rule: "m"},
		"fail/chain_id not listed":                       {doc: d + `{"chain_id":[8453]}` + e, req: native(one, bob), want: Human, rule: DefaultRuleID},
		"ok/chain_id large":                              {doc: d + `{"chain_id":[9223372036854775807]}` + e, req: on(native(one, bob), 1<<63-1), want: Deny, rule: "m"},
		"ok/typed_data primary_type":                     {doc: d + `{"typed_data":{"primary_type":"Permit"}}` + e, req: typed("Permit", usdc), want: Deny, rule: "m"},
		"fail/typed_data primary_type is case-sensitive": {doc: d + `{"typed_data":{"primary_type":"permit"}}` + e, req: typed("Permit", usdc), want: Human, rule: DefaultRuleID},
		"ok/typed_data verifying_contract":               {doc: d + `{"typed_data":{"verifying_contract":"` + strings.ToUpper(usdc) + `"}}` + e, req: typed("Permit", "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"), want: Deny, rule: "m"},
		"fail/typed_data both must hold":                 {doc: d + `{"typed_data":{"primary_type":"Permit","verifying_contract":"` + dai + `"}}` + e, req: typed("Permit", usdc), want: Human, rule: DefaultRuleID},
		"fail/typed_data on a transfer":                  {doc: d + `{"typed_data":{"primary_type":"Permit"}}` + e, req: native(one, bob), want: Human, rule: DefaultRuleID},
		"ok/new_recipient true for a new payee":          {doc: d + `{"new_recipient":true}` + e, req: native(one, alice), hist: knownBob, want: Deny, rule: "m"},
		"fail/new_recipient true for a known payee":      {doc: d + `{"new_recipient":true}` + e, req: native(one, bob), hist: knownBob, want: Human, rule: DefaultRuleID},
		"ok/new_recipient false for a known payee":       {doc: d + `{"new_recipient":false}` + e, req: native(one, bob), hist: knownBob, want: Deny, rule: "m"},
		"fail/new_recipient false for a new payee":       {doc: d + `{"new_recipient":false}` + e, req: native(one, alice), hist: knownBob, want: Human, rule: DefaultRuleID},
		"fail/new_recipient on a signature":              {doc: d + `{"new_recipient":true}` + e, req: sign, want: Human, rule: DefaultRuleID},
		"ok/new_recipient from the request's flag":       {doc: d + `{"new_recipient":true}` + e, req: flagged(native(one, bob), &yes), hist: knownBob, want: Deny, rule: "m"},
		"fail/new_recipient flag false":                  {doc: d + `{"new_recipient":true}` + e, req: flagged(native(one, alice), &no), hist: knownBob, want: Human, rule: DefaultRuleID},
		"ok/new_recipient: one new payee of two is new": {doc: d + `{"new_recipient":true}` + e,
			req: Request{Kind: KindNative, WalletID: "w1", Asset: AssetNative, Amount: one, To: []string{bob, alice}}, hist: knownBob, want: Deny, rule: "m"},
		"ok/all matchers must hold": {doc: d + `{"kind":["native"],"asset":"native","max_amount":"5","to":["` + bob + `"],"chain_id":[1],"new_recipient":false}` + e,
			req: native(big.NewInt(5), bob), hist: knownBob, want: Deny, rule: "m"},
		"fail/one matcher fails them all": {doc: d + `{"kind":["native"],"asset":"native","max_amount":"5","to":["` + bob + `"],"chain_id":[1],"new_recipient":false}` + e,
			req: native(big.NewInt(6), bob), hist: knownBob, want: Human, rule: DefaultRuleID},
		"ok/default deny": {doc: `{"rules":[],"default":"deny"}`, req: native(one, bob), want: Deny, rule: DefaultRuleID},
	})
}

func TestEvaluate_HoursAndTimeZones(t *testing.T) {
	const office = `{"rules":[{"id":"office","when":{"hours":{"tz":"Europe/Berlin","days":["mon","tue","wed","thu","fri"],"from":"09:00","to":"18:00"}},"then":"deny"}]}`
	const monday = `{"rules":[{"id":"monday","when":{"hours":{"tz":"Europe/Berlin","days":["mon"]}},"then":"deny"}]}`
	const night = `{"rules":[{"id":"night","when":{"hours":{"tz":"Europe/Berlin","days":["fri"],"from":"22:00","to":"06:00"}},"then":"deny"}]}`
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	r := native(big.NewInt(1), bob)
	in := func(doc, when, rule string) evalCase {
		return evalCase{doc: doc, req: r, at: at(when), want: Deny, rule: rule}
	}
	out := func(doc, when string) evalCase {
		return evalCase{doc: doc, req: r, at: at(when), want: Human, rule: DefaultRuleID}
	}
	runEval(t, map[string]evalCase{
		"ok/winter 09:00 CET is in":                          in(office, "2026-03-27T08:00:00Z", "office"),
		"fail/winter 08:59 CET is out":                       out(office, "2026-03-27T07:59:00Z"),
		"ok/winter 17:59 CET is in":                          in(office, "2026-03-27T16:59:00Z", "office"),
		"fail/winter 18:00 CET is out":                       out(office, "2026-03-27T17:00:00Z"),
		"ok/summer 09:30 CEST is in":                         in(office, "2026-03-30T07:30:00Z", "office"), // 08:30 if the offset stayed +1
		"fail/summer 08:30 CEST is out":                      out(office, "2026-03-30T06:30:00Z"),
		"fail/summer 18:30 CEST is out":                      out(office, "2026-03-30T16:30:00Z"), // 17:30 if the offset stayed +1
		"fail/saturday is out":                               out(office, "2026-03-28T10:00:00Z"),
		"ok/day boundary after spring DST: Mon 00:30 CEST":   in(monday, "2026-03-29T22:30:00Z", "monday"), // Sun 23:30 at +1
		"fail/day boundary after spring DST: Sun 23:30 CEST": out(monday, "2026-03-29T21:30:00Z"),
		"ok/Mon 00:00 CEST exactly starts the day":           in(monday, "2026-03-29T22:00:00Z", "monday"),
		"fail/Sun 23:59:59 CEST is still Sunday":             out(monday, "2026-03-29T21:59:59Z"),
		"ok/day boundary after autumn DST: Mon 00:30 CET":    in(monday, "2026-10-25T23:30:00Z", "monday"),
		"fail/autumn Sun 23:30 CET is Sunday":                out(monday, "2026-10-25T22:30:00Z"), // Mon 00:30 if the offset stayed +2
		"fail/Mon 24:00 CET is Tuesday":                      out(monday, "2026-10-26T23:00:00Z"),
		"ok/crossing midnight: Fri 22:00":                    in(night, "2026-06-12T20:00:00Z", "night"),
		"ok/crossing midnight: Fri 23:59":                    in(night, "2026-06-12T21:59:00Z", "night"),
		"ok/crossing midnight: Sat 00:00":                    in(night, "2026-06-12T22:00:00Z", "night"),
		"ok/crossing midnight: Sat 05:59":                    in(night, "2026-06-13T03:59:00Z", "night"),
		"fail/crossing midnight: Sat 06:00":                  out(night, "2026-06-13T04:00:00Z"),
		"fail/crossing midnight: Fri 21:59":                  out(night, "2026-06-12T19:59:00Z"),
		"fail/crossing midnight: Fri 03:00 (Thu not listed)": out(night, "2026-06-12T01:00:00Z"),
		"fail/crossing midnight: Sat 23:00 (Sat not listed)": out(night, "2026-06-13T21:00:00Z"),
	})
}

func TestEvaluate_HardRules(t *testing.T) {
	auto := `{"rules":[{"id":"all","when":{"asset":"` + usdc + `"},"then":"auto","budget":{"max":"115792089237316195423570985008687907853269984665640564039457584007913129639935","window":"1h"}}]}`
	const delay = `{"rules":[{"id":"later","then":"delay","delay":"1h"}]}`
	const deny = `{"rules":[{"id":"no","then":"deny"}]}`
	const quorum = `{"rules":[{"id":"two","then":"quorum","quorum":2}]}`
	approve := Request{Kind: KindERC20, ChainID: 1, WalletID: "w1", AgentID: "a1", Asset: usdc, Amount: maxUint256, To: []string{router}, UnlimitedApproval: true}
	auth7702 := Request{Kind: KindTypedData, ChainID: 1, WalletID: "w1", AgentID: "a1", Authorization7702: true}
	unvalued := Request{Kind: KindTypedData, ChainID: 1, WalletID: "w1", AgentID: "a1", Asset: usdc, Unvalued: true}
	runEval(t, map[string]evalCase{
		"ok/unlimited approval under an auto rule goes to a human": {
			doc: auto, req: approve, want: Human, rule: "all", reserve: maxUint256, warn: "hard rule unlimited-approval",
		},
		"ok/unlimited approval under a delay rule goes to a human": {
			doc: delay, req: approve, want: Human, rule: "later", warn: "hard rule unlimited-approval",
		},
		"ok/7702 authorization under a delay rule goes to a human": {
			doc: delay, req: auth7702, want: Human, rule: "later", warn: "hard rule eip7702-authorization",
		},
		"ok/7702 authorization under auto without budget goes to a human": {
			doc: `{"rules":[{"id":"sign","then":"auto"}]}`, req: auth7702, want: Human, rule: "sign", warn: "hard rule eip7702-authorization",
		},
		"ok/deny stays deny":               {doc: deny, req: approve, want: Deny, rule: "no"},
		"ok/quorum stays quorum":           {doc: quorum, req: auth7702, want: Quorum, rule: "two", quorum: 2},
		"ok/unvalued exceeds every budget": {doc: auto, req: unvalued, want: Human, rule: "all", warn: "could not be measured"},
		"ok/unvalued under delay is human": {doc: delay, req: unvalued, want: Human, rule: "later", warn: "hard rule unvalued"},
		"ok/personal_sign may be auto without a budget": {
			doc: `{"rules":[{"id":"sign","when":{"kind":["personal_sign"]},"then":"auto"}]}`,
			req: Request{Kind: KindPersonalSign, WalletID: "w1"}, want: Auto, rule: "sign",
		},
		"ok/auto without a budget sends value to a human": {
			doc: `{"rules":[{"id":"all","then":"auto"}]}`, req: native(big.NewInt(1), bob), want: Human, rule: "all", warn: "without a budget",
		},
		"ok/auto without a budget sends a zero-value call to a human": {
			doc:  `{"rules":[{"id":"all","then":"auto"}]}`,
			req:  Request{Kind: KindContractCall, WalletID: "w1", Asset: AssetNative, Amount: big.NewInt(0), Contract: router, Selector: "0x095ea7b3"},
			want: Human, rule: "all", warn: "without a budget",
		},
	})
}

// TestSecurity_EvaluateFailsClosed: a broken store, a panicking one, or
// none at all never lets a request through: the answer is a human with no
// rule id.
func TestSecurity_EvaluateFailsClosed(t *testing.T) {
	p := mustParse(t, issueExample)
	req := native(pow10(15), bob)
	for name, h := range map[string]History{
		"history error":  &fakeHistory{err: errors.New("database is locked")},
		"history panics": &fakeHistory{panics: true},
		"no history":     nil,
	} {
		t.Run(name, func(t *testing.T) {
			d := Evaluate(p, req, h, now)
			if d.Outcome != Human || d.RuleID != "" || len(d.Warnings) == 0 || d.Reserve != nil {
				t.Fatalf("decision = %+v, want human by \"\" with a warning", d)
			}
		})
	}
	// new_recipient's history failing is the same.
	p2 := mustParse(t, `{"rules":[{"id":"known","when":{"new_recipient":false,"asset":"native"},"then":"auto","budget":{"max":"1000","window":"1h"}}]}`)
	if d := Evaluate(p2, native(big.NewInt(1), bob), &fakeHistory{err: errors.New("boom")}, now); d.Outcome != Human || d.RuleID != "" {
		t.Fatalf("decision = %+v", d)
	}
	// A matcher that panics (here: its zone lost) is caught.
	broken := mustParse(t, `{"rules":[{"id":"x","when":{"hours":{"tz":"UTC"}},"then":"auto"}]}`)
	broken.Rules[0].When.Hours.loc = nil
	if d := Evaluate(broken, Request{Kind: KindPersonalSign}, nil, now); d.Outcome != Human || d.RuleID != "" || !strings.Contains(d.Warnings[0], "failed") {
		t.Fatalf("decision = %+v", d)
	}
	// A Policy that Parse did not build has no matcher sets: a kind
	// matcher would silently match everything, so nothing is trusted.
	hand := &Policy{Default: Human, Rules: []Rule{{ID: "x", Then: Deny, When: When{Kind: []Kind{KindERC20}}}, {ID: "y", Then: Auto}}}
	if d := Evaluate(hand, Request{Kind: KindPersonalSign}, nil, now); d.Outcome != Human || d.RuleID != "" {
		t.Fatalf("hand-built policy: %+v", d)
	}
	// A negative amount (a caller's bug) would reserve a negative amount
	// and hand budget back.
	if d := Evaluate(p, native(big.NewInt(-1), bob), &fakeHistory{}, now); d.Outcome != Human || d.RuleID != "" || d.Reserve != nil {
		t.Fatalf("negative amount: %+v", d)
	}
	if d := Evaluate(nil, req, nil, now); d.Outcome != Human || d.RuleID != DefaultRuleID {
		t.Fatalf("nil policy: %+v", d)
	}
}

// TestMoney_NoAutoPastBudget: whatever was spent and reserved, a request
// is auto only if it fits in what remains.
func TestMoney_NoAutoPastBudget(t *testing.T) {
	p := mustParse(t, issueExample)
	max := n("10000000000000000")
	for _, used := range []*big.Int{big.NewInt(0), n("9000000000000000"), n("9000000000000001"), max, add(max, big.NewInt(1))} {
		for _, amt := range []*big.Int{big.NewInt(0), big.NewInt(1), n("999999999999999"), n("1000000000000000")} {
			h := &fakeHistory{entries: []entry{spentAgo("a1", "inference", "native", time.Minute, used, true)}, paid: map[string]bool{"w1/" + bob: true}}
			d := Evaluate(p, native(amt, bob), h, now)
			fits := new(big.Int).Add(used, amt).Cmp(max) <= 0 || amt.Sign() == 0 // a zero amount never exceeds
			if (d.Outcome == Auto) != fits {
				t.Fatalf("used %s + %s: %s (fits %v)", used, amt, d.Outcome, fits)
			}
			if d.Outcome == Auto && d.Reserve.Cmp(amt) != 0 {
				t.Fatalf("reserve %s, want %s", d.Reserve, amt)
			}
		}
	}
}

func TestEvaluate_AsksHistoryOnlyWhenNeeded(t *testing.T) {
	p := mustParse(t, `{"rules":[{"id":"big","when":{"min_amount":"100"},"then":"quorum","quorum":2},{"id":"new","when":{"new_recipient":true},"then":"delay","delay":"1h"}]}`)
	h := &fakeHistory{}
	Evaluate(p, native(big.NewInt(100), bob), h, now)
	if h.calls != 0 {
		t.Fatalf("history asked %d times for a decision that needed none", h.calls)
	}
	Evaluate(p, native(big.NewInt(1), bob), h, now)
	if h.calls != 1 {
		t.Fatalf("history asked %d times, want 1", h.calls)
	}
}

func TestEvaluate_BudgetView(t *testing.T) {
	p := mustParse(t, issueExample)
	h := &fakeHistory{entries: []entry{
		spentAgo("a1", "inference", "native", time.Hour, n("3000000000000000"), false),
		spentAgo("a1", "inference", "native", time.Minute, n("2000000000000000"), true),
	}}
	d := Evaluate(p, native(pow10(15), bob), h, now)
	b := d.Budget
	if b == nil || b.Max.String() != "10000000000000000" || b.Spent.String() != "3000000000000000" ||
		b.Reserved.String() != "2000000000000000" || b.Remaining.String() != "5000000000000000" ||
		b.Window != "24h" || b.Scope != ScopeAgent || b.Asset != AssetNative {
		t.Fatalf("budget view = %+v", b)
	}
}
