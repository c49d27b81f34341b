package main

import (
	"context"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign/contracts"
	"github.com/countersign/countersign/core"
)

// The approver's half (docs/APPROVER.md), driven in Chromium: decisions
// that are hard to get wrong, risk at a glance, the facts on the page, the
// address book, and every page fitting a phone.

var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// kinds prepares one request of every kind the inbox shows and returns
// their ids by name.
type approverFixture struct {
	e      *env
	u      *user
	wallet string
	key    string
	token  string
	ids    map[string]string
}

func newApproverFixture(t *testing.T) *approverFixture {
	e := newEnv(t)
	u, wallet, _, key := setup(t, e)
	info := e.do("GET", "/api/dev/info", anon, nil).must(t, 200)
	f := &approverFixture{e: e, u: u, wallet: wallet, key: key, token: info.str("test_token_address"), ids: map[string]string{}}
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(100).String(), "token": "TEST"}).must(t, 200)
	prep := func(name string, body map[string]any) {
		f.ids[name] = e.do("POST", "/api/prepare_transaction", apiKey(key), body).must(t, 202).str("transaction_id")
	}
	prep("native", map[string]any{"type": "native", "to_address": randomAddress(), "amount": "250000000000000000", "memo": "GPU invoice 7"})
	prep("erc20", map[string]any{"type": "erc20", "token_address": f.token, "to_address": randomAddress(), "amount": "25500000000000000000"})
	prep("call", map[string]any{"type": "contract_call", "contract_address": info.str("counter_address"), "contract_abi": contracts.MustLoad("Counter").ABIJSON,
		"function_name": "increment", "function_args": []any{"7", "a note"}})
	prep("unlimited", map[string]any{"type": "contract_call", "contract_address": f.token, "contract_abi": contracts.MustLoad("TestToken").ABIJSON,
		"function_name": "approve", "function_args": []string{"0x68130000000000000000000000000000000000aa", maxUint256.String()}})
	prep("zero", map[string]any{"type": "native", "to_address": common.Address{}.Hex(), "amount": "1"})
	prep("siwe", map[string]any{"type": "personal_sign", "message": "app.example wants you to sign in with your Ethereum account:\n" + wallet +
		"\n\nSign in to the example app.\n\nURI: https://app.example/login\nVersion: 1\nChain ID: 1337\nNonce: 32891756\nIssued At: 2026-12-01T00:00:00Z"})
	prep("memo", map[string]any{"type": "native", "to_address": randomAddress(), "amount": "1", "memo": strings.Repeat("a very long memo ", 27)})
	return f
}

// TestSecurity_EnterInTheCodeFieldDoesNotApprove: a valid code typed and
// Enter pressed (a phone keyboard's Go key) approves nothing; the form
// submitted without its button, the shape an implicit submission has, is
// refused by the server too. (Before, Approve was the form's first submit
// button, so Enter approved.)
func TestSecurity_EnterInTheCodeFieldDoesNotApprove(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	ctx := newBrowser(t)
	browserLogin(t, ctx, e, u)
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+id), chromedp.WaitVisible(chromedp.ID("mfa-code")),
		chromedp.SendKeys(chromedp.ID("mfa-code"), e.code(u)+"\r"))
	time.Sleep(time.Second) // a submission would have landed by now
	if st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200).str("status"); st != "pending" {
		t.Fatalf("Enter in the code field made the request %s", st)
	}
	// the first submit button of the approve form is the disabled trap
	if first := eval[string](t, ctx, `(() => { const b = document.querySelector("#approve-form button[type=submit]"); return b.className + ":" + b.disabled; })()`); first != "enter-trap:true" {
		t.Fatalf("the approve form's default button is %s", first)
	}

	f := newFormClient(t, e)
	f.get("/login")
	f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}})
	f.get("/tx/" + id)
	if _, body := f.post("/tx/"+id+"/decide", url.Values{"csrf": {f.csrf()}, "mfa_code": {e.code(u)}}); !strings.Contains(body, "nothing was decided") {
		t.Fatalf("a decide form without its button: %s", body)
	}
	if st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200).str("status"); st != "pending" {
		t.Fatalf("a decide form without its button made the request %s", st)
	}
	// the button approves, and the page then says who decided and when
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+id), chromedp.WaitVisible(chromedp.ID("mfa-code")),
		chromedp.SendKeys(chromedp.ID("mfa-code"), e.code(u)), chromedp.Click(chromedp.ID("approve")))
	waitFlash(t, ctx, "Approved")
	if d := text(t, ctx, "#decided-by"); !strings.Contains(d, "Approved by "+u.name) || !strings.Contains(d, "UTC") {
		t.Fatalf("decided: %s", d)
	}
}

