package main

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/countersign/countersign/contracts"
	"github.com/countersign/countersign/x402"
)

// x402 end to end on the embedded dev chain: a resource server and a
// facilitator written here (verify the signature offline, then settle by
// calling transferWithAuthorization on an EIP-3009 token deployed for the
// test), and the agent paying through POST /api/x402/fetch.

// allowLoopback lets fetches reach the test servers (X402_ALLOW_NETS).
func allowLoopback(c *Config) {
	c.X402.AllowNets = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
}

type x402Fixture struct {
	t        *testing.T
	e        *env
	u        *user
	walletID string
	wallet   common.Address
	agentID  string
	key      string
	token    common.Address
	minter   *ecdsa.PrivateKey
	fac      *facilitator
	res      *resourceServer
}

func newX402Fixture(t *testing.T, opts ...envOption) *x402Fixture {
	e := newEnv(t, append([]envOption{allowLoopback}, opts...)...)
	u := e.newUser(true)
	r := e.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password}).must(t, 201)
	f := &x402Fixture{t: t, e: e, u: u, walletID: r.str("wallet_id"), wallet: common.HexToAddress(r.str("address"))}
	f.agentID, f.key = e.createAgent(u, r.str("address"))
	ctx := context.Background()
	var err error
	if f.minter, err = crypto.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Dev.Fund(ctx, crypto.PubkeyToAddress(f.minter.PublicKey), ether(10)); err != nil {
		t.Fatal(err)
	}
	if f.token, err = contracts.DeployWith(ctx, e.app.Dev.Client(), f.minter, "EIP3009Token", "USD Coin"); err != nil {
		t.Fatal(err)
	}
	data, _ := tokenABI().Pack("mint", f.wallet, big.NewInt(1_000_000))
	if _, err := contracts.Send(ctx, e.app.Dev.Client(), f.minter, &f.token, nil, data); err != nil {
		t.Fatal(err)
	}
	f.fac = &facilitator{t: t, e: e, key: f.minter, token: f.token}
	f.res = newResourceServer(t, f)
	return f
}

func tokenABI() *contractsABI { return &contractsABI{contracts.MustLoad("EIP3009Token")} }

type contractsABI struct{ a *contracts.Artifact }

func (c *contractsABI) Pack(name string, args ...any) ([]byte, error) {
	return c.a.ABI.Pack(name, args...)
}

