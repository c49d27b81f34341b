package policy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// issueExample is the example document of the policy design, verbatim.
const issueExample = `{"rules": [
  {"id": "no-burn", "when": {"to": ["0x0000000000000000000000000000000000000000"]}, "then": "deny"},
  {"id": "inference", "when": {"kind": ["native"], "max_amount": "1000000000000000"},
   "then": "auto", "budget": {"max": "10000000000000000", "window": "24h"}},
  {"id": "big", "when": {"min_amount": "1000000000000000000"}, "then": "quorum", "quorum": 2},
  {"id": "new-payee", "when": {"new_recipient": true}, "then": "delay", "delay": "15m"}
], "default": "human"}`

func mustParse(t testing.TB, doc string) *Policy {
	t.Helper()
	p, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return p
}

func TestParse_IssueExample(t *testing.T) {
	p := mustParse(t, issueExample)
	if len(p.Rules) != 4 || p.Default != Human {
		t.Fatalf("rules %d default %s", len(p.Rules), p.Default)
	}
	inf := p.Rule("inference")
	if inf.Then != Auto || inf.Budget.Max.String() != "10000000000000000" || inf.Budget.Window != 24*time.Hour ||
		inf.Budget.Scope != ScopeAgent || inf.Overflow != Human {
		t.Fatalf("inference = %+v %+v", inf, inf.Budget)
	}
	if r := p.Rule("big"); r.Quorum != 2 || r.When.MinAmount.String() != "1000000000000000000" {
		t.Fatalf("big = %+v", r)
	}
	if r := p.Rule("new-payee"); r.Delay != 15*time.Minute || r.DelayText() != "15m" || !*r.When.NewRecipient {
		t.Fatalf("new-payee = %+v", r)
	}
	if p.MaxQuorum() != 2 {
		t.Fatalf("MaxQuorum = %d", p.MaxQuorum())
	}
}

func TestParse_AllFields(t *testing.T) {
	doc := `{"rules":[{"id":"all","when":{
		"kind":["erc20","typed_data"],
		"asset":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48",
		"min_amount":"1","max_amount":"115792089237316195423570985008687907853269984665640564039457584007913129639935",
		"to":["0x1111111111111111111111111111111111111111"],
		"not_to":["0x2222222222222222222222222222222222222222"],
		"selectors":["0xA9059CBB"],
		"chain_id":[1,8453],
		"typed_data":{"primary_type":"Permit","verifying_contract":"0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"},
		"new_recipient":false,
		"hours":{"tz":"Europe/Berlin","days":["mon","fri"],"from":"22:00","to":"06:00"}
	},"then":"quorum","quorum":3,"budget":{"max":"5","window":"30d","scope":"wallet"},"overflow":"deny"}],"default":"deny"}`
	p := mustParse(t, doc)
	w := p.Rules[0].When
	if w.Asset != "0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48" || w.Selectors[0] != "0xa9059cbb" ||
		w.MaxAmount.Cmp(maxUint256) != 0 || w.ChainID[1] != 8453 || w.Hours.From != 22*60 || w.Hours.To != 6*60 ||
		w.TypedData.VerifyingContract != w.Asset || *w.NewRecipient {
		t.Fatalf("when = %+v", w)
	}
	if b := p.Rules[0].Budget; b.Scope != ScopeWallet || b.Window != 30*24*time.Hour || p.Rules[0].Overflow != Deny {
		t.Fatalf("budget = %+v", b)
	}
	want := `{"rules":[{"id":"all","when":{"kind":["erc20","typed_data"],"asset":"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48","min_amount":"1","max_amount":"115792089237316195423570985008687907853269984665640564039457584007913129639935","to":["0x1111111111111111111111111111111111111111"],"not_to":["0x2222222222222222222222222222222222222222"],"selectors":["0xa9059cbb"],"chain_id":[1,8453],"typed_data":{"primary_type":"Permit","verifying_contract":"0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb48"},"new_recipient":false,"hours":{"tz":"Europe/Berlin","days":["mon","fri"],"from":"22:00","to":"06:00"}},"then":"quorum","quorum":3,"budget":{"max":"5","window":"30d","scope":"wallet"},"overflow":"deny"}],"default":"deny"}`
	if got := string(p.Marshal()); got != want {
		t.Fatalf("canonical form:\n got %s\nwant %s", got, want)
	}
	again := mustParse(t, want)
	if again.Hash() != p.Hash() || len(p.Hash()) != 64 {
		t.Fatalf("hash not stable: %s %s", again.Hash(), p.Hash())
	}
}

