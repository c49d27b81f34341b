package main

import (
	"strings"
	"testing"

	"github.com/countersign/countersign/contracts"
)

// TestBadInput sends malformed and invalid requests to every endpoint that
// takes input. Each gets a clear error with the right status, and nothing
// changes: no transaction, wallet, agent or audit entry appears, and no MFA
// code is spent (validation comes before the code is checked).
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	u, wallet, _, key := setup(t, e)
	info := e.do("GET", "/api/dev/info", anon, nil).must(t, 200)
	token, counterAddr := info.str("test_token_address"), info.str("counter_address")
	counterABI := contracts.MustLoad("Counter").ABIJSON
	user, agent := bearer(u.token), apiKey(key)
	to := randomAddress()
	lowerBadSum := "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"

	auditBefore := len(e.do("GET", "/api/audit?limit=1000", user, nil).must(t, 200).body["entries"].([]any))

	type tc struct {
		method, path string
		c            cred
		body         string
		status       int
		code, detail string
		ctype        string
	}
	native := func(extra string) string {
		return `{"type":"native","to_address":"` + to + `","amount":"1"` + extra + `}`
	}
	tests := map[string]tc{
		"register/malformed":         {"POST", "/api/register", anon, `{"username":"x"`, 400, "BAD_REQUEST", "malformed JSON", ""},
		"register/unknown field":     {"POST", "/api/register", anon, `{"username":"bob","password":"correct horse battery","admin":true}`, 400, "BAD_REQUEST", `unknown field "admin"`, ""},
		"register/short password":    {"POST", "/api/register", anon, `{"username":"bob","password":"short"}`, 400, "BAD_REQUEST", "at least 12", ""},
		"register/bad username":      {"POST", "/api/register", anon, `{"username":"b o b","password":"correct horse battery"}`, 400, "BAD_REQUEST", "username", ""},
		"register/taken":             {"POST", "/api/register", anon, `{"username":"` + u.name + `","password":"correct horse battery"}`, 409, "CONFLICT", "taken", ""},
		"register/wrong type":        {"POST", "/api/register", anon, `{"username":1,"password":"correct horse battery"}`, 400, "BAD_REQUEST", `"username" must be a string`, ""},
		"register/form content type": {"POST", "/api/register", anon, `username=bob`, 415, "UNSUPPORTED_MEDIA_TYPE", "application/json", "application/x-www-form-urlencoded"},
		"register/oversized":         {"POST", "/api/register", anon, `{"username":"` + strings.Repeat("a", 300<<10) + `"}`, 413, "TOO_LARGE", "larger than", ""},
		"login/empty body":           {"POST", "/api/login", anon, ``, 400, "BAD_REQUEST", "body is required", ""},
		"login/missing password":     {"POST", "/api/login", anon, `{"username":"x"}`, 400, "BAD_REQUEST", "required", ""},
		"create_wallet/no password":  {"POST", "/api/create_wallet", user, `{}`, 400, "BAD_REQUEST", "password is required", ""},
		"create_wallet/bad password": {"POST", "/api/create_wallet", user, `{"password":"not my password"}`, 403, "BAD_PASSWORD", "wrong password", ""},
		"create_wallet/long name":    {"POST", "/api/create_wallet", user, `{"password":"` + testPassword + `","name":"` + strings.Repeat("n", 65) + `"}`, 400, "BAD_REQUEST", "name", ""},
		"load_wallet/bad address":    {"POST", "/api/load_wallet", agent, `{"address":"0x123"}`, 400, "BAD_REQUEST", "20-byte hex address", ""},
		"balance/bad address":        {"GET", "/api/balance?address=nope", agent, ``, 400, "BAD_REQUEST", "address", ""},
		"balance/not a token":        {"GET", "/api/balance?address=" + wallet + "&token_address=" + to, agent, ``, 400, "BAD_REQUEST", "no contract code", ""},
		"agents/bad wallet":          {"POST", "/api/agents", user, `{"name":"x","wallet_address":"` + lowerBadSum + `","mfa_code":"000000"}`, 400, "BAD_REQUEST", "EIP-55", ""},
		"agents/no name":             {"POST", "/api/agents", user, `{"name":"","wallet_address":"` + wallet + `","mfa_code":"000000"}`, 400, "BAD_REQUEST", "name is required", ""},
		"revoke/not a uuid":          {"DELETE", "/api/agents/zzz", user, `{"mfa_code":"000000"}`, 404, "NOT_FOUND", "agent", ""},
		"prepare/no type":            {"POST", "/api/prepare_transaction", agent, `{"to_address":"` + to + `","amount":"1"}`, 400, "BAD_REQUEST", "type is required", ""},
		"prepare/unknown type":       {"POST", "/api/prepare_transaction", agent, `{"type":"swap"}`, 400, "BAD_REQUEST", "native, erc20, contract_call", ""},
		"prepare/negative":           {"POST", "/api/prepare_transaction", agent, `{"type":"native","to_address":"` + to + `","amount":"-1"}`, 400, "BAD_REQUEST", "negative", ""},
		"prepare/fraction":           {"POST", "/api/prepare_transaction", agent, `{"type":"native","to_address":"` + to + `","amount":"0.5"}`, 400, "BAD_REQUEST", "no decimals", ""},
		"prepare/number amount":      {"POST", "/api/prepare_transaction", agent, `{"type":"native","to_address":"` + to + `","amount":1}`, 400, "BAD_REQUEST", `"amount" must be a string`, ""},
		"prepare/bad checksum":       {"POST", "/api/prepare_transaction", agent, `{"type":"native","to_address":"` + lowerBadSum + `","amount":"1"}`, 400, "BAD_REQUEST", "EIP-55 checksum", ""},
		"prepare/no 0x":              {"POST", "/api/prepare_transaction", agent, `{"type":"native","to_address":"` + to[2:] + `","amount":"1"}`, 400, "BAD_REQUEST", "0x-prefixed", ""},
		"prepare/native with token":  {"POST", "/api/prepare_transaction", agent, native(`,"token_address":"` + token + `"`), 400, "BAD_REQUEST", "token_address is not used", ""},
		"prepare/memo too long":      {"POST", "/api/prepare_transaction", agent, native(`,"memo":"` + strings.Repeat("m", 501) + `"`), 400, "BAD_REQUEST", "memo", ""},
		"prepare/memo control":       {"POST", "/api/prepare_transaction", agent, native(`,"memo":"a\u0007b"`), 400, "BAD_REQUEST", "control characters", ""},
		"prepare/erc20 not token":    {"POST", "/api/prepare_transaction", agent, `{"type":"erc20","token_address":"` + to + `","to_address":"` + to + `","amount":"1"}`, 400, "BAD_REQUEST", "no contract code", ""},
		"prepare/erc20 no amount":    {"POST", "/api/prepare_transaction", agent, `{"type":"erc20","token_address":"` + token + `","to_address":"` + to + `"}`, 400, "BAD_REQUEST", "amount is required", ""},
		"prepare/call no code":       {"POST", "/api/prepare_transaction", agent, `{"type":"contract_call","contract_address":"` + to + `","contract_abi":` + counterABI + `,"function_name":"increment","function_args":["1","x"]}`, 400, "BAD_REQUEST", "no contract code", ""},
		"prepare/call bad abi":       {"POST", "/api/prepare_transaction", agent, `{"type":"contract_call","contract_address":"` + counterAddr + `","contract_abi":[{"type":"function","name":"f","inputs":[{"type":"nonsense"}]}],"function_name":"f"}`, 400, "BAD_REQUEST", "not a valid ABI", ""},
		"prepare/call no function":   {"POST", "/api/prepare_transaction", agent, `{"type":"contract_call","contract_address":"` + counterAddr + `","contract_abi":` + counterABI + `,"function_name":"nope"}`, 400, "BAD_REQUEST", "not in contract_abi", ""},
		"prepare/call bad args":      {"POST", "/api/prepare_transaction", agent, `{"type":"contract_call","contract_address":"` + counterAddr + `","contract_abi":` + counterABI + `,"function_name":"increment","function_args":["-1","x"]}`, 400, "BAD_REQUEST", "out of range", ""},
		"prepare/call arg count":     {"POST", "/api/prepare_transaction", agent, `{"type":"contract_call","contract_address":"` + counterAddr + `","contract_abi":` + counterABI + `,"function_name":"increment","function_args":["1"]}`, 400, "BAD_REQUEST", "takes 2 arguments", ""},
		"prepare/value not payable":  {"POST", "/api/prepare_transaction", agent, `{"type":"contract_call","contract_address":"` + counterAddr + `","contract_abi":` + counterABI + `,"function_name":"alwaysReverts","value":"1"}`, 400, "BAD_REQUEST", "not payable", ""},
		"prepare/long idem key":      {"POST", "/api/prepare_transaction", agent, native(""), 400, "BAD_REQUEST", "Idempotency-Key", ""},
		"authorize/both ids":         {"POST", "/api/authorize_transaction", user, `{"transaction_id":"a","transaction_ids":["b"],"mfa_code":"000000"}`, 400, "BAD_REQUEST", "exactly one", ""},
		"authorize/not uuid":         {"POST", "/api/authorize_transaction", user, `{"transaction_id":"abc","mfa_code":"000000"}`, 400, "BAD_REQUEST", "UUID", ""},
		"authorize/bad decision":     {"POST", "/api/authorize_transaction", user, `{"transaction_id":"abc","mfa_code":"000000","decision":"maybe"}`, 400, "BAD_REQUEST", "approve or reject", ""},
		"authorize/empty batch":      {"POST", "/api/authorize_transaction", user, `{"transaction_ids":[],"mfa_code":"000000"}`, 400, "BAD_REQUEST", "1 to 100", ""},
		"authorize/unknown id":       {"POST", "/api/authorize_transaction", user, `{"transaction_id":"9b2e1f0c-6f5e-4f5a-9d7e-2c1b0a9f8e7d","mfa_code":"000000"}`, 404, "NOT_FOUND", "not found", ""},
		"status/no id":               {"GET", "/api/transaction_status", agent, ``, 400, "BAD_REQUEST", "UUID", ""},
		"status/bad wait":            {"GET", "/api/transaction_status?transaction_id=x&wait=forever", agent, ``, 400, "BAD_REQUEST", "wait", ""},
		"status/long wait":           {"GET", "/api/transaction_status?transaction_id=x&wait=2h", agent, ``, 400, "BAD_REQUEST", "wait", ""},
		"execute/no id":              {"POST", "/api/execute_transaction", agent, `{}`, 400, "BAD_REQUEST", "UUID", ""},
		"transactions/bad status":    {"GET", "/api/transactions?status=done", user, ``, 400, "BAD_REQUEST", "unknown status", ""},
		"transactions/bad limit":     {"GET", "/api/transactions?limit=0", user, ``, 400, "BAD_REQUEST", "limit", ""},
		"transfer/bad amount":        {"POST", "/api/transfer", user, `{"password":"` + testPassword + `","mfa_code":"000000","to_address":"` + to + `","amount":"1.5","address":"` + wallet + `"}`, 400, "BAD_REQUEST", "no decimals", ""},
		"transfer/unknown wallet":    {"POST", "/api/transfer", user, `{"password":"` + testPassword + `","mfa_code":"000000","to_address":"` + to + `","amount":"1","address":"` + to + `"}`, 404, "NOT_FOUND", "wallet", ""},
		"transfer_erc20/bad token":   {"POST", "/api/transfer_erc20", user, `{"password":"` + testPassword + `","mfa_code":"000000","to_address":"` + to + `","amount":"1","address":"` + wallet + `","token_address":"0x12"}`, 400, "BAD_REQUEST", "token_address", ""},
		"contract_call/no abi":       {"POST", "/api/contract_call", user, `{"password":"` + testPassword + `","mfa_code":"000000","address":"` + wallet + `","contract_address":"` + counterAddr + `","function_name":"increment"}`, 400, "BAD_REQUEST", "contract_abi is required", ""},
		"audit/bad after":            {"GET", "/api/audit?after=-4", user, ``, 400, "BAD_REQUEST", "after", ""},
		"faucet/too much":            {"POST", "/api/dev/faucet", user, `{"address":"` + to + `","amount":"1000000000000000000001"}`, 400, "BAD_REQUEST", "at most", ""},
		"faucet/unknown token":       {"POST", "/api/dev/faucet", user, `{"address":"` + to + `","amount":"1","token":"USDC"}`, 400, "BAD_REQUEST", "TEST", ""},
		"auth/bearer and key":        {"GET", "/api/transactions", cred{bearer: u.token, apiKey: key}, ``, 400, "BAD_REQUEST", "not both", ""},
		"auth/malformed header":      {"GET", "/api/wallets", anon, ``, 401, "UNAUTHORIZED", "Bearer", ""},
		"auth/garbage key":           {"GET", "/api/transactions", apiKey("csk_nope"), ``, 401, "UNAUTHORIZED", "invalid API key", ""},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			extra := []string{}
			if tt.ctype != "" {
				extra = append(extra, "Content-Type", tt.ctype)
			}
			if name == "prepare/long idem key" {
				extra = append(extra, "Idempotency-Key", strings.Repeat("k", 129))
			}
			if name == "auth/malformed header" {
				extra = append(extra, "Authorization", "Basic dXNlcjpwYXNz")
			}
			var body any
			if tt.body != "" {
				body = tt.body
			}
			r := e.do(tt.method, tt.path, tt.c, body, extra...)
			r.refused(t, tt.status, tt.code)
			if d := r.body["error"].(map[string]any)["detail"].(string); !strings.Contains(d, tt.detail) {
				t.Fatalf("detail %q does not mention %q", d, tt.detail)
			}
		})
	}
	// nothing changed
	if n := len(e.do("GET", "/api/transactions", user, nil).must(t, 200).body["transactions"].([]any)); n != 0 {
		t.Errorf("bad input created %d transactions", n)
	}
	if n := len(e.do("GET", "/api/wallets", user, nil).must(t, 200).body["wallets"].([]any)); n != 1 {
		t.Errorf("bad input changed the wallets: %d", n)
	}
	if n := len(e.do("GET", "/api/agents", user, nil).must(t, 200).body["agents"].([]any)); n != 1 {
		t.Errorf("bad input changed the agents: %d", n)
	}
	auditAfter := e.do("GET", "/api/audit?limit=1000", user, nil).must(t, 200).body["entries"].([]any)
	// a wrong password is a guess, not malformed input: it is recorded on
	// purpose (one case above sends one)
	guesses := 0
	for _, a := range auditAfter {
		if a.(map[string]any)["action"] == "password.failure" {
			guesses++
		}
	}
	if guesses != 1 {
		t.Errorf("%d password.failure audit entries, want 1 (create_wallet/bad password)", guesses)
	}
	if len(auditAfter)-guesses != auditBefore {
		t.Errorf("bad input wrote %d audit entries, e.g. %v", len(auditAfter)-auditBefore, auditAfter[len(auditAfter)-1])
	}
	// and the next real code still works (none was consumed or counted)
	id := e.do("POST", "/api/prepare_transaction", agent, native("")).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", user, map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
}
