package main

import (
	"os"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// TestSecurity_PasskeyApprovesOnlyItsRequest: a passkey is registered with
// a code through the DevTools virtual authenticator and approves a request
// with a tap; an assertion started for one request is refused for another,
// and an assertion is used once.
func TestSecurity_PasskeyApprovesOnlyItsRequest(t *testing.T) {
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	prep := func() string {
		return e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	}
	status := func(id string) string {
		return e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200).str("status")
	}
	a, b, c := prep(), prep(), prep()
	// passkeys live on the host name: a loopback PUBLIC_URL is "localhost"
	base := strings.Replace(e.url, "127.0.0.1", "localhost", 1)

	ctx := newBrowser(t)
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}}); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("login-submit")),
		chromedp.SendKeys(chromedp.ID("username"), u.name), chromedp.SendKeys(chromedp.ID("password"), u.password),
		chromedp.Click(chromedp.ID("login-submit")), chromedp.WaitVisible(chromedp.ID("inbox-list")))

	// registering needs a code: a wrong one adds nothing
	do(t, ctx, chromedp.Navigate(base+"/passkeys"), chromedp.WaitVisible(chromedp.ID("passkey-add")),
		chromedp.SendKeys(chromedp.ID("pk-name"), "test phone"), chromedp.SendKeys(chromedp.ID("pk-code"), "000000"), chromedp.Click(chromedp.ID("passkey-add")))
	waitFor(t, ctx, `document.getElementById("passkey-form-status").innerText.includes("Not added")`)
	do(t, ctx, chromedp.SetValue(chromedp.ID("pk-code"), e.code(u)), chromedp.Click(chromedp.ID("passkey-add")))
	waitFlash(t, ctx, "Passkey “test phone” added")
	if l := text(t, ctx, "#passkeys"); !strings.Contains(l, "test phone") {
		t.Fatalf("passkeys: %s", l)
	}

	// a tap approves the request the page shows
	do(t, ctx, chromedp.Navigate(base+"/tx/"+a), chromedp.WaitVisible(chromedp.ID("approve-passkey")), chromedp.Click(chromedp.ID("approve-passkey")))
	waitFlash(t, ctx, "Approved")
	if st := status(a); st != "authorized" {
		t.Fatalf("after the passkey approval: %s", st)
	}

	// an assertion started for b, sent to approve c: refused, c unchanged
	attack := `(async () => {
	  const csrf = document.querySelector("input[name=csrf]").value;
	  const opts = await (await postForm("/tx/` + b + `/passkey", { csrf })).json();
	  const pk = opts.publicKey; pk.challenge = b64u.dec(pk.challenge); (pk.allowCredentials || []).forEach((c) => { c.id = b64u.dec(c.id); });
	  const cred = credentialJSON(await navigator.credentials.get({ publicKey: pk }));
	  const send = async (id) => (await fetch("/tx/" + id + "/decide", { method: "POST", credentials: "same-origin", body: new URLSearchParams({ csrf, decision: "approve", passkey: cred }) })).text();
	  return [await send("` + c + `"), await send("` + b + `")];
	})()`
	do(t, ctx, chromedp.Navigate(base+"/tx/"+b), chromedp.WaitVisible(chromedp.ID("approve-passkey")))
	if os.Getenv("UPDATE_SCREENSHOTS") == "1" {
		saveScreenshot(t, ctx, "tx-passkey.png", false)
		do(t, ctx, chromedp.EmulateViewport(390, 844), chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("approve-passkey")))
		saveScreenshot(t, ctx, "tx-passkey-phone.png", true)
		if sw := eval[int](t, ctx, `document.documentElement.scrollWidth`); sw > 390 {
			t.Errorf("the passkey page is %dpx wide on a phone", sw)
		}
		do(t, ctx, chromedp.ResetViewport())
	}
	pages, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](attack, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pages[0], "approves another request") || status(c) != "pending" {
		t.Fatalf("an assertion for %s approved %s (%s)", b, c, status(c))
	}
	// the ceremony was for b, but it is spent: one assertion, one use
	if !strings.Contains(pages[1], "not for this ceremony") || status(b) != "pending" {
		t.Fatalf("a spent assertion approved %s: %s", b, status(b))
	}
	// the code still works beside the passkey
	do(t, ctx, chromedp.Navigate(base+"/tx/"+c), chromedp.WaitVisible(chromedp.ID("mfa-code")),
		chromedp.SendKeys(chromedp.ID("mfa-code"), e.code(u)), chromedp.Click(chromedp.ID("approve")))
	waitFlash(t, ctx, "Approved")
	if st := status(c); st != "authorized" {
		t.Fatalf("code approval beside a passkey: %s", st)
	}
	if a := e.do("GET", "/api/audit_log", bearer(u.token), nil); a.status == 200 && !strings.Contains(a.raw, "passkey.register") {
		t.Errorf("the registration is not audited")
	}
}
