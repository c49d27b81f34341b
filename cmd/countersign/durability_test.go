package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/chain/sim"
)

// startAt starts the real wiring on data directory dir with clock (kept
// across restarts, so TOTP steps keep increasing). stop closes it early;
// it is also closed when the test ends.
func startAt(t testing.TB, dir string, clock *testClock, opts ...envOption) (e *env, stop func(), err error) {
	t.Helper()
	cfg := &Config{Addr: "127.0.0.1:0", DataDir: dir, Clock: clock, PollInterval: 20 * time.Millisecond,
		Argon2: auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1}, LogFormat: "json"}
	for _, o := range opts {
		o(cfg)
	}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log, err := newLogger("json", "debug", logs)
	if err != nil {
		t.Fatal(err)
	}
	app, err := Start(context.Background(), cfg, log)
	if err != nil {
		return nil, nil, err
	}
	closed := false
	stop = func() {
		if !closed {
			closed = true
			if err := app.Close(); err != nil {
				t.Errorf("close: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return &env{t: t, app: app, url: app.URL, clock: clock, logs: logs, http: &http.Client{Timeout: 90 * time.Second}}, stop, nil
}

func restartClock() *testClock { return &testClock{now: time.Now().UTC().Truncate(time.Second)} }

// A data directory that group or others can write to is refused before
// anything is written into it, unless --allow-open-data-dir says start
// anyway; one they can read gets a loud warning. On the old code the
// server started and filled either (database, WAL, master key, keystore)
// without a word.
func TestSecurity_OpenDataDirRefused(t *testing.T) {
	for _, mode := range []os.FileMode{0o777, 0o770, 0o1777} {
		dir := filepath.Join(t.TempDir(), "data")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, mode); err != nil {
			t.Fatal(err)
		}
		_, _, err := startAt(t, dir, restartClock())
		if err == nil || !strings.Contains(err.Error(), "writable by group or others") || !strings.Contains(err.Error(), "--allow-open-data-dir") {
			t.Fatalf("started on a %v data directory: %v", mode, err)
		}
		if names, _ := os.ReadDir(dir); len(names) != 0 {
			t.Fatalf("the refused start wrote %d entries into the directory, e.g. %s", len(names), names[0].Name())
		}
	}
	// a database directory elsewhere is checked too
	db := filepath.Join(t.TempDir(), "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(db, 0o777); err != nil {
		t.Fatal(err)
	}
	_, _, err := startAt(t, privateDir(t), restartClock(), func(c *Config) { c.DB = filepath.Join(db, "c.db") })
	if err == nil || !strings.Contains(err.Error(), db) {
		t.Fatalf("started with the database in a 0777 directory: %v", err)
	}

	// the override starts, and says so
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o777); err != nil {
		t.Fatal(err)
	}
	e, _, err := startAt(t, open, restartClock(), func(c *Config) { c.AllowOpenDataDir = true })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "DATA DIRECTORY IS OPEN TO GROUP OR OTHERS") {
		t.Fatalf("no warning: %s", e.logs.String())
	}

	// readable only: a warning, and the files in it are 0600
	readable := filepath.Join(t.TempDir(), "readable")
	if err := os.Mkdir(readable, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(readable, 0o755); err != nil {
		t.Fatal(err)
	}
	e, _, err = startAt(t, readable, restartClock())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "DATA DIRECTORY IS OPEN TO GROUP OR OTHERS") {
		t.Fatalf("no warning for a 0755 data directory: %s", e.logs.String())
	}
	e.newUser(false) // something written through the WAL
	for _, f := range []string{"countersign.db", "countersign.db-wal", "countersign.db-shm", "master.key"} {
		info, err := os.Stat(filepath.Join(readable, f))
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, info.Mode().Perm())
		}
	}
}

