package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign/contracts"
	"github.com/countersign/countersign/store/postgres/pgtest"
)

// Credit top-ups end to end, through the real wiring on the embedded dev
// chain: a fake OpenRouter (the documented charge API, answering with a
// Coinbase Commerce transfer intent its operator key signs) and the
// stand-in Transfers contract (contracts/src/Transfers.sol), which checks
// the operator's signature, the deadline and the amount before it pays.

const fakeOpenRouterKey = "sk-or-v1-test-key-that-must-never-be-logged"

// fakeOpenRouter speaks OpenRouter's charge and credits API.
type fakeOpenRouter struct {
	srv        *httptest.Server
	operator   *ecdsa.PrivateKey
	recipient  common.Address
	contract   common.Address
	weiPerCent *big.Int       // price of one cent of credits in base units
	currency   common.Address // what the charge is priced in: zero for the chain's coin, else a token
	gone       atomic.Bool
	unavail    atomic.Int32 // answer this many charge calls with 503
	charges    atomic.Int64 // POST /api/v1/credits/coinbase calls
	credits    atomic.Int64 // GET /api/v1/credits calls
	mu         sync.Mutex
	left       string        // total_credits - total_usage the credits call reports, dollars
	delay      time.Duration // how long the charge call takes
	senders    []string
}

func newFakeOpenRouter(t *testing.T, contract common.Address) *fakeOpenRouter {
	t.Helper()
	op, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeOpenRouter{operator: op, recipient: common.HexToAddress(randomAddress()), contract: contract,
		weiPerCent: big.NewInt(3_000_000_000_000), left: "100"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/credits/coinbase", f.charge)
	mux.HandleFunc("GET /api/v1/credits", f.creditsHandler)
	f.srv = httptest.NewServer(f.auth(mux))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeOpenRouter) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+fakeOpenRouterKey {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"error":{"code":401,"message":"No auth credentials found"}}`)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (f *fakeOpenRouter) setCredits(dollars string) { f.mu.Lock(); f.left = dollars; f.mu.Unlock() }

func (f *fakeOpenRouter) creditsHandler(w http.ResponseWriter, r *http.Request) {
	f.credits.Add(1)
	f.mu.Lock()
	left := f.left
	f.mu.Unlock()
	fmt.Fprintf(w, `{"data":{"total_credits":%s,"total_usage":0}}`, left)
}

// charge answers like OpenRouter did before it retired the endpoint (or,
// gone, as it does now).
func (f *fakeOpenRouter) charge(w http.ResponseWriter, r *http.Request) {
	f.charges.Add(1)
	time.Sleep(f.delay)
	if f.unavail.Add(-1) >= 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, `{"error":{"code":503,"message":"upstream busy"}}`)
		return
	}
	if f.gone.Load() {
		w.WriteHeader(http.StatusGone)
		fmt.Fprint(w, `{"error":{"code":410,"message":"The Coinbase APIs used by this endpoint have been deprecated, so the Coinbase Commerce credits API has been removed. Use the web credits purchase flow instead."}}`)
		return
	}
	var req struct {
		Amount  json.Number `json:"amount"`
		Sender  string      `json:"sender"`
		ChainID int64       `json:"chain_id"`
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || !common.IsHexAddress(req.Sender) || req.ChainID <= 0 {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"error":{"code":400,"message":"bad request"}}`)
		return
	}
	f.mu.Lock()
	f.senders = append(f.senders, req.Sender)
	f.mu.Unlock()
	dollars, ok := new(big.Rat).SetString(req.Amount.String())
	if !ok {
		w.WriteHeader(400)
		return
	}
	cents := new(big.Rat).Mul(dollars, big.NewRat(100, 1))
	amount := new(big.Int).Mul(cents.Num(), f.weiPerCent)
	fee := new(big.Int).Div(amount, big.NewInt(100)) // 1%
	var id [16]byte
	_, _ = rand.Read(id[:])
	deadline := time.Now().Add(time.Hour).Unix()
	sender := common.HexToAddress(req.Sender)
	operator := crypto.PubkeyToAddress(f.operator.PublicKey)
	sig := signIntent(f.operator, amount, big.NewInt(deadline), f.recipient, f.currency, sender, fee, id, operator, big.NewInt(req.ChainID), sender, f.contract)
	chargeID := "chg_" + hexutil.Encode(id[:])[2:10]
	fmt.Fprintf(w, `{"data":{"id":%q,"created_at":%q,"expires_at":%q,"web3_data":{"transfer_intent":{
		"call_data":{"deadline":%q,"fee_amount":%q,"id":%q,"operator":%q,"prefix":"","recipient":%q,"recipient_amount":%q,
		  "recipient_currency":%q,"refund_destination":%q,"signature":%q},
		"metadata":{"chain_id":%d,"contract_address":%q,"sender":%q}}}}}`,
		chargeID, time.Now().UTC().Format(time.RFC3339), time.Unix(deadline, 0).UTC().Format(time.RFC3339),
		time.Unix(deadline, 0).UTC().Format(time.RFC3339), fee.String(), hexutil.Encode(id[:]), operator.Hex(), f.recipient.Hex(), amount.String(),
		f.currency.Hex(), sender.Hex(), hexutil.Encode(sig), req.ChainID, f.contract.Hex(), sender.Hex())
}

