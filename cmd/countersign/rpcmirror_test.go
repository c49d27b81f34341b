package main

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	cshttp "github.com/countersign/countersign/http"
	"github.com/countersign/countersign/keys/keystore"
)

// rpcCall sends one JSON-RPC request to /rpc and returns its result or error.
func (e *env) rpcCall(method string, params any) (json.RawMessage, *struct {
	Code    int
	Message string
	Data    map[string]string
}) {
	e.t.Helper()
	body := map[string]any{"jsonrpc": "2.0", "id": 1, "method": method}
	if params != nil {
		body["params"] = params
	}
	var r struct {
		Result json.RawMessage
		Error  *struct {
			Code    int
			Message string
			Data    map[string]string
		}
	}
	raw := e.do("POST", "/rpc", anon, body).must(e.t, 200).raw
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		e.t.Fatalf("%s: %s", method, raw)
	}
	return r.Result, r.Error
}

// Every daemon REST route has a JSON-RPC method, and a bridged method
// answers exactly what its route does.
func TestDaemonRPCMirrorsEveryRoute(t *testing.T) {
	e := newEnv(t, fastDaemon, allowLoopbackHooks, func(c *Config) { c.ExportScryptN = 1 << 12 })
	methods := map[string]string{
		"POST /v1/wallet/create": "wallet_create", "POST /v1/wallet/import-mnemonic": "wallet_import_mnemonic",
		"POST /v1/wallet/import-key": "wallet_import_key", "POST /v1/wallet/unlock": "wallet_unlock", "POST /v1/wallet/lock": "wallet_lock",
		"GET /v1/wallets": "wallet_list", "POST /v1/wallet/export": "wallet_export", "POST /v1/wallet/import-keystore": "wallet_import_keystore", "POST /v1/account/derive": "account_derive", "POST /v1/account/tags": "account_setTags",
		"GET /v1/accounts": "account_list", "GET /v1/address/{account_id}": "address_get", "POST /v1/sign/message": "sign_message",
		"POST /v1/sign/tx": "sign_tx", "POST /v1/sign/receipt": "sign_receipt", "POST /v1/verify/receipt": "verify_receipt",
		"GET /v1/ledger/balance/{address}": "ledger_getBalance", "POST /v1/ledger/transfer": "ledger_transfer",
		"GET /v1/ledger/tx/{txid}": "ledger_getTx", "POST /v1/ledger/faucet": "ledger_faucet", "POST /v1/webhooks": "webhook_create",
		"GET /v1/webhooks/{id}/deliveries": "webhook_deliveries", "GET /about": "about",
	}
	for _, rt := range cshttp.Routes() {
		key := rt.Method + " " + rt.Path
		if rt.Access != cshttp.Daemon && key != "POST /v1/verify/receipt" || rt.Path == "/rpc" {
			continue
		}
		m, ok := methods[key]
		if !ok {
			t.Errorf("%s has no JSON-RPC method in this test", key)
			continue
		}
		// an unknown param is invalid params, never method-not-found
		if _, er := e.rpcCall(m, map[string]any{"no_such_param": 1}); er == nil || er.Code != -32602 {
			t.Errorf("%s (%s) with a bogus param: %+v", m, key, er)
		}
		delete(methods, key)
	}
	for key := range methods {
		t.Errorf("no route %s", key)
	}

	// about: the same document
	res, er := e.rpcCall("about", nil)
	if er != nil || !jsonEqual(t, res, e.do("GET", "/about", anon, nil).must(t, 200).raw) {
		t.Fatalf("about over RPC: %s %+v", res, er)
	}
	if _, er := e.rpcCall("about", []any{"x"}); er == nil || er.Code != -32602 {
		t.Fatalf("about with params: %+v", er)
	}

	// ledger_faucet (by position) and ledger_getTx (by name) against REST
	k := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "k", "password": "pw-123456", "curve": "secp256k1", "private_key_hex": strings.Repeat("0d", 32)}).must(t, 201)
	d := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "d", "password": "pw-123456", "curve": "ed25519", "private_key_hex": strings.Repeat("0e", 32)}).must(t, 201)
	if res, er := e.rpcCall("ledger_faucet", []any{d.str("address"), "5"}); er != nil || !strings.Contains(string(res), `"balance":"5"`) {
		t.Fatalf("ledger_faucet: %s %+v", res, er)
	}
	if _, er := e.rpcCall("wallet_export", []any{k.str("account_id"), "export-pw-1"}); er == nil || er.Code != -32001 || er.Data["code"] != "WALLET_LOCKED" {
		t.Fatalf("export while locked: %+v", er)
	}
	for _, r := range []resp{k, d} {
		e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": r.str("wallet_id"), "password": "pw-123456"}).must(t, 200)
	}
	tx := e.do("POST", "/v1/ledger/transfer", anon, map[string]string{"from": d.str("address"), "to": k.str("address"), "amount": "1.5"}).must(t, 201)
	res, er = e.rpcCall("ledger_getTx", map[string]string{"txid": tx.str("txid")})
	if er != nil || !jsonEqual(t, res, e.do("GET", "/v1/ledger/tx/"+tx.str("txid"), anon, nil).must(t, 200).raw) {
		t.Fatalf("ledger_getTx: %s %+v", res, er)
	}
	for params, code := range map[string]int{`["missing-tx"]`: -32004, `[7]`: -32602, `[""]`: -32602, `["a","b"]`: -32602} {
		if _, er := e.rpcCall("ledger_getTx", json.RawMessage(params)); er == nil || er.Code != code {
			t.Errorf("ledger_getTx %s: %+v, want %d", params, er, code)
		}
	}

	// sign_receipt then verify_receipt, both over RPC
	payload := map[string]any{"job_id": "j1", "miner_id": "m1", "result_hash": "0x01", "ts": 1767225600}
	res, er = e.rpcCall("sign_receipt", []any{d.str("account_id"), payload})
	var sr map[string]string
	if er != nil || json.Unmarshal(res, &sr) != nil || sr["algo"] != "ed25519" {
		t.Fatalf("sign_receipt: %s %+v", res, er)
	}
	res, er = e.rpcCall("verify_receipt", map[string]any{"payload": payload, "signature_base64": sr["signature_base64"], "public_key_hex": sr["public_key_hex"]})
	if er != nil || string(res) != `{"valid":true}` {
		t.Fatalf("verify_receipt: %s %+v", res, er)
	}

	// webhook_create and webhook_deliveries
	res, er = e.rpcCall("webhook_create", []any{"http://127.0.0.1:1/hook", []string{"signed"}})
	var wh map[string]any
	if er != nil || json.Unmarshal(res, &wh) != nil || wh["secret"] == "" {
		t.Fatalf("webhook_create: %s %+v", res, er)
	}
	if res, er := e.rpcCall("webhook_deliveries", []any{wh["webhook_id"]}); er != nil || !strings.Contains(string(res), `"deliveries"`) {
		t.Fatalf("webhook_deliveries: %s %+v", res, er)
	}
	if _, er := e.rpcCall("webhook_deliveries", []any{"wh_missing"}); er == nil || er.Code != -32004 {
		t.Fatalf("deliveries of a missing webhook: %+v", er)
	}

	// wallet_export: a v3 keystore of the account's key
	res, er = e.rpcCall("wallet_export", map[string]string{"account_id": k.str("account_id"), "export_password": "export-pw-1"})
	var ex map[string]string
	if er != nil || json.Unmarshal(res, &ex) != nil || ex["format"] != "web3-v3" {
		t.Fatalf("wallet_export: %s %+v", res, er)
	}
	blob, _ := base64.StdEncoding.DecodeString(ex["keystore_base64"])
	evm := e.do("GET", "/v1/address/"+k.str("account_id"), anon, nil).must(t, 200).str("evm_address")
	if _, addr, err := keystore.ImportV3(blob, "export-pw-1"); err != nil || evm == "" || addr.Hex() != evm {
		t.Fatalf("exported keystore: %v %s", err, addr.Hex())
	}
	if _, er := e.rpcCall("wallet_export", []any{k.str("account_id"), "short"}); er == nil || er.Code != -32602 {
		t.Fatalf("export with a short password: %+v", er)
	}

	// wallet_import_keystore takes that keystore back (by position), and
	// says BAD_PASSWORD for a wrong keystore password
	if _, er := e.rpcCall("wallet_import_keystore", []any{"again", "pw-123456", json.RawMessage(blob), "nope-nope"}); er == nil || er.Code != -32002 {
		t.Fatalf("import with a wrong keystore password: %+v", er)
	}
	res, er = e.rpcCall("wallet_import_keystore", []any{"again", "pw-123456", json.RawMessage(blob), "export-pw-1"})
	var imp map[string]string
	if er != nil || json.Unmarshal(res, &imp) != nil || imp["evm_address"] != evm {
		t.Fatalf("wallet_import_keystore: %s %+v", res, er)
	}
}

func jsonEqual(t *testing.T, a json.RawMessage, b string) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return mustJSON(t, x) == mustJSON(t, y)
}
