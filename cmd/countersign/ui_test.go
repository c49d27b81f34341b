package main

import (
	"context"
	"encoding/base32"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/contracts"
)

// screenshotDir is the test output folder for screenshots a reviewer can
// look at (git-ignored; docs/screenshots holds committed copies).
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("COUNTERSIGN_TEST_OUTPUT")
	if dir == "" {
		dir = "testoutput"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts Debian's headless Chromium (installed by the test
// command). Under CI a missing browser fails the test.
func newBrowser(t *testing.T) context.Context {
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is not installed: scripts/ensure-tools.sh installs it")
		}
		t.Skip("chromium not installed")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1100, 1000))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// waitFor polls js until it is true, across page navigations (a form
// submission replaces the page while the poll runs).
func waitFor(t *testing.T, ctx context.Context, js string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(2*time.Second)))
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", js, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFlash waits for the page's one-time message to say want.
func waitFlash(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	waitFor(t, ctx, `(document.getElementById("flash") || {innerText: ""}).innerText.includes(`+strconv.Quote(want)+`)`)
}

func shot(t *testing.T, ctx context.Context, name string) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(screenshotDir(t), name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestWebUIApprovalFlow: sign up, enrol MFA from the page, create a wallet
// and an agent, the agent prepares over the API, the request appears in the
// open inbox without a reload, the human opens it, a wrong code is refused,
// a right one approves, the agent executes, the activity page shows it
// confirmed; then a rejection with a reason.
func TestWebUIApprovalFlow(t *testing.T) {
	e := newEnv(t)
	ctx := newBrowser(t)
	u := &user{name: "browser-alice", password: testPassword}

	do(t, ctx, chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.ID("login-submit")),
		chromedp.Click(chromedp.CSS(`a[href="/signup"]`)), chromedp.WaitVisible(chromedp.ID("signup-submit")),
		chromedp.SendKeys(chromedp.ID("username"), u.name), chromedp.SendKeys(chromedp.ID("password"), u.password),
		chromedp.Click(chromedp.ID("signup-submit")), chromedp.WaitVisible(chromedp.ID("mfa-begin")),
		chromedp.Click(chromedp.ID("mfa-begin")), chromedp.WaitVisible(chromedp.ID("mfa-secret")))
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(text(t, ctx, "#mfa-secret"))
	if err != nil {
		t.Fatal(err)
	}
	u.secret = secret
	if src := eval[string](t, ctx, `document.querySelector("img.qr").src.slice(0, 22)`); src != "data:image/png;base64," {
		t.Fatalf("QR image: %s", src)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("mfa-code"), e.code(u)), chromedp.Click(chromedp.ID("mfa-confirm")),
		chromedp.WaitVisible(chromedp.ID("recovery-codes")))
	if n := eval[int](t, ctx, `document.querySelectorAll("#recovery-codes li").length`); n != 10 {
		t.Fatalf("%d recovery codes", n)
	}

	// a wallet, funded from the dev faucet button
	do(t, ctx, chromedp.Navigate(e.url+"/wallets"), chromedp.SendKeys(chromedp.ID("w-name"), "ops"),
		chromedp.SendKeys(chromedp.ID("w-password"), u.password), chromedp.Click(chromedp.ID("create-wallet")),
		chromedp.WaitVisible(chromedp.ID("wallet-address-0")))
	wallet := text(t, ctx, "#wallet-address-0")
	do(t, ctx, chromedp.Click(chromedp.CSS("button.faucet")))
	waitFlash(t, ctx, "Sent 1 ETH")
	if b := text(t, ctx, ".balances"); !strings.Contains(b, "1 ETH") || !strings.Contains(b, "100 TEST") {
		t.Fatalf("balances after the faucet: %s", b)
	}

	// an agent: the key is shown once, with a curl example
	do(t, ctx, chromedp.Navigate(e.url+"/agents"), chromedp.SendKeys(chromedp.ID("a-name"), "billing-bot"),
		chromedp.SendKeys(chromedp.ID("a-code"), e.code(u)), chromedp.Click(chromedp.ID("create-agent")),
		chromedp.WaitVisible(chromedp.ID("api-key")))
	key := text(t, ctx, "#api-key")
	if !auth.LooksLikeAPIKey(key) || !strings.Contains(text(t, ctx, "#curl-example"), key) {
		t.Fatalf("agent key %q / curl %q", key, text(t, ctx, "#curl-example"))
	}

	// the inbox is open; the agent asks; the row appears without a reload
	do(t, ctx, chromedp.Navigate(e.url+"/inbox"), chromedp.WaitVisible(chromedp.ID("inbox-list")))
	eval[bool](t, ctx, `window.__noReload = true`)
	time.Sleep(300 * time.Millisecond) // let the event stream connect
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(),
		"amount": "250000000000000000", "memo": "GPU invoice 7"}).must(t, 202).str("transaction_id")
	waitFor(t, ctx, `document.getElementById("inbox-list").innerText.includes("GPU invoice 7")`)
	if !eval[bool](t, ctx, `window.__noReload === true`) {
		t.Fatal("the page reloaded")
	}
	if row := text(t, ctx, "#inbox-list"); !strings.Contains(row, "0.25 ETH") || !strings.Contains(row, "billing-bot") || !strings.Contains(row, "expires in") {
		t.Fatalf("inbox row: %s", row)
	}
	shot(t, ctx, "inbox.png")
	do(t, ctx, chromedp.EmulateViewport(390, 844))
	shot(t, ctx, "inbox-phone.png")
	if w := eval[int](t, ctx, `document.documentElement.scrollWidth`); w > 400 {
		t.Fatalf("the inbox overflows a phone-sized screen: %dpx wide", w)
	}
	do(t, ctx, chromedp.ResetViewport())

	// the detail page: decoded amount, memo, simulation
	do(t, ctx, chromedp.Click(chromedp.CSS(".txlink")), chromedp.WaitVisible(chromedp.ID("summary")))
	if s := text(t, ctx, "#summary"); !strings.Contains(s, "Send 0.25 ETH to") {
		t.Fatalf("summary: %s", s)
	}
	if m := text(t, ctx, "#memo"); !strings.Contains(m, "GPU invoice 7") {
		t.Fatalf("memo: %s", m)
	}
	if w := text(t, ctx, "#warnings"); !strings.Contains(w, "New recipient") {
		t.Fatalf("warnings: %s", w)
	}
	if sim := text(t, ctx, "#simulation"); !strings.Contains(sim, "succeeds") {
		t.Fatalf("simulation: %s", sim)
	}
	shot(t, ctx, "detail.png")

	// a wrong code is refused and changes nothing
	wrong := "000000"
	if wrong == auth.TOTPCode(u.secret, e.clock.Now().Add(30*time.Second)) {
		wrong = "111111"
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("mfa-code"), wrong), chromedp.Click(chromedp.ID("approve")))
	waitFlash(t, ctx, "invalid or already used MFA code")
	if st := text(t, ctx, "#status"); st != "pending" {
		t.Fatalf("a wrong code changed the status to %s", st)
	}
	do(t, ctx, chromedp.SendKeys(chromedp.ID("mfa-code"), e.code(u)), chromedp.Click(chromedp.ID("approve")))
	waitFlash(t, ctx, "Approved")
	if st := text(t, ctx, "#status"); st != "authorized" {
		t.Fatalf("after approval: %s", st)
	}

	// the agent executes; activity shows it confirmed with its hash
	hash := e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201).str("tx_hash")
	e.waitStatus(apiKey(key), id, "confirmed")
	do(t, ctx, chromedp.Navigate(e.url+"/activity"), chromedp.WaitVisible(chromedp.ID("activity")))
	if a := text(t, ctx, "#activity"); !strings.Contains(a, "confirmed") || !strings.Contains(a, hash) {
		t.Fatalf("activity: %s", a)
	}
	shot(t, ctx, "activity.png")

	// reject with a reason: the agent reads it
	rj := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": wallet, "amount": "1", "memo": "send to self"}).must(t, 202).str("transaction_id")
	// (rejecting needs the session and a confirmation, no code: ui_approver_test.go)
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+rj), chromedp.WaitVisible(chromedp.ID("reject-open")),
		chromedp.Click(chromedp.ID("reject-open")), chromedp.WaitVisible(chromedp.ID("reason")),
		chromedp.SendKeys(chromedp.ID("reason"), "not needed"), chromedp.Click(chromedp.ID("reject")))
	waitFlash(t, ctx, "Rejected")
	st := e.do("GET", "/api/transaction_status?transaction_id="+rj, apiKey(key), nil).must(t, 200)
	if st.str("status") != "rejected" || st.str("reason") != "not needed" {
		t.Fatalf("rejected: %s", st.raw)
	}

	// the audit page shows the decisions; logout ends the session
	do(t, ctx, chromedp.Navigate(e.url+"/audit"), chromedp.WaitVisible(chromedp.ID("audit")))
	if a := text(t, ctx, "#audit"); !strings.Contains(a, "transaction.authorize") || !strings.Contains(a, "transaction.reject") {
		t.Fatalf("audit: %s", a)
	}
	do(t, ctx, chromedp.Click(chromedp.CSS(".logout button")), chromedp.WaitVisible(chromedp.ID("login-submit")),
		chromedp.Navigate(e.url+"/inbox"), chromedp.WaitVisible(chromedp.ID("login-submit")))
}