// balance is addr's token balance on chain.
func (f *x402Fixture) balance(addr common.Address) *big.Int {
	f.t.Helper()
	data, _ := tokenABI().Pack("balanceOf", addr)
	out, err := f.e.app.Dev.Client().CallContract(context.Background(), ethereum.CallMsg{To: &f.token, Data: data}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return new(big.Int).SetBytes(out)
}

// put sets a policy document on path (mfa_code added).
func (f *x402Fixture) put(path, doc string) {
	f.t.Helper()
	body := strings.Replace(doc, "{", fmt.Sprintf(`{"mfa_code":%q,`, f.e.code(f.u)), 1)
	f.e.do("PUT", path, bearer(f.u.token), body).must(f.t, 200)
}

// autoWithin lets the agent pay up to max of the token without a human;
// over it the policy denies.
func (f *x402Fixture) autoWithin(max string) {
	f.put("/api/agents/"+f.agentID+"/policy", `{"rules":[{"id":"x402-budget","when":{"kind":["x402"],"asset":"`+f.token.Hex()+`"},
		"then":"auto","budget":{"max":"`+max+`","window":"24h"},"overflow":"deny"}]}`)
}

func (f *x402Fixture) fetch(body map[string]any) resp {
	f.t.Helper()
	return f.e.do("POST", "/api/x402/fetch", apiKey(f.key), body)
}

// x402Rows lists the agent's x402 requests (each holds one nonce).
func (f *x402Fixture) x402Rows() []map[string]any {
	f.t.Helper()
	r := f.e.do("GET", "/api/transactions?limit=100", apiKey(f.key), nil).must(f.t, 200)
	var out []map[string]any
	list, _ := r.body["transactions"].([]any)
	for _, x := range list {
		if m := x.(map[string]any); m["type"] == "x402" {
			out = append(out, m)
		}
	}
	return out
}

// facilitator verifies a payment and settles it on chain.
type facilitator struct {
	t     *testing.T
	e     *env
	key   *ecdsa.PrivateKey
	token common.Address
	mu    sync.Mutex
	seen  int // payments received
	nonce map[string]bool
}

func (fa *facilitator) payments() int { fa.mu.Lock(); defer fa.mu.Unlock(); return fa.seen }

// settle verifies p against offer o and calls transferWithAuthorization.
func (fa *facilitator) settle(p *x402.PaymentPayload, o *x402.Offer) (*x402.Settlement, error) {
	fa.mu.Lock()
	fa.seen++
	if fa.nonce == nil {
		fa.nonce = map[string]bool{}
	}
	fa.mu.Unlock()
	payer, err := x402.Verify(p, o, time.Now().Unix())
	if err != nil {
		return &x402.Settlement{Success: false, ErrorReason: "invalid_payload", Network: o.Req.Network, Payer: payer.Hex()}, nil
	}
	a, _ := p.Authorization()
	fa.mu.Lock()
	if fa.nonce[x402.NonceHex(a.Nonce)] {
		fa.mu.Unlock()
		fa.t.Errorf("the facilitator saw nonce %s twice", x402.NonceHex(a.Nonce))
		return &x402.Settlement{Success: false, ErrorReason: "nonce_reused"}, nil
	}
	fa.nonce[x402.NonceHex(a.Nonce)] = true
	fa.mu.Unlock()
	sig := common.FromHex(p.Payload.Signature)
	var r, s [32]byte
	copy(r[:], sig[:32])
	copy(s[:], sig[32:64])
	data, err := tokenABI().Pack("transferWithAuthorization", a.From, a.To, a.Value, a.ValidAfter, a.ValidBefore, a.Nonce, sig[64], r, s)
	if err != nil {
		return nil, err
	}
	rc, err := contracts.Send(context.Background(), fa.e.app.Dev.Client(), fa.key, &fa.token, nil, data)
	if err != nil {
		return &x402.Settlement{Success: false, ErrorReason: "settle_failed", Network: o.Req.Network}, nil
	}
	return &x402.Settlement{Success: true, Transaction: rc.TxHash.Hex(), Network: o.Req.Network, Payer: payer.Hex()}, nil
}

// resourceServer is a paid API: v2 (PAYMENT-REQUIRED header) or v1 (JSON
// body), at a price the test can change.
type resourceServer struct {
	srv     *httptest.Server
	f       *x402Fixture
	v1      atomic.Bool
	price   atomic.Int64
	payTo   common.Address
	mutate  atomic.Value // func(*x402.PaymentRequired) applied to each 402
	unpaid  atomic.Int64 // unpaid requests seen
	network string
}

func newResourceServer(t *testing.T, f *x402Fixture) *resourceServer {
	rs := &resourceServer{f: f, payTo: common.HexToAddress(randomAddress()), network: "eip155:1337"}
	rs.price.Store(2500)
	rs.srv = httptest.NewServer(http.HandlerFunc(rs.serve))
	t.Cleanup(rs.srv.Close)
	return rs
}

func (rs *resourceServer) required() *x402.PaymentRequired {
	req := map[string]any{"scheme": "exact", "network": rs.network, "asset": rs.f.token.Hex(), "payTo": rs.payTo.Hex(),
		"maxTimeoutSeconds": 300, "extra": map[string]string{"name": "USD Coin", "version": "2"}}
	pr := map[string]any{"x402Version": 2, "error": "payment required", "accepts": []any{req},
		"resource": map[string]string{"url": rs.srv.URL + "/paid", "description": "the paid answer", "mimeType": "text/plain"}}
	if rs.v1.Load() {
		req["maxAmountRequired"] = fmt.Sprint(rs.price.Load())
		req["resource"], req["description"], req["mimeType"] = rs.srv.URL+"/paid", "the paid answer", "text/plain"
		pr = map[string]any{"x402Version": 1, "error": "payment required", "accepts": []any{req}}
	} else {
		req["amount"] = fmt.Sprint(rs.price.Load())
	}
	b, _ := json.Marshal(pr)
	out, err := x402.ParsePaymentRequired(b)
	if err != nil {
		panic(err)
	}
	if m, ok := rs.mutate.Load().(func(*x402.PaymentRequired)); ok && m != nil {
		m(out)
	}
	return out
}

func (rs *resourceServer) send402(w http.ResponseWriter, pr *x402.PaymentRequired) {
	if pr.X402Version == 1 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(402)
		json.NewEncoder(w).Encode(rawRequired(pr))
		return
	}
	h, _ := x402.EncodeJSON(rawRequired(pr))
	w.Header().Set(x402.HeaderPaymentRequired, h)
	w.WriteHeader(402)
	w.Write([]byte("{}"))
}

