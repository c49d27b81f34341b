package main

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// The policy engine end to end (docs/POLICY.md): through the real wiring,
// the HTTP server and the embedded chain, with the injected clock.

type policyFixture struct {
	e        *env
	u        *user
	walletID string
	address  string
	agentID  string
	key      string
}

func newPolicyFixture(t *testing.T) *policyFixture {
	e := newEnv(t)
	u := e.newUser(true)
	r := e.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password}).must(t, 201)
	f := &policyFixture{e: e, u: u, walletID: r.str("wallet_id"), address: r.str("address")}
	f.agentID, f.key = e.createAgent(u, f.address)
	return f
}

// put sets a policy document (a JSON object without mfa_code) on path.
func (f *policyFixture) put(path, doc string) resp {
	body := strings.Replace(doc, "{", fmt.Sprintf(`{"mfa_code":%q,`, f.e.code(f.u)), 1)
	return f.e.do("PUT", path, bearer(f.u.token), body)
}

func (f *policyFixture) prepare(key string, amount, to string) resp {
	return f.e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": to, "amount": amount})
}

const payee = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"

func TestPolicy_AutoExecutesWithNoHumanAndOverBudgetFallsToHuman(t *testing.T) {
	f := newPolicyFixture(t)
	e := f.e
	e.do("POST", "/api/dev/faucet", bearer(f.u.token), map[string]string{"address": f.address, "amount": "1000000000000000000"}).must(t, 200)
	f.put("/api/agents/"+f.agentID+"/policy", `{"rules":[{"id":"inference","when":{"kind":["native"],"max_amount":"1000000000000000"},
	  "then":"auto","budget":{"max":"1500000000000000","window":"24h"}}],"default":"human"}`).must(t, 200)

	r := f.prepare(f.key, "1000000000000000", payee).must(t, 202)
	if r.str("status") != "authorized" || r.str("decision") != "auto" || r.str("rule_id") != "inference" {
		t.Fatalf("auto: %s", r.raw)
	}
	if _, ok := r.body["review"].(map[string]any); !ok {
		t.Fatalf("no decoded view in prepare's answer: %s", r.raw)
	}
	id := r.str("transaction_id")
	x := e.do("POST", "/api/execute_transaction", apiKey(f.key), map[string]string{"transaction_id": id}).must(t, 201)
	if x.str("tx_hash") == "" {
		t.Fatalf("execute: %s", x.raw)
	}
	// over the budget: a human decides, and the answer says why
	over := f.prepare(f.key, "1000000000000000", payee).must(t, 202)
	if over.str("status") != "pending" || over.str("decision") != "human" || over.str("rule_id") != "inference" || !strings.Contains(over.raw, "exceed the budget") {
		t.Fatalf("over budget: %s", over.raw)
	}
	st := e.do("GET", "/api/transaction_status?transaction_id="+over.str("transaction_id"), apiKey(f.key), nil).must(t, 200)
	if st.str("decision") != "human" || st.body["approvals"] == nil || st.body["approvals_needed"] != float64(1) {
		t.Fatalf("status fields: %s", st.raw)
	}
	// the agent sees its own policy and budget
	b := e.do("GET", "/api/budget", apiKey(f.key), nil).must(t, 200)
	if !strings.Contains(b.raw, `"spent":"1000000000000000"`) || !strings.Contains(b.raw, `"remaining":"500000000000000"`) {
		t.Fatalf("budget: %s", b.raw)
	}
	p := e.do("GET", "/api/policy", apiKey(f.key), nil).must(t, 200)
	if !strings.Contains(p.raw, `"inference"`) {
		t.Fatalf("policy: %s", p.raw)
	}
}

