package core

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/chain/evm"
	"github.com/countersign/countersign/chain/sim"
	"github.com/countersign/countersign/keys/envelope"
	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/signer/local"
	"github.com/countersign/countersign/store/sqlite"
)

// The money tests run the real execute path: SQLite, the local signer, and
// the chain/evm adapter over HTTP JSON-RPC to the embedded dev chain,
// through faultProxy, which can answer, delay, drop or rewrite what the
// node says.

// moneyClock is a clock the test moves.
type moneyClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *moneyClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *moneyClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// sendFault is what faultProxy does with one eth_sendRawTransaction.
type sendFault struct {
	forward  bool            // hand the bytes to the node (mined at once)
	poolOnly bool            // put them in the node's pool without mining
	code     int             // answer this JSON-RPC error (after forwarding, if forward)
	msg      string          // ... with this message; "" answers the node's own reply
	started  chan struct{}   // closed when the request arrives
	hold     <-chan struct{} // waited for before anything else happens
}

type rpcMsg struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
	Result  json.RawMessage   `json:"result,omitempty"`
	Error   *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error,omitempty"`
}

// faultProxy sits between the adapter and the dev chain's JSON-RPC.
type faultProxy struct {
	dev  *sim.Chain
	next http.Handler

	mu      sync.Mutex
	onSend  func(n int, tx *types.Transaction) sendFault
	rewrite func(method string, params []json.RawMessage, result json.RawMessage) (json.RawMessage, int, string)
	sends   []common.Hash // every eth_sendRawTransaction, in order
	// drop, when it says so for a method, closes the connection without
	// an answer: a node that stalls or crashes mid-request.
	drop func(method string) bool
}

func (p *faultProxy) setDrop(f func(method string) bool) {
	p.mu.Lock()
	p.drop = f
	p.mu.Unlock()
}

func (p *faultProxy) set(onSend func(n int, tx *types.Transaction) sendFault) {
	p.mu.Lock()
	p.onSend = onSend
	p.mu.Unlock()
}

func (p *faultProxy) setRewrite(f func(method string, params []json.RawMessage, result json.RawMessage) (json.RawMessage, int, string)) {
	p.mu.Lock()
	p.rewrite = f
	p.mu.Unlock()
}

// sendsOf counts the broadcasts of hash.
func (p *faultProxy) sendsOf(hash string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, h := range p.sends {
		if h.Hex() == hash {
			n++
		}
	}
	return n
}