// rawRequired re-marshals pr with each requirement as sent.
func rawRequired(pr *x402.PaymentRequired) map[string]any {
	acc := make([]json.RawMessage, len(pr.Accepts))
	for i, r := range pr.Accepts {
		if len(r.Raw) > 0 {
			acc[i] = r.Raw
		} else {
			acc[i], _ = json.Marshal(r)
		}
	}
	m := map[string]any{"x402Version": pr.X402Version, "accepts": acc, "error": pr.Error}
	if len(pr.Resource) > 0 {
		m["resource"] = pr.Resource
	}
	if len(pr.Extensions) > 0 {
		m["extensions"] = pr.Extensions
	}
	return m
}

func (rs *resourceServer) serve(w http.ResponseWriter, r *http.Request) {
	pr := rs.required()
	header := x402.HeaderPaymentSignature
	if pr.X402Version == 1 {
		header = x402.HeaderXPayment
	}
	h := r.Header.Get(header)
	if h == "" {
		rs.unpaid.Add(1)
		rs.send402(w, pr)
		return
	}
	p, err := x402.DecodePaymentPayload(h)
	if err != nil || p.X402Version != pr.X402Version {
		http.Error(w, "bad payment", 400)
		return
	}
	offers, _ := x402.Offers(pr, 1337)
	if len(offers) == 0 {
		http.Error(w, "no offer", 500)
		return
	}
	st, err := rs.f.fac.settle(p, &offers[0])
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	enc, _ := x402.EncodeJSON(st)
	if pr.X402Version == 1 {
		w.Header().Set(x402.HeaderXPaymentResponse, enc)
	} else {
		w.Header().Set(x402.HeaderPaymentResponse, enc)
	}
	if !st.Success {
		rs.send402(w, pr)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Write([]byte("the paid answer: 42"))
}

// checkPaid asserts a fetch answer paid price to the resource: the body
// came back, the token moved on chain, the receipt is recorded.
func (f *x402Fixture) checkPaid(r resp, price int64, before *big.Int) {
	f.t.Helper()
	if r.body["status"] != float64(200) || r.body["body"] != "the paid answer: 42" || r.body["body_encoding"] != "text" {
		f.t.Fatalf("answer: %s", r.raw)
	}
	pay, _ := r.body["payment"].(map[string]any)
	if pay == nil || pay["status"] != "settled" || pay["amount"] != fmt.Sprint(price) {
		f.t.Fatalf("payment: %s", r.raw)
	}
	st, _ := pay["settlement"].(map[string]any)
	txHash, _ := pay["settlement_tx"].(string)
	if st == nil || st["success"] != true || len(txHash) != 66 {
		f.t.Fatalf("settlement: %s", r.raw)
	}
	if got := f.balance(f.res.payTo); got.Cmp(new(big.Int).Add(before, big.NewInt(price))) != 0 {
		f.t.Fatalf("payTo holds %s, want %s + %d", got, before, price)
	}
	rc := f.e.do("GET", "/api/charge_receipts?reason=x402", bearer(f.u.token), nil).must(f.t, 200)
	found := false
	for _, x := range rc.body["receipts"].([]any) {
		m := x.(map[string]any)
		if m["transaction_id"] == r.str("transaction_id") {
			found = true
			if m["amount"] != fmt.Sprint(price) || m["asset"] != strings.ToLower(f.token.Hex()) || m["tx_hash"] != strings.ToLower(txHash) || m["agent_id"] != f.agentID {
				f.t.Errorf("receipt %v", m)
			}
		}
	}
	if !found {
		f.t.Fatalf("no x402 receipt for %s: %s", r.str("transaction_id"), rc.raw)
	}
}

func TestX402_PaysV2AndV1WithinBudget(t *testing.T) {
	f := newX402Fixture(t)
	f.autoWithin("10000")
	for _, v1 := range []bool{false, true} {
		f.res.v1.Store(v1)
		before := f.balance(f.res.payTo)
		r := f.fetch(map[string]any{"url": f.res.srv.URL + "/paid", "max_amount": "5000"}).must(t, 200)
		f.checkPaid(r, 2500, before)
		tx := f.e.do("GET", "/api/transaction_status?transaction_id="+r.str("transaction_id"), apiKey(f.key), nil).must(t, 200)
		if tx.str("status") != "signed" || tx.str("type") != "x402" || tx.str("rule_id") != "x402-budget" || tx.str("decision") != "auto" {
			t.Fatalf("v1=%v: the request row: %s", v1, tx.raw)
		}
	}
	if n := f.fac.payments(); n != 2 {
		t.Fatalf("facilitator saw %d payments, want 2", n)
	}
	// a free resource is fetched without paying anything
	free := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte{0xff, 0x00, 0x01}) }))
	defer free.Close()
	r := f.fetch(map[string]any{"url": free.URL}).must(t, 200)
	if r.body["payment"] != nil || r.body["body_encoding"] != "base64" || r.body["body"] != "/wAB" {
		t.Fatalf("free resource: %s", r.raw)
	}
}

