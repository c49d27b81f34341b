package main

import (
	"bytes"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign/cloud/awskms/kmstest"
)

// operatorKey writes an operator keystore with countersign keygen and
// returns its path and address.
func operatorKey(t *testing.T) (path, address string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "operator.json")
	var out, errb bytes.Buffer
	if err := keygenCmd([]string{"--kdf", "light"}, keygenEnv(map[string]string{"OPERATOR_KEYSTORE_PATH": path, "OPERATOR_WALLET_PASSPHRASE": keygenPass}), &out, &errb); err != nil {
		t.Fatal(err)
	}
	return path, strings.TrimSpace(out.String())
}

func walletRow(t *testing.T, e *env, u *user, address string) map[string]any {
	t.Helper()
	for _, w := range e.do("GET", "/api/wallets", bearer(u.token), nil).must(t, 200).body["wallets"].([]any) {
		if m := w.(map[string]any); strings.EqualFold(m["address"].(string), address) {
			return m
		}
	}
	return nil
}

// TestOperatorWallet_KeyfileBacksACountersignedWallet: with
// OPERATOR_KEYSTORE_PATH and OPERATOR_OWNER the operator's keystore key
// becomes a wallet of that user (signer keystore) whose spends take the
// normal path — an agent prepares, the human approves with TOTP, execute
// signs with the keystore-file signer — and reach the chain from the
// key's address. Started without the key, the wallet cannot sign (503,
// nothing sent); its key cannot be exported (the server does not hold
// it); and the key never moves to another owner.
func TestOperatorWallet_KeyfileBacksACountersignedWallet(t *testing.T) {
	path, addr := operatorKey(t)
	dir := t.TempDir()
	clock := restartClock()
	withKey := func(owner string) envOption {
		return func(c *Config) { c.OperatorKeystore, c.OperatorPassphrase, c.OperatorOwner = path, keygenPass, owner }
	}
	e1, stop1, err := startAt(t, dir, clock, withKey(""))
	if err != nil {
		t.Fatal(err)
	}
	u := e1.newUser(true)
	if !strings.Contains(e1.logs.String(), "set OPERATOR_OWNER") || walletRow(t, e1, u, addr) != nil {
		t.Fatal("without OPERATOR_OWNER the key must back no wallet, and say how to attach it")
	}
	stop1()

	e, stop, err := startAt(t, dir, clock, withKey(u.name))
	if err != nil {
		t.Fatal(err)
	}
	w := walletRow(t, e, u, addr)
	if w == nil || w["signer"] != "keystore" || w["name"] != "operator" {
		t.Fatalf("the operator wallet: %v", w)
	}
	_, key := e.createAgent(u, addr)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": addr, "amount": "1000000000000000000"}).must(t, 200)
	to := randomAddress()
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": to, "amount": "12345"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201)
	st := e.waitStatus(apiKey(key), id, "confirmed")
	if !strings.EqualFold(st.str("from_address"), addr) && !strings.Contains(strings.ToLower(st.raw), strings.ToLower(addr)) {
		t.Fatalf("confirmed from elsewhere: %s", st.raw)
	}
	if got := e.balance(apiKey(key), to, ""); got.Cmp(big.NewInt(12345)) != 0 {
		t.Fatalf("the recipient has %s wei, want 12345", got)
	}
	e.do("POST", "/api/export_wallet", bearer(u.token), map[string]string{"address": addr, "password": testPassword, "mfa_code": e.code(u), "export_passphrase": "a long export passphrase"}).refused(t, 400, "BAD_REQUEST")
	stop()

	// the same data without the key: the wallet is there but cannot sign
	e3, stop3, err := startAt(t, dir, clock, func(c *Config) { c.AcceptNewChain = true })
	if err != nil {
		t.Fatal(err)
	}
	e3.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": addr, "amount": "1000000000000000000"}).must(t, 200)
	id = e3.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": to, "amount": "1"}).must(t, 202).str("transaction_id")
	e3.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e3.code(u)}).must(t, 200)
	r := e3.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).refused(t, 503, "UNAVAILABLE")
	if !strings.Contains(r.raw, "OPERATOR_KEYSTORE_PATH") {
		t.Fatalf("the refusal does not say what to set: %s", r.raw)
	}
	if s := e3.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200); s.str("status") != "authorized" || s.str("tx_hash") != "" {
		t.Fatalf("after the refused execute: %s", s.raw)
	}
	other := e3.newUser(true)
	stop3()

	// the key never changes hands, and OPERATOR_OWNER must name a user
	for name, owner := range map[string]string{"another owner": other.name, "nobody": "no-such-user"} {
		_, _, err := startAt(t, dir, clock, withKey(owner))
		if err == nil {
			t.Fatalf("%s: started", name)
		}
		if !strings.Contains(err.Error(), "OPERATOR_OWNER") && !strings.Contains(err.Error(), "refusing to attach") {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(err.Error(), keygenPass) {
			t.Fatalf("%s: the passphrase is in the error", name)
		}
	}
}