// signIntent signs a transfer intent as a Commerce operator does: EIP-191
// over keccak256 of the packed fields, the chain, the payer and the
// contract.
func signIntent(key *ecdsa.PrivateKey, amount, deadline *big.Int, recipient, currency, refund common.Address, fee *big.Int, id [16]byte,
	operator common.Address, chainID *big.Int, payer, contract common.Address) []byte {
	var b bytes.Buffer
	b.Write(common.LeftPadBytes(amount.Bytes(), 32))
	b.Write(common.LeftPadBytes(deadline.Bytes(), 32))
	b.Write(recipient.Bytes())
	b.Write(currency.Bytes())
	b.Write(refund.Bytes())
	b.Write(common.LeftPadBytes(fee.Bytes(), 32))
	b.Write(id[:])
	b.Write(operator.Bytes())
	b.Write(common.LeftPadBytes(chainID.Bytes(), 32))
	b.Write(payer.Bytes())
	b.Write(contract.Bytes())
	h := crypto.Keccak256(b.Bytes())
	sig, err := crypto.Sign(crypto.Keccak256([]byte("\x19Ethereum Signed Message:\n32"), h), key)
	if err != nil {
		panic(err)
	}
	sig[64] += 27
	return sig
}

// transfersDeployer is a key whose first transaction deploys the stand-in
// Transfers contract, so the contract's address (TOPUP_TRANSFERS_CONTRACT)
// is known before the server, and its embedded chain, start.
type transfersDeployer struct {
	key      *ecdsa.PrivateKey
	contract common.Address
}

func newTransfersDeployer(t *testing.T) transfersDeployer {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return transfersDeployer{key: k, contract: crypto.CreateAddress(crypto.PubkeyToAddress(k.PublicKey), 0)}
}

func (d transfersDeployer) deploy(t *testing.T, b contracts.Backend, fund func(addr string)) {
	t.Helper()
	fund(crypto.PubkeyToAddress(d.key.PublicKey).Hex())
	got, err := contracts.Deploy(context.Background(), b, d.key, "Transfers")
	if err != nil {
		t.Fatal(err)
	}
	if got != d.contract {
		t.Fatalf("Transfers deployed at %s, want %s", got.Hex(), d.contract.Hex())
	}
}

// withTopups points the server at the fake OpenRouter and the stand-in
// contract (the settings OPENROUTER_API_KEY, OPENROUTER_BASE_URL and
// TOPUP_TRANSFERS_CONTRACT).
func withTopups(f *fakeOpenRouter) envOption {
	return func(c *Config) {
		c.Topup.OpenRouterKey = fakeOpenRouterKey
		c.Topup.OpenRouterURL = f.srv.URL
		c.Topup.Contract = f.contract.Hex()
	}
}

// topupEnvFixture is a server with top-ups on the embedded chain, the
// contract deployed, a user with a funded wallet and its agent.
type topupEnvFixture struct {
	e        *env
	f        *fakeOpenRouter
	u        *user
	wallet   string
	agentID  string
	agentKey string
}

func newTopupEnv(t *testing.T, opts ...envOption) *topupEnvFixture {
	d := newTransfersDeployer(t)
	f := newFakeOpenRouter(t, d.contract)
	e := newEnv(t, append([]envOption{withTopups(f)}, opts...)...)
	u, wallet, agentID, key := setup(t, e)
	d.deploy(t, e.app.Dev.Client(), func(addr string) {
		e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": addr, "amount": ether(1).String()}).must(t, 200)
	})
	return &topupEnvFixture{e: e, f: f, u: u, wallet: wallet, agentID: agentID, agentKey: key}
}

// autoTopupPolicy lets the agent pay the Transfers contract's
// transferNative automatically within max wei a day; anything else waits
// for a human.
func (x *topupEnvFixture) autoTopupPolicy(t *testing.T, max string) {
	sel := hexutil.Encode(contracts.MustLoad("Transfers").ABI.Methods["transferNative"].ID)
	x.e.do("PUT", "/api/agents/"+x.agentID+"/policy", bearer(x.u.token), map[string]any{"mfa_code": x.e.code(x.u), "default": "human",
		"rules": []any{map[string]any{"id": "topups", "when": map[string]any{"kind": []string{"contract_call"}, "to": []string{x.f.contract.Hex()},
			"selectors": []string{sel}, "asset": "native"}, "then": "auto", "budget": map[string]any{"max": max, "window": "24h"}}}}).must(t, 200)
}

