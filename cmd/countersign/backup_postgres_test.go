package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/countersign/countersign/store/postgres/pgtest"
)

// pgTool finds a PostgreSQL client program of the newest installed
// version (the same the test server runs: pg_dump refuses a newer server).
func pgTool(t *testing.T, name string) string {
	t.Helper()
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	sort.Strings(found)
	if len(found) > 0 {
		return found[len(found)-1]
	}
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found: install postgresql-client (the test server is running, so the server package is there)", name)
	}
	return p
}

// The PostgreSQL backup procedure of docs/OPERATIONS.md, run as written:
// pg_dump --format=custom while the server serves, pg_restore into a new,
// empty database, a server started on it (and the master key file) signs
// with the wallets, whose key files are rows (KEYSTORE=store), and audit
// verify passes. `countersign backup` on PostgreSQL says to use pg_dump.
func TestPostgres_BackupRestoreProcedure(t *testing.T) {
	dsn := pgtest.Start(t)
	var cfg *Config
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock, onPostgres(dsn, &cfg))
	if err != nil {
		t.Fatal(err)
	}
	u, wallet, _, key := setup(t, e)
	first := spendOnce(t, e, u, wallet, key)

	if _, err := runCmd(t, "backup", "--out", filepath.Join(t.TempDir(), "x"), "--db", dsn, "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Fatalf("backup on PostgreSQL: %v", err)
	}

	dump := filepath.Join(t.TempDir(), "countersign.pgdump")
	if out, err := exec.Command(pgTool(t, "pg_dump"), "--format=custom", "--no-owner", "--file", dump, dsn).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v\n%s", err, out)
	}
	target := pgtest.Start(t)
	if out, err := exec.Command(pgTool(t, "pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction", "--dbname", target, dump).CombinedOutput(); err != nil {
		t.Fatalf("pg_restore: %v\n%s", err, out)
	}
	stop()

	dir2 := privateDir(t)
	b, err := os.ReadFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir2, "master.key"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg2 *Config
	e2, stop2, err := startAt(t, dir2, clock, onPostgres(target, &cfg2))
	if err != nil {
		t.Fatalf("start on the restored database: %v", err)
	}
	relogin(t, e2, u)
	if st := e2.do("GET", "/api/transaction_status?transaction_id="+first, apiKey(key), nil).must(t, 200); st.str("status") != "confirmed" {
		t.Fatalf("the spend from before the dump: %s", st.raw)
	}
	spendOnce(t, e2, u, wallet, key)
	stop2()
	if msg, err := runCmd(t, "audit", "verify", "--db", target); err != nil || !strings.Contains(msg, "audit chain OK") {
		t.Fatalf("audit verify on the restored database: %v %s", err, msg)
	}
}

// rotate-master-key on PostgreSQL while the server serves: every sealed
// value moves to the new key, the running server signs with them, and
// after the old key is retired a restarted server starts and signs.
func TestPostgres_RotateWhileServing(t *testing.T) {
	dsn := pgtest.Start(t)
	var cfg *Config
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock, onPostgres(dsn, &cfg), allowLoopbackHooks)
	if err != nil {
		t.Fatal(err)
	}
	u, wallet, _, key := setup(t, e)
	spendOnce(t, e, u, wallet, key)
	e.do("POST", "/v1/webhooks", anon, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"signed"}}).must(t, 201)

	newFile := filepath.Join(t.TempDir(), "new.key")
	if msg, err := runCmd(t, "rotate-master-key", "--new-key-file", newFile, "--db", dsn, "--data-dir", dir); err != nil || !strings.Contains(msg, "no sealed value uses key id(s)") {
		t.Fatalf("rotate on PostgreSQL: %v\n%s", err, msg)
	}
	spendOnce(t, e, u, wallet, key) // the running server follows the key file
	if msg, err := runCmd(t, "rotate-master-key", "--retire", "--db", dsn, "--data-dir", dir); err != nil {
		t.Fatalf("retire: %v %s", err, msg)
	}
	stop()
	if ids := keyIDOfFile(t, filepath.Join(dir, "master.key")); len(ids) != 1 || ids[0] != keyIDOfFile(t, newFile)[0] {
		t.Fatalf("master key file after retiring: %v", ids)
	}
	e, stop, err = startAt(t, dir, clock, onPostgres(dsn, &cfg), allowLoopbackHooks)
	if err != nil {
		t.Fatalf("start with only the new key: %v", err)
	}
	relogin(t, e, u)
	spendOnce(t, e, u, wallet, key)
	stop()
}
