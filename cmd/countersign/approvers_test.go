package main

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Approvers, quorum, withdrawal, AUTHORIZED_TTL and the kill switch end to
// end, through the real wiring and HTTP server.

// approverMatrixIDs is the owner's wallet id (of address) and user id, for
// the authorization matrix's approver rows.
func approverMatrixIDs(t *testing.T, e *env, owner *user, address string) (walletID, userID string) {
	t.Helper()
	walletID = walletIDOf(t, e, owner, address)
	for _, a := range e.do("GET", "/api/audit", bearer(owner.token), nil).must(t, 200).body["entries"].([]any) {
		if m := a.(map[string]any); m["action"] == "user.register" {
			userID, _ = m["subject"].(string)
		}
	}
	if walletID == "" || userID == "" {
		t.Fatalf("no wallet id (%q) or user id (%q)", walletID, userID)
	}
	return walletID, userID
}

func walletIDOf(t *testing.T, e *env, u *user, address string) string {
	t.Helper()
	for _, w := range e.do("GET", "/api/wallets", bearer(u.token), nil).must(t, 200).body["wallets"].([]any) {
		if m := w.(map[string]any); m["address"] == address {
			return m["wallet_id"].(string)
		}
	}
	t.Fatalf("wallet %s not found", address)
	return ""
}

// addApprover invites u to the wallet and accepts with u's own code.
func addApprover(t *testing.T, e *env, owner *user, walletID string, u *user) {
	t.Helper()
	inv := e.do("POST", "/api/wallets/"+walletID+"/approvers", bearer(owner.token), map[string]string{"username": u.name, "mfa_code": e.code(owner)}).must(t, 201).str("invitation_id")
	list := e.do("GET", "/api/approvals/invitations", bearer(u.token), nil).must(t, 200).body["invitations"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["invitation_id"] != inv {
		t.Fatalf("invitee's invitations: %v", list)
	}
	// the invitee's own code, not the owner's
	e.do("POST", "/api/approvals/invitations/"+inv+"/accept", bearer(u.token), map[string]string{"mfa_code": e.code(owner)}).refused(t, 403, "MFA_INVALID")
	e.do("POST", "/api/approvals/invitations/"+inv+"/accept", bearer(u.token), map[string]string{"mfa_code": e.code(u)}).must(t, 200)
}

func TestApproversQuorumFlow(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, key := setup(t, e)
	walletID := walletIDOf(t, e, owner, wallet)
	bob := e.newUser(true)
	addApprover(t, e, owner, walletID, bob)
	approvers := e.do("GET", "/api/wallets/"+walletID+"/approvers", bearer(bob.token), nil).must(t, 200).body["approvers"].([]any)
	if len(approvers) != 2 || approvers[0].(map[string]any)["role"] != "owner" || approvers[1].(map[string]any)["username"] != bob.name {
		t.Fatalf("approvers: %v", approvers)
	}
	e.do("PUT", "/api/wallets/"+walletID+"/policy", bearer(owner.token), map[string]any{"mfa_code": e.code(owner),
		"rules": []any{map[string]any{"id": "two", "when": map[string]any{}, "then": "quorum", "quorum": 2}}, "default": "human"}).must(t, 200)

	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200)
	if st.body["approvals_needed"] != float64(2) || st.str("decision") != "quorum" {
		t.Fatalf("prepared: %s", st.raw)
	}
	e.do("POST", "/api/authorize_transaction", bearer(owner.token), map[string]string{"transaction_id": id, "mfa_code": e.code(owner)}).must(t, 200)
	st = e.do("GET", "/api/transaction_status?transaction_id="+id, bearer(owner.token), nil).must(t, 200)
	if st.str("status") != "pending" || len(st.body["approvals"].([]any)) != 1 {
		t.Fatalf("after one approval of two: %s", st.raw)
	}
	// the same person again does not count
	e.do("POST", "/api/authorize_transaction", bearer(owner.token), map[string]string{"transaction_id": id, "mfa_code": e.code(owner)}).refused(t, 409, "CONFLICT")
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).refused(t, 409, "NOT_AUTHORIZED")
	// bob sees it in his inbox and approves with his own code
	inbox := e.do("GET", "/api/transactions?status=pending", bearer(bob.token), nil).must(t, 200).body["transactions"].([]any)
	if len(inbox) != 1 || inbox[0].(map[string]any)["transaction_id"] != id {
		t.Fatalf("bob's inbox: %v", inbox)
	}
	e.do("POST", "/api/authorize_transaction", bearer(bob.token), map[string]string{"transaction_id": id, "mfa_code": e.code(bob)}).must(t, 200)
	st = e.do("GET", "/api/transaction_status?transaction_id="+id, bearer(bob.token), nil).must(t, 200)
	if st.str("status") != "authorized" || len(st.body["approvals"].([]any)) != 2 {
		t.Fatalf("after two approvals: %s", st.raw)
	}
	// bob withdraws before execution: back to pending
	e.do("POST", "/api/withdraw_approval", bearer(bob.token), map[string]string{"transaction_id": id, "mfa_code": e.code(bob)}).must(t, 200)
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).refused(t, 409, "NOT_AUTHORIZED")
	e.do("POST", "/api/authorize_transaction", bearer(bob.token), map[string]string{"transaction_id": id, "mfa_code": e.code(bob)}).must(t, 200)
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201)

	// a reject by any approver rejects
	id2 := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(owner.token), map[string]string{"transaction_id": id2, "mfa_code": e.code(owner)}).must(t, 200)
	e.do("POST", "/api/authorize_transaction", bearer(bob.token), map[string]string{"transaction_id": id2, "mfa_code": e.code(bob), "decision": "reject"}).must(t, 200)
	if s := e.do("GET", "/api/transaction_status?transaction_id="+id2, apiKey(key), nil).must(t, 200).str("status"); s != "rejected" {
		t.Fatalf("after bob's reject: %s", s)
	}

	// a loosening change waits for the quorum
	put := e.do("PUT", "/api/wallets/"+walletID+"/policy", bearer(owner.token), map[string]any{"mfa_code": e.code(owner),
		"rules": []any{map[string]any{"id": "one", "when": map[string]any{}, "then": "human"}}, "default": "human"}).must(t, 200)
	pending, _ := put.body["policy"].(map[string]any)["pending_change"].(map[string]any)
	if pending == nil || pending["approvals_needed"] != float64(2) {
		t.Fatalf("loosening PUT: %s", put.raw)
	}
	id3 := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	if n := e.do("GET", "/api/transaction_status?transaction_id="+id3, apiKey(key), nil).must(t, 200).body["approvals_needed"]; n != float64(2) {
		t.Fatalf("the owner alone loosened the quorum: approvals_needed %v", n)
	}
	changes := e.do("GET", "/api/policy_changes", bearer(bob.token), nil).must(t, 200).body["changes"].([]any)
	if len(changes) != 1 {
		t.Fatalf("bob's pending changes: %v", changes)
	}
	change := pending["change_id"].(string)
	e.do("POST", "/api/policy_changes/"+change+"/approve", bearer(owner.token), map[string]string{"mfa_code": e.code(owner)}).refused(t, 409, "CONFLICT")
	if st := e.do("POST", "/api/policy_changes/"+change+"/approve", bearer(bob.token), map[string]string{"mfa_code": e.code(bob)}).must(t, 200).str("status"); st != "applied" {
		t.Fatalf("after bob's approval: %s", st)
	}
	id4 := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	if n := e.do("GET", "/api/transaction_status?transaction_id="+id4, apiKey(key), nil).must(t, 200).body["approvals_needed"]; n != float64(1) {
		t.Fatalf("after the quorum approved the change: approvals_needed %v", n)
	}
}