// TestWebUIEscapesAgentInput: markup in a memo, an ABI function name, an
// argument name, a string argument's value, a personal_sign text and typed
// data's domain and message renders as text, and no script runs.
func TestWebUIEscapesAgentInput(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	info := e.do("GET", "/api/dev/info", anon, nil).must(t, 200)
	memo := `<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">`
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1", "memo": memo}).must(t, 202)
	evilABI := `[{"type":"function","name":"x<script>window.__xss=3</script>","stateMutability":"nonpayable","inputs":[{"name":"\"><img src=x onerror=window.__xss=4>","type":"uint256"}],"outputs":[]}]`
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]any{"type": "contract_call", "contract_address": info.str("counter_address"),
		"contract_abi": evilABI, "function_name": "x<script>window.__xss=3</script>", "function_args": []string{"1"}, "memo": memo}).must(t, 202).str("transaction_id")

	// every other string an agent controls: a string argument's value, a
	// personal_sign text, typed data's domain name and message fields
	noteABI := `[{"type":"function","name":"note","stateMutability":"nonpayable","inputs":[{"name":"text","type":"string"}],"outputs":[]}]`
	others := []string{
		e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]any{"type": "contract_call", "contract_address": info.str("counter_address"),
			"contract_abi": noteABI, "function_name": "note", "function_args": []string{`<img src=x onerror="window.__xss=5">`}}).must(t, 202).str("transaction_id"),
		e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]any{"type": "personal_sign",
			"message": `<script>window.__xss=6</script><img src=x onerror="window.__xss=7">`}).must(t, 202).str("transaction_id"),
		e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]any{"type": "typed_data", "message": map[string]any{
			"types": map[string]any{
				"EIP712Domain": []map[string]string{{"name": "name", "type": "string"}, {"name": "chainId", "type": "uint256"}},
				"Note":         []map[string]string{{"name": "text", "type": "string"}},
			},
			"primaryType": "Note",
			"domain":      map[string]any{"name": `<img src=x onerror="window.__xss=8">`, "chainId": 1337},
			"message":     map[string]any{"text": `<script>window.__xss=9</script>`},
		}}).must(t, 202).str("transaction_id"),
	}

	ctx := newBrowser(t)
	do(t, ctx, chromedp.Navigate(e.url+"/login"), chromedp.SendKeys(chromedp.ID("username"), u.name), chromedp.SendKeys(chromedp.ID("password"), u.password),
		chromedp.Click(chromedp.ID("login-submit")), chromedp.WaitVisible(chromedp.ID("inbox-list")))
	for _, oid := range others {
		do(t, ctx, chromedp.Navigate(e.url+"/tx/"+oid), chromedp.WaitVisible(chromedp.ID("summary")))
		time.Sleep(100 * time.Millisecond)
		if v := eval[string](t, ctx, `String(window.__xss)`); v != "undefined" {
			t.Fatalf("an injected script ran on /tx/%s: window.__xss = %s", oid, v)
		}
		if n := eval[int](t, ctx, `document.querySelectorAll("main script, main img[src=x]").length`); n != 0 {
			t.Fatalf("%d injected elements on /tx/%s", n, oid)
		}
		if body := text(t, ctx, "main"); !strings.Contains(body, "window.__xss=") {
			t.Fatalf("the agent's text is not shown on /tx/%s: %s", oid, body)
		}
	}
	do(t, ctx, chromedp.Navigate(e.url+"/inbox"), chromedp.WaitVisible(chromedp.ID("inbox-list")))
	if inbox := text(t, ctx, "#inbox-list"); !strings.Contains(inbox, `<script>window.__xss=1</script>`) || !strings.Contains(inbox, "x<script>") {
		t.Fatalf("the markup is not shown as text: %s", inbox)
	}
	do(t, ctx, chromedp.Navigate(e.url+"/tx/"+id), chromedp.WaitVisible(chromedp.ID("summary")))
	if f := text(t, ctx, "#function"); !strings.Contains(f, "<script>") {
		t.Fatalf("function name: %s", f)
	}
	if body := text(t, ctx, "main"); !strings.Contains(body, `"><img src=x onerror=window.__xss=4>`) {
		t.Fatalf("argument name not shown as text")
	}
	time.Sleep(200 * time.Millisecond) // give an injected onerror a chance to fire
	if v := eval[string](t, ctx, `String(window.__xss)`); v != "undefined" {
		t.Fatalf("an injected script ran: window.__xss = %s", v)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("main script, main img[src=x]").length`); n != 0 {
		t.Fatalf("%d injected elements in the page", n)
	}
}

// formClient is a cookie-keeping HTTP client that fills forms the way a
// browser does, for the CSRF and recovery tests.
type formClient struct {
	t   *testing.T
	e   *env
	c   *http.Client
	res string // last page
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func newFormClient(t *testing.T, e *env) *formClient {
	jar, _ := cookiejar.New(nil)
	return &formClient{t: t, e: e, c: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

func (f *formClient) get(path string) string {
	r, err := f.c.Get(f.e.url + path)
	if err != nil {
		f.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	f.res = string(b)
	return f.res
}

func (f *formClient) csrf() string {
	m := csrfRE.FindStringSubmatch(f.res)
	if m == nil {
		f.t.Fatalf("no CSRF token on the page: %s", f.res)
	}
	return m[1]
}

// post submits a form; csrf "" sends none. It returns status and page.
func (f *formClient) post(path string, form url.Values) (int, string) {
	r, err := f.c.PostForm(f.e.url+path, form)
	if err != nil {
		f.t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	f.res = string(b)
	return r.StatusCode, f.res
}

func TestWebUICSRF(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(false)
	f := newFormClient(t, e)
	f.get("/login")
	// the login form itself needs its token
	if st, _ := f.post("/login", url.Values{"username": {u.name}, "password": {u.password}}); st != 403 {
		t.Fatalf("login without CSRF token: %d", st)
	}
	f.get("/login")
	if st, body := f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}}); st != 200 || !strings.Contains(body, "Requests waiting") {
		t.Fatalf("login: %d", st)
	}
	for _, ck := range f.c.Jar.Cookies(mustURL(e.url)) {
		if ck.Name == "cs_session" && ck.Value == "" {
			t.Fatal("no session cookie")
		}
	}
	f.get("/wallets")
	token := f.csrf()
	for name, form := range map[string]url.Values{
		"no token":    {"password": {u.password}, "name": {"x"}},
		"wrong token": {"csrf": {token + "x"}, "password": {u.password}, "name": {"x"}},
	} {
		if st, _ := f.post("/wallets", form); st != 403 {
			t.Errorf("%s: status %d", name, st)
		}
	}
	if n := len(e.do("GET", "/api/wallets", bearer(u.token), nil).must(t, 200).body["wallets"].([]any)); n != 0 {
		t.Fatalf("a refused form created %d wallets", n)
	}
	if st, body := f.post("/wallets", url.Values{"csrf": {token}, "password": {u.password}, "name": {"real"}}); st != 200 || !strings.Contains(body, "Wallet real created") {
		t.Fatalf("with the token: %d", st)
	}
	// the session cookie is HttpOnly and SameSite=Strict
	r, _ := http.NewRequest("GET", e.url+"/login", nil)
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if sc := resp.Header.Get("Set-Cookie"); !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") {
		t.Fatalf("cookie attributes: %s", sc)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("CSP: %s", csp)
	}
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

var recoveryRE = regexp.MustCompile(`<li><code>([A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4}-[A-Z2-7]{4})</code></li>`)
var secretRE = regexp.MustCompile(`id="mfa-secret">([A-Z2-7]+)<`)

// TestWebUIRecoveryCodes: enrolment needs a first code, yields ten codes,
// each code gets the user back in once.
func TestWebUIRecoveryCodes(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(false)
	f := newFormClient(t, e)
	f.get("/login")
	f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}})
	enrol := func() []string {
		f.get("/mfa")
		f.post("/mfa/begin", url.Values{"csrf": {f.csrf()}})
		m := secretRE.FindStringSubmatch(f.res)
		if m == nil {
			t.Fatalf("no secret: %s", f.res)
		}
		sec, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(m[1])
		u.secret = sec
		if _, body := f.post("/mfa/confirm", url.Values{"csrf": {f.csrf()}, "mfa_code": {"000000"}}); !strings.Contains(body, "does not match") {
			t.Fatalf("wrong first code accepted")
		}
		f.get("/mfa")
		_, body := f.post("/mfa/confirm", url.Values{"csrf": {f.csrf()}, "mfa_code": {e.code(u)}})
		var codes []string
		for _, m := range recoveryRE.FindAllStringSubmatch(body, -1) {
			codes = append(codes, m[1])
		}
		if len(codes) != 10 {
			t.Fatalf("%d recovery codes: %s", len(codes), body)
		}
		return codes
	}
	codes := enrol()
	// MFA works for the API now
	if me := e.do("POST", "/api/setup_mfa", bearer(u.token), nil); me.code() != "MFA_REQUIRED" {
		t.Fatalf("MFA not enabled: %s", me.raw)
	}
	f.get("/mfa")
	if _, body := f.post("/mfa/recover", url.Values{"csrf": {f.csrf()}, "recovery_code": {strings.ToLower(codes[3])}}); !strings.Contains(body, "Recovery code accepted") {
		t.Fatalf("recovery: %s", body)
	}
	codes2 := enrol()
	f.get("/mfa")
	if _, body := f.post("/mfa/recover", url.Values{"csrf": {f.csrf()}, "recovery_code": {codes[4]}}); !strings.Contains(body, "wrong or was already used") {
		t.Fatal("a code from the replaced set still works")
	}
	f.get("/mfa")
	if _, body := f.post("/mfa/recover", url.Values{"csrf": {f.csrf()}, "recovery_code": {codes2[0]}}); !strings.Contains(body, "Recovery code accepted") {
		t.Fatal("a fresh code does not work")
	}
	enrol()
	f.get("/mfa")
	if _, body := f.post("/mfa/recover", url.Values{"csrf": {f.csrf()}, "recovery_code": {codes2[0]}}); !strings.Contains(body, "wrong or was already used") {
		t.Fatal("a used code works twice")
	}
}

var _ = contracts.MustLoad
