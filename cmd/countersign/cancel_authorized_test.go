package main

import (
	"strings"
	"testing"
)

// TestMoney_AgentCancelsAnAutoAuthorizedRequest: an auto-approved request
// the agent no longer wants can be cancelled before it is executed; its
// budget reservation comes back at once and it can no longer be executed.
// Once executed it cannot be cancelled. On the old code the cancel was
// 409 (pending only), so the reservation stayed held until AUTHORIZED_TTL.
func TestMoney_AgentCancelsAnAutoAuthorizedRequest(t *testing.T) {
	f := newPolicyFixture(t)
	e := f.e
	e.do("POST", "/api/dev/faucet", bearer(f.u.token), map[string]string{"address": f.address, "amount": "1000000000000000000"}).must(t, 200)
	f.put("/api/agents/"+f.agentID+"/policy", `{"rules":[{"id":"small","when":{"kind":["native"],"max_amount":"1000"},
	  "then":"auto","budget":{"max":"1500","window":"24h"}}],"default":"human"}`).must(t, 200)
	r := f.prepare(f.key, "1000", payee).must(t, 202)
	if r.str("status") != "authorized" {
		t.Fatalf("auto: %s", r.raw)
	}
	id := r.str("transaction_id")
	if b := e.do("GET", "/api/budget", apiKey(f.key), nil).must(t, 200); !strings.Contains(b.raw, `"remaining":"500"`) {
		t.Fatalf("budget while reserved: %s", b.raw)
	}
	c := e.do("POST", "/api/cancel_transaction", apiKey(f.key), map[string]string{"transaction_id": id}).must(t, 200)
	if c.str("status") != "cancelled" {
		t.Fatalf("cancel: %s", c.raw)
	}
	if b := e.do("GET", "/api/budget", apiKey(f.key), nil).must(t, 200); !strings.Contains(b.raw, `"remaining":"1500"`) {
		t.Fatalf("budget after the cancel: %s", b.raw)
	}
	e.do("POST", "/api/execute_transaction", apiKey(f.key), map[string]string{"transaction_id": id}).refused(t, 409, "NOT_AUTHORIZED")
	// the released budget covers the next one, which is executed and then cannot be cancelled
	next := f.prepare(f.key, "1000", payee).must(t, 202)
	if next.str("status") != "authorized" {
		t.Fatalf("after the release: %s", next.raw)
	}
	e.do("POST", "/api/execute_transaction", apiKey(f.key), map[string]string{"transaction_id": next.str("transaction_id")}).must(t, 201)
	e.do("POST", "/api/cancel_transaction", apiKey(f.key), map[string]string{"transaction_id": next.str("transaction_id")}).refused(t, 409, "CONFLICT")
}