func TestSecurity_ApproverOfOneWalletCannotSeeOrApproveAnother(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, key := setup(t, e)
	bob := e.newUser(true)
	addApprover(t, e, owner, walletIDOf(t, e, owner, wallet), bob)
	wallet2 := e.createWallet(owner)
	_, key2 := e.createAgent(owner, wallet2)
	mine := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	other := e.do("POST", "/api/prepare_transaction", apiKey(key2), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	e.do("GET", "/api/transaction_status?transaction_id="+mine, bearer(bob.token), nil).must(t, 200)
	e.do("GET", "/api/transaction_status?transaction_id="+other, bearer(bob.token), nil).refused(t, 404, "NOT_FOUND")
	e.do("POST", "/api/authorize_transaction", bearer(bob.token), map[string]string{"transaction_id": other, "mfa_code": e.code(bob)}).refused(t, 404, "NOT_FOUND")
	e.do("GET", "/api/wallets/"+walletIDOf(t, e, owner, wallet2)+"/approvers", bearer(bob.token), nil).refused(t, 404, "NOT_FOUND")
	e.do("POST", "/api/freeze", bearer(bob.token), map[string]string{"wallet_id": walletIDOf(t, e, owner, wallet2)}).refused(t, 404, "NOT_FOUND")
	for _, x := range e.do("GET", "/api/transactions", bearer(bob.token), nil).must(t, 200).body["transactions"].([]any) {
		if x.(map[string]any)["transaction_id"] == other {
			t.Fatalf("bob's inbox has wallet B's request")
		}
	}
	if s := e.do("GET", "/api/transaction_status?transaction_id="+other, apiKey(key2), nil).must(t, 200).str("status"); s != "pending" {
		t.Fatalf("wallet B's request is %s", s)
	}
}

func TestFreezeFlow(t *testing.T) {
	e := newEnv(t)
	owner, wallet, _, key := setup(t, e)
	walletID := walletIDOf(t, e, owner, wallet)
	bob := e.newUser(true)
	addApprover(t, e, owner, walletID, bob)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(owner.token), map[string]string{"transaction_id": id, "mfa_code": e.code(owner)}).must(t, 200)

	// an approver pulls the kill switch: no MFA
	e.do("POST", "/api/freeze", bearer(bob.token), map[string]string{"wallet_id": walletID}).must(t, 200)
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).refused(t, 423, "FROZEN")
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).refused(t, 423, "FROZEN")
	if fs := e.do("GET", "/api/freezes", bearer(owner.token), nil).must(t, 200).body["freezes"].([]any); len(fs) != 1 {
		t.Fatalf("freezes: %v", fs)
	}
	// lifting needs MFA
	e.do("POST", "/api/unfreeze", bearer(owner.token), map[string]string{"wallet_id": walletID}).refused(t, 400, "BAD_REQUEST")
	e.do("POST", "/api/unfreeze", bearer(owner.token), map[string]string{"wallet_id": walletID, "mfa_code": e.code(owner)}).must(t, 200)
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201)

	// the owner's kill switch with no body: every wallet
	e.do("POST", "/api/freeze", bearer(owner.token), nil).must(t, 200)
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).refused(t, 423, "FROZEN")
	e.do("POST", "/api/unfreeze", bearer(owner.token), map[string]string{"mfa_code": e.code(owner)}).must(t, 200)
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202)
}