// waitTopup polls the top-up until ok says so.
func waitTopup(t *testing.T, e *env, c cred, id string, ok func(resp) bool) resp {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r := e.do("GET", "/api/topups/"+id, c, nil).must(t, 200)
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("top-up %s did not get there: %s", id, r.raw)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func topupIs(want string) func(resp) bool {
	return func(r resp) bool { return r.str("status") == want }
}

// chargeTotal is what the fake charges for cents: amount + 1% fee.
func (f *fakeOpenRouter) chargeTotal(cents int64) (amount, fee *big.Int) {
	amount = new(big.Int).Mul(big.NewInt(cents), f.weiPerCent)
	return amount, new(big.Int).Div(amount, big.NewInt(100))
}

func (x *topupEnvFixture) balanceOf(t *testing.T, a common.Address) *big.Int {
	b, err := x.e.app.Dev.Client().BalanceAt(context.Background(), a, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A top-up within the agent's auto budget goes through with no human: the
// charge is made for the wallet on this chain, the payment is decided by
// the policy rule, executed, confirmed; the provider's recipient holds the
// amount, its operator the fee, and the receipt says openrouter_topup.
func TestTopup_AutoPolicyEndToEnd(t *testing.T) {
	x := newTopupEnv(t)
	x.autoTopupPolicy(t, ether(1).String())
	r := x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "10"}).must(t, 201)
	if r.str("amount_usd") != "10.00" || r.str("provider") != "openrouter" {
		t.Fatalf("request: %s", r.raw)
	}
	id := r.str("id")
	done := waitTopup(t, x.e, apiKey(x.agentKey), id, topupIs("confirmed"))
	amount, fee := x.f.chargeTotal(1000)
	total := new(big.Int).Add(amount, fee)
	if done.str("pay_amount") != total.String() || done.str("pay_asset") != "native" || done.str("tx_hash") == "" || done.body["error"] != nil {
		t.Fatalf("confirmed top-up: %s", done.raw)
	}
	if got := x.balanceOf(t, x.f.recipient); got.Cmp(amount) != 0 {
		t.Fatalf("the provider's recipient holds %s, want %s", got, amount)
	}
	if got := x.balanceOf(t, crypto.PubkeyToAddress(x.f.operator.PublicKey)); got.Cmp(fee) != 0 {
		t.Fatalf("the operator holds %s, want the fee %s", got, fee)
	}
	if n := x.f.charges.Load(); n != 1 {
		t.Fatalf("%d charges asked for, want 1", n)
	}
	if s := x.f.senders[0]; !strings.EqualFold(s, x.wallet) {
		t.Fatalf("the charge was asked for sender %s, not the wallet %s", s, x.wallet)
	}
	pay := x.e.do("GET", "/api/transaction_status?transaction_id="+done.str("transaction_id"), apiKey(x.agentKey), nil).must(t, 200)
	if pay.str("decision") != "auto" || pay.str("rule_id") != "topups" || pay.str("function_name") != "transferNative((uint256,uint256,address,address,address,uint256,bytes16,address,bytes,bytes))" ||
		pay.str("status") != "confirmed" {
		t.Fatalf("the payment request: %s", pay.raw)
	}
	rc := x.e.do("GET", "/api/charge_receipts?reason=openrouter_topup", bearer(x.u.token), nil).must(t, 200)
	list, _ := rc.body["receipts"].([]any)
	if len(list) != 1 {
		t.Fatalf("receipts: %s", rc.raw)
	}
	rec := list[0].(map[string]any)
	if rec["amount"] != total.String() || rec["asset"] != "native" || rec["tx_hash"] != done.str("tx_hash") || rec["rule_id"] != "topups" || rec["usd_estimate"] != "10.00" {
		t.Fatalf("receipt: %v", rec)
	}
	// listed for the agent and for its owner
	for _, c := range []cred{apiKey(x.agentKey), bearer(x.u.token)} {
		l := x.e.do("GET", "/api/topups", c, nil).must(t, 200)
		if items, _ := l.body["topups"].([]any); len(items) != 1 {
			t.Fatalf("list: %s", l.raw)
		}
	}
	if strings.Contains(x.e.logs.String(), fakeOpenRouterKey) {
		t.Fatal("the OpenRouter API key is in the server's log")
	}
}

// Without a policy the payment waits for the owner's TOTP approval; once
// approved the worker executes it and the top-up is confirmed.
func TestTopup_HumanPolicy(t *testing.T) {
	x := newTopupEnv(t)
	r := x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "2.50"}).must(t, 201)
	id := r.str("id")
	if r.str("status") != "charge_created" || r.str("transaction_id") == "" {
		t.Fatalf("after the request: %s", r.raw)
	}
	pay := x.e.do("GET", "/api/transaction_status?transaction_id="+r.str("transaction_id"), bearer(x.u.token), nil).must(t, 200)
	if pay.str("status") != "pending" || pay.str("decision") != "human" {
		t.Fatalf("the payment should wait for a human: %s", pay.raw)
	}
	time.Sleep(200 * time.Millisecond) // several polls: nothing moves without the human
	if got := x.e.do("GET", "/api/topups/"+id, apiKey(x.agentKey), nil).must(t, 200); got.str("status") != "charge_created" || x.balanceOf(t, x.f.recipient).Sign() != 0 {
		t.Fatalf("moved without a human: %s", got.raw)
	}
	x.e.do("POST", "/api/authorize_transaction", bearer(x.u.token), map[string]string{"transaction_id": r.str("transaction_id"), "mfa_code": x.e.code(x.u)}).must(t, 200)
	waitTopup(t, x.e, apiKey(x.agentKey), id, topupIs("confirmed"))
	amount, _ := x.f.chargeTotal(250)
	if got := x.balanceOf(t, x.f.recipient); got.Cmp(amount) != 0 {
		t.Fatalf("recipient holds %s, want %s", got, amount)
	}
	if n := x.f.charges.Load(); n != 1 {
		t.Fatalf("%d charges", n)
	}
}

