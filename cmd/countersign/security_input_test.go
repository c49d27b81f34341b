package main

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestSecurity_HugeAndNestedInput: amounts of 2^256 and beyond, and JSON
// nested deeper than any request needs (inside the body and inside the raw
// ABI, arguments and typed data an agent sends), are refused with 400 and
// create nothing.
func TestSecurity_HugeAndNestedInput(t *testing.T) {
	e := newEnv(t)
	_, wallet, _, key := setup(t, e)
	to := randomAddress()
	before := len(e.do("GET", "/api/transactions?limit=1000", apiKey(key), nil).must(t, 200).body["transactions"].([]any))
	deep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	for name, body := range map[string]string{
		"amount 2^256":          `{"type":"native","to_address":"` + to + `","amount":"115792089237316195423570985008687907853269984665640564039457584007913129639936"}`,
		"amount 2^512":          `{"type":"native","to_address":"` + to + `","amount":"1` + strings.Repeat("0", 160) + `"}`,
		"amount exponent":       `{"type":"native","to_address":"` + to + `","amount":"1e18"}`,
		"amount hex":            `{"type":"native","to_address":"` + to + `","amount":"0x10"}`,
		"amount with spaces":    `{"type":"native","to_address":"` + to + `","amount":" 1"}`,
		"nested body":           `{"type":"native","to_address":"` + to + `","amount":"1","memo":` + deep + `}`,
		"nested ABI":            `{"type":"contract_call","contract_address":"` + to + `","contract_abi":` + deep + `,"function_name":"f"}`,
		"nested arguments":      `{"type":"contract_call","contract_address":"` + to + `","contract_abi":[],"function_name":"f","function_args":` + deep + `}`,
		"nested typed data":     `{"type":"typed_data","message":` + deep + `}`,
		"value 2^256 on a call": `{"type":"contract_call","contract_address":"` + to + `","contract_abi":[],"function_name":"f","value":"115792089237316195423570985008687907853269984665640564039457584007913129639936"}`,
	} {
		t.Run(name, func(t *testing.T) {
			r := e.do("POST", "/api/prepare_transaction", apiKey(key), body)
			if r.status != 400 || r.code() != "BAD_REQUEST" {
				t.Fatalf("got %d %s: %.300s", r.status, r.code(), r.raw)
			}
		})
	}
	if after := len(e.do("GET", "/api/transactions?limit=1000", apiKey(key), nil).must(t, 200).body["transactions"].([]any)); after != before {
		t.Fatalf("refused requests created %d transactions", after-before)
	}
	_ = wallet
}

// TestSecurity_PathTraversalInNames: wallet names are data, never paths:
// names made of ../ and slashes create no file outside the keystore (or
// are refused), and the files that exist are named by the server.
func TestSecurity_PathTraversalInNames(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(false)
	names := []string{"../../../../tmp/cs-escape", "..", "a/../../b", `..\..\windows`, "/etc/passwd", "keystore/../../x"}
	for _, n := range names {
		r := e.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password, "name": n})
		if r.status != 201 && r.status != 400 {
			t.Fatalf("API wallet named %q: %d %s", n, r.status, r.raw)
		}
		r = e.do("POST", "/v1/wallet/create", anon, map[string]any{"name": n, "password": "daemon password 1"})
		if r.status != 201 && r.status != 400 {
			t.Fatalf("daemon wallet named %q: %d %s", n, r.status, r.raw)
		}
	}
	// nothing landed where the names point (relative to the keystore or
	// data directory, ../../../../tmp reaches /tmp)
	if m, _ := filepath.Glob("/tmp/cs-escape*"); len(m) > 0 {
		t.Errorf("a wallet name became a path: %v", m)
	}
	// every file is inside the data directory under a name the server chose
	root := e.app.DataDir
	if err := filepath.WalkDir(filepath.Dir(root), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.Contains(p, "cs-escape") || strings.HasSuffix(p, "/b") || strings.HasSuffix(p, "/x") || strings.Contains(p, "windows") {
			t.Errorf("a wallet name became a path: %s", p)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		for _, n := range names {
			if base := filepath.Base(n); len(base) > 2 && strings.Contains(filepath.Base(p), base) {
				t.Errorf("a file is named after a wallet name: %s", p)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestSecurity_ChangeAfterApprovalIsRefused: someone who can write the
// database (or a bug) changes an approved request's destination, value,
// calldata or fee: execute recomputes the approval digest, refuses, and
// signs nothing.
func TestSecurity_ChangeAfterApprovalIsRefused(t *testing.T) {
	e := newEnv(t)
	u, wallet, _, key := setup(t, e)
	db, err := sql.Open("sqlite", "file:"+e.app.DataDir+"/countersign.db?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	attacker := randomAddress()
	for name, q := range map[string]string{
		"destination":         `UPDATE transactions SET to_address = '` + attacker + `', tx_to = '` + attacker + `' WHERE id = ?`,
		"value":               `UPDATE transactions SET amount = '1000000000000000000', tx_value = '1000000000000000000' WHERE id = ?`,
		"calldata":            `UPDATE transactions SET tx_data = X'a9059cbb' WHERE id = ?`,
		"fee":                 `UPDATE transactions SET max_fee_per_gas = '900000000000' WHERE id = ?`,
		"digests overwritten": `UPDATE transactions SET to_address = '` + attacker + `', tx_to = '` + attacker + `', digest = X'00', approved_digest = X'00' WHERE id = ?`,
	} {
		t.Run(name, func(t *testing.T) {
			id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
			e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
			if _, err := db.Exec(q, id); err != nil {
				t.Fatal(err)
			}
			nonce := e.pendingNonce(t, wallet)
			e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).refused(t, 409, "NOT_AUTHORIZED")
			if got := e.pendingNonce(t, wallet); got != nonce {
				t.Fatalf("a transaction was sent for a changed approval (nonce %d → %d)", nonce, got)
			}
		})
	}
}

func (e *env) pendingNonce(t *testing.T, addr string) uint64 {
	t.Helper()
	n, err := e.app.Chain.PendingNonceAt(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