func TestApprovalAuthorizedTTLExpires(t *testing.T) {
	e := newEnv(t)
	owner, _, _, key := setup(t, e)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(owner.token), map[string]string{"transaction_id": id, "mfa_code": e.code(owner)}).must(t, 200)
	e.clock.Advance(time.Hour) // AUTHORIZED_TTL's default
	if s := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200).str("status"); s != "expired" {
		t.Fatalf("authorized an hour ago and not executed: %s", s)
	}
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).refused(t, 409, "NOT_AUTHORIZED")
}

func TestApproverWebhookDelivery(t *testing.T) {
	rcv := &receiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	e := newEnv(t, fastDaemon, allowLoopbackHooks)
	owner, wallet, _, key := setup(t, e)
	bob := e.newUser(true)
	addApprover(t, e, owner, walletIDOf(t, e, owner, wallet), bob)
	e.do("POST", "/api/webhooks", bearer(bob.token), map[string]any{"url": srv.URL + "/hook", "events": []string{"nope.*"}}).refused(t, 400, "BAD_REQUEST")
	wh := e.do("POST", "/api/webhooks", bearer(bob.token), map[string]any{"url": srv.URL + "/hook", "events": []string{"transaction.*", "quorum.progress"}}).must(t, 201)
	if wh.str("secret") == "" {
		t.Fatal("no signing secret")
	}
	if hs := e.do("GET", "/api/webhooks", bearer(bob.token), nil).must(t, 200); strings.Contains(hs.raw, wh.str("secret")) || len(hs.body["webhooks"].([]any)) != 1 {
		t.Fatalf("bob's webhooks: %s", hs.raw)
	}
	wallet2 := e.createWallet(owner)
	_, key2 := e.createAgent(owner, wallet2)
	other := e.do("POST", "/api/prepare_transaction", apiKey(key2), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	mine := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	waitUntil(t, "the approver's delivery", func() bool { return rcv.count() >= 1 })
	time.Sleep(200 * time.Millisecond) // a wrongly queued second delivery would arrive by now
	rcv.mu.Lock()
	got := rcv.got
	rcv.mu.Unlock()
	if len(got) != 1 || got[0]["type"] != "transaction.pending" || got[0]["subject"] != mine {
		t.Fatalf("bob's webhook got %v (wallet B's request is %s)", got, other)
	}
	e.do("GET", "/api/webhooks/"+wh.str("webhook_id")+"/deliveries", bearer(bob.token), nil).must(t, 200)
	e.do("GET", "/api/webhooks/"+wh.str("webhook_id")+"/deliveries", bearer(owner.token), nil).refused(t, 404, "NOT_FOUND")
}
