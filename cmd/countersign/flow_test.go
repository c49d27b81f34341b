package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/countersign/countersign/contracts"
	"github.com/countersign/countersign/core"
)

// chainReader is what the tests read from the chain directly, to check the
// server's claims against the chain itself.
type chainReader interface {
	BalanceAt(ctx context.Context, a common.Address, block *big.Int) (*big.Int, error)
	TransactionReceipt(ctx context.Context, h common.Hash) (*types.Receipt, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
	NonceAt(ctx context.Context, a common.Address, block *big.Int) (uint64, error)
}

// fixture is a chain with money and contracts for the flow.
type fixture struct {
	fund    func(t testing.TB, addr string, wei *big.Int)
	mint    func(t testing.TB, addr string, units *big.Int)
	token   string
	counter string
	chain   chainReader
}

// simFixture funds through the server's own dev faucet routes.
func simFixture(e *env, u *user) fixture {
	info := e.do("GET", "/api/dev/info", anon, nil).must(e.t, 200)
	return fixture{
		fund: func(t testing.TB, addr string, wei *big.Int) {
			e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": addr, "amount": wei.String()}).must(t, 200)
		},
		mint: func(t testing.TB, addr string, units *big.Int) {
			e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": addr, "amount": units.String(), "token": "TEST"}).must(t, 200)
		},
		token:   info.str("test_token_address"),
		counter: info.str("counter_address"),
		chain:   e.app.Dev.Client(),
	}
}

func ether(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }

func randomAddress() string {
	b := make([]byte, 20)
	_, _ = rand.Read(b)
	return common.BytesToAddress(b).Hex()
}

func mustBig(t testing.TB, s string) *big.Int {
	t.Helper()
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("not an integer: %q", s)
	}
	return v
}

func (e *env) balance(c cred, addr, token string) *big.Int {
	q := "/api/balance?address=" + addr
	if token != "" {
		q += "&token_address=" + token
	}
	return mustBig(e.t, e.do("GET", q, c, nil).must(e.t, 200).str("balance"))
}

// fee is what the sender paid for gas in a mined transaction.
func fee(t testing.TB, c chainReader, hash string) *big.Int {
	t.Helper()
	r, err := c.TransactionReceipt(context.Background(), common.HexToHash(hash))
	if err != nil {
		t.Fatal(err)
	}
	return new(big.Int).Mul(new(big.Int).SetUint64(r.GasUsed), r.EffectiveGasPrice)
}

// approveAndExecute approves id as u, executes it as the agent and waits
// for confirmation. It returns the transaction hash.
func (e *env) approveAndExecute(u *user, key, id string) string {
	e.t.Helper()
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(e.t, 200)
	r := e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(e.t, 201)
	hash := r.str("tx_hash")
	if !strings.HasPrefix(hash, "0x") || len(hash) != 66 {
		e.t.Fatalf("bad tx_hash %q", hash)
	}
	e.waitStatus(apiKey(key), id, "confirmed")
	return hash
}