// privateDir is a fresh 0700 directory (t.TempDir gives 0755 under the
// usual umask).
func privateDir(t *testing.T) string {
	d := filepath.Join(t.TempDir(), "private")
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDurabilityFlags(t *testing.T) {
	for name, tt := range map[string]struct {
		args         []string
		env          map[string]string
		accept, open bool
		wantErr      string
	}{
		"ok/defaults fail closed": {},
		"ok/env":                  {env: map[string]string{"ACCEPT_NEW_CHAIN": "1", "ALLOW_OPEN_DATA_DIR": "true"}, accept: true, open: true},
		"ok/flags":                {args: []string{"--accept-new-chain", "--allow-open-data-dir"}, accept: true, open: true},
		"ok/a flag wins":          {args: []string{"--accept-new-chain=false"}, env: map[string]string{"ACCEPT_NEW_CHAIN": "1"}},
		"fail/not a boolean":      {env: map[string]string{"ACCEPT_NEW_CHAIN": "yes please"}, wantErr: "ACCEPT_NEW_CHAIN must be 1 or 0"},
	} {
		t.Run(name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			c, err := parseServeConfig(tt.args, getenv, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.AcceptNewChain != tt.accept || c.AllowOpenDataDir != tt.open {
				t.Fatalf("accept %v open %v", c.AcceptNewChain, c.AllowOpenDataDir)
			}
		})
	}
}

// devNode serves a fresh dev chain over HTTP JSON-RPC, as an external
// node would: two of them share chain id 1337 but not their genesis.
func devNode(t *testing.T) (*sim.Chain, string) { return devNodeTB(t) }

// devNodeTB is devNode for a test or a benchmark.
func devNodeTB(t testing.TB) (*sim.Chain, string) {
	t.Helper()
	c, err := sim.Start(context.Background(), []byte("countersign durability test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)
	return c, srv.URL
}

// The server records its chain at the first start and refuses, naming
// both, to start the same data on another chain of the same id; with
// --accept-new-chain it starts and the approved transaction is dropped,
// never signed for the new chain. On the old code the restart succeeded
// and execute signed the old approval on the new chain.
func TestMoney_ChainChangeRefusedAtStart(t *testing.T) {
	nodeA, urlA := devNode(t)
	_, urlB := devNode(t)
	dir, clock := t.TempDir(), restartClock()
	e, stop, err := startAt(t, dir, clock, func(c *Config) { c.ChainURL = urlA })
	if err != nil {
		t.Fatal(err)
	}
	u := e.newUser(true)
	wallet := e.createWallet(u)
	if _, err := nodeA.Fund(context.Background(), common.HexToAddress(wallet), ether(1)); err != nil {
		t.Fatal(err)
	}
	_, key := e.createAgent(u, wallet)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	stop()

	_, _, err = startAt(t, dir, clock, func(c *Config) { c.ChainURL = urlB })
	if err == nil {
		t.Fatal("the data of chain A started on chain B")
	}
	if !strings.Contains(err.Error(), "refusing to start on another chain") || !strings.Contains(err.Error(), "--accept-new-chain") ||
		strings.Count(err.Error(), "genesis 0x") != 2 {
		t.Fatalf("unclear refusal: %v", err)
	}

	e, _, err = startAt(t, dir, clock, func(c *Config) { c.ChainURL = urlB; c.AcceptNewChain = true })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.logs.String(), "THE CHAIN CHANGED") {
		t.Fatalf("no warning: %s", e.logs.String())
	}
	st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200)
	if st.str("status") != "dropped" || !strings.Contains(st.str("error"), "dropped") || st.body["tx_hash"] != nil {
		t.Fatalf("after the accepted change: %s", st.raw)
	}
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).refused(t, 409, "NOT_AUTHORIZED")
}

// Restarting on the embedded defaults starts a new dev chain. What was
// approved on the previous one is dropped, and the nonce counter starts
// over, so the next spend is mined on the new chain. On the old code the
// approval stayed executable and the counter kept the old chain's nonce:
// the next spend was signed with nonce 1 on a chain where the wallet had
// sent nothing, and stayed submitted for ever.
func TestMoney_EmbeddedRestartNotStuck(t *testing.T) {
	dir, clock := t.TempDir(), restartClock()
	e, stop, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	u := e.newUser(true)
	wallet := e.createWallet(u)
	fx := simFixture(e, u)
	fx.fund(t, wallet, ether(1))
	_, key := e.createAgent(u, wallet)
	agent := apiKey(key)
	first := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	e.approveAndExecute(u, key, first)
	e.waitStatus(agent, first, "confirmed")
	left := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": randomAddress(), "amount": "2000"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": left, "mfa_code": e.code(u)}).must(t, 200)
	stop()

	e, _, err = startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	if st := e.do("GET", "/api/transaction_status?transaction_id="+left, agent, nil).must(t, 200); st.str("status") != "dropped" {
		t.Fatalf("the old chain's approval after the restart: %s", st.raw)
	}
	e.do("POST", "/api/execute_transaction", agent, map[string]string{"transaction_id": left}).refused(t, 409, "NOT_AUTHORIZED")
	if st := e.do("GET", "/api/transaction_status?transaction_id="+first, agent, nil).must(t, 200); st.str("status") != "confirmed" {
		t.Fatalf("a finished transaction changed: %s", st.raw)
	}

	simFixture(e, u).fund(t, wallet, ether(1))
	next := e.do("POST", "/api/prepare_transaction", agent, map[string]string{"type": "native", "to_address": randomAddress(), "amount": "3000"}).must(t, 202).str("transaction_id")
	e.approveAndExecute(u, key, next)
	done := e.waitStatus(agent, next, "confirmed")
	if n, _ := done.body["nonce"].(float64); n != 0 {
		t.Fatalf("the first spend on the new chain has nonce %v, want 0: %s", done.body["nonce"], done.raw)
	}
}
