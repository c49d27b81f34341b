package main

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestChargeReceipts: a confirmed agent spend has exactly one receipt with
// its amount, asset, reason, hash and agent; a message signature has
// none; an agent sees only its own, another user none; the CSV export and
// the metrics agree.
func TestChargeReceipts(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	wallet := e.createWallet(u)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(10).String()}).must(t, 200)
	agentID, key := e.createAgent(u, wallet)
	_, key2 := e.createAgent(u, wallet)
	to := randomAddress()
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": to, "amount": "1234567"}).must(t, 202).str("transaction_id")
	hash := e.approveAndExecute(u, key, id)
	// a message signature moves no money: no receipt
	msg := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]any{"type": "personal_sign", "message": "hello"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": msg, "mfa_code": e.code(u)}).must(t, 200)
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": msg}).must(t, 201)

	r := e.do("GET", "/api/charge_receipts", bearer(u.token), nil).must(t, 200)
	list := r.body["receipts"].([]any)
	if len(list) != 1 {
		t.Fatalf("%d receipts, want 1: %s", len(list), r.raw)
	}
	c := list[0].(map[string]any)
	for k, want := range map[string]any{"agent_id": agentID, "transaction_id": id, "reason": "transfer", "amount": "1234567", "asset": "native", "tx_hash": hash, "usd_estimate": nil} {
		if c[k] != want {
			t.Errorf("receipt %s = %v, want %v", k, c[k], want)
		}
	}
	// the agent sees its own; the other agent and another user see none
	if n := len(e.do("GET", "/api/charge_receipts", apiKey(key), nil).must(t, 200).body["receipts"].([]any)); n != 1 {
		t.Errorf("the spending agent sees %d", n)
	}
	if n := len(e.do("GET", "/api/charge_receipts", apiKey(key2), nil).must(t, 200).body["receipts"].([]any)); n != 0 {
		t.Errorf("another agent sees %d of its sibling's receipts", n)
	}
	other := e.newUser(false)
	if n := len(e.do("GET", "/api/charge_receipts?agent_id="+agentID, bearer(other.token), nil).must(t, 200).body["receipts"].([]any)); n != 0 {
		t.Errorf("another user sees %d", n)
	}
	// filters
	if n := len(e.do("GET", "/api/charge_receipts?reason=x402", bearer(u.token), nil).must(t, 200).body["receipts"].([]any)); n != 0 {
		t.Errorf("reason filter: %d", n)
	}
	e.do("GET", "/api/charge_receipts?since=yesterday", bearer(u.token), nil).refused(t, 400, "BAD_REQUEST")
	e.do("GET", "/api/charge_receipts?format=xml", bearer(u.token), nil).refused(t, 400, "BAD_REQUEST")
	e.do("GET", "/api/charge_receipts", anon, nil).refused(t, 401, "UNAUTHORIZED")

	// CSV
	req, _ := http.NewRequest("GET", e.url+"/api/charge_receipts?format=csv", nil)
	req.Header.Set("Authorization", "Bearer "+u.token)
	res, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") {
		t.Fatalf("content type %q", res.Header.Get("Content-Type"))
	}
	rows, err := csv.NewReader(res.Body).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "id" || rows[1][4] != id || rows[1][6] != "1234567" || rows[1][9] != hash {
		t.Fatalf("csv: %v %v", rows, err)
	}

	// metrics (loopback without METRICS_TOKEN)
	res2, err := e.http.Get(e.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res2.Body)
	res2.Body.Close()
	if !strings.Contains(string(body), `countersign_spends_total{agent_id="`+agentID+`",asset="native"`) ||
		!strings.Contains(string(body), `countersign_spend_base_units_total{agent_id="`+agentID+`",asset="native"`) {
		t.Fatalf("no spend metrics for the agent:\n%s", grepLines(string(body), "countersign_spend"))
	}
	// the sample Grafana dashboard queries only series the server exports
	dash, err := os.ReadFile("../../deploy/grafana/countersign.json")
	if err != nil {
		t.Fatal(err)
	}
	var parsed map[string]any
	if err := json.Unmarshal(dash, &parsed); err != nil {
		t.Fatalf("deploy/grafana/countersign.json: %v", err)
	}
	names := regexp.MustCompile(`countersign_[a-z_]+`).FindAllString(string(dash), -1)
	if len(names) < 5 {
		t.Fatalf("the dashboard queries %d series", len(names))
	}
	for _, n := range names {
		if !strings.Contains(string(body), "\n"+n+"{") && !strings.Contains(string(body), "\n"+n+" ") {
			t.Errorf("the dashboard queries %s, which /metrics does not export", n)
		}
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