// An agent's max_amount caps what it pays: a price above it is refused
// before anything is built, signed or recorded.
func TestMoney_X402OverMaxAmountRefusedWithoutSigning(t *testing.T) {
	f := newX402Fixture(t)
	f.autoWithin("100000")
	f.fetch(map[string]any{"url": f.res.srv.URL + "/paid", "max_amount": "2499"}).refused(t, 422, "PAYMENT_REFUSED")
	// without max_amount nothing is paid either
	f.fetch(map[string]any{"url": f.res.srv.URL + "/paid"}).refused(t, 422, "PAYMENT_REFUSED")
	if n := f.fac.payments(); n != 0 {
		t.Fatalf("the facilitator saw %d payments", n)
	}
	if rows := f.x402Rows(); len(rows) != 0 {
		t.Fatalf("x402 requests (nonces) recorded: %v", rows)
	}
	if got := f.balance(f.res.payTo); got.Sign() != 0 {
		t.Fatalf("payTo got %s", got)
	}
}

// Over the policy's budget the policy denies: nothing is signed, no nonce
// is recorded, the deciding rule is named.
func TestMoney_X402OverBudgetRefusedWithoutSigning(t *testing.T) {
	f := newX402Fixture(t)
	f.autoWithin("4000")
	before := f.balance(f.res.payTo)
	f.checkPaid(f.fetch(map[string]any{"url": f.res.srv.URL + "/paid", "max_amount": "5000"}).must(t, 200), 2500, before)
	// the second 2500 would make 5000 > 4000
	r := f.fetch(map[string]any{"url": f.res.srv.URL + "/paid", "max_amount": "5000"}).refused(t, 403, "POLICY_DENIED")
	if !strings.Contains(r.raw, "x402-budget") {
		t.Fatalf("the deciding rule is not named: %s", r.raw)
	}
	if n := f.fac.payments(); n != 1 {
		t.Fatalf("the facilitator saw %d payments, want 1", n)
	}
	if rows := f.x402Rows(); len(rows) != 1 {
		t.Fatalf("%d x402 requests recorded, want the first only", len(rows))
	}
}

