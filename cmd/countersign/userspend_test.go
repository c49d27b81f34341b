package main

import (
	"fmt"
	"strings"
	"testing"
)

// TestSecurity_OwnerSpendRefusedWithApprovers: on a wallet with an
// approver besides its owner, the owner's one-step spends (/api/transfer,
// /api/transfer_erc20, /api/contract_call) are refused and send nothing:
// they would authorize a spend the approver never saw. On the old code
// the transfer answered 201 and the money left.
func TestSecurity_OwnerSpendRefusedWithApprovers(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, _ := setup(t, e)
	to := randomAddress()
	// without approvers the owner's own spend works
	e.do("POST", "/api/transfer", bearer(owner.token), map[string]string{"password": testPassword, "mfa_code": e.code(owner), "address": wallet, "to_address": to, "amount": "1"}).must(t, 201)
	addApprover(t, e, owner, walletIDOf(t, e, owner, wallet), e.newUser(true))
	before := e.do("GET", "/api/transactions", bearer(owner.token), nil).must(t, 200).body["transactions"].([]any)
	for name, c := range map[string]struct {
		path string
		body map[string]string
	}{
		"transfer":       {"/api/transfer", map[string]string{"to_address": to, "amount": "1"}},
		"transfer_erc20": {"/api/transfer_erc20", map[string]string{"token_address": e.app.Dev.Token.Hex(), "to_address": to, "amount": "1"}},
		"contract_call":  {"/api/contract_call", map[string]string{"contract_address": e.app.Dev.Counter.Hex(), "contract_abi": `[{"type":"function","name":"increment","inputs":[],"outputs":[]}]`, "function_name": "increment"}},
	} {
		c.body["password"], c.body["mfa_code"], c.body["address"] = testPassword, e.code(owner), wallet
		t.Log(name)
		e.do("POST", c.path, bearer(owner.token), c.body).refused(t, 403, "FORBIDDEN")
	}
	after := e.do("GET", "/api/transactions", bearer(owner.token), nil).must(t, 200).body["transactions"].([]any)
	if len(after) != len(before) {
		t.Fatalf("refused spends left %d transactions behind", len(after)-len(before))
	}
}

// A one-step spend refused before anything was signed (here: more than
// the wallet holds) leaves no authorized row behind: it ends failed, with
// the refusal, and nothing is left for anyone to execute. Before, the row
// stayed "authorized" in the owner's list for AUTHORIZED_TTL, looking like
// an approved spend that no one could execute or cancel.
func TestUserSpendRefusedLeavesNoAuthorizedRow(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, _ := setup(t, e)
	e.do("POST", "/api/transfer", bearer(owner.token), map[string]string{"password": testPassword, "mfa_code": e.code(owner), "address": wallet,
		"to_address": randomAddress(), "amount": "999999999999999999999999999"}).refused(t, 422, "INSUFFICIENT_FUNDS")
	if left := e.do("GET", "/api/transactions?status=authorized", bearer(owner.token), nil).must(t, 200).body["transactions"].([]any); len(left) != 0 {
		t.Fatalf("the refused spend left %d authorized rows: %v", len(left), left)
	}
	failed := e.do("GET", "/api/transactions?status=failed", bearer(owner.token), nil).must(t, 200).body["transactions"].([]any)
	if len(failed) != 1 || failed[0].(map[string]any)["tx_hash"] != nil || !strings.Contains(fmt.Sprint(failed[0].(map[string]any)["error"]), "cannot pay") {
		t.Fatalf("the refused spend: %v", failed)
	}
}