func TestPolicy_DenyNamesTheRule(t *testing.T) {
	f := newPolicyFixture(t)
	f.put("/api/wallets/"+f.walletID+"/policy", `{"rules":[{"id":"no-burn","when":{"to":["0x0000000000000000000000000000000000000000"]},"then":"deny"}]}`).must(t, 200)
	r := f.prepare(f.key, "1", "0x0000000000000000000000000000000000000000").refused(t, 403, "POLICY_DENIED")
	e, _ := r.body["error"].(map[string]any)
	if e["rule_id"] != "no-burn" || !strings.Contains(fmt.Sprint(e["detail"]), "no-burn") {
		t.Fatalf("deny body: %s", r.raw)
	}
	list := f.e.do("GET", "/api/transactions", apiKey(f.key), nil).must(t, 200)
	if strings.Contains(list.raw, "transaction_id") {
		t.Fatalf("a denied request was stored: %s", list.raw)
	}
	// /eth carries the rule too
	rpc := f.e.do("POST", "/eth", apiKey(f.key), map[string]any{"jsonrpc": "2.0", "id": 1, "method": "eth_sendTransaction",
		"params": []any{map[string]string{"from": f.address, "to": "0x0000000000000000000000000000000000000000", "value": "0x1"}}}).must(t, 200)
	if !strings.Contains(rpc.raw, `"rule_id":"no-burn"`) {
		t.Fatalf("/eth: %s", rpc.raw)
	}
}

func TestPolicy_DelayAuthorizesAfterItsWindowAndARejectWins(t *testing.T) {
	f := newPolicyFixture(t)
	e := f.e
	f.put("/api/agents/"+f.agentID+"/policy", `{"rules":[{"id":"cool","when":{"kind":["native"]},"then":"delay","delay":"15m"}]}`).must(t, 200)
	a := f.prepare(f.key, "1", payee).must(t, 202)
	b := f.prepare(f.key, "2", payee).must(t, 202)
	if a.str("status") != "pending" || a.str("decision") != "delay" || a.body["authorize_at"] == nil {
		t.Fatalf("delay: %s", a.raw)
	}
	e.do("POST", "/api/authorize_transaction", bearer(f.u.token), map[string]string{"transaction_id": b.str("transaction_id"), "mfa_code": e.code(f.u), "decision": "reject"}).must(t, 200)
	e.clock.Advance(16 * time.Minute)
	e.waitStatus(apiKey(f.key), a.str("transaction_id"), "authorized")
	if st := e.do("GET", "/api/transaction_status?transaction_id="+b.str("transaction_id"), apiKey(f.key), nil).must(t, 200); st.str("status") != "rejected" {
		t.Fatalf("the reject inside the delay did not win: %s", st.raw)
	}
}

func TestPolicy_DryRunEqualsTheRealOutcome(t *testing.T) {
	f := newPolicyFixture(t)
	e := f.e
	addApprover(t, e, f.u, f.walletID, e.newUser(true)) // a quorum of 2 needs a second approver
	f.put("/api/agents/"+f.agentID+"/policy", `{"rules":[
	  {"id":"no-burn","when":{"to":["0x0000000000000000000000000000000000000000"]},"then":"deny"},
	  {"id":"tiny","when":{"kind":["native"],"max_amount":"100"},"then":"auto","budget":{"max":"250","window":"24h"}},
	  {"id":"big","when":{"kind":["native"],"min_amount":"1000000"},"then":"quorum","quorum":2}]}`).must(t, 200)
	cases := []struct{ amount, to, want string }{
		{"1", "0x0000000000000000000000000000000000000000", "deny/no-burn"},
		{"100", payee, "auto/tiny"}, {"100", payee, "auto/tiny"}, {"100", payee, "human/tiny"},
		{"5000", payee, "human/default"}, {"2000000", payee, "quorum/big"},
	}
	for i, c := range cases {
		body := map[string]string{"type": "native", "to_address": c.to, "amount": c.amount}
		sim := e.do("POST", "/api/policy/simulate", apiKey(f.key), body).must(t, 200)
		owner := e.do("POST", "/api/agents/"+f.agentID+"/policy/simulate", bearer(f.u.token), body).must(t, 200)
		got := sim.str("decision") + "/" + sim.str("rule_id")
		if og := owner.str("decision") + "/" + owner.str("rule_id"); og != got {
			t.Fatalf("case %d: owner's dry run %s, agent's %s", i, og, got)
		}
		r := f.prepare(f.key, c.amount, c.to)
		real := r.str("decision") + "/" + r.str("rule_id")
		if r.code() == "POLICY_DENIED" {
			e, _ := r.body["error"].(map[string]any)
			real = "deny/" + fmt.Sprint(e["rule_id"])
		}
		if got != c.want || real != c.want {
			t.Fatalf("case %d: dry run %s, real %s, want %s (%s)", i, got, real, c.want, sim.raw)
		}
	}
}