// The policy's human path: the call waits, the human authorizes, it pays.
func TestX402_HumanApprovesWhileTheCallWaits(t *testing.T) {
	f := newX402Fixture(t, func(c *Config) { c.ApprovalWait = 30 * time.Second })
	done := make(chan resp, 1)
	before := f.balance(f.res.payTo)
	go func() {
		done <- f.e.do("POST", "/api/x402/fetch", apiKey(f.key), map[string]any{"url": f.res.srv.URL + "/paid", "max_amount": "2500"})
	}()
	var id string
	for deadline := time.Now().Add(20 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		for _, row := range f.x402Rows() {
			if row["status"] == "pending" {
				id = row["transaction_id"].(string)
				if row["to_address"] != f.res.payTo.Hex() || row["amount"] != "2500" || row["token_address"] != f.token.Hex() {
					t.Errorf("the human sees %v", row)
				}
			}
		}
	}
	if id == "" {
		t.Fatal("no pending x402 request appeared")
	}
	if n := f.fac.payments(); n != 0 {
		t.Fatalf("paid before the human decided: %d", n)
	}
	// the approver reads a payment of the token to the payee, not a
	// transaction with a missing fee bound or a failing simulation
	st := f.e.do("GET", "/api/transaction_status?transaction_id="+id, bearer(f.u.token), nil).must(t, 200)
	rv, _ := st.body["review"].(map[string]any)
	if rv == nil || !strings.HasPrefix(fmt.Sprint(rv["summary"]), "Pay ") || !strings.Contains(fmt.Sprint(rv["summary"]), f.res.payTo.Hex()) {
		t.Fatalf("the approver's review of the payment: %s", st.raw)
	}
	for _, bad := range []string{"no_fee_bound", "simulation_fails"} {
		if strings.Contains(st.raw, bad) {
			t.Fatalf("the review of an x402 payment warns %s: %s", bad, st.raw)
		}
	}
	pendingUntil := st.str("expires_at")
	f.e.do("POST", "/api/authorize_transaction", bearer(f.u.token), map[string]string{"transaction_id": id, "mfa_code": f.e.code(f.u)}).must(t, 200)
	r := <-done
	r.must(t, 200)
	f.checkPaid(r, 2500, before)
	// once approved its deadline is never later than the one its authorization's validBefore set
	if after := f.e.do("GET", "/api/transaction_status?transaction_id="+id, bearer(f.u.token), nil).must(t, 200).str("expires_at"); after > pendingUntil {
		t.Fatalf("expires_at moved from %s to %s after the approval", pendingUntil, after)
	}
	// an x402 request is never executed as a transaction
	f.e.do("POST", "/api/execute_transaction", apiKey(f.key), map[string]string{"transaction_id": id}).refused(t, 400, "BAD_REQUEST")
}

// A pending payment answers 202 with its transaction id; once approved, the
// agent calls again with it. If the resource now asks more than it quoted,
// nothing is signed.
func TestSecurity_X402RaisedPriceOnRetryRefused(t *testing.T) {
	f := newX402Fixture(t, func(c *Config) { c.ApprovalWait = 200 * time.Millisecond })
	url := f.res.srv.URL + "/paid"
	r := f.fetch(map[string]any{"url": url, "max_amount": "100000"}).must(t, 202)
	id := r.str("transaction_id")
	if r.str("status") != "pending" || id == "" {
		t.Fatalf("pending answer: %s", r.raw)
	}
	f.e.do("POST", "/api/authorize_transaction", bearer(f.u.token), map[string]string{"transaction_id": id, "mfa_code": f.e.code(f.u)}).must(t, 200)
	f.res.price.Store(9000) // the retry asks more than the quote
	f.fetch(map[string]any{"url": url, "max_amount": "100000", "transaction_id": id}).refused(t, 422, "PAYMENT_REFUSED")
	if n := f.fac.payments(); n != 0 {
		t.Fatalf("the facilitator saw %d payments after a raised price", n)
	}
	tx := f.e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(f.key), nil).must(t, 200)
	if tx.str("status") != "authorized" || tx.body["signature"] != nil {
		t.Fatalf("the approved request was signed: %s", tx.raw)
	}
	// another URL (or method) cannot spend the approval
	f.res.price.Store(2500)
	f.fetch(map[string]any{"url": url + "?other", "max_amount": "100000", "transaction_id": id}).refused(t, 400, "BAD_REQUEST")
	f.fetch(map[string]any{"url": url, "method": "POST", "max_amount": "100000", "transaction_id": id}).refused(t, 400, "BAD_REQUEST")
	// at the quoted price it pays, once
	before := f.balance(f.res.payTo)
	f.checkPaid(f.fetch(map[string]any{"url": url, "max_amount": "100000", "transaction_id": id}).must(t, 200), 2500, before)
	f.fetch(map[string]any{"url": url, "max_amount": "100000", "transaction_id": id}).refused(t, 409, "CONFLICT")
	if n := f.fac.payments(); n != 1 {
		t.Fatalf("facilitator saw %d payments, want 1", n)
	}
}