func TestParse_Canonical(t *testing.T) {
	// Spacing, key order, address case and defaults left out do not
	// change the hash; anything that changes meaning does.
	a := mustParse(t, `{"rules":[{"then":"auto","id":"x","budget":{"window":"1h","max":"10"},"when":{"asset":"native"}}]}`)
	b := mustParse(t, ` { "default" : "human", "rules" : [ {"id":"x","when":{"asset":"native"},"then":"auto","budget":{"max":"10","window":"1h","scope":"agent"},"overflow":"human"} ] } `)
	c := mustParse(t, `{"rules":[{"id":"x","when":{"asset":"native"},"then":"auto","budget":{"max":"11","window":"1h"}}]}`)
	if a.Hash() != b.Hash() {
		t.Fatalf("same meaning, different hash:\n%s\n%s", a.Marshal(), b.Marshal())
	}
	if a.Hash() == c.Hash() {
		t.Fatal("different budget, same hash")
	}
	if got := string(mustParse(t, `{"rules":[]}`).Marshal()); got != `{"rules":[],"default":"human"}` {
		t.Fatalf("empty policy = %s", got)
	}
}

func TestParse_Good(t *testing.T) {
	for name, doc := range map[string]string{
		"ok/empty rules":                `{"rules":[]}`,
		"ok/empty when matches all":     `{"rules":[{"id":"all","when":{},"then":"quorum","quorum":2}]}`,
		"ok/when omitted":               `{"rules":[{"id":"all","then":"human"}]}`,
		"ok/default deny":               `{"rules":[],"default":"deny"}`,
		"ok/window 365d":                `{"rules":[{"id":"a","when":{"asset":"native"},"then":"auto","budget":{"max":"1","window":"365d"}}]}`,
		"ok/window 8760h":               `{"rules":[{"id":"a","when":{"asset":"native"},"then":"auto","budget":{"max":"1","window":"8760h"}}]}`,
		"ok/budget 2^256-1":             `{"rules":[{"id":"a","when":{"asset":"native"},"then":"auto","budget":{"max":"115792089237316195423570985008687907853269984665640564039457584007913129639935","window":"1h"}}]}`,
		"ok/budget max 0":               `{"rules":[{"id":"a","when":{"asset":"native"},"then":"auto","budget":{"max":"0","window":"1h"}}]}`,
		"ok/budget on human":            `{"rules":[{"id":"a","when":{"asset":"native"},"then":"human","budget":{"max":"1","window":"1h"},"overflow":"deny"}]}`,
		"ok/overflow quorum":            `{"rules":[{"id":"a","when":{"asset":"native"},"then":"auto","budget":{"max":"1","window":"1h"},"overflow":"quorum","quorum":2}]}`,
		"ok/delay with budget":          `{"rules":[{"id":"a","when":{"asset":"native"},"then":"delay","delay":"30s","budget":{"max":"1","window":"1h"}}]}`,
		"ok/hours whole day":            `{"rules":[{"id":"a","when":{"hours":{"tz":"UTC","days":["sat","sun"]}},"then":"deny"}]}`,
		"ok/hours to 24:00":             `{"rules":[{"id":"a","when":{"hours":{"tz":"America/New_York","from":"18:00","to":"24:00"}},"then":"deny"}]}`,
		"ok/x402 kind":                  `{"rules":[{"id":"a","when":{"kind":["x402"]},"then":"human"}]}`,
		"ok/id with digits and dashes":  `{"rules":[{"id":"0-a_b","then":"human"}]}`,
		"ok/address all upper-case":     `{"rules":[{"id":"a","when":{"to":["0xA0B86991C6218B36C1D19D4A2E9EB0CE3606EB48"]},"then":"deny"}]}`,
		"ok/256 rules":                  rulesDoc(256),
		"ok/typed data primary only":    `{"rules":[{"id":"a","when":{"typed_data":{"primary_type":"Permit"}},"then":"human"}]}`,
		"ok/min equals max":             `{"rules":[{"id":"a","when":{"min_amount":"5","max_amount":"5"},"then":"human"}]}`,
		"ok/auto without budget parses": `{"rules":[{"id":"sign","when":{"kind":["personal_sign"]},"then":"auto"}]}`,
	} {
		t.Run(name, func(t *testing.T) { mustParse(t, doc) })
	}
}