// TestMoney_PolicyConcurrentPreparesShareAWalletBudget: 200 prepares at
// once from four agents against one wallet-scope budget, through the HTTP
// server, never reserve past its max; cancelling restores it exactly.
func TestMoney_PolicyConcurrentPreparesShareAWalletBudget(t *testing.T) {
	f := newPolicyFixture(t)
	e := f.e
	keys := []string{f.key}
	for range 3 {
		_, k := e.createAgent(f.u, f.address)
		keys = append(keys, k)
	}
	f.put("/api/wallets/"+f.walletID+"/policy", `{"rules":[{"id":"cap","when":{"kind":["native"]},"then":"delay","delay":"1h",
	  "budget":{"max":"41000","window":"24h","scope":"wallet"},"overflow":"deny"}]}`).must(t, 200)
	var wg sync.WaitGroup
	var mu sync.Mutex
	kept := map[string]string{} // transaction → agent key
	denied := 0
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := keys[i%len(keys)]
			r := f.prepare(k, "1000", payee)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case r.status == 202:
				kept[r.str("transaction_id")] = k
			case r.code() == "POLICY_DENIED":
				denied++
			default:
				t.Errorf("prepare: %d %s", r.status, r.raw)
			}
		}()
	}
	wg.Wait()
	if len(kept) != 41 || denied != 159 {
		t.Fatalf("%d kept, %d denied; want 41 and 159", len(kept), denied)
	}
	b := e.do("GET", "/api/budget", apiKey(f.key), nil).must(t, 200)
	if !strings.Contains(b.raw, `"reserved":"41000"`) || !strings.Contains(b.raw, `"remaining":"0"`) {
		t.Fatalf("budget after the race: %s", b.raw)
	}
	for id, k := range kept {
		e.do("POST", "/api/cancel_transaction", apiKey(k), map[string]string{"transaction_id": id}).must(t, 200)
	}
	b = e.do("GET", "/api/budget", apiKey(f.key), nil).must(t, 200)
	if !strings.Contains(b.raw, `"reserved":"0"`) || !strings.Contains(b.raw, `"remaining":"41000"`) || !strings.Contains(b.raw, `"spent":"0"`) {
		t.Fatalf("budget after cancelling: %s", b.raw)
	}
}

