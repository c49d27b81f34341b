package main

import (
	"bufio"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/store/postgres/pgtest"
)

// The crash points of execute (core.ExecuteHooks) a crash test can stop
// the server at.
const (
	crashBeforeSign     = "before-sign"                   // planned and reconciled; no nonce taken, nothing signed
	crashAfterCommit    = "after-commit-before-broadcast" // the signed transaction is committed, not sent
	crashAfterBroadcast = "after-broadcast-before-status" // the node has it; nothing written since
	crashHelperEnv      = "COUNTERSIGN_CRASH_HELPER"      // set: this process is the server under test
	crashPointEnv       = "COUNTERSIGN_CRASH_POINT"
)

// TestMain lets the crash test run the real server as a child process (the
// test binary itself, as os/exec's tests do), so the test can kill it.
func TestMain(m *testing.M) {
	if os.Getenv(crashHelperEnv) == "1" {
		os.Exit(crashHelper())
	}
	os.Exit(m.Run())
}

// crashHelper is the child: the serve command's wiring with the crash
// point of COUNTERSIGN_CRASH_POINT, which SIGKILLs the process — no
// deferred function, no graceful shutdown, the database as the crash
// leaves it.
func crashHelper() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseServeConfig(nil, os.Getenv, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash helper:", err)
		return 2
	}
	kill := func() {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
	switch os.Getenv(crashPointEnv) {
	case crashBeforeSign:
		cfg.ExecuteHooks.BeforeSign = func(*countersign.Transaction) { kill() }
	case crashAfterCommit:
		cfg.ExecuteHooks.BeforeBroadcast = func(*countersign.Transaction) { kill() }
	case crashAfterBroadcast:
		cfg.ExecuteHooks.AfterBroadcast = func(_ *countersign.Transaction, err error) {
			if err == nil {
				kill()
			}
		}
	case "":
	default:
		fmt.Fprintln(os.Stderr, "crash helper: unknown crash point", os.Getenv(crashPointEnv))
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	app, err := Start(ctx, cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "crash helper:", err)
		return 1
	}
	fmt.Printf("LISTENING %s\n", app.URL)
	<-ctx.Done()
	if err := app.Close(); err != nil {
		return 1
	}
	return 0
}

// serverProcess is one run of the server as a child process.
type serverProcess struct {
	cmd  *exec.Cmd
	url  string
	done chan error
}

// startServer runs the server on dir and chainURL, stopping at point,
// with the extra environment (KEY=VALUE, e.g. DATABASE_URL) on top.
func startServer(t *testing.T, dir, chainURL, point string, extra ...string) *serverProcess {
	t.Helper()
	return startProcess(t, dir, chainURL, point, "server", extra...)
}

// startProcess is startServer with its log in name.log beside dir (the
// log is shown when the test fails); a later KEY=VALUE in extra wins.
func startProcess(t *testing.T, dir, chainURL, point, name string, extra ...string) *serverProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashHelperEnv+"=1", crashPointEnv+"="+point,
		"COUNTERSIGN_DATA_DIR="+dir, "EVM_RPC_URL="+chainURL, "WALLET_BIND=127.0.0.1", "WALLET_PORT=0", "EVENTS_SOCKET=off",
		"POLL_INTERVAL=100ms", "PASSWORD_ARGON_TIME=1", "PASSWORD_ARGON_MEMORY_MB=8", "PASSWORD_ARGON_PARALLELISM=1",
		"ARGON_TIME=1", "ARGON_MEMORY_MB=8", "ARGON_PARALLELISM=1", "LOG_LEVEL=debug")
	cmd.Env = append(cmd.Env, extra...)
	logf, err := os.OpenFile(filepath.Join(filepath.Dir(dir), name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(logf, "\n===== start, crash point %q\n", point)
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serverProcess{cmd: cmd, done: make(chan error, 1)}
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				urls <- u
			}
		}
		_, _ = io.Copy(io.Discard, out)
	}()
	go func() { p.done <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("%s log:\n%s", name, logTail(string(b), 6000))
		}
	})
	select {
	case p.url = <-urls:
		return p
	case err := <-p.done:
		p.done <- err
		b, _ := os.ReadFile(logf.Name())
		t.Fatalf("the server did not start: %v\n%s", err, logTail(string(b), 4000))
	case <-time.After(2 * time.Minute):
		t.Fatal("the server did not start within 2 minutes")
	}
	return nil
}

