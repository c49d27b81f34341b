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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
)

// Node faults against a real geth --dev node: the node stopped mid-run and
// restarted, a node address where nothing listens, and a node that answers
// errors to eth_sendRawTransaction. Requests meanwhile get CHAIN_ERROR
// (502) with a detail naming the node and what failed; nothing is lost;
// once the node is back every approved payment is mined exactly once.

// gethNode is a geth --dev node on a fixed port and a persistent data
// directory, so it can be stopped and started again with its chain (and
// its URL) unchanged. startGeth's nodes are one-shot; this one restarts.
type gethNode struct {
	bin, dir string
	port     int
	url      string
	log      *os.File
	cmd      *exec.Cmd
	done     chan struct{}
}

func startGethNode(t *testing.T) *gethNode {
	t.Helper()
	g := &gethNode{bin: gethBinary(t), dir: filepath.Join(t.TempDir(), "geth"), port: freePort(t)}
	g.url = fmt.Sprintf("http://127.0.0.1:%d", g.port)
	var err error
	if g.log, err = os.Create(filepath.Join(t.TempDir(), "geth.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		g.stop(t)
		g.log.Close()
	})
	g.start(t)
	return g
}

// start runs geth on the node's port and data directory and waits until
// it answers.
func (g *gethNode) start(t *testing.T) {
	t.Helper()
	g.cmd = exec.Command(g.bin, "--dev", "--datadir", g.dir, "--http", "--http.addr", "127.0.0.1",
		"--http.port", strconv.Itoa(g.port), "--http.api", "eth,net,web3,txpool", "--port", "0", "--maxpeers", "0",
		"--nodiscover", "--ipcdisable", "--authrpc.port", "0", "--verbosity", "2")
	g.cmd.Stdout, g.cmd.Stderr = g.log, g.log
	if err := g.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	g.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(g.cmd, g.done)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := ethclient.Dial(g.url)
		if err == nil {
			_, err = c.ChainID(context.Background())
			c.Close()
			if err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(g.log.Name())
			t.Fatalf("geth did not start: %v\n%s", err, logTail(string(b), 4000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop ends geth gracefully (it writes its chain to disk) and waits until
// its port is closed.
func (g *gethNode) stop(t *testing.T) {
	t.Helper()
	if g.cmd == nil {
		return
	}
	_ = g.cmd.Process.Signal(os.Interrupt)
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
	g.cmd = nil
}

// chainFaultEnv is a server on node url with a short chain timeout, so an
// outage is answered within seconds.
func chainFaultEnv(t *testing.T, url string) *env {
	return newEnv(t, func(c *Config) {
		c.ChainURL = url
		c.ChainTimeout = 2 * time.Second
	})
}

// chainErrorOf checks r is 502 CHAIN_ERROR whose detail names the node.
func chainErrorOf(t *testing.T, r resp, node, what string) {
	t.Helper()
	r.refused(t, http.StatusBadGateway, "CHAIN_ERROR")
	e, _ := r.body["error"].(map[string]any)
	detail, _ := e["detail"].(string)
	if !strings.Contains(detail, node) || !strings.Contains(detail, what) {
		t.Fatalf("detail %q does not say %q about the node %s", detail, what, node)
	}
}

func txStatus(e *env, agent cred, id string) resp {
	return e.do("GET", "/api/transaction_status?transaction_id="+id, agent, nil).must(e.t, 200)
}

// geth is stopped with payments approved, some executed, some not:
// executes during the outage answer CHAIN_ERROR and leave the payment
// authorized and unsigned; after geth is back (same chain, same URL) the
// retried executes and the tracker confirm every payment exactly once.
func TestMoney_ChainFaultGethStoppedAndRestarted(t *testing.T) {
	g := startGethNode(t)
	fx := gethFixture(t, g.url)
	ec, err := ethclient.Dial(g.url)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	e := chainFaultEnv(t, g.url)
	u := e.newUser(true)
	wallet := e.createWallet(u)
	fx.fund(t, wallet, ether(1))
	_, key := e.createAgent(u, wallet)
	agent := apiKey(key)
	payee := randomAddress()
	amount := big.NewInt(3_000_000_011)
	const n = 5
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": payee, "amount": amount.String()}).must(t, 202).str("transaction_id")
	}
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_ids": ids, "mfa_code": e.code(u)}).must(t, 200)
	start, _, _ := chainState(t, ec, wallet, payee)

	hashes := map[string]string{}
	for _, id := range ids[:2] { // executed before the outage
		hashes[id] = e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(t, 201).str("tx_hash")
	}
	g.stop(t)
	// readiness fails for the load balancer, without naming the node to anyone who asks
	ready := e.do("GET", "/readyz", anon, nil).refused(t, 503, "UNAVAILABLE")
	if host := strings.TrimPrefix(strings.TrimPrefix(g.url, "http://"), "ws://"); strings.Contains(ready.raw, host) || !strings.Contains(ready.raw, "chain node") {
		t.Fatalf("readyz during the outage: %s", ready.raw)
	}

	for _, id := range ids[2:] {
		t0 := time.Now()
		chainErrorOf(t, e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}), g.url, "unreachable")
		if took := time.Since(t0); took > 15*time.Second {
			t.Fatalf("execute during the outage took %s (CHAIN_TIMEOUT 2s)", took)
		}
		if st := txStatus(e, agent, id); st.str("status") != "authorized" || st.str("tx_hash") != "" {
			t.Fatalf("after an execute during the outage: %s, want authorized and unsigned", st.raw)
		}
	}
	for _, id := range ids[:2] {
		if st := txStatus(e, agent, id); st.str("tx_hash") != hashes[id] || (st.str("status") != "submitted" && st.str("status") != "confirmed") {
			t.Fatalf("a payment sent before the outage: %s", st.raw)
		}
	}
	time.Sleep(300 * time.Millisecond) // tracker passes against the dead node: nothing may change

	g.start(t)
	waitUntil(t, "readyz after the node is back", func() bool { return e.do("GET", "/readyz", anon, nil).status == 200 })
	for _, id := range ids[2:] {
		hashes[id] = e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(t, 201).str("tx_hash")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		done := e.waitStatus(agent, id, "confirmed")
		if h := done.str("tx_hash"); h != hashes[id] || h == "" || seen[h] {
			t.Fatalf("%s confirmed as %q, executed as %q (seen before: %v)", id, h, hashes[id], seen[h])
		}
		seen[hashes[id]] = true
	}
	time.Sleep(300 * time.Millisecond)
	want := new(big.Int).Mul(amount, big.NewInt(n))
	if got, pending, paid := chainState(t, ec, wallet, payee); got != start+n || pending != start+n || paid.Cmp(want) != 0 {
		t.Fatalf("after the outage: nonce %d pending %d paid %s, want %d, %d, %s", got, pending, paid, start+n, start+n, want)
	}
	checkOneSignatureEach(t, e, u, ids)
}

// checkOneSignatureEach counts transaction.execute audit entries: one per
// approval, none for anything else.
func checkOneSignatureEach(t *testing.T, e *env, u *user, ids []string) {
	t.Helper()
	signed := map[string]int{}
	for _, x := range e.do("GET", "/api/audit?limit=1000", bearer(u.token), nil).must(t, 200).body["entries"].([]any) {
		if en := x.(map[string]any); en["action"] == "transaction.execute" {
			s, _ := en["subject"].(string)
			signed[s]++
		}
	}
	for _, id := range ids {
		if signed[id] != 1 {
			t.Fatalf("signatures per approval %v: want one for each of %v", signed, ids)
		}
	}
	if len(signed) != len(ids) {
		t.Fatalf("signatures per approval %v: want exactly %v", signed, ids)
	}
}

// A node URL where nothing listens: the server refuses to start, saying
// it cannot read the chain id from that node, within the retries' bound.
func TestChainFault_NothingListensAtStart(t *testing.T) {
	url := fmt.Sprintf("http://127.0.0.1:%d/v3/SECRETKEY", freePort(t))
	t0 := time.Now()
	_, _, err := startAt(t, t.TempDir(), restartClock(), func(c *Config) { c.ChainURL = url; c.ChainTimeout = 2 * time.Second })
	if err == nil {
		t.Fatal("the server started on a node address where nothing listens")
	}
	host := strings.TrimSuffix(url, "/v3/SECRETKEY")
	if msg := err.Error(); !strings.Contains(msg, "cannot read chain id") || !strings.Contains(msg, "the chain node "+host+" is unreachable") || strings.Contains(msg, "SECRETKEY") {
		t.Fatalf("start error %q: want it to name the node (without the key in its path) and what failed", msg)
	}
	if took := time.Since(t0); took > 20*time.Second {
		t.Fatalf("the refused start took %s", took)
	}
}

// rpcProxy is a JSON-RPC proxy in front of a node: it passes every call on,
// except that, while sendError is set, it answers eth_sendRawTransaction
// with that JSON-RPC error without passing it on; while down is set it
// closes every connection (a node that is gone).
type rpcProxy struct {
	srv       *httptest.Server
	target    string
	sendError atomic.Pointer[string]
	down      atomic.Bool
	mu        sync.Mutex
	sends     int // eth_sendRawTransaction requests seen
	passed    int // of them passed to the node
}

func newRPCProxy(t *testing.T, target string) *rpcProxy {
	p := &rpcProxy{target: target}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *rpcProxy) serve(w http.ResponseWriter, r *http.Request) {
	if p.down.Load() {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, "read", 400)
		return
	}
	var req struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	_ = json.Unmarshal(body, &req) // a batch is passed on as it is
	if req.Method == "eth_sendRawTransaction" {
		p.mu.Lock()
		p.sends++
		msg := p.sendError.Load()
		if msg == nil {
			p.passed++
		}
		p.mu.Unlock()
		if msg != nil {
			w.Header().Set("Content-Type", "application/json")
			m, _ := json.Marshal(*msg)
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32000,"message":%s}}`, req.ID, m)
			return
		}
	}
	res, err := http.Post(p.target, "application/json", bytes.NewReader(body))
	if err != nil {
		http.Error(w, "upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer res.Body.Close()
	w.Header().Set("Content-Type", res.Header.Get("Content-Type"))
	w.WriteHeader(res.StatusCode)
	_, _ = io.Copy(w, res.Body)
}

func (p *rpcProxy) counts() (sends, passed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sends, p.passed
}

// A node that answers eth_sendRawTransaction with errors. A known refusal
// ends the payment: failed, with the node's reason, its nonce given back
// (the next payment is mined at it). An unknown error is ambiguous: the
// payment stays submitted with its hash, and once the node takes
// transactions again the tracker's rebroadcast gets the same bytes mined,
// once. Then the node goes away after the start (its port closed):
// prepare and execute answer CHAIN_ERROR and change nothing.
func TestMoney_ChainFaultBroadcastErrors(t *testing.T) {
	gethURL := startGeth(t)
	fx := gethFixture(t, gethURL)
	ec, err := ethclient.Dial(gethURL)
	if err != nil {
		t.Fatal(err)
	}
	defer ec.Close()
	proxy := newRPCProxy(t, gethURL)
	e := chainFaultEnv(t, proxy.srv.URL)
	u := e.newUser(true)
	wallet := e.createWallet(u)
	fx.fund(t, wallet, ether(1))
	_, key := e.createAgent(u, wallet)
	agent := apiKey(key)
	payee := randomAddress()
	amount := big.NewInt(5_000_000_003)
	prepare := func() string {
		return e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": payee, "amount": amount.String()}).must(t, 202).str("transaction_id")
	}
	refusedID, ambiguousID := prepare(), prepare()
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_ids": []string{refusedID, ambiguousID}, "mfa_code": e.code(u)}).must(t, 200)
	start, _, _ := chainState(t, ec, wallet, payee)

	// a definite refusal: failed, nonce given back
	refusal := "intrinsic gas too low: have 21000, want 53000"
	proxy.sendError.Store(&refusal)
	r := e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": refusedID})
	if r.status < 400 {
		t.Fatalf("execute of a refused broadcast answered %d: %s", r.status, r.raw)
	}
	if st := txStatus(e, agent, refusedID); st.str("status") != "failed" || !strings.Contains(st.raw, "intrinsic gas") {
		t.Fatalf("after a refused broadcast: %s, want failed with the node's reason", st.raw)
	}

	// an unknown error: submitted, then rebroadcast once the node takes it
	unknown := "upstream provider exploded"
	proxy.sendError.Store(&unknown)
	r = e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": ambiguousID}).must(t, 201)
	hash := r.str("tx_hash")
	if hash == "" || r.str("status") != "submitted" {
		t.Fatalf("execute of an ambiguous broadcast: %s, want submitted with its hash", r.raw)
	}
	time.Sleep(300 * time.Millisecond) // tracker passes while the node still refuses: nothing ends it
	if st := txStatus(e, agent, ambiguousID); st.str("status") != "submitted" || st.str("tx_hash") != hash {
		t.Fatalf("an ambiguous broadcast ended: %s", st.raw)
	}
	if n, pending, _ := chainState(t, ec, wallet, payee); n != start || pending != start {
		t.Fatalf("the proxy passed a broadcast on: nonce %d pending %d, want %d", n, pending, start)
	}
	proxy.sendError.Store(nil)
	e.clock.Advance(2 * time.Minute) // past the rebroadcast wait
	if done := e.waitStatus(agent, ambiguousID, "confirmed"); done.str("tx_hash") != hash {
		t.Fatalf("confirmed with another hash: %s, executed %s", done.raw, hash)
	}
	checkOnChain(t, ec, hash, wallet, start) // the refused payment's nonce, given back
	if sends, passed := proxy.counts(); passed < 1 || sends < 3 {
		t.Fatalf("broadcasts seen %d, passed %d: want the refusal, the ambiguous one and a rebroadcast", sends, passed)
	}
	time.Sleep(300 * time.Millisecond)
	if n, pending, paid := chainState(t, ec, wallet, payee); n != start+1 || pending != start+1 || paid.Cmp(amount) != 0 {
		t.Fatalf("after the faults: nonce %d pending %d paid %s, want %d, %d, %s", n, pending, paid, start+1, start+1, amount)
	}
	if st := txStatus(e, agent, refusedID); st.str("status") != "failed" {
		t.Fatalf("the refused payment: %s", st.raw)
	}

	// the node goes away after the start
	third := prepare()
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_ids": []string{third}, "mfa_code": e.code(u)}).must(t, 200)
	proxy.down.Store(true)
	node := proxy.srv.URL
	chainErrorOf(t, e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": third}), node, "unreachable")
	if st := txStatus(e, agent, third); st.str("status") != "authorized" || st.str("tx_hash") != "" {
		t.Fatalf("after an execute with the node gone: %s", st.raw)
	}
	proxy.down.Store(false)
	h3 := e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": third}).must(t, 201).str("tx_hash")
	if done := e.waitStatus(agent, third, "confirmed"); done.str("tx_hash") != h3 {
		t.Fatalf("confirmed with another hash: %s", done.raw)
	}
	checkOnChain(t, ec, h3, wallet, start+1)
	checkOneSignatureEach(t, e, u, []string{refusedID, ambiguousID, third})
}

// Prepare while the node is unreachable answers CHAIN_ERROR naming the
// node and creates nothing: a request whose simulation could not even be
// run is not one a human can judge (and nothing can be bound for it).
// Core today treats any failed gas estimate as "the simulation fails" and
// creates a pending request with that warning and no fee bound (safe —
// it cannot be executed — but the agent is told 202, not CHAIN_ERROR);
// the fix belongs in core's bindFees: an estimate error wrapping
// countersign.ErrUnavailable (what chain/evm now returns when it got no
// answer) is returned, not recorded as a failed simulation.
func TestMoney_ChainFaultPrepareDuringOutage(t *testing.T) {
	gethURL := startGeth(t)
	fx := gethFixture(t, gethURL)
	proxy := newRPCProxy(t, gethURL)
	e := chainFaultEnv(t, proxy.srv.URL)
	u := e.newUser(true)
	wallet := e.createWallet(u)
	fx.fund(t, wallet, ether(1))
	_, key := e.createAgent(u, wallet)
	agent := apiKey(key)
	before := e.do("GET", "/api/transactions", bearer(u.token), nil).must(t, 200).raw
	proxy.down.Store(true)
	chainErrorOf(t, e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}), proxy.srv.URL, "unreachable")
	proxy.down.Store(false)
	if after := e.do("GET", "/api/transactions", bearer(u.token), nil).must(t, 200).raw; after != before {
		t.Fatalf("a prepare refused for the outage created a request:\nbefore %s\nafter  %s", before, after)
	}
}
