package main

import (
	"bufio"
	"context"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
)

// The policy issue's loose ends through the real server: quorums checked
// at save and on removal, the live stream for approvers, the users'
// webhooks deleted, invitations listed and revoked, /eth naming what it
// waits for, the UI's withdraw and approver freeze.

// sseEvents reads an event stream into a channel of (type, data) pairs.
type sseEvent struct{ typ, data string }

func openSSE(t *testing.T, c *http.Client, rawURL string, hdr ...string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", rawURL, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream %s: %d %s", rawURL, res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 256)
	sc := bufio.NewScanner(res.Body)
	line := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return sc.Text(), true
	}
	// wait for the "connected" comment: the stream's cursor is set by then
	for {
		l, ok := line()
		if !ok || l == ": connected" {
			break
		}
	}
	go func() {
		defer res.Body.Close()
		defer close(out)
		var typ string
		for {
			l, ok := line()
			if !ok {
				return
			}
			if v, ok := strings.CutPrefix(l, "event: "); ok {
				typ = v
			}
			if v, ok := strings.CutPrefix(l, "data: "); ok {
				out <- sseEvent{typ, v}
			}
		}
	}()
	return out
}

// waitEvent returns the first event of typ about subject, failing on any
// event about one of the forbidden subjects first.
func waitEvent(t *testing.T, ch <-chan sseEvent, typ, subject string, forbidden ...string) {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("the stream ended before %s of %s", typ, subject)
			}
			for _, f := range forbidden {
				if strings.Contains(e.data, f) {
					t.Fatalf("the stream carries another wallet's %s: %s", e.typ, e.data)
				}
			}
			if e.typ == typ && strings.Contains(e.data, subject) {
				return
			}
		case <-timeout:
			t.Fatalf("no %s of %s on the stream", typ, subject)
		}
	}
}

func TestSecurity_SSEApproverSeesOnlyTheirWallet(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, key := setup(t, e)
	walletID := walletIDOf(t, e, owner, wallet)
	bob := e.newUser(true)
	addApprover(t, e, owner, walletID, bob)
	wallet2 := e.createWallet(owner)
	_, key2 := e.createAgent(owner, wallet2)

	api := openSSE(t, http.DefaultClient, e.url+"/api/events", "Authorization", "Bearer "+bob.token)
	jar, _ := cookiejar.New(nil)
	ui := noRedirectClient(jar)
	ui.Timeout = 0
	uiLogin(t, e, ui, bob)
	page := openSSE(t, ui, e.url+"/ui/events")
	ownerStream := openSSE(t, http.DefaultClient, e.url+"/api/events", "Authorization", "Bearer "+owner.token)

	other := e.do("POST", "/api/prepare_transaction", apiKey(key2), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	mine := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	// wallet B's request came first: a stream that carried it would show it before A's
	waitEvent(t, api, "transaction.pending", mine, other)
	waitEvent(t, page, "transaction.pending", mine, other)
	// the owner's stream is unchanged: both wallets
	waitEvent(t, ownerStream, "transaction.pending", other)
	waitEvent(t, ownerStream, "transaction.pending", mine)
	// quorum progress reaches the approver too
	e.do("PUT", "/api/wallets/"+walletID+"/policy", bearer(owner.token), map[string]any{"mfa_code": e.code(owner),
		"rules": []any{map[string]any{"id": "two", "when": map[string]any{}, "then": "quorum", "quorum": 2}}}).must(t, 200)
	q := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(owner.token), map[string]string{"transaction_id": q, "mfa_code": e.code(owner)}).must(t, 200)
	waitEvent(t, api, "quorum.progress", q, other)
}