// What countersign never signs: another chain, another scheme, a Permit2
// payment with a gas-sponsoring approval, an over-long validity is cut;
// garbage headers are a clear 502; internal addresses need X402_ALLOW_NETS.
func TestSecurity_X402RefusalsSignNothing(t *testing.T) {
	f := newX402Fixture(t)
	f.autoWithin("1000000")
	url := f.res.srv.URL + "/paid"
	cases := map[string]struct {
		mutate func(*x402.PaymentRequired)
		status int
		code   string
	}{
		"fail/another chain":  {func(pr *x402.PaymentRequired) { setReq(pr, "network", "eip155:8453") }, 422, "PAYMENT_REFUSED"},
		"fail/another scheme": {func(pr *x402.PaymentRequired) { setReq(pr, "scheme", "upto") }, 422, "PAYMENT_REFUSED"},
		"fail/solana":         {func(pr *x402.PaymentRequired) { setReq(pr, "network", "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp") }, 422, "PAYMENT_REFUSED"},
		"fail/permit2 with gas sponsoring approval": {func(pr *x402.PaymentRequired) {
			setReq(pr, "extra", map[string]string{"name": "USD Coin", "version": "2", "assetTransferMethod": "permit2"})
			pr.Extensions = map[string]json.RawMessage{"erc20ApprovalGasSponsoring": json.RawMessage(`{"info":{"amount":"115792089237316195423570985008687907853269984665640564039457584007913129639935"}}`)}
		}, 422, "PAYMENT_REFUSED"},
		"fail/no token domain": {func(pr *x402.PaymentRequired) { setReq(pr, "extra", map[string]string{}) }, 422, "PAYMENT_REFUSED"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			f.res.mutate.Store(c.mutate)
			f.fetch(map[string]any{"url": url, "max_amount": "1000000"}).refused(t, c.status, c.code)
		})
	}
	f.res.mutate.Store(func(*x402.PaymentRequired) {})
	// garbage from the resource: a clear error, nothing signed
	for name, h := range map[string]http.HandlerFunc{
		"bad base64": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("PAYMENT-REQUIRED", "%%%not base64")
			w.WriteHeader(402)
		},
		"bad json": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("PAYMENT-REQUIRED", "eyJ4NDAyVmVyc2lvbiI6")
			w.WriteHeader(402)
		},
		"no accepts": func(w http.ResponseWriter, r *http.Request) {
			h, _ := x402.EncodeJSON(map[string]any{"x402Version": 2, "accepts": []any{}})
			w.Header().Set("PAYMENT-REQUIRED", h)
			w.WriteHeader(402)
		},
		"plain 402": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(402); w.Write([]byte("pay me")) },
	} {
		srv := httptest.NewServer(h)
		r := f.fetch(map[string]any{"url": srv.URL, "max_amount": "1000000"}).refused(t, 502, "UPSTREAM_ERROR")
		if strings.Contains(r.raw, "%%%") || strings.Contains(r.raw, "pay me") {
			t.Errorf("%s: the error echoes the resource's bytes: %s", name, r.raw)
		}
		srv.Close()
	}
	if n := f.fac.payments(); n != 0 {
		t.Fatalf("the facilitator saw %d payments", n)
	}
	if rows := f.x402Rows(); len(rows) != 0 {
		t.Fatalf("x402 requests recorded: %v", rows)
	}
	// payment headers are countersign's to write
	f.fetch(map[string]any{"url": url, "max_amount": "1", "headers": map[string]string{"X-PAYMENT": "x"}}).refused(t, 400, "BAD_REQUEST")
	f.fetch(map[string]any{"url": url, "method": "TRACE"}).refused(t, 400, "BAD_REQUEST")
	f.fetch(map[string]any{"url": "file:///etc/passwd"}).refused(t, 400, "BAD_REQUEST")
}

// SSRF: without X402_ALLOW_NETS a fetch of loopback (or the metadata
// address) is refused before any connection.
func TestSecurity_X402FetchSSRFGuard(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	wallet := e.createWallet(u)
	_, key := e.createAgent(u, wallet)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	for _, u := range []string{srv.URL, "http://169.254.169.254/latest/meta-data/", "http://[::1]:1/", "http://2130706433/"} {
		e.do("POST", "/api/x402/fetch", apiKey(key), map[string]any{"url": u}).refused(t, 400, "BAD_REQUEST")
	}
	if hits.Load() != 0 {
		t.Fatalf("the guarded fetch reached loopback %d times", hits.Load())
	}
	// a user is not an agent
	e.do("POST", "/api/x402/fetch", bearer(u.token), map[string]any{"url": srv.URL}).refused(t, 403, "FORBIDDEN")
}

