package main

import (
	"io"
	"strings"
	"testing"
	"time"
)

// TestBalanceAlerts: a wallet whose balance is below its threshold fires
// wallet.low_balance once, however many checks run; funding it fires
// wallet.balance_restored once; the alert and /metrics show the last
// balance; only the owner sets alerts, and bad input changes nothing.
func TestBalanceAlerts(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	wallet := e.createWallet(u)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": "1000"}).must(t, 200)
	var id string
	for _, w := range e.do("GET", "/api/wallets", bearer(u.token), nil).must(t, 200).body["wallets"].([]any) {
		id = w.(map[string]any)["wallet_id"].(string)
	}
	path := "/api/wallets/" + id + "/low_balance"
	e.do("PUT", path, bearer(u.token), map[string]string{"below": "1.5"}).refused(t, 400, "BAD_REQUEST")
	e.do("PUT", path, bearer(u.token), map[string]string{"below": "-1"}).refused(t, 400, "BAD_REQUEST")
	e.do("PUT", path, bearer(u.token), map[string]string{"asset": "0x12", "below": "1"}).refused(t, 400, "BAD_REQUEST")
	other := e.newUser(false)
	e.do("PUT", path, bearer(other.token), map[string]string{"below": "5000"}).refused(t, 404, "NOT_FOUND")
	if n := len(e.do("GET", path, bearer(u.token), nil).must(t, 200).body["alerts"].([]any)); n != 0 {
		t.Fatalf("refused requests left %d alerts", n)
	}
	e.do("PUT", path, bearer(u.token), map[string]string{"below": "5000"}).must(t, 200)

	count := func(action string) int {
		return strings.Count(e.do("GET", "/api/audit?limit=500", bearer(u.token), nil).must(t, 200).raw, `"action":"`+action+`"`)
	}
	waitFor := func(action string, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for count(action) < n {
			if time.Now().After(deadline) {
				t.Fatalf("no %s after 10 s", action)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("wallet.low_balance", 1)
	a := e.do("GET", path, bearer(u.token), nil).must(t, 200).body["alerts"].([]any)[0].(map[string]any)
	if a["low"] != true || a["last_balance"] != "1000" || a["asset"] != "native" {
		t.Fatalf("alert after the check: %v", a)
	}
	// more checks while still low fire nothing more
	for range 3 {
		e.clock.Advance(2 * time.Minute)
		time.Sleep(100 * time.Millisecond)
	}
	if n := count("wallet.low_balance"); n != 1 {
		t.Fatalf("wallet.low_balance fired %d times while the balance stayed low", n)
	}
	res, err := e.http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(body), `countersign_wallet_balance_low{asset="native",wallet_id="`+id+`"} 1`) {
		t.Fatalf("metrics:\n%s", grepLines(string(body), "countersign_wallet_balance"))
	}
	// funded: restored, once
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": "10000"}).must(t, 200)
	e.clock.Advance(2 * time.Minute)
	waitFor("wallet.balance_restored", 1)
	for range 3 {
		e.clock.Advance(2 * time.Minute)
		time.Sleep(100 * time.Millisecond)
	}
	if n := count("wallet.balance_restored"); n != 1 {
		t.Fatalf("wallet.balance_restored fired %d times", n)
	}
	// removed with 0
	if n := len(e.do("PUT", path, bearer(u.token), map[string]string{"below": "0"}).must(t, 200).body["alerts"].([]any)); n != 0 {
		t.Fatalf("%d alerts after removing it", n)
	}
}