func TestPolicy_QuorumCheckedAgainstApproversAPI(t *testing.T) {
	f := newPolicyFixture(t)
	e := f.e
	doc := `{"rules":[{"id":"a","when":{"kind":["erc20"]},"then":"human"},{"id":"two","when":{},"then":"quorum","quorum":2}]}`
	r := f.put("/api/wallets/"+f.walletID+"/policy", doc).refused(t, 400, "BAD_REQUEST")
	if !strings.Contains(r.raw, "rules[1].quorum") || !strings.Contains(r.raw, "1 approver(s)") {
		t.Fatalf("refusal: %s", r.raw)
	}
	if g := e.do("GET", "/api/wallets/"+f.walletID+"/policy", bearer(f.u.token), nil).must(t, 200); g.body["policy"] != nil {
		t.Fatalf("a refused policy was stored: %s", g.raw)
	}
	bob := e.newUser(true)
	addApprover(t, e, f.u, f.walletID, bob)
	f.put("/api/wallets/"+f.walletID+"/policy", doc).must(t, 200)
	rm := e.do("DELETE", "/api/wallets/"+f.walletID+"/approvers/"+userIDOf(t, e, bob), bearer(f.u.token), map[string]string{"mfa_code": e.code(f.u)}).refused(t, 409, "CONFLICT")
	if !strings.Contains(rm.raw, "quorum of 2") {
		t.Fatalf("removal refusal: %s", rm.raw)
	}
	if list := e.do("GET", "/api/wallets/"+f.walletID+"/approvers", bearer(f.u.token), nil).must(t, 200).body["approvers"].([]any); len(list) != 2 {
		t.Fatalf("approvers after a refused removal: %v", list)
	}
}

// userIDOf is u's id, from the approvers list of a wallet u approves or
// from u's own audit log.
func userIDOf(t *testing.T, e *env, u *user) string {
	t.Helper()
	for _, a := range e.do("GET", "/api/audit", bearer(u.token), nil).must(t, 200).body["entries"].([]any) {
		if m := a.(map[string]any); m["action"] == "user.register" {
			return m["subject"].(string)
		}
	}
	t.Fatal("no user id")
	return ""
}

func TestWebhooks_UserDeleteStopsDeliveriesAndIsAudited(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	e := newEnv(t, fastDaemon, allowLoopbackHooks)
	owner, _, _, key := setup(t, e)
	wh := e.do("POST", "/api/webhooks", bearer(owner.token), map[string]any{"url": srv.URL + "/hook", "events": []string{"transaction.pending"}}).must(t, 201).str("webhook_id")
	created := false
	for _, a := range e.do("GET", "/api/audit", bearer(owner.token), nil).must(t, 200).body["entries"].([]any) {
		if m := a.(map[string]any); m["action"] == "webhook.create" {
			created = true
			if m["actor"] != "user:"+userIDOf(t, e, owner) {
				t.Fatalf("a user's webhook audited as %v", m["actor"])
			}
		}
	}
	if !created {
		t.Fatal("webhook.create not audited")
	}
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202)
	waitUntil(t, "the first delivery", func() bool { return rcv.count() >= 1 })
	stranger := e.newUser(true)
	e.do("DELETE", "/api/webhooks/"+wh, bearer(stranger.token), nil).refused(t, 404, "NOT_FOUND")
	e.do("DELETE", "/api/webhooks/"+wh, bearer(owner.token), nil).must(t, 200)
	e.do("DELETE", "/api/webhooks/"+wh, bearer(owner.token), nil).refused(t, 404, "NOT_FOUND")
	if hs := e.do("GET", "/api/webhooks", bearer(owner.token), nil).must(t, 200); len(hs.body["webhooks"].([]any)) != 0 {
		t.Fatalf("webhooks after the delete: %s", hs.raw)
	}
	before := rcv.count()
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202)
	time.Sleep(300 * time.Millisecond) // the worker runs every 20 ms
	if rcv.count() != before {
		t.Fatalf("a deleted webhook got %d more deliveries", rcv.count()-before)
	}
	deleted := false
	for _, a := range e.do("GET", "/api/audit", bearer(owner.token), nil).must(t, 200).body["entries"].([]any) {
		m := a.(map[string]any)
		deleted = deleted || (m["action"] == "webhook.delete" && m["subject"] == wh)
	}
	if !deleted {
		t.Fatal("webhook.delete not audited")
	}
}