func TestSecurity_PolicyBadDocumentsNameTheFieldAndChangeNothing(t *testing.T) {
	f := newPolicyFixture(t)
	e := f.e
	path := "/api/agents/" + f.agentID + "/policy"
	f.put(path, `{"rules":[{"id":"a","when":{},"then":"human"}]}`).must(t, 200)
	before := e.do("GET", path, bearer(f.u.token), nil).must(t, 200).raw
	huge := `{"rules":[` + strings.Repeat(`{"id":"x","when":{},"then":"human"},`, 40000) + `{"id":"y","when":{},"then":"human"}]}`
	rules := make([]string, 257)
	for i := range rules {
		rules[i] = fmt.Sprintf(`{"id":"r%d","when":{},"then":"human"}`, i)
	}
	for doc, field := range map[string]string{
		`{"rules":[{"id":"a","when":{"colour":"red"},"then":"human"}]}`:                       "rules[0].when.colour",
		`{"rules":[{"id":"a","when":{"min_amount":"-5"},"then":"human"}]}`:                    "rules[0].when.min_amount",
		`{"rules":[{"id":"a","when":{"max_amount":"0.5"},"then":"human"}]}`:                   "rules[0].when.max_amount",
		`{"rules":[{"id":"a","when":{},"then":"auto","budget":{"max":"1","window":"0s"}}]}`:   "rules[0].budget.window",
		`{"rules":[{"id":"a","when":{},"then":"auto","budget":{"max":"1","window":"366d"}}]}`: "rules[0].budget.window",
		`{"rules":[],"surprise":true}`:                                                        "surprise",
		`{"rules":[` + strings.Join(rules, ",") + `]}`:                                        "rules",
		huge: "",
	} {
		r := f.put(path, doc).refused(t, 400, "BAD_REQUEST")
		e, _ := r.body["error"].(map[string]any)
		if !strings.HasPrefix(fmt.Sprint(e["detail"]), field) {
			t.Fatalf("detail %q does not name %q", e["detail"], field)
		}
	}
	if after := e.do("GET", path, bearer(f.u.token), nil).must(t, 200).raw; after != before {
		t.Fatalf("a refused document changed the policy:\n%s\n%s", before, after)
	}
	// without a valid code nothing changes either
	bad := e.do("PUT", path, bearer(f.u.token), `{"mfa_code":"000000","rules":[{"id":"free","when":{},"then":"auto"}]}`)
	if bad.status != 403 {
		t.Fatalf("wrong code: %s", bad.raw)
	}
	// an agent can read but never change it
	e.do("PUT", path, apiKey(f.key), `{"mfa_code":"000000","rules":[]}`).refused(t, 403, "FORBIDDEN")
}

// TestPolicy_MCPToolsAndRuleIDs: budget_remaining, simulate_transaction,
// and a denied prepare's tool error naming the rule.
func TestPolicy_MCPToolsAndRuleIDs(t *testing.T) {
	f := newPolicyFixture(t)
	f.put("/api/agents/"+f.agentID+"/policy", `{"rules":[
	  {"id":"no-burn","when":{"to":["0x0000000000000000000000000000000000000000"]},"then":"deny"},
	  {"id":"tiny","when":{"kind":["native"],"max_amount":"100"},"then":"auto","budget":{"max":"250","window":"24h"}}]}`).must(t, 200)
	s, err := mcpConnect(t, f.e.url, f.key)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, res := callTool(t, s, "simulate_transaction", map[string]any{"type": "native", "to_address": payee, "amount": "100"})
	if res.IsError || out["decision"] != "auto" || out["rule_id"] != "tiny" {
		t.Fatalf("simulate_transaction: %s", toolText(res))
	}
	_, res = callTool(t, s, "prepare_transaction", map[string]any{"type": "native", "to_address": payee, "amount": "100"})
	if res.IsError {
		t.Fatalf("prepare: %s", toolText(res))
	}
	_, res = callTool(t, s, "budget_remaining", nil)
	if res.IsError || !strings.Contains(toolText(res), `"reserved":"100"`) || !strings.Contains(toolText(res), `"remaining":"150"`) {
		t.Fatalf("budget_remaining: %s", toolText(res))
	}
	_, res = callTool(t, s, "prepare_transaction", map[string]any{"type": "native", "to_address": "0x0000000000000000000000000000000000000000", "amount": "1"})
	if !res.IsError || !strings.Contains(toolText(res), "POLICY_DENIED") || !strings.Contains(toolText(res), "no-burn") {
		t.Fatalf("denied tool error: %s", toolText(res))
	}
	if sc, _ := res.StructuredContent.(map[string]any); sc == nil || !strings.Contains(fmt.Sprint(sc["error"]), "rule_id:no-burn") {
		t.Fatalf("structured tool error: %#v", res.StructuredContent)
	}
}