func rulesDoc(n int) string {
	var b strings.Builder
	b.WriteString(`{"rules":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"id":"r%d","when":{"min_amount":"%d"},"then":"human"}`, i, i)
	}
	b.WriteString(`]}`)
	return b.String()
}

func TestParse_Bad(t *testing.T) {
	rule := func(r string) string { return `{"rules":[{"id":"ok","then":"human"},` + r + `]}` }
	budget := func(b string) string {
		return rule(`{"id":"b","when":{"asset":"native"},"then":"auto","budget":` + b + `}`)
	}
	when := func(w string) string { return rule(`{"id":"w","when":` + w + `,"then":"human"}`) }
	tests := map[string]struct {
		doc  string
		path string // the detail must start with it
	}{
		"fail/not json":                   {`{"rules":[`, "policy:"},
		"fail/not an object":              {`[]`, "policy:"},
		"fail/trailing data":              {`{"rules":[]} {}`, "policy:"},
		"fail/rules missing":              {`{"default":"human"}`, "rules:"},
		"fail/unknown top field":          {`{"rules":[],"rule":[]}`, "rule:"},
		"fail/duplicate top key":          {`{"rules":[],"rules":[]}`, "rules:"},
		"fail/duplicate key in when":      {when(`{"kind":["native"],"kind":["erc20"]}`), "rules[1].when.kind:"},
		"fail/unknown rule field":         {rule(`{"id":"x","then":"human","thne":"auto"}`), "rules[1].thne:"},
		"fail/unknown matcher":            {when(`{"amount":"1"}`), "rules[1].when.amount:"},
		"fail/unknown budget field":       {budget(`{"max":"1","window":"1h","cap":"2"}`), "rules[1].budget.cap:"},
		"fail/unknown hours field":        {when(`{"hours":{"tz":"UTC","weekdays":["mon"]}}`), "rules[1].when.hours.weekdays:"},
		"fail/unknown typed_data field":   {when(`{"typed_data":{"primaryType":"Permit"}}`), "rules[1].when.typed_data.primaryType:"},
		"fail/rules not list":             {`{"rules":{}}`, "rules:"},
		"fail/257 rules":                  {rulesDoc(257), "rules:"},
		"fail/1 MiB document":             {`{"rules":[],"default":"human"` + strings.Repeat(" ", 1<<20) + `}`, "policy:"},
		"fail/64 KiB + 1":                 {`{"rules":[]` + strings.Repeat(" ", MaxDocument-len(`{"rules":[]}`)+1) + `}`, "policy:"},
		"fail/duplicate rule id":          {rule(`{"id":"ok","then":"deny"}`), "rules[1].id:"},
		"fail/id missing":                 {rule(`{"then":"deny"}`), "rules[1].id:"},
		"fail/id uppercase":               {rule(`{"id":"Big","then":"deny"}`), "rules[1].id:"},
		"fail/id empty":                   {rule(`{"id":"","then":"deny"}`), "rules[1].id:"},
		"fail/id starts with dash":        {rule(`{"id":"-a","then":"deny"}`), "rules[1].id:"},
		"fail/id too long":                {rule(`{"id":"` + strings.Repeat("a", 65) + `","then":"deny"}`), "rules[1].id:"},
		"fail/id reserved default":        {rule(`{"id":"default","then":"deny"}`), "rules[1].id:"},
		"fail/id a number":                {rule(`{"id":7,"then":"deny"}`), "rules[1].id:"},
		"fail/then missing":               {rule(`{"id":"x"}`), "rules[1].then:"},
		"fail/then unknown":               {rule(`{"id":"x","then":"allow"}`), "rules[1].then:"},
		"fail/default auto":               {`{"rules":[],"default":"auto"}`, "default:"},
		"fail/default quorum":             {`{"rules":[],"default":"quorum"}`, "default:"},
		"fail/default delay":              {`{"rules":[],"default":"delay"}`, "default:"},
		"fail/default unknown":            {`{"rules":[],"default":"ask"}`, "default:"},
		"fail/negative amount":            {when(`{"min_amount":"-1"}`), "rules[1].when.min_amount"},
		"fail/fractional amount":          {when(`{"max_amount":"1.5"}`), "rules[1].when.max_amount"},
		"fail/exponent amount":            {when(`{"max_amount":"1e18"}`), "rules[1].when.max_amount"},
		"fail/amount as number":           {when(`{"max_amount":1000}`), "rules[1].when.max_amount:"},
		"fail/amount 2^256":               {when(`{"max_amount":"115792089237316195423570985008687907853269984665640564039457584007913129639936"}`), "rules[1].when.max_amount"},
		"fail/amount hex":                 {when(`{"max_amount":"0x10"}`), "rules[1].when.max_amount"},
		"fail/amount leading zero":        {when(`{"max_amount":"010"}`), "rules[1].when.max_amount"},
		"fail/amount empty":               {when(`{"max_amount":""}`), "rules[1].when.max_amount"},
		"fail/min above max":              {when(`{"min_amount":"2","max_amount":"1"}`), "rules[1].when.min_amount:"},
		"fail/negative budget":            {budget(`{"max":"-5","window":"1h"}`), "rules[1].budget.max"},
		"fail/fractional budget":          {budget(`{"max":"0.5","window":"1h"}`), "rules[1].budget.max"},
		"fail/budget max missing":         {budget(`{"window":"1h"}`), "rules[1].budget.max:"},
		"fail/window missing":             {budget(`{"max":"1"}`), "rules[1].budget.window:"},
		"fail/window 0":                   {budget(`{"max":"1","window":"0h"}`), "rules[1].budget.window:"},
		"fail/window 366d":                {budget(`{"max":"1","window":"366d"}`), "rules[1].budget.window:"},
		"fail/window 8761h":               {budget(`{"max":"1","window":"8761h"}`), "rules[1].budget.window:"},
		"fail/window huge":                {budget(`{"max":"1","window":"99999999999d"}`), "rules[1].budget.window:"},
		"fail/window no unit":             {budget(`{"max":"1","window":"24"}`), "rules[1].budget.window:"},
		"fail/window compound":            {budget(`{"max":"1","window":"1h30m"}`), "rules[1].budget.window:"},
		"fail/window negative":            {budget(`{"max":"1","window":"-1h"}`), "rules[1].budget.window:"},
		"fail/window week unit":           {budget(`{"max":"1","window":"1w"}`), "rules[1].budget.window:"},
		"fail/window number":              {budget(`{"max":"1","window":3600}`), "rules[1].budget.window:"},
		"fail/scope unknown":              {budget(`{"max":"1","window":"1h","scope":"user"}`), "rules[1].budget.scope:"},
		"fail/budget without asset":       {rule(`{"id":"b","when":{"max_amount":"5"},"then":"auto","budget":{"max":"1","window":"1h"}}`), "rules[1].budget:"},
		"fail/budget kind erc20 only":     {rule(`{"id":"b","when":{"kind":["erc20"]},"then":"auto","budget":{"max":"1","window":"1h"}}`), "rules[1].budget:"},
		"fail/budget on deny":             {rule(`{"id":"b","when":{"asset":"native"},"then":"deny","budget":{"max":"1","window":"1h"}}`), "rules[1].budget:"},
		"fail/overflow without budget":    {rule(`{"id":"b","then":"auto","overflow":"deny"}`), "rules[1].overflow:"},
		"fail/overflow auto":              {rule(`{"id":"b","when":{"asset":"native"},"then":"auto","budget":{"max":"1","window":"1h"},"overflow":"auto"}`), "rules[1].overflow:"},
		"fail/overflow delay":             {rule(`{"id":"b","when":{"asset":"native"},"then":"auto","budget":{"max":"1","window":"1h"},"overflow":"delay"}`), "rules[1].overflow:"},
		"fail/overflow quorum no count":   {rule(`{"id":"b","when":{"asset":"native"},"then":"auto","budget":{"max":"1","window":"1h"},"overflow":"quorum"}`), "rules[1].quorum:"},
		"fail/quorum missing":             {rule(`{"id":"q","then":"quorum"}`), "rules[1].quorum:"},
		"fail/quorum 0":                   {rule(`{"id":"q","then":"quorum","quorum":0}`), "rules[1].quorum:"},
		"fail/quorum negative":            {rule(`{"id":"q","then":"quorum","quorum":-1}`), "rules[1].quorum:"},
		"fail/quorum fraction":            {rule(`{"id":"q","then":"quorum","quorum":1.5}`), "rules[1].quorum:"},
		"fail/quorum too large":           {rule(`{"id":"q","then":"quorum","quorum":65}`), "rules[1].quorum:"},
		"fail/quorum string":              {rule(`{"id":"q","then":"quorum","quorum":"2"}`), "rules[1].quorum:"},
		"fail/quorum on human":            {rule(`{"id":"q","then":"human","quorum":2}`), "rules[1].quorum:"},
		"fail/delay missing":              {rule(`{"id":"d","then":"delay"}`), "rules[1].delay:"},
		"fail/delay 0":                    {rule(`{"id":"d","then":"delay","delay":"0m"}`), "rules[1].delay:"},
		"fail/delay over a year":          {rule(`{"id":"d","then":"delay","delay":"400d"}`), "rules[1].delay:"},
		"fail/delay on auto":              {rule(`{"id":"d","then":"auto","delay":"1m"}`), "rules[1].delay:"},
		"fail/kind unknown":               {when(`{"kind":["bitcoin"]}`), "rules[1].when.kind[0]:"},
		"fail/kind empty list":            {when(`{"kind":[]}`), "rules[1].when.kind:"},
		"fail/kind duplicate":             {when(`{"kind":["native","native"]}`), "rules[1].when.kind[1]:"},
		"fail/kind string":                {when(`{"kind":"native"}`), "rules[1].when.kind:"},
		"fail/asset bad":                  {when(`{"asset":"usdc"}`), "rules[1].when.asset:"},
		"fail/asset short address":        {when(`{"asset":"0x1234"}`), "rules[1].when.asset:"},
		"fail/to bad address":             {when(`{"to":["0x1111111111111111111111111111111111111111","vitalik.eth"]}`), "rules[1].when.to[1]:"},
		"fail/to bad EIP-55 checksum":     {when(`{"to":["0xA0b86991c6218b36c1d19d4a2e9Eb0cE3606eB48"]}`), "rules[1].when.to[0]:"},
		"fail/asset bad EIP-55 checksum":  {when(`{"asset":"0xa0B86991c6218b36c1d19D4a2e9Eb0cE3606eB48"}`), "rules[1].when.asset:"},
		"fail/to duplicate":               {when(`{"to":["0x1111111111111111111111111111111111111111","0x1111111111111111111111111111111111111111"]}`), "rules[1].when.to[1]:"},
		"fail/not_to not list":            {when(`{"not_to":"0x1111111111111111111111111111111111111111"}`), "rules[1].when.not_to:"},
		"fail/selector short":             {when(`{"selectors":["0xa9059c"]}`), "rules[1].when.selectors[0]:"},
		"fail/selector no 0x":             {when(`{"selectors":["a9059cbb"]}`), "rules[1].when.selectors[0]:"},
		"fail/chain_id zero":              {when(`{"chain_id":[0]}`), "rules[1].when.chain_id[0]:"},
		"fail/chain_id string":            {when(`{"chain_id":["1"]}`), "rules[1].when.chain_id[0]:"},
		"fail/chain_id negative":          {when(`{"chain_id":[-1]}`), "rules[1].when.chain_id[0]:"},
		"fail/chain_id huge":              {when(`{"chain_id":[99999999999999999999]}`), "rules[1].when.chain_id[0]:"},
		"fail/invalid UTF-8":              {"{\"rules\":[{\"id\":\"a\",\"when\":{\"typed_data\":{\"primary_type\":\"P\xffermit\"}},\"then\":\"deny\"}]}", "policy:"},
		"fail/typed_data type with space": {when(`{"typed_data":{"primary_type":"Permit "}}`), "rules[1].when.typed_data.primary_type:"},
		"fail/typed_data type confusable": {when(`{"typed_data":{"primary_type":"P\u0435rmit"}}`), "rules[1].when.typed_data.primary_type:"},
		"fail/typed_data empty":           {when(`{"typed_data":{}}`), "rules[1].when.typed_data:"},
		"fail/typed_data bad contract":    {when(`{"typed_data":{"verifying_contract":"x"}}`), "rules[1].when.typed_data.verifying_contract:"},
		"fail/new_recipient string":       {when(`{"new_recipient":"yes"}`), "rules[1].when.new_recipient:"},
		"fail/hours no tz":                {when(`{"hours":{"days":["mon"]}}`), "rules[1].when.hours.tz:"},
		"fail/hours unknown tz":           {when(`{"hours":{"tz":"Mars/Olympus"}}`), "rules[1].when.hours.tz:"},
		"fail/hours Local tz":             {when(`{"hours":{"tz":"Local"}}`), "rules[1].when.hours.tz:"},
		"fail/hours tz path traversal":    {when(`{"hours":{"tz":"../../etc/passwd"}}`), "rules[1].when.hours.tz:"},
		"fail/hours bad day":              {when(`{"hours":{"tz":"UTC","days":["monday"]}}`), "rules[1].when.hours.days[0]:"},
		"fail/hours duplicate day":        {when(`{"hours":{"tz":"UTC","days":["mon","mon"]}}`), "rules[1].when.hours.days[1]:"},
		"fail/hours from only":            {when(`{"hours":{"tz":"UTC","from":"09:00"}}`), "rules[1].when.hours:"},
		"fail/hours bad time":             {when(`{"hours":{"tz":"UTC","from":"9:00","to":"18:00"}}`), "rules[1].when.hours.from:"},
		"fail/hours 25:00":                {when(`{"hours":{"tz":"UTC","from":"09:00","to":"25:00"}}`), "rules[1].when.hours.to:"},
		"fail/hours from 24:00":           {when(`{"hours":{"tz":"UTC","from":"24:00","to":"06:00"}}`), "rules[1].when.hours.from:"},
		"fail/hours from equals to":       {when(`{"hours":{"tz":"UTC","from":"09:00","to":"09:00"}}`), "rules[1].when.hours.to:"},
		"fail/when not object":            {rule(`{"id":"x","when":[],"then":"deny"}`), "rules[1].when:"},
		"fail/deep nesting":               {when(`{"typed_data":{"primary_type":[[[[[[[[[[1]]]]]]]]]]}}`), "rules[1].when.typed_data.primary_type"},
		"fail/null rule":                  {`{"rules":[null]}`, "rules[0]:"},
		"fail/error names path in third":  {`{"rules":[{"id":"a","then":"deny"},{"id":"b","then":"deny"},{"id":"c","when":{"asset":"native"},"then":"auto","budget":{"max":"1","window":"0d"}}]}`, "rules[2].budget.window:"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			p, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatalf("parsed: %s", p.Marshal())
			}
			var e *countersign.Error
			if !errors.As(err, &e) || e.Code != countersign.BadRequest {
				t.Fatalf("err = %#v, want a BadRequest *countersign.Error", err)
			}
			if !strings.HasPrefix(e.Detail, tt.path) {
				t.Fatalf("detail %q does not start with %q", e.Detail, tt.path)
			}
		})
	}
}

// TestParse_TZDataEmbedded checks the zone a rule names resolves without
// the host's zoneinfo: the package imports time/tzdata.
func TestParse_TZDataEmbedded(t *testing.T) {
	t.Setenv("ZONEINFO", "/nonexistent")
	p := mustParse(t, `{"rules":[{"id":"a","when":{"hours":{"tz":"Asia/Kathmandu","from":"09:00","to":"10:00"}},"then":"deny"}]}`)
	at := time.Date(2026, 1, 5, 3, 20, 0, 0, time.UTC) // 09:05 in Kathmandu (+05:45)
	if !p.Rules[0].When.Hours.contains(at) {
		t.Fatal("Asia/Kathmandu 09:05 is not in 09:00–10:00")
	}
}