func TestInvitations_ListedNamedAndRevoked(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, _ := setup(t, e)
	walletID := walletIDOf(t, e, owner, wallet)
	bob := e.newUser(true)
	inv := e.do("POST", "/api/wallets/"+walletID+"/approvers", bearer(owner.token), map[string]string{"username": bob.name, "mfa_code": e.code(owner)}).must(t, 201).str("invitation_id")
	ap := e.do("GET", "/api/wallets/"+walletID+"/approvers", bearer(owner.token), nil).must(t, 200)
	sent, _ := ap.body["invitations"].([]any)
	if len(sent) != 1 || sent[0].(map[string]any)["invitation_id"] != inv || sent[0].(map[string]any)["username"] != bob.name {
		t.Fatalf("the owner's view: %s", ap.raw)
	}
	mine := e.do("GET", "/api/approvals/invitations", bearer(bob.token), nil).must(t, 200).body["invitations"].([]any)
	m := mine[0].(map[string]any)
	if m["wallet_address"] != wallet || m["owner_username"] != owner.name || m["wallet_name"] == nil {
		t.Fatalf("the invitee's view: %v", m)
	}
	e.do("DELETE", "/api/approvals/invitations/"+inv, bearer(e.newUser(true).token), nil).refused(t, 404, "NOT_FOUND")
	e.do("DELETE", "/api/approvals/invitations/"+inv, bearer(owner.token), nil).must(t, 200)
	e.do("POST", "/api/approvals/invitations/"+inv+"/accept", bearer(bob.token), map[string]string{"mfa_code": e.code(bob)}).refused(t, 404, "NOT_FOUND")
	if list := e.do("GET", "/api/approvals/invitations", bearer(bob.token), nil).must(t, 200).body["invitations"].([]any); len(list) != 0 {
		t.Fatalf("a revoked invitation is still open: %v", list)
	}
}

func TestEth_WaitingMessageNamesTheDecision(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ApprovalWait = 300 * time.Millisecond })
	owner, wallet, agentID, key := setup(t, e)
	walletID := walletIDOf(t, e, owner, wallet)
	put := func(path, doc string) {
		body := strings.Replace(doc, "{", `{"mfa_code":"`+e.code(owner)+`",`, 1)
		e.do("PUT", path, bearer(owner.token), body).must(t, 200)
	}
	data := func(r rpcOut) map[string]any {
		var d map[string]any
		if r.Error == nil || r.Error.Code != -32002 || json.Unmarshal(r.Error.Data, &d) != nil {
			t.Fatalf("want -32002 pending, got %+v", r)
		}
		return d
	}
	// auto answers at once with the hash, no human (the wait is 300 ms; a
	// pending answer would be -32002). First: on a quorum wallet the
	// loosening to auto would wait for the quorum.
	put("/api/agents/"+agentID+"/policy", `{"rules":[{"id":"small","when":{"kind":["native"]},"then":"auto","budget":{"max":"100","window":"24h"}}]}`)
	r := e.rpc(key, "eth_sendTransaction", map[string]string{"to": randomAddress(), "value": "0x1"})
	var hash string
	if r.Error != nil || json.Unmarshal(r.Result, &hash) != nil || !strings.HasPrefix(hash, "0x") || len(hash) != 66 {
		t.Fatalf("auto through /eth: %+v %s", r.Error, r.Result)
	}
	// delay: says when it authorizes itself
	put("/api/agents/"+agentID+"/policy", `{"rules":[{"id":"cool","when":{},"then":"delay","delay":"15m"}]}`)
	r = e.rpc(key, "eth_sendTransaction", map[string]string{"to": randomAddress(), "value": "0x1"})
	if d := data(r); !strings.Contains(r.Error.Message, "authorizes automatically at ") || strings.Contains(r.Error.Message, "human") ||
		d["decision"] != "delay" || d["rule_id"] != "cool" || d["authorize_at"] == nil {
		t.Fatalf("delay: %s %v", r.Error.Message, d)
	}
	// quorum: says how many approvers
	bob := e.newUser(true)
	addApprover(t, e, owner, walletID, bob)
	put("/api/agents/"+agentID+"/policy", `{"rules":[{"id":"two","when":{},"then":"quorum","quorum":2}]}`)
	r = e.rpc(key, "eth_sendTransaction", map[string]string{"to": randomAddress(), "value": "0x1"})
	if d := data(r); !strings.Contains(r.Error.Message, "waiting for 2 approvers") || d["approvals_needed"] != float64(2) || d["decision"] != "quorum" {
		t.Fatalf("quorum: %s %v", r.Error.Message, d)
	}
}