// OpenRouter's endpoint answers 410 Gone today: the top-up fails at once,
// with a message saying what happened and what to do, and is never tried
// again (the fake counts the calls). On a version that retried it, the
// count grows with every poll.
func TestSecurity_TopupGoneIsPermanent(t *testing.T) {
	x := newTopupEnv(t)
	x.f.gone.Store(true)
	r := x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "5"}).must(t, 201)
	if r.str("status") != "failed" {
		t.Fatalf("status: %s", r.raw)
	}
	msg := r.str("error")
	for _, want := range []string{"410 Gone", "retired crypto credit top-ups", "Nothing was charged", "will not retry", "OpenRouter dashboard", "x402"} {
		if !strings.Contains(msg, want) {
			t.Fatalf("the error does not say %q: %s", want, msg)
		}
	}
	time.Sleep(300 * time.Millisecond) // ~15 worker polls
	if n := x.f.charges.Load(); n != 1 {
		t.Fatalf("the retired endpoint was called %d times, want once", n)
	}
	if txs := x.e.do("GET", "/api/transactions", apiKey(x.agentKey), nil).must(t, 200); strings.Contains(txs.raw, "transaction_id") {
		t.Fatalf("a payment was prepared for a failed charge: %s", txs.raw)
	}
	if strings.Contains(x.e.logs.String(), fakeOpenRouterKey) || strings.Contains(r.raw, fakeOpenRouterKey) {
		t.Fatal("the API key leaked")
	}
}

// Bad requests are refused with a clear error and change nothing: no
// top-up stored, no charge asked for.
func TestTopup_BadRequests(t *testing.T) {
	x := newTopupEnv(t)
	agent := apiKey(x.agentKey)
	for name, tc := range map[string]struct {
		body   any
		status int
		code   string
	}{
		"fail/over TOPUP_MAX_USD":  {map[string]string{"provider": "openrouter", "amount_usd": "500.01"}, 400, "BAD_REQUEST"},
		"fail/three decimals":      {map[string]string{"provider": "openrouter", "amount_usd": "1.005"}, 400, "BAD_REQUEST"},
		"fail/negative":            {map[string]string{"provider": "openrouter", "amount_usd": "-5"}, 400, "BAD_REQUEST"},
		"fail/zero":                {map[string]string{"provider": "openrouter", "amount_usd": "0.00"}, 400, "BAD_REQUEST"},
		"fail/exponent":            {map[string]string{"provider": "openrouter", "amount_usd": "1e3"}, 400, "BAD_REQUEST"},
		"fail/number not a string": {`{"provider":"openrouter","amount_usd":10}`, 400, "BAD_REQUEST"},
		"fail/unknown provider":    {map[string]string{"provider": "stripe", "amount_usd": "5"}, 400, "BAD_REQUEST"},
		"fail/unknown field":       {`{"provider":"openrouter","amount_usd":"5","to":"0x00"}`, 400, "BAD_REQUEST"},
	} {
		t.Run(name, func(t *testing.T) {
			x.e.do("POST", "/api/topups", agent, tc.body).refused(t, tc.status, tc.code)
		})
	}
	x.e.do("POST", "/api/topups", bearer(x.u.token), map[string]string{"provider": "openrouter", "amount_usd": "5"}).refused(t, 403, "FORBIDDEN")
	x.e.do("GET", "/api/topups/not-a-uuid", agent, nil).refused(t, 400, "BAD_REQUEST")
	x.e.do("GET", "/api/topups/"+randomUUID(), agent, nil).refused(t, 404, "NOT_FOUND")
	x.e.do("GET", "/api/topups?status=bogus", agent, nil).refused(t, 400, "BAD_REQUEST")
	if l := x.e.do("GET", "/api/topups", agent, nil).must(t, 200); !strings.Contains(l.raw, `"topups":[]`) {
		t.Fatalf("a refused request stored a top-up: %s", l.raw)
	}
	if n := x.f.charges.Load(); n != 0 {
		t.Fatalf("%d charges asked for by refused requests", n)
	}
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hexutil.Encode(b[:])[2:]
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// A top-up whose charge costs more than the auto budget is not paid by the
// policy: the payment waits for a human (decision human, "exceed the
// budget"), nothing moves, and the human's rejection fails the top-up. On
// a version that executed top-ups outside the policy, the recipient is
// paid here.
func TestMoney_TopupOverBudgetNotPaid(t *testing.T) {
	x := newTopupEnv(t)
	amount, fee := x.f.chargeTotal(1000)
	x.autoTopupPolicy(t, new(big.Int).Add(amount, fee).String()) // exactly one $10 top-up a day
	first := x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "10"}).must(t, 201)
	waitTopup(t, x.e, apiKey(x.agentKey), first.str("id"), topupIs("confirmed"))
	second := x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "10"}).must(t, 201)
	pay := x.e.do("GET", "/api/transaction_status?transaction_id="+second.str("transaction_id"), apiKey(x.agentKey), nil).must(t, 200)
	if second.str("status") != "charge_created" || pay.str("status") != "pending" || pay.str("decision") != "human" || !strings.Contains(pay.raw, "exceed the budget") {
		t.Fatalf("over budget: %s\n%s", second.raw, pay.raw)
	}
	time.Sleep(200 * time.Millisecond)
	if got := x.balanceOf(t, x.f.recipient); got.Cmp(amount) != 0 {
		t.Fatalf("the recipient holds %s after the over-budget top-up, want only the first %s", got, amount)
	}
	x.e.do("POST", "/api/authorize_transaction", bearer(x.u.token), map[string]string{"transaction_id": second.str("transaction_id"), "mfa_code": x.e.code(x.u), "decision": "reject"}).must(t, 200)
	failed := waitTopup(t, x.e, apiKey(x.agentKey), second.str("id"), topupIs("failed"))
	if !strings.Contains(failed.str("error"), "rejected") {
		t.Fatalf("failed top-up: %s", failed.raw)
	}
}