// TestSecurity_DangerApprovalNeedsAcknowledgement: an unlimited approval
// (and a payment to the zero address) cannot be approved without ticking
// the acknowledgement: Approve stays disabled in the page, and the server
// refuses the approval without it — from the form and from the API, where
// the code is not spent by the refusal.
func TestSecurity_DangerApprovalNeedsAcknowledgement(t *testing.T) {
	fx := newApproverFixture(t)
	e, u := fx.e, fx.u
	id := fx.ids["unlimited"]
	ctx := newBrowser(t)
	browserLogin(t, ctx, e, u)
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+id), chromedp.WaitVisible(chromedp.ID("acknowledge")))
	if ack := text(t, ctx, "label.ack"); !strings.Contains(ack, "I understand the spender can take all my TEST") {
		t.Fatalf("acknowledgement: %s", ack)
	}
	if !eval[bool](t, ctx, `document.getElementById("approve").disabled`) {
		t.Fatal("Approve is enabled before the acknowledgement")
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("mfa-code"), e.code(u)), chromedp.Click(chromedp.ID("approve")))
	time.Sleep(500 * time.Millisecond)
	if st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(fx.key), nil).must(t, 200).str("status"); st != "pending" {
		t.Fatalf("a click on the disabled Approve made it %s", st)
	}

	// the server: the form without the acknowledgement
	f := newFormClient(t, e)
	f.get("/login")
	f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}})
	f.get("/tx/" + id)
	if _, body := f.post("/tx/"+id+"/decide", url.Values{"csrf": {f.csrf()}, "mfa_code": {e.code(u)}, "decision": {"approve"}}); !strings.Contains(body, "danger warning") {
		t.Fatalf("the form approved a danger request without the acknowledgement: %s", body)
	}
	// the API: refused with its own code, for the zero address too; the
	// code stays usable
	for _, name := range []string{"unlimited", "zero"} {
		code := e.code(u)
		r := e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_id": fx.ids[name], "mfa_code": code}).refused(t, 422, "ACKNOWLEDGEMENT_REQUIRED")
		if !strings.Contains(r.raw, "danger") {
			t.Fatalf("%s: %s", name, r.raw)
		}
		if st := e.do("GET", "/api/transaction_status?transaction_id="+fx.ids[name], apiKey(fx.key), nil).must(t, 200).str("status"); st != "pending" {
			t.Fatalf("%s refused but %s", name, st)
		}
		if name == "zero" {
			e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_id": fx.ids[name], "mfa_code": code, "acknowledge": true}).must(t, 200)
		}
	}
	// a request without a danger warning needs no acknowledgement
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_id": fx.ids["native"], "mfa_code": e.code(u)}).must(t, 200)

	// ticked, Approve enables and approves
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+id), chromedp.WaitVisible(chromedp.ID("acknowledge")),
		chromedp.Click(chromedp.ID("acknowledge")))
	if eval[bool](t, ctx, `document.getElementById("approve").disabled`) {
		t.Fatal("Approve stays disabled after the acknowledgement")
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("mfa-code"), e.code(u)), chromedp.Click(chromedp.ID("approve")))
	waitFlash(t, ctx, "Approved")
	if st := text(t, ctx, "#status"); st != "authorized" {
		t.Fatalf("after the acknowledged approval: %s", st)
	}
	// the next request waiting is offered
	waitFor(t, ctx, `!!document.querySelector("#next-request[href^='/tx/']")`)
}

