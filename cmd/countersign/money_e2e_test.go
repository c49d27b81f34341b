package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign/chain/sim"
)

// TestMoney_ExecuteAnswersOverHTTP runs the real wiring against the dev
// chain as an external node (EVM_RPC_URL), behind a proxy that can refuse
// broadcasts: the API shows the fee an approval binds, a refused broadcast
// fails the transaction, and executing it again answers 409 with its
// status and reason, never 201 with a hash of bytes nobody took.
func TestMoney_ExecuteAnswersOverHTTP(t *testing.T) {
	ctx := context.Background()
	dev, err := sim.Start(ctx, []byte("money e2e"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	var refuse atomic.Bool
	node := dev.Handler()
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if json.Unmarshal(body, &req) == nil && req.Method == "eth_sendRawTransaction" && refuse.Load() {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "error": map[string]any{"code": -32000, "message": "intrinsic gas too low"}})
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		node.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close)

	e := newEnv(t, func(c *Config) { c.ChainURL = proxy.URL })
	u := e.newUser(true)
	wallet := e.createWallet(u)
	if _, err := dev.Fund(ctx, common.HexToAddress(wallet), ether(10)); err != nil {
		t.Fatal(err)
	}
	_, key := e.createAgent(u, wallet)
	agent := apiKey(key)
	prepare := func() string {
		return e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": randomAddress(), "amount": ether(1).String()}).must(t, 202).str("transaction_id")
	}

	id := prepare()
	st := e.do("GET", "/api/transaction_status?transaction_id="+id, agent, nil).must(t, 200)
	perGas, maxFee := mustBig(t, st.str("max_fee_per_gas")), mustBig(t, st.str("max_fee"))
	if gas, _ := st.body["gas_limit"].(float64); gas != 25200 || new(big.Int).Mul(perGas, big.NewInt(25200)).Cmp(maxFee) != 0 {
		t.Fatalf("the status does not show the bound fee: %s", st.raw)
	}
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	refuse.Store(true)
	e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).refused(t, 502, "CHAIN_ERROR")
	refuse.Store(false)
	r := e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).refused(t, 409, "CONFLICT")
	if !strings.Contains(r.raw, "failed") || !strings.Contains(r.raw, "intrinsic gas") || strings.Contains(r.raw, "tx_hash") {
		t.Fatalf("re-execute of a failed transaction: %s", r.raw)
	}
	if s := e.do("GET", "/api/transaction_status?transaction_id="+id, agent, nil).must(t, 200).str("status"); s != "failed" {
		t.Fatalf("status %s", s)
	}

	// the refused nonce was handed back: the next approval takes it and is mined
	id = prepare()
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(t, 201)
	if n := e.waitStatus(agent, id, "confirmed").body["nonce"]; n != float64(0) {
		t.Fatalf("nonce %v after a refused broadcast, want 0", n)
	}
}