// TestOperatorWallet_KMSBacksACountersignedWallet: with OPERATOR_KMS_KEY
// (an ECC_SECG_P256K1 key on local-kms) and OPERATOR_OWNER the KMS key is
// a wallet (signer awskms) whose approved spends KMS signs: the chain
// accepts them from the key's address, and a personal message signature
// recovers to it. When KMS goes away the execute fails closed: 503,
// nothing signed or sent.
func TestOperatorWallet_KMSBacksACountersignedWallet(t *testing.T) {
	kms := kmstest.Start(t)
	arn := kms.Secp256k1Key(t)
	dir := t.TempDir()
	clock := restartClock()
	e1, stop1, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	u := e1.newUser(true)
	stop1()
	e, _, err := startAt(t, dir, clock, func(c *Config) { c.OperatorKMSKey, c.OperatorOwner = kms.URI(arn), u.name })
	if err != nil {
		t.Fatal(err)
	}
	addr := e.app.OperatorKMS.Address().Hex()
	if w := walletRow(t, e, u, addr); w == nil || w["signer"] != "awskms" {
		t.Fatalf("the KMS wallet: %v", w)
	}
	_, key := e.createAgent(u, addr)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": addr, "amount": "1000000000000000000"}).must(t, 200)
	to := randomAddress()
	spend := func(amount string) string {
		id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": to, "amount": amount}).must(t, 202).str("transaction_id")
		e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
		return id
	}
	id := spend("777")
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201)
	e.waitStatus(apiKey(key), id, "confirmed")
	if got := e.balance(apiKey(key), to, ""); got.Cmp(big.NewInt(777)) != 0 {
		t.Fatalf("the recipient has %s wei, want 777", got)
	}
	// a personal message: KMS signs, the signature recovers to the key's address
	msg := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]any{"type": "personal_sign", "message": "hello kms"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": msg, "mfa_code": e.code(u)}).must(t, 200)
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": msg}).must(t, 201)
	sig, err := hexutil.Decode(e.do("GET", "/api/transaction_status?transaction_id="+msg, apiKey(key), nil).must(t, 200).str("signature"))
	if err != nil || len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		t.Fatalf("message signature %x: %v", sig, err)
	}
	sig[64] -= 27
	if pub, err := crypto.SigToPub(accounts.TextHash([]byte("hello kms")), sig); err != nil || crypto.PubkeyToAddress(*pub).Hex() != addr {
		t.Fatalf("the KMS message signature does not recover to %s", addr)
	}
	// KMS goes away: the next approved spend is not signed
	id = spend("1")
	kms.Stop()
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).refused(t, 503, "UNAVAILABLE")
	if s := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200); s.str("status") != "authorized" || s.str("tx_hash") != "" {
		t.Fatalf("after KMS went away: %s", s.raw)
	}
}