// TestSecurity_RejectNeedsTheSessionAndAConfirmation: the reject form needs
// its CSRF token and its confirmation button's value, not a code; the API
// reject still needs the code.
func TestSecurity_RejectNeedsTheSessionAndAConfirmation(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	status := func() string {
		return e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200).str("status")
	}
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_id": id, "decision": "reject"}).refused(t, 400, "BAD_REQUEST") // mfa_code is required
	f := newFormClient(t, e)
	f.get("/login")
	f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}})
	f.get("/tx/" + id)
	csrf := f.csrf()
	if st, _ := f.post("/tx/"+id+"/reject", url.Values{"confirm": {"reject"}}); st != 403 {
		t.Fatalf("a reject without the form token: %d", st)
	}
	if _, body := f.post("/tx/"+id+"/reject", url.Values{"csrf": {csrf}, "reason": {"no"}}); !strings.Contains(body, "Confirm the rejection") || status() != "pending" {
		t.Fatalf("a reject without its confirmation: %s / %s", status(), body)
	}
	// another user's session cannot reject it
	other := e.newUser(true)
	g := newFormClient(t, e)
	g.get("/login")
	g.post("/login", url.Values{"csrf": {g.csrf()}, "username": {other.name}, "password": {other.password}})
	g.get("/inbox")
	g.post("/tx/"+id+"/reject", url.Values{"csrf": {g.csrf()}, "confirm": {"reject"}})
	if status() != "pending" {
		t.Fatal("another user's session rejected the request")
	}
	if _, body := f.post("/tx/"+id+"/reject", url.Values{"csrf": {csrf}, "confirm": {"reject"}, "reason": {"not needed"}}); !strings.Contains(body, "Rejected") {
		t.Fatalf("reject: %s", body)
	}
	st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200)
	if st.str("status") != "rejected" || st.str("reason") != "not needed" {
		t.Fatalf("after the reject: %s", st.raw)
	}
	if body := f.get("/tx/" + id); !strings.Contains(body, "Rejected by <strong>"+u.name+"</strong>") {
		t.Fatalf("the page does not say who rejected")
	}
}

// TestWebUIInboxRowsShowActionAndSeverity: each kind of request reads as
// what it does, with its highest severity as a flag, the wallet's name and
// a clamped memo.
func TestWebUIInboxRowsShowActionAndSeverity(t *testing.T) {
	fx := newApproverFixture(t)
	ctx := newBrowser(t)
	browserLogin(t, ctx, fx.e, fx.u)
	do(t, ctx, chromedp.Navigate(fx.e.url+"/inbox"), chromedp.WaitVisible(chromedp.ID("inbox-list")))
	for name, want := range map[string]struct{ action, severity string }{
		"native":    {"Send 0.25 ETH to", "info"},                               // a new recipient
		"erc20":     {"Transfer 25.5 TEST to", "info"},                          // a new recipient
		"call":      {"Call increment(7, …) on", ""},                            // decoded with its ABI
		"unlimited": {"Approve unlimited TEST for 0x6813…00aa", "danger"},       // the spender shortened
		"zero":      {"Send 0.000000000000000001 ETH to 0x0000…0000", "danger"}, // lost
		"siwe":      {"Sign a message for app.example", ""},
	} {
		row := fmt.Sprintf(`document.querySelector('.txrow[data-id="%s"]')`, fx.ids[name])
		if got := eval[string](t, ctx, row+`.querySelector(".action").innerText`); !strings.Contains(got, want.action) {
			t.Errorf("%s: action %q, want %q", name, got, want.action)
		}
		if got := eval[string](t, ctx, row+`.dataset.severity`); got != want.severity {
			t.Errorf("%s: severity %q, want %q", name, got, want.severity)
		}
		if want.severity != "" {
			if flag := eval[string](t, ctx, row+`.querySelector(".flag").className`); !strings.Contains(flag, "sev-"+want.severity) {
				t.Errorf("%s: flag %q", name, flag)
			}
		}
		if w := eval[string](t, ctx, row+`.querySelector(".kind").innerText`); !strings.Contains(w, "Wallet") && !strings.Contains(w, "·") {
			t.Errorf("%s: kind line %q", name, w)
		}
	}
	memo := eval[string](t, ctx, fmt.Sprintf(`document.querySelector('.txrow[data-id="%s"] .memo').innerText`, fx.ids["memo"]))
	if n := len([]rune(memo)); n > 145 || !strings.HasSuffix(memo, "…”") {
		t.Errorf("the long memo is not clamped: %d characters", n)
	}
	// the danger flag and the info flag look different
	colors := eval[[]string](t, ctx, `[...document.querySelectorAll(".flag.sev-danger, .flag.sev-info")].map(e => getComputedStyle(e).backgroundColor)`)
	seen := map[string]bool{}
	for _, c := range colors {
		seen[c] = true
	}
	if len(seen) < 2 {
		t.Errorf("danger and info flags share a colour: %v", colors)
	}
}