func logTail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// killed waits for the server to die at its crash point and fails the test
// unless it died of SIGKILL.
func (p *serverProcess) killed(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("the server exited with %v, not killed at its crash point", err)
		}
		if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
			t.Fatalf("the server exited with %v, not killed at its crash point", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the server did not reach its crash point")
	}
}

// stop ends the server gracefully.
func (p *serverProcess) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("graceful stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the server did not stop")
	}
}

// client is a client of a server process: real time, no injected clock.
func (p *serverProcess) client(t *testing.T) *env {
	// an App without a server: the harness reads its wallet token (none)
	return &env{t: t, app: &App{}, url: p.url, http: &http.Client{Timeout: 90 * time.Second}}
}

// post sends a request the server may die during: a transport error is
// returned, not fatal.
func (p *serverProcess) post(path string, c cred, body string) (int, error) {
	req, _ := http.NewRequest("POST", p.url+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-KEY", c.apiKey)
	res, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	return res.StatusCode, nil
}

// totpSteps hands out TOTP codes in real time: each a later step than the
// one before (a code is accepted once), within the ±1 step the server
// accepts.
type totpSteps struct{ last int64 }

func (z *totpSteps) code(secret []byte) string {
	for {
		now := time.Now().Unix()
		cur := now / auth.TOTPPeriod
		step := max(z.last+1, cur-1)
		if step == cur-1 && now%auth.TOTPPeriod >= auth.TOTPPeriod-2 {
			step = cur // the previous step is about to leave the window
		}
		if step <= cur+1 {
			z.last = step
			return auth.TOTPCode(secret, time.Unix(step*auth.TOTPPeriod, 0))
		}
		time.Sleep(time.Second)
	}
}

// chainState is what the chain says about the payer and the payee.
func chainState(t *testing.T, ec *ethclient.Client, wallet, payee string) (nonce uint64, pending uint64, received *big.Int) {
	t.Helper()
	ctx := context.Background()
	var err error
	if nonce, err = ec.NonceAt(ctx, common.HexToAddress(wallet), nil); err != nil {
		t.Fatal(err)
	}
	if pending, err = ec.PendingNonceAt(ctx, common.HexToAddress(wallet)); err != nil {
		t.Fatal(err)
	}
	if received, err = ec.BalanceAt(ctx, common.HexToAddress(payee), nil); err != nil {
		t.Fatal(err)
	}
	return nonce, pending, received
}

// waitMined waits until the payer's mined nonce reaches want.
func waitMined(t *testing.T, ec *ethclient.Client, wallet string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, _, _ := chainState(t, ec, wallet, wallet)
		if n >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("payer nonce %d, want %d", n, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The server is killed (SIGKILL) at each crash point of execute — before
// it signs, between the commit that stores a signed transaction and its
// broadcast, and between the broadcast and anything written after it —
// against a real geth --dev node that outlives it. Each time the restarted
// server — the agent retrying execute, the tracker running — gets the
// payment onto the chain exactly once: the payer's nonce advances by
// exactly one per approval, the payee receives exactly the amount, the row
// ends confirmed with the hash stored before the crash (a later execute
// answers that hash), and the audit log shows one signature per approval.
//
// A process crash is what this can test. A power loss or OS crash also
// loses what the OS had not written to disk; that is what the store's
// synchronous=FULL covers (TestMoney_SQLiteWritesSynchronousFull), and it
// is emulated at the end by undoing the last commit.
func TestMoney_CrashPoints(t *testing.T) {
	crashPoints(t, crashStore{})
}

// TestMoney_CrashPointsPostgres is TestMoney_CrashPoints on PostgreSQL
// (DATABASE_URL of a real server, fsync on): the same kill points, the
// same exactly-once assertions. The emulated lost commit there stands for
// a failover to a standby that had not received the last commit.
func TestMoney_CrashPointsPostgres(t *testing.T) {
	crashPoints(t, crashStore{dsn: pgtest.Start(t)})
}

// crashStore is the database a crash test's server runs on: the data
// directory's SQLite file, or a PostgreSQL database.
type crashStore struct{ dsn string }

func (s crashStore) env() []string {
	if s.dsn == "" {
		return nil
	}
	return []string{"DATABASE_URL=" + s.dsn}
}

// open opens the database behind the server's back, as database/sql.
func (s crashStore) open(t *testing.T, dir string) (*sql.DB, func(string) string) {
	t.Helper()
	driver, dsn, rebind := "sqlite", filepath.Join(dir, "countersign.db"), func(q string) string { return q }
	if s.dsn != "" {
		driver, dsn, rebind = "pgx", s.dsn, pgPlaceholders
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	return db, rebind
}

// pgPlaceholders rewrites the ? placeholders of q as PostgreSQL's $1, $2….
func pgPlaceholders(q string) string {
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func crashPoints(t *testing.T, store crashStore) {
	gethURL := startGeth(t)
	fx := gethFixture(t, gethURL)
	ec, err := ethclient.Dial(gethURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ec.Close)
	dir := filepath.Join(t.TempDir(), "data")
	var steps totpSteps
	start := func(point string) *serverProcess { return startServer(t, dir, gethURL, point, store.env()...) }

	// run 0: set up, approve two payments, die before signing the first
	srv := start(crashBeforeSign)
	c := srv.client(t)
	u := c.newUser(true)
	wallet := c.createWallet(u)
	fx.fund(t, wallet, ether(1))
	r := c.do("POST", "/api/agents", bearer(u.token), map[string]string{"name": "agent", "wallet_address": wallet, "mfa_code": steps.code(u.secret)}).must(t, 201)
	key := r.str("api_key")
	agent := apiKey(key)
	payee, payee0 := randomAddress(), randomAddress()
	amount := big.NewInt(1_000_000_007)
	prepare := func(c *env, to string) string {
		return c.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": to, "amount": amount.String()}).must(t, 202).str("transaction_id")
	}
	zeroth, first := prepare(c, payee0), prepare(c, payee)
	c.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_ids": []string{zeroth, first}, "mfa_code": steps.code(u.secret)}).must(t, 200)
	start0, _, _ := chainState(t, ec, wallet, payee0)
	if _, err := srv.post("/api/execute_transaction", agent, `{"transaction_id":"`+zeroth+`"}`); err == nil {
		t.Fatal("execute answered although the server was to die before signing")
	}
	srv.killed(t)
	if n, pending, got := chainState(t, ec, wallet, payee0); n != start0 || pending != start0 || got.Sign() != 0 {
		t.Fatalf("the crash point was not before the signature: nonce %d pending %d paid %s", n, pending, got)
	}

	// run 0b: nothing was signed; the retry signs once and it is mined
	srv = start("")
	c = srv.client(t)
	if st := c.do("GET", "/api/transaction_status?transaction_id="+zeroth, agent, nil).must(t, 200); st.str("status") != "authorized" || st.body["tx_hash"] != nil && st.str("tx_hash") != "" {
		t.Fatalf("after a crash before the signature: %s, want authorized and unsigned", st.raw)
	}
	hash0 := c.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": zeroth}).must(t, 201).str("tx_hash")
	if done := c.waitStatus(agent, zeroth, "confirmed"); done.str("tx_hash") != hash0 || hash0 == "" {
		t.Fatalf("confirmed with another hash: %s, executed %q", done.raw, hash0)
	}
	checkOnChain(t, ec, hash0, wallet, start0)
	if n, pending, got := chainState(t, ec, wallet, payee0); n != start0+1 || pending != start0+1 || got.Cmp(amount) != 0 {
		t.Fatalf("after the payment signed past the crash: nonce %d pending %d paid %s, want %d, %d, %s", n, pending, got, start0+1, start0+1, amount)
	}
	srv.stop(t)

	// run 1: die after committing the first payment's signature
	srv = start(crashAfterCommit)
	nonce0, _, _ := chainState(t, ec, wallet, payee)
	if _, err := srv.post("/api/execute_transaction", agent, `{"transaction_id":"`+first+`"}`); err == nil {
		t.Fatal("execute answered although the server was to die before the broadcast")
	}
	srv.killed(t)
	if n, pending, got := chainState(t, ec, wallet, payee); n != nonce0 || pending != nonce0 || got.Sign() != 0 {
		t.Fatalf("the crash point was not before the broadcast: nonce %d pending %d paid %s", n, pending, got)
	}

	// run 2: the retry and the tracker send the stored bytes, once
	srv = start("")
	c = srv.client(t)
	st := c.do("GET", "/api/transaction_status?transaction_id="+first, agent, nil).must(t, 200)
	hash1 := st.str("tx_hash")
	if hash1 == "" || (st.str("status") != "submitted" && st.str("status") != "confirmed") {
		t.Fatalf("after the restart: %s", st.raw)
	}
	if again := c.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": first}).must(t, 201); again.str("tx_hash") != hash1 {
		t.Fatalf("the retry signed anew: %s, stored %s", again.str("tx_hash"), hash1)
	}
	if done := c.waitStatus(agent, first, "confirmed"); done.str("tx_hash") != hash1 {
		t.Fatalf("confirmed with another hash: %s", done.raw)
	}
	if n, pending, got := chainState(t, ec, wallet, payee); n != nonce0+1 || pending != nonce0+1 || got.Cmp(amount) != 0 {
		t.Fatalf("after the first payment: nonce %d pending %d paid %s, want %d, %d, %s", n, pending, got, nonce0+1, nonce0+1, amount)
	}
	checkOnChain(t, ec, hash1, wallet, nonce0)

	second, third := prepare(c, payee), prepare(c, payee)
	c.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]any{"transaction_ids": []string{second, third}, "mfa_code": steps.code(u.secret)}).must(t, 200)
	srv.stop(t)

	// run 3: die after the broadcast, before anything is written
	srv = start(crashAfterBroadcast)
	if _, err := srv.post("/api/execute_transaction", agent, `{"transaction_id":"`+second+`"}`); err == nil {
		t.Fatal("execute answered although the server was to die after the broadcast")
	}
	srv.killed(t)
	waitMined(t, ec, wallet, nonce0+2)

	// run 4: the retry returns the broadcast hash; nothing is sent again
	srv = start("")
	c = srv.client(t)
	again := c.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": second}).must(t, 201)
	hash2 := again.str("tx_hash")
	if hash2 == "" || hash2 == hash1 {
		t.Fatalf("second payment's hash %q", hash2)
	}
	if done := c.waitStatus(agent, second, "confirmed"); done.str("tx_hash") != hash2 {
		t.Fatalf("confirmed with another hash: %s", done.raw)
	}
	checkOnChain(t, ec, hash2, wallet, nonce0+1)
	time.Sleep(500 * time.Millisecond) // a few tracker passes: nothing more may be sent
	want := new(big.Int).Mul(amount, big.NewInt(2))
	if n, pending, got := chainState(t, ec, wallet, payee); n != nonce0+2 || pending != nonce0+2 || got.Cmp(want) != 0 {
		t.Fatalf("after both payments: nonce %d pending %d paid %s, want %d, %d, %s", n, pending, got, nonce0+2, nonce0+2, want)
	}

	srv.stop(t)

	// run 5 and 6: a power loss, emulated. The server dies after the
	// broadcast, and the commit that stored the signature is then undone
	// as a power loss under synchronous=NORMAL could undo it (or, on
	// PostgreSQL, a failover to a standby the commit had not reached): the
	// row is authorized again, the nonce counter behind, the audit entry
	// and the event gone. The retry must find the broadcast transaction on
	// the chain and adopt it, not sign a second one (the old code did:
	// paid twice).
	srv = start(crashAfterBroadcast)
	if _, err := srv.post("/api/execute_transaction", agent, `{"transaction_id":"`+third+`"}`); err == nil {
		t.Fatal("execute answered although the server was to die after the broadcast")
	}
	srv.killed(t)
	waitMined(t, ec, wallet, nonce0+3)
	loseLastCommit(t, store, dir, third, nonce0+2)
	srv = start("")
	c = srv.client(t)
	if st := c.do("GET", "/api/transaction_status?transaction_id="+third, agent, nil).must(t, 200); st.body["tx_hash"] != nil && st.str("status") == "submitted" {
		t.Fatalf("the emulated power loss did not undo the commit: %s", st.raw)
	}
	adopted := c.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": third}).must(t, 201)
	hash3 := adopted.str("tx_hash")
	if done := c.waitStatus(agent, third, "confirmed"); done.str("tx_hash") != hash3 {
		t.Fatalf("confirmed with another hash: %s", done.raw)
	}
	checkOnChain(t, ec, hash3, wallet, nonce0+2)
	time.Sleep(500 * time.Millisecond)
	want = new(big.Int).Mul(amount, big.NewInt(3))
	if n, pending, got := chainState(t, ec, wallet, payee); n != nonce0+3 || pending != nonce0+3 || got.Cmp(want) != 0 {
		t.Fatalf("after the lost commit: nonce %d pending %d paid %s, want %d, %d, %s (paid twice?)", n, pending, got, nonce0+3, nonce0+3, want)
	}

	// every payment, asked again after the crashes, answers its one hash
	for id, hash := range map[string]string{zeroth: hash0, first: hash1, second: hash2, third: hash3} {
		if r := c.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": id}).must(t, 201); r.str("tx_hash") != hash || r.str("status") != "confirmed" {
			t.Fatalf("execute of %s after it confirmed: %s, want %s confirmed", id, r.raw, hash)
		}
	}
	if _, _, got := chainState(t, ec, wallet, payee0); got.Cmp(amount) != 0 {
		t.Fatalf("the payment signed after the before-sign crash paid %s, want %s", got, amount)
	}

	// one signature per approval in the audit log
	signed, adoptedBy := map[string]int{}, map[string]int{}
	al := c.do("GET", "/api/audit?limit=1000", bearer(u.token), nil).must(t, 200)
	for _, x := range al.body["entries"].([]any) {
		e := x.(map[string]any)
		s, _ := e["subject"].(string)
		switch e["action"] {
		case "transaction.execute":
			signed[s]++
		case "transaction.adopt":
			adoptedBy[s]++
		}
	}
	if signed[zeroth] != 1 || signed[first] != 1 || signed[second] != 1 || signed[third] != 0 || adoptedBy[third] != 1 {
		t.Fatalf("signatures per approval %v, adoptions %v: want one each, the third's lost with its commit and adopted from the chain", signed, adoptedBy)
	}
	srv.stop(t)
	if n, err := core.VerifyAudit(context.Background(), mustOpenStoreDB(t, dir, store.dsn)); err != nil {
		t.Fatalf("audit chain after the crashes: %d entries, %v", n, err)
	}
}

// loseLastCommit undoes, in the stopped server's database, the commit
// that signed transaction id at nonce: what a power loss could do to a
// commit SQLite had not synced.
func loseLastCommit(t *testing.T, store crashStore, dir, id string, nonce uint64) {
	t.Helper()
	db, rebind := store.open(t, dir)
	defer db.Close()
	var owner, from string
	var chainID int64
	if err := db.QueryRow(rebind(`SELECT owner_id, from_address, chain_id FROM transactions WHERE id = ? AND status = 'submitted' AND nonce = ?`), id, int64(nonce)).
		Scan(&owner, &from, &chainID); err != nil {
		t.Fatalf("the signed row: %v", err)
	}
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`UPDATE transactions SET status = 'authorized', nonce = NULL, raw_tx = NULL, tx_hash = '', broadcasts = 0, next_broadcast_at = 0 WHERE id = ?`, []any{id}},
		{`UPDATE nonces SET next_nonce = ? WHERE chain_id = ? AND address = ?`, []any{int64(nonce), chainID, from}},
		{`DELETE FROM audit WHERE owner_id = ? AND seq = (SELECT MAX(seq) FROM audit WHERE owner_id = ?) AND action = 'transaction.execute' AND subject = ?`, []any{owner, owner, id}},
		{`DELETE FROM events WHERE id = (SELECT MAX(id) FROM events WHERE owner_id = ?) AND subject = ?`, []any{owner, id}},
	} {
		res, err := db.Exec(rebind(q.sql), q.args...)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%s: %d rows", q.sql, n)
		}
	}
}

// checkOnChain checks the mined transaction hash is from wallet at nonce.
func checkOnChain(t *testing.T, ec *ethclient.Client, hash, wallet string, nonce uint64) {
	t.Helper()
	tx, pending, err := ec.TransactionByHash(context.Background(), common.HexToHash(hash))
	if err != nil || pending {
		t.Fatalf("%s on chain: pending %v, %v", hash, pending, err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil || from != common.HexToAddress(wallet) || tx.Nonce() != nonce {
		t.Fatalf("%s: from %s nonce %d, want %s nonce %d (%v)", hash, from.Hex(), tx.Nonce(), wallet, nonce, err)
	}
}

func mustOpenStore(t *testing.T, dir string) countersign.Store {
	t.Helper()
	return mustOpenStoreDB(t, dir, "")
}

// mustOpenStoreDB opens the store of data directory dir, or the database
// db when it is set (a postgres:// URL).
func mustOpenStoreDB(t *testing.T, dir, db string) countersign.Store {
	t.Helper()
	cfg := &Config{DataDir: dir, DB: db}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	st, err := openStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