// TestOperatorWallet_SpecBudgetsBecomeItsPolicy: REPO_SPEC's budgets are
// the operator wallet's policy and its low_balance entries its alerts, at
// every start: within the budgets an agent's spend is approved at once
// (the deciding rule named after the spec), beyond them a human decides.
// A second start with the same spec changes nothing; an edited spec
// changes the policy, audited with the actor system:repo-spec.
func TestOperatorWallet_SpecBudgetsBecomeItsPolicy(t *testing.T) {
	path, addr := operatorKey(t)
	dir := t.TempDir()
	clock := restartClock()
	e1, stop1, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	chainID := e1.app.Svc.ChainID().Int64()
	u := e1.newUser(true)
	stop1()
	spec := func(day string) envOption {
		p := writeSpec(t, t.TempDir(), fmt.Sprintf(`operator_wallet:
  address: %q
  chain_id: %d
  signer: keystore
  budgets:
    - {asset: native, period: transaction, limit: "1000"}
    - {asset: native, period: day, limit: %q}
  low_balance:
    - {asset: native, below: "5000000000000000000"}
`, addr, chainID, day))
		return func(c *Config) {
			c.RepoSpec, c.OperatorKeystore, c.OperatorPassphrase, c.OperatorOwner = p, path, keygenPass, u.name
			c.AcceptNewChain = true
		}
	}
	e, stop, err := startAt(t, dir, clock, spec("1500"))
	if err != nil {
		t.Fatal(err)
	}
	walletID := walletRow(t, e, u, addr)["wallet_id"].(string)
	pol := e.do("GET", "/api/wallets/"+walletID+"/policy", bearer(u.token), nil).must(t, 200)
	if !strings.Contains(pol.raw, `"spec-any-native"`) || !strings.Contains(pol.raw, `"1500"`) {
		t.Fatalf("the wallet's policy: %s", pol.raw)
	}
	if a := e.do("GET", "/api/wallets/"+walletID+"/low_balance", bearer(u.token), nil).must(t, 200); !strings.Contains(a.raw, "5000000000000000000") {
		t.Fatalf("the wallet's alerts: %s", a.raw)
	}
	_, key := e.createAgent(u, addr)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": addr, "amount": "1000000000000000000"}).must(t, 200)
	prepare := func(e *env, amount string) resp {
		return e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": payee, "amount": amount}).must(t, 202)
	}
	if r := prepare(e, "1000"); r.str("status") != "authorized" || r.str("rule_id") != "spec-any-native" {
		t.Fatalf("within the budgets: %s", r.raw)
	}
	if r := prepare(e, "1000"); r.str("status") != "pending" { // 2000 > 1500 a day
		t.Fatalf("over the day's budget: %s", r.raw)
	}
	if r := prepare(e, "1001"); r.str("status") != "pending" { // over the per-transaction limit
		t.Fatalf("over the transaction limit: %s", r.raw)
	}
	stop()
	specChanges := func(e *env) int {
		n := 0
		for _, a := range e.do("GET", "/api/audit?limit=500", bearer(u.token), nil).must(t, 200).body["entries"].([]any) {
			if m := a.(map[string]any); m["action"] == "policy.change" && m["actor"] == "system:repo-spec" {
				n++
			}
		}
		return n
	}
	e, stop, err = startAt(t, dir, clock, spec("1500"))
	if err != nil {
		t.Fatal(err)
	}
	if n := specChanges(e); n != 1 {
		t.Fatalf("%d spec policy changes after an unchanged restart, want 1", n)
	}
	stop()
	e, _, err = startAt(t, dir, clock, spec("3000"))
	if err != nil {
		t.Fatal(err)
	}
	if n := specChanges(e); n != 2 {
		t.Fatalf("%d spec policy changes after the spec changed, want 2", n)
	}
	if r := prepare(e, "1000"); r.str("status") != "authorized" {
		t.Fatalf("within the new budget: %s", r.raw)
	}
}

// TestOperatorWallet_SpecLooseningWaitsOnAQuorumWallet: on an operator
// wallet whose policies ask for a quorum, a spec that loosens the budgets
// is not applied at start (that needs the approvers; the stricter policy
// stays and the log says why), while one that tightens them is.
func TestOperatorWallet_SpecLooseningWaitsOnAQuorumWallet(t *testing.T) {
	path, addr := operatorKey(t)
	dir := t.TempDir()
	clock := restartClock()
	e1, stop1, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	chainID := e1.app.Svc.ChainID().Int64()
	u, bob := e1.newUser(true), e1.newUser(true)
	stop1()
	spec := func(day string) envOption {
		p := writeSpec(t, t.TempDir(), fmt.Sprintf("operator_wallet:\n  address: %q\n  chain_id: %d\n  signer: keystore\n  budgets:\n    - {asset: native, period: day, limit: %q}\n", addr, chainID, day))
		return func(c *Config) {
			c.RepoSpec, c.OperatorKeystore, c.OperatorPassphrase, c.OperatorOwner = p, path, keygenPass, u.name
			c.AcceptNewChain = true
		}
	}
	e, stop, err := startAt(t, dir, clock, spec("3000"))
	if err != nil {
		t.Fatal(err)
	}
	walletID := walletRow(t, e, u, addr)["wallet_id"].(string)
	addApprover(t, e, u, walletID, bob)
	agentID, _ := e.createAgent(u, addr)
	e.do("PUT", "/api/agents/"+agentID+"/policy", bearer(u.token), map[string]any{"mfa_code": e.code(u),
		"rules": []any{map[string]any{"id": "big", "when": map[string]any{"min_amount": "1000000"}, "then": "quorum", "quorum": 2}}, "default": "human"}).must(t, 200)
	stop()
	policyOf := func(e *env) string {
		return e.do("GET", "/api/wallets/"+walletID+"/policy", bearer(u.token), nil).must(t, 200).raw
	}
	e, stop, err = startAt(t, dir, clock, spec("6000")) // loosens
	if err != nil {
		t.Fatal(err)
	}
	if p := policyOf(e); !strings.Contains(p, `"3000"`) || strings.Contains(p, `"6000"`) {
		t.Fatalf("a loosening spec applied on a quorum wallet: %s", p)
	}
	if !strings.Contains(e.logs.String(), "not applied") {
		t.Fatal("the log does not say the spec's loosening was not applied")
	}
	stop()
	e, _, err = startAt(t, dir, clock, spec("1000")) // tightens
	if err != nil {
		t.Fatal(err)
	}
	if p := policyOf(e); !strings.Contains(p, `"1000"`) {
		t.Fatalf("a tightening spec was not applied: %s", p)
	}
}