// TestWebUIReviewFacts: the unlimited approval says "Unlimited" and names
// the spender and the token as known; a payment shows wallet, balance and
// balance after, the fee in ETH and the total, the chain by name; the
// SIWE message is summarised; the warnings carry severities in the page
// and in the API.
func TestWebUIReviewFacts(t *testing.T) {
	fx := newApproverFixture(t)
	e := fx.e
	f := newFormClient(t, e)
	f.get("/login")
	f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {fx.u.name}, "password": {fx.u.password}})

	p := f.get("/tx/" + fx.ids["unlimited"])
	for _, want := range []string{`id="approval"><strong>Unlimited</strong> TEST`, "0x68130000000000000000000000000000000000aa", `id="token-known"`, "countersign test token",
		`data-severity="danger"`, "countersign dev chain"} {
		if !strings.Contains(p, want) {
			t.Errorf("unlimited approval page lacks %q", want)
		}
	}
	p = f.get("/tx/" + fx.ids["native"])
	for _, want := range []string{`id="balance"`, "100 ETH →", "ETH after", `id="fee">at most`, `id="total">0.25`, `id="wallet-name"`, `data-severity="info"`} {
		if !strings.Contains(p, want) {
			t.Errorf("payment page lacks %q", want)
		}
	}
	p = f.get("/tx/" + fx.ids["siwe"])
	if !strings.Contains(p, "Sign in to app.example as") || !strings.Contains(p, `id="siwe"`) {
		t.Errorf("SIWE not summarised")
	}
	// the API carries {code, severity, text}
	st := e.do("GET", "/api/transaction_status?transaction_id="+fx.ids["unlimited"], apiKey(fx.key), nil).must(t, 200)
	ws, _ := st.body["warnings"].([]any)
	found := false
	for _, w := range ws {
		m, _ := w.(map[string]any)
		if m["code"] == core.WarnUnlimitedApproval && m["severity"] == "danger" && strings.Contains(fmt.Sprint(m["text"]), "Unlimited approval") {
			found = true
		}
	}
	if !found {
		t.Fatalf("the API's warnings lack the danger: %s", st.raw)
	}
}

// TestDevTokenIsKnown pins core.DevTestToken to the embedded chain's TEST
// token (its faucet key comes from a fixed seed).
func TestDevTokenIsKnown(t *testing.T) {
	e := newEnv(t)
	if got := e.do("GET", "/api/dev/info", anon, nil).must(t, 200).str("test_token_address"); got != core.DevTestToken {
		t.Fatalf("the dev chain's TEST is at %s, core.DevTestToken says %s", got, core.DevTestToken)
	}
}

