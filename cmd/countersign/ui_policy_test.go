package main

import (
	"context"
	"io"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// The approver's web UI for policies, approvers, quorum, delay and the
// kill switch, driven in Chromium like the rest of the UI tests.

// browserLogin logs u in through the login form of ctx's browser context.
func browserLogin(t *testing.T, ctx context.Context, e *env, u *user) {
	t.Helper()
	do(t, ctx, chromedp.Navigate(e.url+"/login"), chromedp.WaitVisible(chromedp.ID("login-submit")),
		chromedp.SendKeys(chromedp.ID("username"), u.name), chromedp.SendKeys(chromedp.ID("password"), u.password),
		chromedp.Click(chromedp.ID("login-submit")), chromedp.WaitVisible(chromedp.ID("inbox-list")))
}

// savePolicy replaces the editor's textarea with doc and saves it with a
// fresh code of u.
func savePolicy(t *testing.T, ctx context.Context, e *env, u *user, doc string) {
	t.Helper()
	do(t, ctx, chromedp.WaitVisible(chromedp.ID("policy-document")), chromedp.SetValue(chromedp.ID("policy-document"), doc),
		chromedp.SendKeys(chromedp.ID("policy-code"), e.code(u)), chromedp.Click(chromedp.ID("policy-save")))
}

// TestWebUIPolicyApproversQuorumDelayFreeze: the owner sets a wallet
// policy with an auto budget in the editor and sees the rules and the
// budget bar fill as the agent spends; a bad document is shown again with
// the field path and changes nothing; the owner invites a second user,
// who accepts in their own browser session with their own code; a
// quorum-2 request shows "0 of 2", then "1 of 2: <owner> ✓", and the
// second approver's approval authorizes it; a loosening change waits for
// the quorum, shown with approve/reject, and applies when the second
// approver approves it; a delay request shows its countdown and the
// reject button, and rejecting works; the freeze button on a page freezes
// (the agent's next prepare is FROZEN) and a code lifts it.
func TestWebUIPolicyApproversQuorumDelayFreeze(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, key := setup(t, e)
	walletID := walletIDOf(t, e, owner, wallet)
	ctx := newBrowser(t)
	browserLogin(t, ctx, e, owner)

	// the policy list links to the wallet's editor
	do(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/policies"]`)), chromedp.WaitVisible(chromedp.ID("policy-targets")),
		chromedp.Click(chromedp.CSS(`a.edit-policy[data-level="wallet"]`)), chromedp.WaitVisible(chromedp.ID("no-policy")))

	// an auto budget: the rules as a list, a budget bar
	savePolicy(t, ctx, e, owner, `{"rules": [
	  {"id": "no-burn", "when": {"to": ["0x0000000000000000000000000000000000000000"]}, "then": "deny"},
	  {"id": "inference", "when": {"kind": ["native"], "max_amount": "1000000000000000"},
	   "then": "auto", "budget": {"max": "10000000000000000", "window": "24h", "scope": "wallet"}}
	], "default": "human"}`)
	waitFlash(t, ctx, "Policy saved")
	rules := text(t, ctx, "#rules")
	for _, want := range []string{"no-burn", "deny", "inference", "auto", "kind native; max_amount 1000000000000000", "at most 0.01 ETH per 24h", "Otherwise"} {
		if !strings.Contains(rules, want) {
			t.Fatalf("the rules list lacks %q: %s", want, rules)
		}
	}
	if v := eval[int](t, ctx, `document.querySelector("progress.budget-bar").value`); v != 0 {
		t.Fatalf("a fresh budget's bar is at %d%%", v)
	}
	stored := e.do("GET", "/api/wallets/"+walletID+"/policy", bearer(owner.token), nil).must(t, 200)
	hash := stored.body["policy"].(map[string]any)["hash"].(string)

	// the agent spends within the budget: auto, and the bar shows it
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000000000000000"}).must(t, 202).str("transaction_id")
	if st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200); st.str("decision") != "auto" || st.str("status") != "authorized" {
		t.Fatalf("within the auto budget: %s", st.raw)
	}
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("rules")))
	if v := eval[int](t, ctx, `document.querySelector("progress.budget-bar").value`); v != 10 {
		t.Fatalf("after 0.001 of 0.01 ETH the bar is at %d%%, want 10", v)
	}
	if b := text(t, ctx, ".budget"); !strings.Contains(b, "0.009 ETH remaining of 0.01 ETH") || !strings.Contains(b, "reserved 0.001 ETH") {
		t.Fatalf("budget: %s", b)
	}
	shot(t, ctx, "policy.png")
	// the request page names the deciding rule
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+id), chromedp.WaitVisible(chromedp.ID("decision")))
	if d := text(t, ctx, "#decision"); !strings.Contains(d, "auto") || !strings.Contains(d, "inference") {
		t.Fatalf("decision: %s", d)
	}

	// a bad document: the field path, the text kept, nothing changed
	do(t, ctx, chromedp.Navigate(e.url+"/wallets/"+walletID+"/policy"))
	bad := `{"rules": [{"id": "a", "when": {}, "then": "human"}, {"id": "b", "when": {}, "then": "auto", "budget": {"max": "1", "window": "0h"}}]}`
	savePolicy(t, ctx, e, owner, bad)
	waitFor(t, ctx, `!!document.getElementById("policy-error")`)
	if msg := text(t, ctx, "#policy-error"); !strings.Contains(msg, "rules[1].budget.window") {
		t.Fatalf("the refusal does not name the field: %s", msg)
	}
	if v := eval[string](t, ctx, `document.getElementById("policy-document").value`); v != bad {
		t.Fatalf("the refused document was not kept for editing: %s", v)
	}
	if r := text(t, ctx, "#rules"); !strings.Contains(r, "inference") {
		t.Fatalf("the old policy is not shown: %s", r)
	}
	if h := e.do("GET", "/api/wallets/"+walletID+"/policy", bearer(owner.token), nil).must(t, 200).body["policy"].(map[string]any)["hash"]; h != hash {
		t.Fatalf("a refused document changed the policy: %v", h)
	}

	// the owner invites bob; bob accepts in his own session with his code
	bob := e.newUser(true)
	do(t, ctx, chromedp.Click(chromedp.CSS(`nav a[href="/approvers"]`)), chromedp.WaitVisible(chromedp.CSS(".invite-name")),
		chromedp.SendKeys(chromedp.CSS(".invite-name"), bob.name), chromedp.SendKeys(chromedp.CSS(".invite-code"), e.code(owner)),
		chromedp.Click(chromedp.CSS(".invite-approver")))
	waitFlash(t, ctx, "Invited "+bob.name)
	bctx, cancelB := chromedp.NewContext(ctx, chromedp.WithNewBrowserContext())
	defer cancelB()
	browserLogin(t, bctx, e, bob)
	do(t, bctx, chromedp.Navigate(e.url+"/approvers"), chromedp.WaitVisible(chromedp.ID("invitations")))
	// the owner's code is not bob's
	do(t, bctx, chromedp.SendKeys(chromedp.CSS("#invitations input[name=mfa_code]"), e.code(owner)), chromedp.Click(chromedp.CSS(".accept-invitation")))
	waitFlash(t, bctx, "MFA code")
	do(t, bctx, chromedp.SendKeys(chromedp.CSS("#invitations input[name=mfa_code]"), e.code(bob)), chromedp.Click(chromedp.CSS(".accept-invitation")))
	waitFlash(t, bctx, "Invitation accepted")
	do(t, ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".approver-name")))
	if names := text(t, ctx, "#approvers-"+walletID); !strings.Contains(names, owner.name) || !strings.Contains(names, bob.name) {
		t.Fatalf("approvers: %s", names)
	}
	shot(t, ctx, "approvers.png")

	// quorum 2 (tighter: applies at once)
	do(t, ctx, chromedp.Navigate(e.url+"/wallets/"+walletID+"/policy"))
	savePolicy(t, ctx, e, owner, `{"rules": [{"id": "two", "when": {}, "then": "quorum", "quorum": 2}], "default": "human"}`)
	waitFlash(t, ctx, "Policy saved")
	qid := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000", "memo": "needs two"}).must(t, 202).str("transaction_id")
	do(t, ctx, chromedp.Navigate(e.url+"/inbox"), chromedp.WaitVisible(chromedp.ID("inbox-list")))
	if row := text(t, ctx, "#inbox-list"); !strings.Contains(row, "quorum · rule two · 0 of 2") {
		t.Fatalf("inbox row: %s", row)
	}
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+qid), chromedp.WaitVisible(chromedp.ID("quorum")))
	if q := text(t, ctx, "#quorum"); q != "0 of 2" {
		t.Fatalf("before any approval: %q", q)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("mfa-code"), e.code(owner)), chromedp.Click(chromedp.ID("approve")))
	waitFlash(t, ctx, "the quorum needs more approvers")
	if q := text(t, ctx, "#quorum"); q != "1 of 2: "+owner.name+" ✓" {
		t.Fatalf("after the owner's approval: %q", q)
	}
	if st := text(t, ctx, "#status"); st != "pending" {
		t.Fatalf("one approval of two changed the status to %s", st)
	}
	shot(t, ctx, "tx-quorum.png")
	do(t, bctx, chromedp.Navigate(e.url+"/tx/"+qid), chromedp.WaitVisible(chromedp.ID("approve")),
		chromedp.SendKeys(chromedp.ID("mfa-code"), e.code(bob)), chromedp.Click(chromedp.ID("approve")))
	waitFlash(t, bctx, "Approved")
	if st := text(t, bctx, "#status"); st != "authorized" {
		t.Fatalf("after the second approval: %s", st)
	}

	// a loosening change (quorum → delay) waits for the quorum; bob approves it
	do(t, ctx, chromedp.Navigate(e.url+"/wallets/"+walletID+"/policy"))
	savePolicy(t, ctx, e, owner, `{"rules": [{"id": "cooling", "when": {}, "then": "delay", "delay": "15m"}], "default": "human"}`)
	waitFlash(t, ctx, "applies once 2 approvers approve it")
	if r := text(t, ctx, "#rules"); !strings.Contains(r, "quorum of 2") {
		t.Fatalf("the owner alone loosened a quorum wallet's policy: %s", r)
	}
	if p := text(t, ctx, ".pending-change"); !strings.Contains(p, "1 of 2: "+owner.name+" ✓") {
		t.Fatalf("pending change: %s", p)
	}
	do(t, bctx, chromedp.Navigate(e.url+"/policies"), chromedp.WaitVisible(chromedp.CSS(".pending-change")),
		chromedp.SendKeys(chromedp.CSS(".pending-change input[name=mfa_code]"), e.code(bob)), chromedp.Click(chromedp.CSS(".pending-change button.approve")))
	waitFlash(t, bctx, "Change applied")

	// a delay request: the countdown and the reject button; rejecting wins
	did := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202)
	st := e.do("GET", "/api/transaction_status?transaction_id="+did.str("transaction_id"), apiKey(key), nil).must(t, 200)
	if st.str("decision") != "delay" || st.str("authorize_at") == "" {
		t.Fatalf("delay request: %s", st.raw)
	}
	do(t, ctx, chromedp.Navigate(e.url+"/inbox"), chromedp.WaitVisible(chromedp.ID("inbox-list")))
	if row := text(t, ctx, "#inbox-list"); !strings.Contains(row, "delay · rule cooling") || !strings.Contains(row, "goes through in") {
		t.Fatalf("inbox row of a delay request: %s", row)
	}
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+did.str("transaction_id")), chromedp.WaitVisible(chromedp.ID("delay-countdown")))
	if d := text(t, ctx, "#decision"); !strings.Contains(d, "delay") || !strings.Contains(d, "cooling") || !strings.Contains(d, "Goes through automatically in") {
		t.Fatalf("delay decision: %s", d)
	}
	at := eval[string](t, ctx, `document.getElementById("delay-countdown").dataset.expires`)
	if !strings.HasPrefix(st.str("authorize_at"), strings.TrimSuffix(at, "Z")) {
		t.Fatalf("the countdown runs to %s, the request authorizes at %s", at, st.str("authorize_at"))
	}
	shot(t, ctx, "tx-delay.png")
	do(t, ctx, chromedp.Click(chromedp.ID("reject-open")), chromedp.WaitVisible(chromedp.ID("reject")), chromedp.Click(chromedp.ID("reject")))
	waitFlash(t, ctx, "Rejected")
	if s := e.do("GET", "/api/transaction_status?transaction_id="+did.str("transaction_id"), apiKey(key), nil).must(t, 200).str("status"); s != "rejected" {
		t.Fatalf("after the reject inside the delay: %s", s)
	}

	// the kill switch on a page: instant; a code lifts it
	do(t, ctx, chromedp.Navigate(e.url+"/activity"), chromedp.WaitVisible(chromedp.ID("freeze-all")), chromedp.Click(chromedp.ID("freeze-all")))
	waitFlash(t, ctx, "Frozen")
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).refused(t, 423, "FROZEN")
	if f := text(t, ctx, "#freezes"); !strings.Contains(f, "every wallet of the owner") {
		t.Fatalf("freezes: %s", f)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.CSS("#freezes input[name=mfa_code]"), e.code(owner)), chromedp.Click(chromedp.CSS("#freezes .unfreeze")))
	waitFlash(t, ctx, "Freeze lifted")
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202)
}