// A restart in the middle of the state machine resumes it: the charge is
// made but its payment cannot be prepared (the wallet holds nothing yet),
// the server stops, the wallet is funded, the server starts again — and
// pays that same charge, exactly once, with no second charge asked for.
// The chain is a dev node outside the server, so it outlives the restart.
func TestMoney_TopupResumesAfterRestart(t *testing.T) {
	node, url := devNode(t)
	d := newTransfersDeployer(t)
	fund := func(addr string, wei *big.Int) {
		if _, err := node.Fund(context.Background(), common.HexToAddress(addr), wei); err != nil {
			t.Fatal(err)
		}
	}
	d.deploy(t, node.Client(), func(addr string) { fund(addr, ether(1)) })
	f := newFakeOpenRouter(t, d.contract)
	dir, clock := t.TempDir(), restartClock()
	opts := []envOption{withTopups(f), func(c *Config) { c.ChainURL = url }}
	e, stop, err := startAt(t, dir, clock, opts...)
	if err != nil {
		t.Fatal(err)
	}
	u := e.newUser(true)
	wallet := e.createWallet(u)
	_, key := e.createAgent(u, wallet)
	r := e.do("POST", "/api/topups", apiKey(key), map[string]string{"provider": "openrouter", "amount_usd": "10"}).must(t, 201)
	id := r.str("id")
	if r.str("status") != "charge_created" || r.str("charge_id") == "" || r.body["transaction_id"] != nil || !strings.Contains(r.str("error"), "funded") {
		t.Fatalf("before the restart: %s", r.raw)
	}
	chargeID := r.str("charge_id")
	time.Sleep(100 * time.Millisecond)
	stop()

	amount, fee := f.chargeTotal(1000)
	fund(wallet, ether(1))
	e, _, err = startAt(t, dir, clock, opts...)
	if err != nil {
		t.Fatal(err)
	}
	pending := waitTopup(t, e, apiKey(key), id, func(r resp) bool { return r.str("transaction_id") != "" })
	if pending.str("charge_id") != chargeID {
		t.Fatalf("the restart paid another charge: %s", pending.raw)
	}
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": pending.str("transaction_id"), "mfa_code": e.code(u)}).must(t, 200)
	waitTopup(t, e, apiKey(key), id, topupIs("confirmed"))
	if n := f.charges.Load(); n != 1 {
		t.Fatalf("%d charges asked for across the restart, want 1", n)
	}
	got, err := node.Client().BalanceAt(context.Background(), f.recipient, nil)
	if err != nil || got.Cmp(amount) != 0 {
		t.Fatalf("the recipient holds %v, want %s exactly once (%v)", got, amount, err)
	}
	_ = fee
	if txs := e.do("GET", "/api/transactions", apiKey(key), nil).must(t, 200); strings.Count(txs.raw, `"transaction_id"`) != 1 {
		t.Fatalf("more than one payment request: %s", txs.raw)
	}
}