// TestAddressBook: labels set, listed, shown on the pages beside the
// address, and removed; bad input changes nothing.
func TestAddressBook(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	bob := randomAddress()
	e.do("POST", "/api/address_book", bearer(u.token), map[string]string{"address": "0x1234", "label": "x"}).refused(t, 400, "BAD_REQUEST")
	e.do("POST", "/api/address_book", bearer(u.token), map[string]string{"address": bob, "label": "bad\nlabel"}).refused(t, 400, "BAD_REQUEST")
	e.do("POST", "/api/address_book", bearer(u.token), map[string]string{"address": bob, "label": ""}).refused(t, 400, "BAD_REQUEST")
	if n := len(e.do("GET", "/api/address_book", bearer(u.token), nil).must(t, 200).body["entries"].([]any)); n != 0 {
		t.Fatalf("bad input stored %d entries", n)
	}
	e.do("POST", "/api/address_book", bearer(u.token), map[string]string{"address": strings.ToLower(bob), "label": "Bob's shop"}).must(t, 201)
	list := e.do("GET", "/api/address_book", bearer(u.token), nil).must(t, 200).body["entries"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["label"] != "Bob's shop" || list[0].(map[string]any)["address"] != bob {
		t.Fatalf("address book: %v", list)
	}
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": bob, "amount": "1"}).must(t, 202).str("transaction_id")
	f := newFormClient(t, e)
	f.get("/login")
	f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}})
	if p := f.get("/tx/" + id); !strings.Contains(p, `<strong class="addr-label">Bob&#39;s shop</strong>`) {
		t.Fatalf("the label is not on the request page")
	}
	if p := f.get("/inbox"); !strings.Contains(p, `<strong class="addr-label">Bob&#39;s shop</strong>`) {
		t.Fatalf("the label is not in the inbox")
	}
	e.do("DELETE", "/api/address_book/"+bob, bearer(u.token), nil).must(t, 200)
	e.do("DELETE", "/api/address_book/"+bob, bearer(u.token), nil).refused(t, 404, "NOT_FOUND")
	if a := f.get("/audit"); !strings.Contains(a, "address_book.set") || !strings.Contains(a, "address_book.delete") {
		t.Fatal("address book changes are not audited")
	}
}

// TestSecurity_AgentCannotWriteTheAddressBook: an agent's key cannot put a
// trusted name on an address (its own, say), nor read the book; another
// user's book is separate.
func TestSecurity_AgentCannotWriteTheAddressBook(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	mallory := randomAddress()
	e.do("POST", "/api/address_book", apiKey(key), map[string]string{"address": mallory, "label": "My cold wallet"}).refused(t, 403, "FORBIDDEN")
	e.do("GET", "/api/address_book", apiKey(key), nil).refused(t, 403, "FORBIDDEN")
	other := e.newUser(true)
	e.do("POST", "/api/address_book", bearer(other.token), map[string]string{"address": mallory, "label": "My cold wallet"}).must(t, 201)
	if n := len(e.do("GET", "/api/address_book", bearer(u.token), nil).must(t, 200).body["entries"].([]any)); n != 0 {
		t.Fatalf("another user's label is in this user's book")
	}
	noMFA := e.newUser(false)
	e.do("POST", "/api/address_book", bearer(noMFA.token), map[string]string{"address": mallory, "label": "x"}).refused(t, 403, "MFA_REQUIRED")
}