// setReq sets one field of every requirement (re-marshalling Raw).
func setReq(pr *x402.PaymentRequired, field string, v any) {
	for i := range pr.Accepts {
		var m map[string]any
		_ = json.Unmarshal(pr.Accepts[i].Raw, &m)
		m[field] = v
		pr.Accepts[i].Raw, _ = json.Marshal(m)
	}
}

// x402's MCP transport: a paid MCP server (the x402 v2 MCP spec) whose tool
// answers isError with a PaymentRequired until it is called with
// _meta["x402/payment"]; the agent calls it through x402_mcp_call.
func TestX402_MCPToolPaid(t *testing.T) {
	f := newX402Fixture(t)
	f.autoWithin("10000")
	var calls atomic.Int64
	paid := sdk.NewServer(&sdk.Implementation{Name: "paid", Version: "1"}, nil)
	sdk.AddTool(paid, &sdk.Tool{Name: "analysis", Description: "a paid tool"}, func(ctx context.Context, req *sdk.CallToolRequest, in struct {
		Ticker string `json:"ticker"`
	}) (*sdk.CallToolResult, any, error) {
		calls.Add(1)
		pr := f.res.required()
		raw := rawRequired(pr)
		pm, ok := req.Params.Meta[x402.MetaPayment]
		if !ok {
			b, _ := json.Marshal(raw)
			return &sdk.CallToolResult{IsError: true, StructuredContent: raw, Content: []sdk.Content{&sdk.TextContent{Text: string(b)}}}, nil, nil
		}
		b, _ := json.Marshal(pm)
		p, err := x402.ParsePaymentPayload(b)
		if err != nil {
			return nil, nil, err
		}
		offers, _ := x402.Offers(pr, 1337)
		st, err := f.fac.settle(p, &offers[0])
		if err != nil || !st.Success {
			return nil, nil, fmt.Errorf("settle: %v %v", st, err)
		}
		return &sdk.CallToolResult{Meta: sdk.Meta{x402.MetaPaymentResponse: st}, Content: []sdk.Content{&sdk.TextContent{Text: "analysis of " + in.Ticker + ": buy"}}}, nil, nil
	})
	srv := httptest.NewServer(sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return paid }, &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true}))
	defer srv.Close()
	s, err := mcpConnect(t, f.e.url, f.key)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	before := f.balance(f.res.payTo)
	// over max_amount: refused, nothing paid
	_, res := callTool(t, s, "x402_mcp_call", map[string]any{"server_url": srv.URL, "tool": "analysis", "arguments": map[string]any{"ticker": "AAPL"}, "max_amount": "10"})
	if !res.IsError || !strings.Contains(toolText(res), "PAYMENT_REFUSED") {
		t.Fatalf("over max_amount: %s", toolText(res))
	}
	out, res := callTool(t, s, "x402_mcp_call", map[string]any{"server_url": srv.URL, "tool": "analysis", "arguments": map[string]any{"ticker": "AAPL"}, "max_amount": "2500"})
	if res.IsError {
		t.Fatalf("x402_mcp_call: %s", toolText(res))
	}
	result, _ := out["result"].(map[string]any)
	content, _ := result["content"].([]any)
	if len(content) != 1 || content[0].(map[string]any)["text"] != "analysis of AAPL: buy" {
		t.Fatalf("the paid tool's result: %s", toolText(res))
	}
	pay, _ := out["payment"].(map[string]any)
	if pay == nil || pay["status"] != "settled" || pay["amount"] != "2500" {
		t.Fatalf("payment: %s", toolText(res))
	}
	if got := f.balance(f.res.payTo); got.Cmp(new(big.Int).Add(before, big.NewInt(2500))) != 0 {
		t.Fatalf("payTo holds %s", got)
	}
	if f.fac.payments() != 1 {
		t.Fatalf("facilitator saw %d payments", f.fac.payments())
	}
	rc := f.e.do("GET", "/api/charge_receipts?reason=x402", apiKey(f.key), nil).must(t, 200)
	if n := len(rc.body["receipts"].([]any)); n != 1 {
		t.Fatalf("%d x402 receipts: %s", n, rc.raw)
	}
	// x402_fetch is the same as POST /api/x402/fetch
	out, res = callTool(t, s, "x402_fetch", map[string]any{"url": f.res.srv.URL + "/paid", "max_amount": "2500"})
	if res.IsError || out["body"] != "the paid answer: 42" {
		t.Fatalf("x402_fetch: %s", toolText(res))
	}
}
