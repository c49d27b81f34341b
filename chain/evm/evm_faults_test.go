package evm_test

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/chain/evm"
)

// fastRetry keeps the retry tests quick: the same policy shape as the
// default, with millisecond backoffs.
var fastRetry = evm.WithRetry(evm.RetryPolicy{Attempts: 4, Base: time.Millisecond, Max: 5 * time.Millisecond, Total: 5 * time.Second})

// faultNode is a JSON-RPC node over HTTP whose answer to each method the
// test scripts: fail(method, n) is called with the method and how many
// requests for it came before, and either writes a failure (returning
// true) or lets the node answer result.
type faultNode struct {
	srv    *httptest.Server
	mu     sync.Mutex
	calls  map[string]int
	result map[string]string // method → JSON result
	fail   func(w http.ResponseWriter, r *http.Request, method string, n int) bool
}

func newFaultNode(t *testing.T, fail func(w http.ResponseWriter, r *http.Request, method string, n int) bool) *faultNode {
	t.Helper()
	f := &faultNode{calls: map[string]int{}, fail: fail, result: map[string]string{
		"eth_chainId": `"0x539"`, "eth_blockNumber": `"0x10"`, "eth_getBalance": `"0x2a"`, "eth_getTransactionCount": `"0x7"`,
		"eth_maxPriorityFeePerGas": `"0x3b9aca00"`, "eth_sendRawTransaction": `"0x` + strings.Repeat("ab", 32) + `"`,
	}}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, "bad request", 400)
			return
		}
		f.mu.Lock()
		n := f.calls[req.Method]
		f.calls[req.Method]++
		f.mu.Unlock()
		r.Header.Set("X-Test-Rpc-Id", string(req.ID)) // for rpcError's answer
		if f.fail != nil && f.fail(w, r, req.Method, n) {
			return
		}
		res, ok := f.result[req.Method]
		w.Header().Set("Content-Type", "application/json")
		if !ok {
			w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"error":{"code":-32601,"message":"no such method"}}`))
			return
		}
		w.Write([]byte(`{"jsonrpc":"2.0","id":` + string(req.ID) + `,"result":` + res + `}`))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faultNode) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func rpcError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Write([]byte(`{"jsonrpc":"2.0","id":` + r.Header.Get("X-Test-Rpc-Id") + `,"error":{"code":` + big.NewInt(int64(code)).String() + `,"message":` + mustJSON(msg) + `}}`))
}

func mustJSON(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// dropConnection closes the TCP connection without an answer: what a
// node that crashes mid-request, or a proxy that loses it, does.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

// Reads that fail with a transport error or a 5xx are retried until the
// node answers, within the policy's attempts; past them the read is a
// ChainError naming the node and what failed. A JSON-RPC error (the
// node's answer) is not retried.
func TestChainFault_ReadsRetriedUntilTheNodeAnswers(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct {
		failures   int // requests that fail before the node answers
		failure    func(w http.ResponseWriter, r *http.Request)
		wantOK     bool
		wantCalls  int
		wantDetail string
		wantDown   bool // the failure is the node's absence (ErrUnavailable), not its answer
	}{
		"ok/503 three times": {failures: 3, failure: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "busy", http.StatusServiceUnavailable) },
			wantOK: true, wantCalls: 4},
		"ok/connection dropped twice": {failures: 2, failure: func(w http.ResponseWriter, r *http.Request) { dropConnection(w) },
			wantOK: true, wantCalls: 3},
		"ok/429 once": {failures: 1, failure: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "slow down", http.StatusTooManyRequests) },
			wantOK: true, wantCalls: 2},
		"fail/502 past the attempts": {failures: 100, failure: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "bad gateway", http.StatusBadGateway) },
			wantCalls: 4, wantDetail: "cannot read balance: the chain node %s answered HTTP 502", wantDown: true},
		"fail/connection dropped past the attempts": {failures: 100, failure: func(w http.ResponseWriter, r *http.Request) { dropConnection(w) },
			wantCalls: 4, wantDetail: "cannot read balance: the chain node %s is unreachable", wantDown: true},
		"fail/JSON-RPC error is an answer": {failures: 100, failure: func(w http.ResponseWriter, r *http.Request) { rpcError(w, r, -32000, "header not found") },
			wantCalls: 1, wantDetail: "cannot read balance: the chain node %s answered JSON-RPC error -32000"},
		"fail/401 is an answer": {failures: 100, failure: func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no key", http.StatusUnauthorized) },
			wantCalls: 1, wantDetail: "cannot read balance: the chain node %s answered HTTP 401"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			node := newFaultNode(t, func(w http.ResponseWriter, r *http.Request, method string, n int) bool {
				if method == "eth_getBalance" && n < tt.failures {
					tt.failure(w, r)
					return true
				}
				return false
			})
			c, closeFn, err := evm.Dial(ctx, node.srv.URL, fastRetry)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			b, err := c.BalanceAt(ctx, dead.Hex())
			if got := node.count("eth_getBalance"); got != tt.wantCalls {
				t.Errorf("%d requests, want %d", got, tt.wantCalls)
			}
			if tt.wantOK {
				if err != nil || b.Int64() != 42 {
					t.Fatalf("balance %v %v, want 42 once the node answers", b, err)
				}
				return
			}
			want := strings.Replace(tt.wantDetail, "%s", node.srv.URL, 1)
			if countersign.ErrorCode(err) != countersign.ChainError || countersign.ErrorDetail(err) != want {
				t.Fatalf("error %v (detail %q), want CHAIN_ERROR %q", err, countersign.ErrorDetail(err), want)
			}
			if down := errors.Is(err, countersign.ErrUnavailable); down != tt.wantDown {
				t.Fatalf("unavailable %v, want %v: %v", down, tt.wantDown, err)
			}
		})
	}
}

// A node that never answers: every call ends after the timeout, a read
// after its retries within the policy's total, and never later than the
// caller's context; the detail says the node did not answer in time.
func TestChainFault_HangingNodeTimesOut(t *testing.T) {
	release := make(chan struct{})
	node := newFaultNode(t, func(w http.ResponseWriter, r *http.Request, method string, n int) bool {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	})
	defer close(release) // before the server's Close, which waits for handlers
	ctx := context.Background()
	c, closeFn, err := evm.Dial(ctx, node.srv.URL, evm.WithTimeout(150*time.Millisecond),
		evm.WithRetry(evm.RetryPolicy{Attempts: 3, Base: 10 * time.Millisecond, Max: 20 * time.Millisecond, Total: time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()

	start := time.Now()
	_, err = c.ChainID(ctx)
	took := time.Since(start)
	if countersign.ErrorCode(err) != countersign.ChainError || !strings.Contains(countersign.ErrorDetail(err), "did not answer in time") ||
		!strings.Contains(countersign.ErrorDetail(err), node.srv.URL) {
		t.Fatalf("chain id from a hanging node: %v (%q)", err, countersign.ErrorDetail(err))
	}
	if took < 3*150*time.Millisecond || took > 2*time.Second {
		t.Fatalf("three attempts of 150ms took %s", took)
	}
	if n := node.count("eth_chainId"); n != 3 {
		t.Fatalf("%d attempts, want 3 (a timed-out read is retried)", n)
	}

	// the caller's context is shorter than the policy: it wins
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if _, err := c.BlockNumber(cctx); countersign.ErrorCode(err) != countersign.ChainError {
		t.Fatalf("block number: %v", err)
	}
	if took := time.Since(start); took > 600*time.Millisecond {
		t.Fatalf("a read ran %s past a 200ms caller deadline", took)
	}

	// the revert reason's replay reads are bounded the same way
	start = time.Now()
	if _, err := c.RevertReason(ctx, "0x"+strings.Repeat("ab", 32), 1); countersign.ErrorCode(err) != countersign.ChainError {
		t.Fatalf("revert reason from a hanging node: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("the revert reason's replay waited %s on a hanging node", took)
	}

	// a broadcast is one attempt, bounded by the timeout, and ambiguous
	raw := rawTransfer(t)
	start = time.Now()
	err = c.SendRawTransaction(ctx, raw)
	if took := time.Since(start); took > time.Second {
		t.Fatalf("a broadcast to a hanging node took %s", took)
	}
	if !errors.Is(err, countersign.ErrUnavailable) || errors.Is(err, countersign.ErrRefused) {
		t.Fatalf("broadcast to a hanging node: %v, want ambiguous", err)
	}
	if n := node.count("eth_sendRawTransaction"); n != 1 {
		t.Fatalf("the broadcast was sent %d times, want once", n)
	}
}

// rawTransfer is a signed transfer on chain 1337 (what the node does with
// it does not matter here).
func rawTransfer(t *testing.T) []byte {
	t.Helper()
	key, _ := fundedKey(t, nil, 0)
	return signTx(t, key, 1337, &types.DynamicFeeTx{Value: big.NewInt(1), Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)})
}

// eth_sendRawTransaction is never retried by the client, whatever the
// node answers: the tracker rebroadcasts the stored bytes. A known
// refusal ends the transaction (ErrRefused); every other error, an
// unknown JSON-RPC message, a 5xx or a dropped connection, is ambiguous:
// the node may have the transaction.
func TestMoney_BroadcastNotRetriedAndClassified(t *testing.T) {
	tests := map[string]struct {
		answer      func(w http.ResponseWriter, r *http.Request)
		wantRefused bool
		wantFunds   bool
	}{
		"refused/insufficient funds": {answer: func(w http.ResponseWriter, r *http.Request) {
			rpcError(w, r, -32000, "insufficient funds for gas * price + value: balance 0, tx cost 2100000000000000")
		}, wantRefused: true, wantFunds: true},
		"refused/fee below base fee": {answer: func(w http.ResponseWriter, r *http.Request) {
			rpcError(w, r, -32000, "max fee per gas less than block base fee: address 0x…, maxFeePerGas: 1, baseFee: 7")
		}, wantRefused: true},
		"ambiguous/unknown JSON-RPC error": {answer: func(w http.ResponseWriter, r *http.Request) { rpcError(w, r, -32603, "internal error: backend hiccup") }},
		"ambiguous/request timed out":      {answer: func(w http.ResponseWriter, r *http.Request) { rpcError(w, r, -32002, "request timed out") }},
		"ambiguous/503": {answer: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream busy", http.StatusServiceUnavailable)
		}},
		"ambiguous/connection dropped": {answer: func(w http.ResponseWriter, r *http.Request) { dropConnection(w) }},
		"ambiguous/replacement underpriced": {answer: func(w http.ResponseWriter, r *http.Request) {
			rpcError(w, r, -32000, "replacement transaction underpriced")
		}},
	}
	raw := rawTransfer(t)
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			node := newFaultNode(t, func(w http.ResponseWriter, r *http.Request, method string, n int) bool {
				if method == "eth_sendRawTransaction" {
					tt.answer(w, r)
					return true
				}
				return false
			})
			c, closeFn, err := evm.Dial(context.Background(), node.srv.URL, fastRetry)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			err = c.SendRawTransaction(context.Background(), raw)
			if n := node.count("eth_sendRawTransaction"); n != 1 {
				t.Fatalf("the broadcast reached the node %d times, want once", n)
			}
			if err == nil {
				t.Fatal("a failed broadcast reported success")
			}
			if got := errors.Is(err, countersign.ErrRefused); got != tt.wantRefused {
				t.Fatalf("refused %v, want %v: %v", got, tt.wantRefused, err)
			}
			if !tt.wantRefused && !errors.Is(err, countersign.ErrUnavailable) {
				t.Fatalf("an ambiguous answer not marked unavailable: %v", err)
			}
			wantCode := countersign.ChainError
			if tt.wantFunds {
				wantCode = countersign.InsufficientFunds
			}
			if countersign.ErrorCode(err) != wantCode || countersign.ErrorDetail(err) == "" {
				t.Fatalf("code %s detail %q, want %s with a detail", countersign.ErrorCode(err), countersign.ErrorDetail(err), wantCode)
			}
		})
	}
}

// A node URL with credentials (user info, an API key in the path or the
// query, as providers issue them): no error detail, and no error text
// that reaches a log, shows them.
func TestSecurity_ChainErrorsHideNodeCredentials(t *testing.T) {
	node := newFaultNode(t, func(w http.ResponseWriter, r *http.Request, method string, n int) bool {
		dropConnection(w) // a transport error: the http client's error text quotes the URL
		return true
	})
	host := strings.TrimPrefix(node.srv.URL, "http://")
	for _, secretURL := range []string{
		"http://user:hunter2secret@" + host + "/v3/KEYinPATH0123456789?apikey=QUERYsecret",
		"http://" + host + "/v3/KEYinPATH0123456789",
	} {
		c, closeFn, err := evm.Dial(context.Background(), secretURL, fastRetry)
		if err != nil {
			t.Fatal(err)
		}
		errs := map[string]error{}
		_, errs["read"] = c.ChainID(context.Background())
		errs["broadcast"] = c.SendRawTransaction(context.Background(), rawTransfer(t))
		_, errs["forward"] = c.CallRaw(context.Background(), "eth_blockNumber", nil)
		_, errs["revert reason"] = c.RevertReason(context.Background(), "0x"+strings.Repeat("ab", 32), 1)
		closeFn()
		for what, err := range errs {
			if err == nil {
				t.Fatalf("%s against a failing node succeeded", what)
			}
			for _, secret := range []string{"hunter2secret", "KEYinPATH", "QUERYsecret", "user:"} {
				if strings.Contains(err.Error(), secret) || strings.Contains(countersign.ErrorDetail(err), secret) {
					t.Fatalf("%s error shows %q: %v", what, secret, err)
				}
			}
			if !strings.Contains(countersign.ErrorDetail(err), "http://"+host) {
				t.Fatalf("%s error detail does not name the node: %q", what, countersign.ErrorDetail(err))
			}
		}
	}
}

// The node down for a while, then back: a read that starts during the
// outage succeeds once the node answers within the policy's total.
func TestChainFault_NodeBackWithinTheRetries(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	node := newFaultNode(t, func(w http.ResponseWriter, r *http.Request, method string, n int) bool {
		if down.Load() {
			dropConnection(w)
			return true
		}
		return false
	})
	c, closeFn, err := evm.Dial(context.Background(), node.srv.URL,
		evm.WithRetry(evm.RetryPolicy{Attempts: 6, Base: 20 * time.Millisecond, Max: 100 * time.Millisecond, Total: 5 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	time.AfterFunc(60*time.Millisecond, func() { down.Store(false) })
	if n, err := c.NonceAt(context.Background(), dead.Hex()); err != nil || n != 7 {
		t.Fatalf("nonce %d %v, want 7 once the node is back", n, err)
	}
	if node.count("eth_getTransactionCount") < 2 {
		t.Fatal("the read was not retried")
	}
}