// TestWebUIPagesFitAPhone: every page at 1200, 390 and 360 px wide has no
// horizontal scroll; on a phone the decision is on screen without
// scrolling and the header is compact. UPDATE_SCREENSHOTS=1 writes the
// screenshots under docs/screenshots/.
func TestWebUIPagesFitAPhone(t *testing.T) {
	fx := newApproverFixture(t)
	e := fx.e
	e.do("POST", "/api/address_book", bearer(fx.u.token), map[string]string{"address": "0x68130000000000000000000000000000000000aa", "label": "DEX router"}).must(t, 201)
	// one decided request, for the "who decided" card and activity
	done := e.do("POST", "/api/prepare_transaction", apiKey(fx.key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000", "memo": "paid"}).must(t, 202).str("transaction_id")
	e.approveAndExecute(fx.u, fx.key, done)
	ctx := newBrowser(t)
	browserLogin(t, ctx, e, fx.u)
	var walletID string
	for _, w := range e.do("GET", "/api/wallets", bearer(fx.u.token), nil).must(t, 200).body["wallets"].([]any) {
		walletID, _ = w.(map[string]any)["wallet_id"].(string)
		if walletID == "" {
			walletID, _ = w.(map[string]any)["id"].(string)
		}
	}
	pages := map[string]string{
		"inbox": "/inbox", "activity": "/activity", "wallets": "/wallets", "agents": "/agents", "policies": "/policies",
		"approvers": "/approvers", "audit": "/audit", "mfa": "/mfa", "address-book": "/address-book", "passkeys": "/passkeys",
		"tx-native": "/tx/" + fx.ids["native"], "tx-erc20": "/tx/" + fx.ids["erc20"], "tx-call": "/tx/" + fx.ids["call"],
		"tx-unlimited": "/tx/" + fx.ids["unlimited"], "tx-zero": "/tx/" + fx.ids["zero"], "tx-siwe": "/tx/" + fx.ids["siwe"],
		"tx-memo": "/tx/" + fx.ids["memo"], "tx-decided": "/tx/" + done,
	}
	if walletID != "" {
		pages["wallet-policy"] = "/wallets/" + walletID + "/policy"
	}
	update := os.Getenv("UPDATE_SCREENSHOTS") == "1"
	for _, width := range []int64{1200, 390, 360} {
		do(t, ctx, chromedp.EmulateViewport(width, 844))
		for name, path := range pages {
			do(t, ctx, chromedp.Navigate(e.url+path), chromedp.WaitReady(chromedp.CSS("footer.foot")))
			if sw, iw := eval[int](t, ctx, `document.documentElement.scrollWidth`), eval[int](t, ctx, `window.innerWidth`); sw > iw {
				wide := eval[string](t, ctx, `[...document.querySelectorAll("main *")].filter(e => e.getBoundingClientRect().right > innerWidth + 1).slice(0, 3).map(e => e.tagName + "." + e.className).join(", ")`)
				t.Errorf("%s at %dpx: %dpx wide (%s)", name, width, sw, wide)
			}
			if width < 600 && strings.HasPrefix(name, "tx-") && name != "tx-decided" {
				// the decision is on the first screen, the digest far below
				if b := eval[float64](t, ctx, `document.getElementById("approve").getBoundingClientRect().bottom`); b > 844 {
					t.Errorf("%s at %dpx: Approve is below the first screen (%.0f px)", name, width, b)
				}
				if l, r := eval[float64](t, ctx, `document.getElementById("reject-open").getBoundingClientRect().left`), eval[float64](t, ctx, `document.getElementById("approve").getBoundingClientRect().left`); l >= r {
					t.Errorf("%s: Reject is not left of Approve", name)
				}
			}
			if width < 600 {
				if h := eval[float64](t, ctx, `document.querySelector("header.top").getBoundingClientRect().height`); h > 100 {
					t.Errorf("%s at %dpx: the header is %.0f px tall", name, width, h)
				}
			}
			if update && width != 360 {
				suffix := ""
				if width < 600 {
					suffix = "-phone"
				}
				saveScreenshot(t, ctx, name+suffix+".png", width < 600)
			}
		}
	}
	// the badge counts what waits
	do(t, ctx, chromedp.EmulateViewport(1200, 900), chromedp.Navigate(e.url+"/activity"), chromedp.WaitVisible(chromedp.ID("pending-count")))
	if n := text(t, ctx, "#pending-count"); n != fmt.Sprint(len(fx.ids)) {
		t.Errorf("pending badge %q, want %d", n, len(fx.ids))
	}
	// without EXPLORER_URL the hash is shown with a copy button, not a link to #
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+done), chromedp.WaitVisible(chromedp.ID("decided")))
	if tag := eval[string](t, ctx, `document.getElementById("tx-hash").tagName`); tag != "CODE" {
		t.Errorf("the tx hash is a %s without EXPLORER_URL", tag)
	}
	if d := text(t, ctx, "#decided-by"); !strings.Contains(d, "Approved by "+fx.u.name) {
		t.Errorf("decided: %s", d)
	}
	// the audit log names actors, the id on hover
	do(t, ctx, chromedp.Navigate(e.url+"/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	if a := eval[string](t, ctx, `document.querySelector("#audit .actor").title + " " + document.querySelector("#audit").innerText`); !strings.Contains(a, "user:") || !strings.Contains(a, fx.u.name) {
		t.Errorf("audit actors: %.300s", a)
	}
}

// saveScreenshot writes a committed screenshot: the first screen on a
// phone (what an approver sees), the whole page on a desktop.
func saveScreenshot(t *testing.T, ctx context.Context, name string, phone bool) {
	t.Helper()
	var png []byte
	var err error
	if phone {
		png, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
	} else {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}