// Automatic top-up: with credits below TOPUP_THRESHOLD_USD the worker
// prepares one top-up (which the policy then decides: here a human), and
// however many checks follow while it is open, never a second.
func TestMoney_AutomaticTopupPreparesExactlyOne(t *testing.T) {
	node, url := devNode(t)
	d := newTransfersDeployer(t)
	d.deploy(t, node.Client(), func(addr string) {
		if _, err := node.Fund(context.Background(), common.HexToAddress(addr), ether(1)); err != nil {
			t.Fatal(err)
		}
	})
	f := newFakeOpenRouter(t, d.contract)
	dir, clock := t.TempDir(), restartClock()
	e, stop, err := startAt(t, dir, clock, withTopups(f), func(c *Config) { c.ChainURL = url })
	if err != nil {
		t.Fatal(err)
	}
	u := e.newUser(true)
	wallet := e.createWallet(u)
	if _, err := node.Fund(context.Background(), common.HexToAddress(wallet), ether(1)); err != nil {
		t.Fatal(err)
	}
	agentID, key := e.createAgent(u, wallet)
	stop()

	// The operator configures the automatic top-up for the agent.
	f.setCredits("4.99")
	e, _, err = startAt(t, dir, clock, withTopups(f), func(c *Config) {
		c.ChainURL = url
		c.Topup.AutoAgentID, c.Topup.ThresholdCents, c.Topup.AmountCents, c.Topup.CheckEvery = agentID, 500, 2000, time.Minute
	})
	if err != nil {
		t.Fatal(err)
	}
	var first resp
	deadline := time.Now().Add(20 * time.Second)
	for {
		first = e.do("GET", "/api/topups", apiKey(key), nil).must(t, 200)
		if items, _ := first.body["topups"].([]any); len(items) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no automatic top-up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	for range 5 { // five more checks, each due, while the first is open
		before := f.credits.Load()
		clock.Advance(2 * time.Minute)
		for f.credits.Load() == before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	l := e.do("GET", "/api/topups", bearer(u.token), nil).must(t, 200)
	items, _ := l.body["topups"].([]any)
	if len(items) != 1 || f.charges.Load() != 1 || f.credits.Load() < 6 {
		t.Fatalf("%d top-ups, %d charges after %d credit checks: %s", len(items), f.charges.Load(), f.credits.Load(), l.raw)
	}
	tp := items[0].(map[string]any)
	if tp["automatic"] != true || tp["amount_usd"] != "20.00" || tp["status"] != "charge_created" {
		t.Fatalf("the automatic top-up: %v", tp)
	}
}

// A charge priced in a token (USDC on Base; the dev chain's TEST here) is
// paid with transferTokenPreApproved after an ERC-20 approve of exactly
// the charge's amount plus fee to the Transfers contract — never an
// unlimited approval — and each of the two requests is the policy's (here
// the owner's) to decide. The contract takes exactly that, so nothing is
// left approved; the receipt is in the token.
func TestMoney_TopupTokenChargeApprovesExactAmount(t *testing.T) {
	x := newTopupEnv(t)
	fx := simFixture(x.e, x.u)
	x.f.currency = common.HexToAddress(fx.token)
	fx.mint(t, x.wallet, ether(10))
	r := x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "10"}).must(t, 201)
	id := r.str("id")
	amount, fee := x.f.chargeTotal(1000)
	total := new(big.Int).Add(amount, fee)
	if r.str("status") != "charge_created" || r.str("approval_transaction_id") == "" || r.body["transaction_id"] != nil ||
		r.str("pay_asset") != strings.ToLower(fx.token) || r.str("pay_amount") != total.String() {
		t.Fatalf("after the request: %s", r.raw)
	}
	ap := x.e.do("GET", "/api/transaction_status?transaction_id="+r.str("approval_transaction_id"), bearer(x.u.token), nil).must(t, 200)
	wantData := "0x095ea7b3" + hexutil.Encode(common.LeftPadBytes(x.f.contract.Bytes(), 32))[2:] + hexutil.Encode(common.LeftPadBytes(total.Bytes(), 32))[2:]
	if ap.str("status") != "pending" || !strings.EqualFold(ap.str("data"), wantData) || !strings.EqualFold(ap.str("to_address"), fx.token) || strings.Contains(ap.raw, "unlimited") {
		t.Fatalf("the approval request is not an exact approve of %s to the contract: %s", total, ap.raw)
	}
	x.e.do("POST", "/api/authorize_transaction", bearer(x.u.token), map[string]string{"transaction_id": r.str("approval_transaction_id"), "mfa_code": x.e.code(x.u)}).must(t, 200)
	withPay := waitTopup(t, x.e, apiKey(x.agentKey), id, func(r resp) bool { return r.str("transaction_id") != "" })
	pay := x.e.do("GET", "/api/transaction_status?transaction_id="+withPay.str("transaction_id"), bearer(x.u.token), nil).must(t, 200)
	if pay.str("status") != "pending" || !strings.HasPrefix(pay.str("function_name"), "transferTokenPreApproved(") || pay.str("value") != "0" {
		t.Fatalf("the payment request: %s", pay.raw)
	}
	x.e.do("POST", "/api/authorize_transaction", bearer(x.u.token), map[string]string{"transaction_id": withPay.str("transaction_id"), "mfa_code": x.e.code(x.u)}).must(t, 200)
	waitTopup(t, x.e, apiKey(x.agentKey), id, topupIs("confirmed"))
	if got := x.e.balance(bearer(x.u.token), x.f.recipient.Hex(), fx.token); got.Cmp(amount) != 0 {
		t.Fatalf("the recipient holds %s TEST, want %s", got, amount)
	}
	if got := x.e.balance(bearer(x.u.token), x.wallet, fx.token); got.Cmp(new(big.Int).Sub(ether(10), total)) != 0 {
		t.Fatalf("the wallet holds %s TEST, want %s less", got, total)
	}
	token := common.HexToAddress(fx.token)
	allowance, err := fx.chain.CallContract(context.Background(), ethereum.CallMsg{To: &token,
		Data: append(hexutil.MustDecode("0xdd62ed3e"), append(common.LeftPadBytes(common.HexToAddress(x.wallet).Bytes(), 32), common.LeftPadBytes(x.f.contract.Bytes(), 32)...)...)}, nil)
	if err != nil || new(big.Int).SetBytes(allowance).Sign() != 0 {
		t.Fatalf("allowance left to the contract: %x (%v)", allowance, err)
	}
	rc := x.e.do("GET", "/api/charge_receipts?reason=openrouter_topup", bearer(x.u.token), nil).must(t, 200)
	list, _ := rc.body["receipts"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["asset"] != strings.ToLower(fx.token) || list[0].(map[string]any)["amount"] != total.String() {
		t.Fatalf("receipts: %s", rc.raw)
	}
}

// Two replicas on one PostgreSQL and one chain, both running the top-up
// worker with the same automatic top-up and an auto policy: the credits
// are low for both, yet exactly one top-up is made, one charge asked for
// and it is paid once. The fake answers slowly, so both workers are at it
// at the same time. Without the store's one-open-automatic index, the
// leases and the compare-and-set writes, the charge count, the top-up
// count or the recipient's balance goes above one.
func TestMoney_TopupTwoReplicasPayOnce(t *testing.T) {
	dsn := pgtest.Start(t)
	node, url := devNode(t)
	d := newTransfersDeployer(t)
	d.deploy(t, node.Client(), func(addr string) {
		if _, err := node.Fund(context.Background(), common.HexToAddress(addr), ether(1)); err != nil {
			t.Fatal(err)
		}
	})
	f := newFakeOpenRouter(t, d.contract)
	f.delay = 150 * time.Millisecond
	var cfg *Config
	clock := restartClock()
	e, stop, err := startAt(t, t.TempDir(), clock, onPostgres(dsn, &cfg), withTopups(f), func(c *Config) { c.ChainURL = url })
	if err != nil {
		t.Fatal(err)
	}
	u := e.newUser(true)
	wallet := e.createWallet(u)
	if _, err := node.Fund(context.Background(), common.HexToAddress(wallet), ether(1)); err != nil {
		t.Fatal(err)
	}
	agentID, key := e.createAgent(u, wallet)
	x := &topupEnvFixture{e: e, f: f, u: u, wallet: wallet, agentID: agentID, agentKey: key}
	x.autoTopupPolicy(t, ether(1).String())
	masterKey := cfg.MasterKeyFile
	stop()

	f.setCredits("1")
	auto := func(c *Config) {
		c.ChainURL, c.MasterKeyFile = url, masterKey
		c.Topup.AutoAgentID, c.Topup.ThresholdCents, c.Topup.AmountCents, c.Topup.CheckEvery = agentID, 500, 1000, time.Minute
	}
	var cfgA, cfgB *Config
	a, _, err := startAt(t, t.TempDir(), clock, onPostgres(dsn, &cfgA), withTopups(f), auto)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := startAt(t, t.TempDir(), clock, onPostgres(dsn, &cfgB), withTopups(f), auto); err != nil {
		t.Fatal(err)
	}
	var id string
	deadline := time.Now().Add(30 * time.Second)
	for id == "" {
		l := a.do("GET", "/api/topups", apiKey(key), nil).must(t, 200)
		if items, _ := l.body["topups"].([]any); len(items) > 0 {
			id = items[0].(map[string]any)["id"].(string)
		}
		if time.Now().After(deadline) {
			t.Fatal("no automatic top-up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	waitTopup(t, a, apiKey(key), id, topupIs("confirmed"))
	time.Sleep(300 * time.Millisecond) // both workers poll on
	amount, _ := f.chargeTotal(1000)
	got, err := node.Client().BalanceAt(context.Background(), f.recipient, nil)
	if err != nil || got.Cmp(amount) != 0 {
		t.Fatalf("the recipient holds %v, want %s once (%v)", got, amount, err)
	}
	l := a.do("GET", "/api/topups", bearer(u.token), nil).must(t, 200)
	if items, _ := l.body["topups"].([]any); len(items) != 1 || f.charges.Load() != 1 {
		t.Fatalf("%d charges; top-ups: %s", f.charges.Load(), l.raw)
	}
}

// countersign topup talks to the running server as the agent: with an
// auto policy it waits for the top-up to be confirmed; list and show read
// it back; without COUNTERSIGN_API_KEY or with a bad amount it refuses
// before any request.
func TestTopup_CLI(t *testing.T) {
	x := newTopupEnv(t)
	x.autoTopupPolicy(t, ether(1).String())
	env := map[string]string{"COUNTERSIGN_URL": x.e.url, "COUNTERSIGN_API_KEY": x.agentKey}
	getenv := func(k string) string { return env[k] }
	var out, errb bytes.Buffer
	ctx := context.Background()
	if err := run(ctx, []string{"topup", "--provider", "openrouter", "--amount-usd", "3", "--wait", "30s", "--json"}, getenv, &out, &errb); err != nil {
		t.Fatalf("topup: %v (%s)", err, errb.String())
	}
	var v map[string]any
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v["status"] != "confirmed" || v["amount_usd"] != "3.00" {
		t.Fatalf("topup --json: %s (%v)", out.String(), err)
	}
	out.Reset()
	if err := run(ctx, []string{"topup", "list"}, getenv, &out, &errb); err != nil || !strings.Contains(out.String(), v["id"].(string)) || !strings.Contains(out.String(), "confirmed") {
		t.Fatalf("topup list: %v %s", err, out.String())
	}
	out.Reset()
	if err := run(ctx, []string{"topup", "show", v["id"].(string)}, getenv, &out, &errb); err != nil || !strings.Contains(out.String(), "openrouter $3.00  confirmed") {
		t.Fatalf("topup show: %v %s", err, out.String())
	}
	before := x.f.charges.Load()
	if err := run(ctx, []string{"topup", "--amount-usd", "3.001"}, getenv, &out, &errb); err == nil || !strings.Contains(err.Error(), "at most two after the point") {
		t.Fatalf("a bad amount: %v", err)
	}
	if err := run(ctx, []string{"topup", "--amount-usd", "3"}, func(k string) string { return map[string]string{"COUNTERSIGN_URL": x.e.url}[k] }, &out, &errb); err == nil || !strings.Contains(err.Error(), "COUNTERSIGN_API_KEY") {
		t.Fatalf("no key: %v", err)
	}
	x.f.gone.Store(true)
	out.Reset()
	if err := run(ctx, []string{"topup", "--amount-usd", "3"}, getenv, &out, &errb); err == nil || !strings.Contains(out.String(), "410 Gone") {
		t.Fatalf("gone: %v %s", err, out.String())
	}
	if n := x.f.charges.Load() - before; n != 1 {
		t.Fatalf("%d charges for the refused and the gone requests, want the gone one only", n)
	}
}

// An agent cannot pile up charges: with MaxOpenTopups open (waiting for a
// human here) the next request is refused with 409 and asks for nothing.
func TestSecurity_TopupOpenLimit(t *testing.T) {
	x := newTopupEnv(t)
	for range 5 {
		x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "1"}).must(t, 201)
	}
	x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "1"}).refused(t, 409, "CONFLICT")
	if n := x.f.charges.Load(); n != 5 {
		t.Fatalf("%d charges, want 5", n)
	}
}