func TestUI_WithdrawApprovalAndApproverFreeze(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, key := setup(t, e)
	walletID := walletIDOf(t, e, owner, wallet)
	bob := e.newUser(true)
	addApprover(t, e, owner, walletID, bob)
	e.do("PUT", "/api/wallets/"+walletID+"/policy", bearer(owner.token), map[string]any{"mfa_code": e.code(owner),
		"rules": []any{map[string]any{"id": "two", "when": map[string]any{}, "then": "quorum", "quorum": 2}}}).must(t, 200)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(bob.token), map[string]string{"transaction_id": id, "mfa_code": e.code(bob)}).must(t, 200)

	jar, _ := cookiejar.New(nil)
	c := noRedirectClient(jar)
	csrf := uiLogin(t, e, c, bob)
	get := func(p string) string {
		res, err := c.Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b strings.Builder
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			b.WriteString(sc.Text() + "\n")
		}
		return b.String()
	}
	if p := get("/tx/" + id); !strings.Contains(p, `id="withdraw-form"`) {
		t.Fatal("no withdraw form for an approver who approved")
	}
	res, err := c.PostForm(e.url+"/tx/"+id+"/withdraw", url.Values{"csrf": {csrf}, "mfa_code": {e.code(bob)}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200)
	if apps, _ := st.body["approvals"].([]any); len(apps) != 0 {
		t.Fatalf("the approval was not withdrawn: %s", st.raw)
	}
	if p := get("/tx/" + id); strings.Contains(p, `id="withdraw-form"`) {
		t.Fatal("a withdraw form with nothing to withdraw")
	}
	// bob approves the wallet, does not own it: its freeze button is on his page
	p := get("/approvers")
	if !strings.Contains(p, `id="approvers-`+walletID+`"`) || !strings.Contains(p, "freeze-wallet") || !strings.Contains(p, "You approve this wallet of") {
		t.Fatalf("the approver's page lacks the wallet they approve: %s", p)
	}
	res, err = c.PostForm(e.url+"/freeze", url.Values{"csrf": {csrf}, "wallet_id": {walletID}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).refused(t, 423, "FROZEN")
}

// TestPolicyGethDev_AutoConfirmsWithNoHumanOverBudgetWaits runs an auto
// budget against a real geth --dev node: the request inside the budget is
// authorized by the policy, executed and confirmed on chain with no human;
// the next one, over the budget, waits for a human.
func TestPolicyGethDev_AutoConfirmsWithNoHumanOverBudgetWaits(t *testing.T) {
	gethURL := startGeth(t)
	fx := gethFixture(t, gethURL)
	e := newEnv(t, func(c *Config) { c.ChainURL = gethURL })
	u := e.newUser(true)
	r := e.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password}).must(t, 201)
	address := r.str("address")
	agentID, key := e.createAgent(u, address)
	fx.fund(t, address, ether(1))
	to := randomAddress()
	body := strings.Replace(`{"rules":[{"id":"inference","when":{"kind":["native"],"max_amount":"1000000000000000"},
	  "then":"auto","budget":{"max":"1500000000000000","window":"24h"}}],"default":"human"}`, "{", `{"mfa_code":"`+e.code(u)+`",`, 1)
	e.do("PUT", "/api/agents/"+agentID+"/policy", bearer(u.token), body).must(t, 200)

	p := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": to, "amount": "1000000000000000"}).must(t, 202)
	if p.str("status") != "authorized" || p.str("decision") != "auto" || p.str("rule_id") != "inference" {
		t.Fatalf("auto: %s", p.raw)
	}
	id := p.str("transaction_id")
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201)
	e.waitStatus(apiKey(key), id, "confirmed")
	bal, err := fx.chain.BalanceAt(context.Background(), common.HexToAddress(to), nil)
	if err != nil || bal.Cmp(big.NewInt(1e15)) != 0 {
		t.Fatalf("the payee has %v on chain (%v)", bal, err)
	}
	for _, a := range e.do("GET", "/api/audit", bearer(u.token), nil).must(t, 200).body["entries"].([]any) {
		if m := a.(map[string]any); m["subject"] == id && m["action"] == "transaction.authorize" && m["actor"] != "policy:inference" {
			t.Fatalf("authorized by %v, not the policy", m["actor"])
		}
	}
	over := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": to, "amount": "1000000000000000"}).must(t, 202)
	if over.str("status") != "pending" || over.str("decision") != "human" || !strings.Contains(over.raw, "exceed the budget") {
		t.Fatalf("over budget: %s", over.raw)
	}
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": over.str("transaction_id")}).refused(t, 409, "NOT_AUTHORIZED")
}