func writeRPC(w http.ResponseWriter, id json.RawMessage, result json.RawMessage, code int, msg string) {
	out := map[string]any{"jsonrpc": "2.0", "id": id}
	if msg != "" {
		out["error"] = map[string]any{"code": code, "message": msg}
	} else {
		out["result"] = result
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

func (p *faultProxy) forward(r *http.Request, body []byte) rpcMsg {
	rec := httptest.NewRecorder()
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	p.next.ServeHTTP(rec, r2)
	var m rpcMsg
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return m
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req rpcMsg
	if err := json.Unmarshal(body, &req); err != nil { // a batch: as is
		r.Body = io.NopCloser(bytes.NewReader(body))
		p.next.ServeHTTP(w, r)
		return
	}
	if req.Method != "eth_sendRawTransaction" {
		p.mu.Lock()
		rw, drop := p.rewrite, p.drop
		p.mu.Unlock()
		if drop != nil && drop(req.Method) {
			if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		m := p.forward(r, body)
		if rw != nil && m.Error == nil {
			if res, code, msg := rw(req.Method, req.Params, m.Result); res != nil || msg != "" {
				writeRPC(w, req.ID, res, code, msg)
				return
			}
		}
		if m.Error != nil {
			writeRPC(w, req.ID, nil, m.Error.Code, m.Error.Message)
			return
		}
		writeRPC(w, req.ID, m.Result, 0, "")
		return
	}
	var raw hexutil.Bytes
	var tx types.Transaction
	if len(req.Params) != 1 || json.Unmarshal(req.Params[0], &raw) != nil || tx.UnmarshalBinary(raw) != nil {
		writeRPC(w, req.ID, nil, -32602, "bad params")
		return
	}
	p.mu.Lock()
	p.sends = append(p.sends, tx.Hash())
	n := len(p.sends)
	on := p.onSend
	p.mu.Unlock()
	f := sendFault{forward: true}
	if on != nil {
		f = on(n, &tx)
	}
	if f.started != nil {
		close(f.started)
	}
	if f.hold != nil {
		<-f.hold
	}
	var fwd rpcMsg
	switch {
	case f.poolOnly:
		var h common.Hash
		if err := p.dev.Client().RPC().CallContext(r.Context(), &h, "eth_sendRawTransaction", raw); err != nil {
			writeRPC(w, req.ID, nil, -32000, err.Error())
			return
		}
		fwd.Result, _ = json.Marshal(h)
	case f.forward:
		fwd = p.forward(r, body)
	}
	switch {
	case f.msg != "":
		writeRPC(w, req.ID, nil, f.code, f.msg)
	case fwd.Error != nil:
		writeRPC(w, req.ID, nil, fwd.Error.Code, fwd.Error.Message)
	case fwd.Result != nil:
		writeRPC(w, req.ID, fwd.Result, 0, "")
	default: // dropped, but answered as if taken
		res, _ := json.Marshal(tx.Hash())
		writeRPC(w, req.ID, res, 0, "")
	}
}

type moneyEnv struct {
	t      *testing.T
	ctx    context.Context
	svc    *Service
	dev    *sim.Chain
	proxy  *faultProxy
	clock  *moneyClock
	user   *countersign.User
	wallet *countersign.Wallet
	agent  *Principal
	logs   *lockedBuffer // what the service logged
}

// lockedBuffer is a bytes.Buffer safe for the service's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newMoneyEnv starts a fresh dev chain (each test its own: nonces and
// balances must not leak between tests) behind a fault proxy, and a
// service with one user, one wallet and one agent.
func newMoneyEnv(t *testing.T, cfg MoneyConfig) *moneyEnv {
	t.Helper()
	ctx := context.Background()
	dev, err := sim.Start(ctx, []byte("money test "+t.Name()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	proxy := &faultProxy{dev: dev, next: dev.Handler()}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	ch, closeCh, err := evm.Dial(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeCh)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db.sqlite"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := bytes.Repeat([]byte{7}, 32)
	sealer, err := envelope.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	clock := &moneyClock{now: time.Now().UTC().Truncate(time.Second)}
	logs := &lockedBuffer{}
	svc, err := New(ctx, st, ch, local.New(sealer, keystore.Dir{Path: filepath.Join(t.TempDir(), "keys")}), sealer, clock,
		slog.New(slog.NewTextHandler(logs, nil)), Config{Argon2: auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1}, Money: cfg})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	u := &countersign.User{ID: uuid.NewString(), Username: "u" + uuid.NewString()[:8], PasswordHash: "$argon2id$unused", CreatedAt: now}
	if err := st.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	w := &countersign.Wallet{ID: uuid.NewString(), OwnerID: u.ID, Name: "w", CreatedAt: now}
	if w.Address, w.KeyFormat, w.KeySealed, err = svc.signer.NewKey(ctx, w.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWallet(ctx, w); err != nil {
		t.Fatal(err)
	}
	a := &countersign.Agent{ID: uuid.NewString(), OwnerID: u.ID, Name: "agent", WalletID: w.ID, KeyHash: []byte(uuid.NewString()), KeyPrefix: "cs_", CreatedAt: now}
	if err := st.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	return &moneyEnv{t: t, ctx: ctx, svc: svc, dev: dev, proxy: proxy, clock: clock, user: u, wallet: w, agent: &Principal{User: u, Agent: a}, logs: logs}
}

func eth(n int64) *big.Int { return new(big.Int).Mul(big.NewInt(n), big.NewInt(1e18)) }

func (e *moneyEnv) fund(addr string, wei *big.Int) {
	e.t.Helper()
	if _, err := e.dev.Fund(e.ctx, common.HexToAddress(addr), wei); err != nil {
		e.t.Fatal(err)
	}
}

// approved prepares req as the agent and records a human's approval of
// exactly what was prepared (the TOTP step is not what these tests test).
func (e *moneyEnv) approved(req *PrepareRequest) *countersign.Transaction {
	e.t.Helper()
	t, err := e.svc.Prepare(e.ctx, e.agent, req, "")
	if err != nil {
		e.t.Fatal(err)
	}
	t.Status, t.ApprovedDigest, t.DecidedBy, t.DecidedAt = countersign.StatusAuthorized, t.Digest, e.user.ID, e.clock.Now()
	if err := e.svc.store.UpdateTransaction(e.ctx, t); err != nil {
		e.t.Fatal(err)
	}
	return t
}

func (e *moneyEnv) pay(to string, wei *big.Int) *countersign.Transaction {
	e.t.Helper()
	return e.approved(&PrepareRequest{Type: "native", ToAddress: to, Amount: wei.String()})
}

func (e *moneyEnv) execute(id string) (*countersign.Transaction, error) {
	return e.svc.Execute(e.ctx, e.agent, id)
}

func (e *moneyEnv) row(id string) *countersign.Transaction {
	e.t.Helper()
	t, err := e.svc.store.Transaction(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return t
}

func (e *moneyEnv) balance(addr string) *big.Int {
	e.t.Helper()
	b, err := e.dev.Client().BalanceAt(e.ctx, common.HexToAddress(addr), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *moneyEnv) minedNonce() uint64 {
	e.t.Helper()
	n, err := e.dev.Client().NonceAt(e.ctx, common.HexToAddress(e.wallet.Address), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// track runs tracker passes until the row reaches want (or fails the test).
func (e *moneyEnv) track(id string, want countersign.Status) *countersign.Transaction {
	e.t.Helper()
	for range 10 {
		_ = e.svc.TrackReceipts(e.ctx)
		if t := e.row(id); t.Status == want {
			return t
		}
	}
	t := e.row(id)
	e.t.Fatalf("transaction %s (%d broadcasts, next at %s, now %s; mined nonce %d) is %s (%s), want %s", id, t.Broadcasts, t.NextBroadcastAt, e.clock.Now(), e.minedNonce(), t.Status, t.Error, want)
	return nil
}

func randomAddr() string { return common.BytesToAddress([]byte(uuid.NewString())[:20]).Hex() }