// A charge whose deadline passes while its payment waits for a human is
// not sent (the contract would refuse it and the fee be lost): the request
// is cancelled, its budget released, and the top-up fails saying so.
func TestMoney_TopupExpiredChargeNotSent(t *testing.T) {
	x := newTopupEnv(t)
	r := x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "1"}).must(t, 201)
	x.e.clock.Advance(2 * time.Hour) // the fake's charges last an hour
	failed := waitTopup(t, x.e, apiKey(x.agentKey), r.str("id"), topupIs("failed"))
	if !strings.Contains(failed.str("error"), "charge expired") {
		t.Fatalf("failed: %s", failed.raw)
	}
	st := x.e.do("GET", "/api/transaction_status?transaction_id="+r.str("transaction_id"), apiKey(x.agentKey), nil).must(t, 200)
	if st.str("status") != "cancelled" && st.str("status") != "expired" {
		t.Fatalf("the payment request: %s", st.raw)
	}
	if x.balanceOf(t, x.f.recipient).Sign() != 0 {
		t.Fatal("an expired charge was paid")
	}
}

// A transient provider failure (503) is retried, after a backoff measured
// on the server's clock, and the top-up then goes on with one charge.
func TestTopup_TransientFailureRetried(t *testing.T) {
	x := newTopupEnv(t)
	x.f.unavail.Store(1)
	r := x.e.do("POST", "/api/topups", apiKey(x.agentKey), map[string]string{"provider": "openrouter", "amount_usd": "1"}).must(t, 201)
	if r.str("status") != "pending" || !strings.Contains(r.str("error"), "HTTP 503") || !strings.Contains(r.str("error"), "tries again later") {
		t.Fatalf("after a 503: %s", r.raw)
	}
	time.Sleep(150 * time.Millisecond) // polls inside the backoff ask nothing
	if n := x.f.charges.Load(); n != 1 {
		t.Fatalf("%d calls inside the backoff", n)
	}
	x.e.clock.Advance(6 * time.Second)
	got := waitTopup(t, x.e, apiKey(x.agentKey), r.str("id"), topupIs("charge_created"))
	if got.body["error"] != nil || x.f.charges.Load() != 2 {
		t.Fatalf("after the retry (%d calls): %s", x.f.charges.Load(), got.raw)
	}
}
