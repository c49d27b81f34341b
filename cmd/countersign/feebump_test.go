package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
)

// The fee-bump tests run on a real geth --dev node. geth's miner only
// includes transactions whose tip reaches its --miner.gasprice (default
// 0.001 gwei; startGethMinTip sets it, as --dev lowers it to 1 wei) while
// its pool takes any tip from 1 wei: a transaction
// signed while tipProxy makes eth_maxPriorityFeePerGas answer 1 wei sits
// in the pool unmined, as a transaction sent with too low a fee does on a
// busy chain. The approval itself is bound at the node's real suggestion.

// startGethMinTip is startGeth (geth_test.go) with --miner.gasprice set:
// geth --dev otherwise lowers the miner's minimum tip to 1 wei and mines
// anything. The node's tip suggestion defaults to the same value, so the
// fixture's own transactions are mined as usual.
func startGethMinTip(t *testing.T, minTip string) string {
	bin := gethBinary(t)
	port := freePort(t)
	cmd := exec.Command(bin, "--dev", "--datadir", t.TempDir(), "--http", "--http.addr", "127.0.0.1",
		"--http.port", strconv.Itoa(port), "--http.api", "eth,net,web3,txpool", "--port", "0", "--maxpeers", "0",
		"--nodiscover", "--ipcdisable", "--authrpc.port", "0", "--verbosity", "2", "--miner.gasprice", minTip)
	logf, err := os.Create(filepath.Join(t.TempDir(), "geth.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		logf.Close()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := ethclient.Dial(url)
		if err == nil {
			_, err = c.ChainID(context.Background())
			c.Close()
			if err == nil {
				return url
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("geth did not start: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tipProxy forwards JSON-RPC to geth and, while low is set, answers the
// tip suggestion with 1 wei.
type tipProxy struct {
	next string
	low  atomic.Bool
}

func (p *tipProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal(body, &req) == nil && req.Method == "eth_maxPriorityFeePerGas" && p.low.Load() {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": req.ID, "result": "0x1"})
		return
	}
	out, err := http.Post(p.next, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer out.Body.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(out.StatusCode)
	_, _ = io.Copy(w, out.Body)
}

// feeBumpEnv is a server on geth behind a tipProxy, with one user (MFA),
// one funded wallet and its agent.
type feeBumpEnv struct {
	*env
	proxy  *tipProxy
	geth   *ethclient.Client // straight to the node
	fx     fixture
	u      *user
	wallet string
	agent  cred
}

func newFeeBumpEnv(t *testing.T, gethURL string, fx fixture, opts ...envOption) *feeBumpEnv {
	p := &tipProxy{next: gethURL}
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	e := newEnv(t, append([]envOption{func(c *Config) { c.ChainURL = srv.URL }}, opts...)...)
	u := e.newUser(true)
	wallet := e.createWallet(u)
	fx.fund(t, wallet, ether(10))
	_, key := e.createAgent(u, wallet)
	ec, err := ethclient.Dial(gethURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ec.Close)
	return &feeBumpEnv{env: e, proxy: p, geth: ec, fx: fx, u: u, wallet: wallet, agent: apiKey(key)}
}

// approvedPayment prepares and approves a payment at the node's real fees.
func (e *feeBumpEnv) approvedPayment(to string, wei int64) string {
	e.t.Helper()
	id := e.do("POST", "/api/prepare_transaction", e.agent, map[string]any{"type": "native", "to_address": to, "amount": big.NewInt(wei).String()}).must(e.t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(e.u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(e.u)}).must(e.t, 200)
	return id
}

// executeLowTip executes id while the node suggests a 1 wei tip: the
// signed transaction enters geth's pool and is not mined.
func (e *feeBumpEnv) executeLowTip(id string) string {
	e.t.Helper()
	e.proxy.low.Store(true)
	hash := e.do("POST", "/api/execute_transaction", e.agent, map[string]string{"transaction_id": id}).must(e.t, 201).str("tx_hash")
	e.proxy.low.Store(false)
	return hash
}

// stillUnmined checks, for a few seconds, that the node has not mined id.
func (e *feeBumpEnv) stillUnmined(id, hash string) {
	e.t.Helper()
	time.Sleep(2 * time.Second) // several tracker passes and dev-mode block triggers
	if _, err := e.geth.TransactionReceipt(context.Background(), common.HexToHash(hash)); err == nil {
		e.t.Fatalf("geth mined the 1-wei-tip transaction %s: the test cannot show a replacement", hash)
	}
	if st := e.do("GET", "/api/transaction_status?transaction_id="+id, e.agent, nil).must(e.t, 200).str("status"); st != "submitted" {
		e.t.Fatalf("status %s before any replacement", st)
	}
}

func (e *feeBumpEnv) auditActions() map[string]int {
	e.t.Helper()
	r := e.do("GET", "/api/audit?limit=1000", bearer(e.u.token), nil).must(e.t, 200)
	out := map[string]int{}
	entries, _ := r.body["entries"].([]any)
	for _, x := range entries {
		if m, ok := x.(map[string]any); ok {
			a, _ := m["action"].(string)
			out[a]++
		}
	}
	return out
}

// A transaction sent with a fee the node will not mine is replaced after
// REPLACE_AFTER with bumped fees within its approval, and the replacement
// is confirmed; the payment is made once.
func TestMoney_GethUnminedTransactionIsReplacedAndConfirmed(t *testing.T) {
	url := startGethMinTip(t, "1000000")
	fx := gethFixture(t, url)
	e := newFeeBumpEnv(t, url, fx, func(c *Config) { c.Money.ReplaceAfter = time.Minute })
	to := randomAddress()
	id := e.approvedPayment(to, 1_000_000)
	first := e.executeLowTip(id)
	e.stillUnmined(id, first)
	e.clock.Advance(time.Minute) // REPLACE_AFTER passes on the server's clock
	done := e.waitStatus(e.agent, id, "confirmed")
	final := done.str("tx_hash")
	if final == first || final == "" {
		t.Fatalf("confirmed as %q; the first attempt was %s", final, first)
	}
	ctx := context.Background()
	tx, _, err := e.geth.TransactionByHash(ctx, common.HexToHash(final))
	if err != nil {
		t.Fatal(err)
	}
	old, _, err := e.geth.TransactionByHash(ctx, common.HexToHash(first))
	if err == nil {
		t.Fatalf("the replaced transaction is still known to the node: %s", old.Hash())
	}
	bound, _ := new(big.Int).SetString(done.str("max_fee_per_gas"), 10)
	if bound == nil || tx.GasFeeCap().Cmp(bound) > 0 || tx.GasTipCap().Cmp(big.NewInt(1)) <= 0 || tx.Value().Int64() != 1_000_000 {
		t.Fatalf("replacement cap %s (approved %s), tip %s, value %s", tx.GasFeeCap(), done.str("max_fee_per_gas"), tx.GasTipCap(), tx.Value())
	}
	if b, err := e.geth.BalanceAt(ctx, common.HexToAddress(to), nil); err != nil || b.Int64() != 1_000_000 {
		t.Fatalf("recipient holds %v (%v): paid once", b, err)
	}
	if a := e.auditActions(); a["transaction.replace"] < 1 {
		t.Fatalf("the replacement is not audited: %v", a)
	}
}

// The escape hatch: cancel_onchain (approver, TOTP) replaces a stuck
// transaction with a zero-value self-transfer at the same nonce; geth
// mines it, the transaction ends cancelled without paying, and the
// wallet's next transaction confirms.
func TestMoney_GethCancelOnchainFreesAStuckNonce(t *testing.T) {
	url := startGethMinTip(t, "1000000")
	fx := gethFixture(t, url)
	e := newFeeBumpEnv(t, url, fx, func(c *Config) { c.Money.ReplaceAfter = -1 }) // REPLACE_AFTER=0: only the human frees it
	to := randomAddress()
	id := e.approvedPayment(to, 1_000_000)
	first := e.executeLowTip(id)
	e.stillUnmined(id, first)
	// a stranger, an agent, a wrong code: refused, nothing signed
	stranger := e.newUser(true)
	path := "/api/transactions/" + id + "/cancel_onchain"
	e.do("POST", path, bearer(stranger.token), map[string]string{"mfa_code": e.code(stranger)}).refused(t, 404, "NOT_FOUND")
	e.do("POST", path, e.agent, map[string]string{"mfa_code": "123456"}).refused(t, 403, "FORBIDDEN")
	e.do("POST", path, bearer(e.u.token), map[string]string{"mfa_code": "000000"}).refused(t, 403, "MFA_INVALID")
	if st := e.do("GET", "/api/transaction_status?transaction_id="+id, e.agent, nil).must(t, 200); st.str("tx_hash") != first {
		t.Fatalf("a refused cancel changed the transaction: %s", st.raw)
	}
	r := e.do("POST", path, bearer(e.u.token), map[string]string{"mfa_code": e.code(e.u)}).must(t, 200)
	cancel := r.str("cancel_tx_hash")
	if cancel == "" || cancel == first || r.str("max_fee") == "" || r.str("max_fee_per_gas") == "" {
		t.Fatalf("cancel_onchain: %s", r.raw)
	}
	done := e.waitStatus(e.agent, id, "cancelled")
	if done.str("tx_hash") != cancel || !strings.Contains(done.str("error"), "cancelled on chain") {
		t.Fatalf("cancelled as %s", done.raw)
	}
	ctx := context.Background()
	tx, _, err := e.geth.TransactionByHash(ctx, common.HexToHash(cancel))
	if err != nil {
		t.Fatal(err)
	}
	from, _ := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if tx.Value().Sign() != 0 || tx.To() == nil || *tx.To() != from || from != common.HexToAddress(e.wallet) {
		t.Fatalf("the cancel is not a zero-value self-transfer: to %v value %s from %s", tx.To(), tx.Value(), from)
	}
	if b, _ := e.geth.BalanceAt(ctx, common.HexToAddress(to), nil); b.Sign() != 0 {
		t.Fatalf("the cancelled payment was paid: %s", b)
	}
	if a := e.auditActions(); a["transaction.cancel_onchain"] != 1 || a["transaction.cancelled_onchain"] != 1 {
		t.Fatalf("audit: %v", a)
	}
	// the nonce is free: the next transaction from the wallet confirms
	next := e.approvedPayment(randomAddress(), 1)
	e.do("POST", "/api/execute_transaction", e.agent, map[string]string{"transaction_id": next}).must(t, 201)
	e.waitStatus(e.agent, next, "confirmed")
	e.do("POST", "/api/transactions/"+next+"/cancel_onchain", bearer(e.u.token), map[string]string{"mfa_code": e.code(e.u)}).refused(t, 409, "CONFLICT")
}