// runFlow is the whole countersigned flow against whatever chain e runs on.
func runFlow(t *testing.T, e *env, u *user, fx fixture) {
	ctx := context.Background()
	wallet := e.createWallet(u)
	fx.fund(t, wallet, ether(10))
	fx.mint(t, wallet, ether(1000))
	agentID, key := e.createAgent(u, wallet)
	agent := apiKey(key)

	r := e.do("POST", "/api/load_wallet", agent, map[string]string{"address": wallet}).must(t, 200)
	if r.str("balance") != ether(10).String() || r.body["chain_id"] == nil {
		t.Fatalf("load_wallet: %s", r.raw)
	}

	// --- native: prepare, refused while pending, wrong code, approve, execute
	recipient := randomAddress()
	amount := new(big.Int).Add(ether(1), big.NewInt(123456789))
	r = e.do("POST", "/api/prepare_transaction", agent, map[string]string{
		"type": "native", "to_address": recipient, "amount": amount.String(), "memo": "pay the GPU bill"}).must(t, 202)
	id := r.str("transaction_id")
	if r.str("status") != "pending" || r.str("expires_at") == "" {
		t.Fatalf("prepare: %s", r.raw)
	}
	st := e.do("GET", "/api/transaction_status?transaction_id="+id, agent, nil).must(t, 200)
	if st.str("status") != "pending" || st.str("memo") != "pay the GPU bill" || st.str("amount") != amount.String() ||
		st.str("from_address") != wallet || st.str("to_address") != recipient || st.body["tx_hash"] != nil {
		t.Fatalf("status: %s", st.raw)
	}
	e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).refused(t, 409, "NOT_AUTHORIZED")

	good := e.code(u)
	bad := "000000"
	if bad == good {
		bad = "111111"
	}
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": bad}).refused(t, 403, "MFA_INVALID")
	if s := e.do("GET", "/api/transaction_status?transaction_id="+id, bearer(u.token), nil).must(t, 200).str("status"); s != "pending" {
		t.Fatalf("a wrong code changed the status to %s", s)
	}
	walletBefore := e.balance(agent, wallet, "")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": good}).must(t, 200)
	// the same code a second time is a replay
	id2 := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": recipient, "amount": "1"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id2, "mfa_code": good}).refused(t, 403, "MFA_INVALID")

	r = e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(t, 201)
	hash := r.str("tx_hash")
	again := e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(t, 201)
	if again.str("tx_hash") != hash {
		t.Fatalf("second execute gave another hash: %s vs %s", again.str("tx_hash"), hash)
	}
	done := e.waitStatus(agent, id, "confirmed")
	if done.str("tx_hash") != hash || done.body["block_number"] == nil {
		t.Fatalf("confirmed: %s", done.raw)
	}
	if got := e.balance(agent, recipient, ""); got.Cmp(amount) != 0 {
		t.Fatalf("recipient has %s, want %s", got, amount)
	}
	want := new(big.Int).Sub(walletBefore, amount)
	want.Sub(want, fee(t, fx.chain, hash))
	if got := e.balance(agent, wallet, ""); got.Cmp(want) != 0 {
		t.Fatalf("wallet has %s, want %s (before - amount - fee)", got, want)
	}

	// --- erc20
	tokRecipient := randomAddress()
	r = e.do("POST", "/api/prepare_transaction", agent, map[string]string{
		"type": "erc20", "token_address": fx.token, "to_address": tokRecipient, "amount": ether(250).String(), "memo": "token payment"}).must(t, 202)
	e.approveAndExecute(u, key, r.str("transaction_id"))
	if got := e.balance(agent, tokRecipient, fx.token); got.Cmp(ether(250)) != 0 {
		t.Fatalf("token recipient has %s", got)
	}
	if got := e.balance(agent, wallet, fx.token); got.Cmp(ether(750)) != 0 {
		t.Fatalf("wallet token balance %s, want 750e18", got)
	}
	tb := e.do("GET", "/api/balance?address="+wallet+"&token_address="+fx.token, agent, nil).must(t, 200)
	if tb.str("symbol") != "TEST" || tb.body["decimals"].(float64) != 18 {
		t.Fatalf("token balance metadata: %s", tb.raw)
	}

	// --- contract_call: Counter.increment(7, "hello") with 1000 wei
	counter := contracts.MustLoad("Counter")
	r = e.do("POST", "/api/prepare_transaction", agent, map[string]any{
		"type": "contract_call", "contract_address": fx.counter, "contract_abi": counter.ABIJSON,
		"function_name": "increment", "function_args": []any{"7", "hello"}, "value": "1000", "memo": "count"}).must(t, 202)
	ccID := r.str("transaction_id")
	cs := e.do("GET", "/api/transaction_status?transaction_id="+ccID, bearer(u.token), nil).must(t, 200)
	if cs.str("type") != "contract_call" || cs.str("amount") != "1000" {
		t.Fatalf("contract_call status: %s", cs.raw)
	}
	e.approveAndExecute(u, key, ccID)
	readUint := func(method string, args ...any) *big.Int {
		data, err := counter.ABI.Pack(method, args...)
		if err != nil {
			t.Fatal(err)
		}
		to := common.HexToAddress(fx.counter)
		out, err := fx.chain.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := counter.ABI.Unpack(method, out)
		if err != nil {
			t.Fatal(err)
		}
		return v[0].(*big.Int)
	}
	if c := readUint("count"); c.Int64() != 7 {
		t.Fatalf("count = %s, want 7", c)
	}
	if d := readUint("deposited", common.HexToAddress(wallet)); d.Int64() != 1000 {
		t.Fatalf("deposited = %s, want 1000", d)
	}

	// --- batch approval with one code
	var ids []string
	for i := range 3 {
		ids = append(ids, e.do("POST", "/api/prepare_transaction", agent, map[string]string{
			"type": "native", "to_address": recipient, "amount": big.NewInt(int64(1000 + i)).String()}).must(t, 202).str("transaction_id"))
	}
	br := e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_ids": ids, "mfa_code": e.code(u)}).must(t, 200)
	results, _ := br.body["results"].([]any)
	if len(results) != 3 {
		t.Fatalf("batch: %s", br.raw)
	}
	for _, x := range results {
		if x.(map[string]any)["status"] != "authorized" {
			t.Fatalf("batch: %s", br.raw)
		}
	}
	for _, bid := range ids {
		e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": bid}).must(t, 201)
	}
	for _, bid := range ids {
		e.waitStatus(agent, bid, "confirmed")
	}
	// a batch with one id that is not pending decides nothing
	p1 := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": recipient, "amount": "5"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_ids": []string{p1, ids[0]}, "mfa_code": e.code(u)}).refused(t, 409, "CONFLICT")
	if s := e.do("GET", "/api/transaction_status?transaction_id="+p1, agent, nil).must(t, 200).str("status"); s != "pending" {
		t.Fatalf("all-or-nothing batch changed %s to %s", p1, s)
	}

	// --- reject: the reason goes back to the agent
	rj := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": recipient, "amount": "99"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": rj, "mfa_code": e.code(u), "decision": "reject", "reason": "not this month"}).must(t, 200)
	rs := e.do("GET", "/api/transaction_status?transaction_id="+rj, agent, nil).must(t, 200)
	if rs.str("status") != "rejected" || rs.str("reason") != "not this month" {
		t.Fatalf("reject: %s", rs.raw)
	}
	e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": rj}).refused(t, 409, "NOT_AUTHORIZED")

	// --- cancel by the agent
	cn := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": recipient, "amount": "98"}).must(t, 202).str("transaction_id")
	if s := e.do("POST", "/api/cancel_transaction", agent, map[string]string{"transaction_id": cn}).must(t, 200).str("status"); s != "cancelled" {
		t.Fatalf("cancel: %s", s)
	}
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": cn, "mfa_code": e.code(u)}).refused(t, 409, "CONFLICT")
	e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": cn}).refused(t, 409, "NOT_AUTHORIZED")

	// --- user-initiated spends, the seed's shapes
	ur := randomAddress()
	sp := e.do("POST", "/api/transfer", bearer(u.token), map[string]string{"password": u.password, "mfa_code": e.code(u),
		"to_address": ur, "amount": "4242", "address": wallet}).must(t, 201)
	e.waitStatus(bearer(u.token), sp.str("transaction_id"), "confirmed")
	if got := e.balance(agent, ur, ""); got.Int64() != 4242 {
		t.Fatalf("user transfer: recipient has %s", got)
	}
	sp = e.do("POST", "/api/transfer_erc20", bearer(u.token), map[string]string{"password": u.password, "mfa_code": e.code(u),
		"to_address": ur, "amount": "77", "address": wallet, "token_address": fx.token}).must(t, 201)
	e.waitStatus(bearer(u.token), sp.str("transaction_id"), "confirmed")
	if got := e.balance(agent, ur, fx.token); got.Int64() != 77 {
		t.Fatalf("user erc20: recipient has %s", got)
	}
	sp = e.do("POST", "/api/contract_call", bearer(u.token), map[string]any{"password": u.password, "mfa_code": e.code(u),
		"address": wallet, "contract_address": fx.counter, "contract_abi": counter.ABIJSON, "function_name": "increment",
		"function_args": []any{"5", "from the owner"}}).must(t, 201)
	e.waitStatus(bearer(u.token), sp.str("transaction_id"), "confirmed")
	if c := readUint("count"); c.Int64() != 12 {
		t.Fatalf("count = %s after user call, want 12", c)
	}
	e.do("POST", "/api/transfer", bearer(u.token), map[string]string{"password": "wrong password!!", "mfa_code": e.code(u),
		"to_address": ur, "amount": "1", "address": wallet}).refused(t, 403, "BAD_PASSWORD")

	// --- the inbox, the audit log and its chain
	inbox := e.do("GET", "/api/transactions?status=confirmed", bearer(u.token), nil).must(t, 200)
	if n := len(inbox.body["transactions"].([]any)); n != 9 {
		t.Fatalf("inbox has %d confirmed, want 9: %s", n, inbox.raw)
	}
	al := e.do("GET", "/api/audit?limit=1000", bearer(u.token), nil).must(t, 200)
	actions := map[string]int{}
	for _, x := range al.body["entries"].([]any) {
		actions[x.(map[string]any)["action"].(string)]++
	}
	for _, a := range []string{"user.register", "login", "mfa.setup", "wallet.create", "agent.create", "transaction.prepare",
		"transaction.authorize", "transaction.reject", "transaction.cancel", "transaction.execute", "transaction.confirmed",
		"transaction.user_spend", "mfa.failure"} {
		if actions[a] == 0 {
			t.Errorf("audit log has no %s entry (has %v)", a, actions)
		}
	}
	if n, err := core.VerifyAudit(ctx, e.app.Store); err != nil || n < 40 {
		t.Fatalf("audit verify: %d entries, %v", n, err)
	}

	// --- expiry, with the injected clock
	ex := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": recipient, "amount": "97"}).must(t, 202).str("transaction_id")
	e.clock.Advance(25 * time.Hour)
	if s := e.do("GET", "/api/transaction_status?transaction_id="+ex, agent, nil).must(t, 200).str("status"); s != "expired" {
		t.Fatalf("after 25h the request is %s, want expired", s)
	}
	e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": ex}).refused(t, 409, "NOT_AUTHORIZED")
	e.do("GET", "/api/wallets", bearer(u.token), nil).refused(t, 401, "UNAUTHORIZED") // the session expired too
	u.token = e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).must(t, 200).str("access_token")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": ex, "mfa_code": e.code(u)}).refused(t, 409, "CONFLICT")
	_ = agentID

	// --- nothing secret in the logs
	logs := e.logs.String()
	for name, secret := range map[string]string{"password": u.password, "api key": key, "session token": u.token,
		"totp secret": strings.TrimRight(hexOrB32(u.secret), "=")} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the server log", name)
		}
	}
}

func hexOrB32(b []byte) string { return hex.EncodeToString(b) }

func TestCountersignedFlowEmbeddedChain(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	runFlow(t, e, u, simFixture(e, u))
}
