package main

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, to tamper behind the server's back

	"github.com/countersign/countersign/store/postgres/pgtest"
)

// onPostgres points the server at a fresh PostgreSQL database (a real
// server, started once per test binary by pgtest) and reports the
// configuration the wiring settled on.
func onPostgres(dsn string, cfg **Config) envOption {
	return func(c *Config) {
		c.DB = dsn
		*cfg = c
	}
}

// TestPostgres_CountersignedFlow runs the countersigned spend end to end on
// PostgreSQL through the real wiring (DATABASE_URL=postgres://…): register,
// MFA, a wallet (its key file in the database: KEYSTORE defaults to store),
// an agent, prepare, authorize with a TOTP code, execute, confirmed; then
// `audit verify --db postgres://…` passes, and detects an edited row.
func TestPostgres_CountersignedFlow(t *testing.T) {
	dsn := pgtest.Start(t)
	var cfg *Config
	e := newEnv(t, onPostgres(dsn, &cfg))
	if cfg.KeystoreKind != "store" {
		t.Fatalf("KEYSTORE defaulted to %q on PostgreSQL, want store", cfg.KeystoreKind)
	}
	u, wallet, _, key := setup(t, e)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000", "memo": "pg"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	hash := e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201).str("tx_hash")
	if again := e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201).str("tx_hash"); again != hash || hash == "" {
		t.Fatalf("a second execute answered %q, the first %q", again, hash)
	}
	e.waitStatus(apiKey(key), id, "confirmed")

	// the wallet's key file is a row, not a file of this machine
	if names, _ := os.ReadDir(filepath.Join(cfg.DataDir, "keystore")); len(names) != 0 {
		t.Fatalf("KEYSTORE=store wrote %d key files into the data directory", len(names))
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var blobs int
	if err := db.QueryRow(`SELECT count(*) FROM key_blobs k JOIN wallets w ON w.id = k.wallet_id WHERE lower(w.address) = lower($1)`, wallet).Scan(&blobs); err != nil || blobs != 1 {
		t.Fatalf("%d key blobs in the database for the wallet (%v)", blobs, err)
	}

	verify := func() (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"audit", "verify", "--db", dsn}, func(string) string { return "" }, &out, &errb)
		return out.String(), err
	}
	if out, err := verify(); err != nil || !strings.Contains(out, "audit chain OK") {
		t.Fatalf("audit verify on PostgreSQL: %q %v", out, err)
	}
	if _, err := db.Exec(`UPDATE audit SET details = '{"amount":"999"}' WHERE action = 'transaction.prepare'`); err != nil {
		t.Fatal(err)
	}
	if _, err := verify(); err == nil || !strings.Contains(err.Error(), "BROKEN") {
		t.Fatalf("an edited audit row on PostgreSQL was not detected: %v", err)
	}
}

// TestMoney_PostgresConcurrentExecute: twenty concurrent executes of one
// approval on PostgreSQL (where transactions run side by side, unlike
// SQLite's single writer) sign and broadcast one transaction: one hash,
// one nonce used, one execute audit entry.
func TestMoney_PostgresConcurrentExecute(t *testing.T) {
	var cfg *Config
	e := newEnv(t, onPostgres(pgtest.Start(t), &cfg))
	u, wallet, _, key := setup(t, e)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	const n = 20
	hashes := make([]string, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r := e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id})
			if r.status != 201 {
				t.Errorf("execute %d: %d %s", i, r.status, r.raw)
			}
			hashes[i] = r.str("tx_hash")
		}()
	}
	close(start)
	wg.Wait()
	for _, h := range hashes {
		if h != hashes[0] || h == "" {
			t.Fatalf("different hashes from concurrent executes: %v", hashes)
		}
	}
	e.waitStatus(apiKey(key), id, "confirmed")
	nonce, err := e.app.Dev.Client().NonceAt(context.Background(), common.HexToAddress(wallet), nil)
	if err != nil || nonce != 1 {
		t.Fatalf("the wallet sent %d transactions, want exactly 1 (%v)", nonce, err)
	}
	executes := 0
	for _, x := range e.do("GET", "/api/audit?limit=1000", bearer(u.token), nil).must(t, 200).body["entries"].([]any) {
		if x.(map[string]any)["action"] == "transaction.execute" {
			executes++
		}
	}
	if executes != 1 {
		t.Fatalf("%d execute audit entries, want 1", executes)
	}
}

// TestSecurity_PostgresTOTPCodeOnceUnderConcurrency: one TOTP code sent
// with ten authorizations at once to two replicas on one PostgreSQL (the
// same master key file, as OPERATIONS.md says): one is accepted, the
// others are replays. Within one process the service's group commit
// already serialises the checks; across replicas only the store's row lock
// on the user (UserByID … FOR UPDATE) does.
func TestSecurity_PostgresTOTPCodeOnceUnderConcurrency(t *testing.T) {
	dsn := pgtest.Start(t)
	var cfg, cfg2 *Config
	e := newEnv(t, onPostgres(dsn, &cfg))
	other := newEnv(t, onPostgres(dsn, &cfg2), func(c *Config) {
		c.MasterKeyFile = cfg.MasterKeyFile
		c.AcceptNewChain = true // its own embedded dev chain: only the database is shared here
	})
	replicas := []*env{e, other}
	u, _, _, key := setup(t, e)
	const n = 10
	ids := make([]string, n)
	for i := range ids {
		ids[i] = e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202).str("transaction_id")
	}
	code := e.code(u)
	statuses := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			statuses[i] = replicas[i%2].do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": ids[i], "mfa_code": code}).status
		}()
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case 200:
			ok++
		case 403, 429:
		default:
			t.Errorf("authorize answered %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("one TOTP code authorized %d transactions (statuses %v)", ok, statuses)
	}
}

// TestSecurity_PostgresReplicaWithAnotherMasterKeyRefused: a second replica
// on the same PostgreSQL with a master key of its own (the file was not
// copied, so it generated one) cannot open the database's keys: its start
// is refused, naming the master key file, and it serves nothing.
func TestSecurity_PostgresReplicaWithAnotherMasterKeyRefused(t *testing.T) {
	dsn := pgtest.Start(t)
	var cfg, cfg2 *Config
	e := newEnv(t, onPostgres(dsn, &cfg))
	setup(t, e)
	_, _, err := startAt(t, t.TempDir(), restartClock(), onPostgres(dsn, &cfg2), func(c *Config) { c.AcceptNewChain = true })
	if err == nil || !strings.Contains(err.Error(), "master key file") {
		t.Fatalf("a replica with another master key: %v", err)
	}
}