// TestSecurity_UIPolicyAndApproverFormsAreTheOwners: through the web UI
// another user can neither read nor replace a wallet's or an agent's
// policy, nor invite approvers to it; an approver may not edit the
// owner's policy; each refused form changes nothing.
func TestSecurity_UIPolicyAndApproverFormsAreTheOwners(t *testing.T) {
	e := newEnv(t)
	owner, wallet, agentID, _ := setup(t, e)
	walletID := walletIDOf(t, e, owner, wallet)
	bob, mallory := e.newUser(true), e.newUser(true)
	addApprover(t, e, owner, walletID, bob)
	doc := `{"rules": [{"id": "all", "when": {}, "then": "auto", "budget": {"max": "1000000000000000000", "window": "24h"}}], "default": "human"}`
	for _, u := range []*user{bob, mallory} {
		jar, _ := cookiejar.New(nil)
		c := noRedirectClient(jar)
		csrf := uiLogin(t, e, c, u)
		for _, page := range []string{"/wallets/" + walletID + "/policy", "/agents/" + agentID + "/policy"} {
			res, err := c.Get(e.url + page)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != 404 {
				t.Errorf("%s opened %s: %d", u.name, page, res.StatusCode)
			}
			res, err = c.PostForm(e.url+page, url.Values{"csrf": {csrf}, "document": {doc}, "mfa_code": {e.code(u)}})
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
		res, err := c.PostForm(e.url+"/wallets/"+walletID+"/approvers", url.Values{"csrf": {csrf}, "username": {mallory.name}, "mfa_code": {e.code(u)}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	for _, p := range []string{"/api/wallets/" + walletID + "/policy", "/api/agents/" + agentID + "/policy"} {
		if pol := e.do("GET", p, bearer(owner.token), nil).must(t, 200).body["policy"]; pol != nil {
			t.Fatalf("another user's form set %s: %v", p, pol)
		}
	}
	if n := len(e.do("GET", "/api/approvals/invitations", bearer(mallory.token), nil).must(t, 200).body["invitations"].([]any)); n != 0 {
		t.Fatalf("an approver or a stranger invited an approver: %d invitations", n)
	}
}

// TestSecurity_UIFreezeNeedsTheFormToken: the kill switch takes no code,
// so its CSRF token is all that stops another site from freezing a
// logged-in user's agents; a refused form freezes nothing. A refused
// policy document that carries markup comes back as text.
func TestSecurity_UIFreezeNeedsTheFormToken(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, key := setup(t, e)
	walletID := walletIDOf(t, e, owner, wallet)
	jar, _ := cookiejar.New(nil)
	c := noRedirectClient(jar)
	csrf := uiLogin(t, e, c, owner)
	for name, form := range map[string]url.Values{"no token": {}, "wrong token": {"csrf": {csrf + "x"}}, "wallet, no token": {"wallet_id": {walletID}}} {
		res, err := c.PostForm(e.url+"/freeze", form)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 403 {
			t.Errorf("freeze with %s: %d", name, res.StatusCode)
		}
	}
	if fs := e.do("GET", "/api/freezes", bearer(owner.token), nil).must(t, 200).body["freezes"].([]any); len(fs) != 0 {
		t.Fatalf("a form without its token froze: %v", fs)
	}
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202)

	evil := `{"rules": [{"id": "</textarea><script>window.__xss=1</script>", "when": {}, "then": "human"}]}`
	res, err := c.PostForm(e.url+"/wallets/"+walletID+"/policy", url.Values{"csrf": {csrf}, "document": {evil}, "mfa_code": {e.code(owner)}})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 400 || strings.Contains(string(b), "<script>window.__xss") || !strings.Contains(string(b), "&lt;/textarea&gt;&lt;script&gt;") {
		t.Fatalf("a refused document with markup: %d %s", res.StatusCode, b)
	}
}
