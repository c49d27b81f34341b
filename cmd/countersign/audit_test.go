package main

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// TestAuditVerifyCommand runs `countersign audit verify` on a real data dir,
// then edits, deletes and reorders rows behind the server's back: each is
// detected.
func TestAuditVerifyCommand(t *testing.T) {
	var dataDir string
	e := newEnv(t, func(c *Config) { dataDir = c.DataDir })
	u, _, _, key := setup(t, e)
	e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1", "memo": "m"}).must(t, 202)
	_ = u

	verify := func() (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), []string{"audit", "verify", "--data-dir", dataDir}, func(string) string { return "" }, &out, &errb)
		return out.String(), err
	}
	out, err := verify()
	if err != nil || !strings.Contains(out, "audit chain OK") {
		t.Fatalf("clean chain: %q %v", out, err)
	}

	db, err := sql.Open("sqlite", "file:"+dataDir+"/countersign.db?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE audit_backup AS SELECT * FROM audit`)
	restore := func() { exec(`DELETE FROM audit`); exec(`INSERT INTO audit SELECT * FROM audit_backup`) }
	for name, q := range map[string]string{
		"edited details": `UPDATE audit SET details = '{"amount":"999"}' WHERE action = 'transaction.prepare'`,
		"edited actor":   `UPDATE audit SET actor = 'user:someone' WHERE seq = 2`,
		"deleted row":    `DELETE FROM audit WHERE seq = 3`,
		"deleted head":   `DELETE FROM audit WHERE action = 'wallet.create'`,
	} {
		t.Run(name, func(t *testing.T) {
			defer restore()
			exec(q)
			if _, err := verify(); err == nil || !strings.Contains(err.Error(), "BROKEN") {
				t.Fatalf("tampering not detected: %v", err)
			}
		})
	}
	if _, err := verify(); err != nil {
		t.Fatalf("restored chain: %v", err)
	}
}

func TestCLI(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, &errb); err != nil || !strings.Contains(out.String(), "countersign") {
		t.Fatalf("version: %v %q", err, out.String())
	}
	if err := run(context.Background(), []string{"bogus"}, func(string) string { return "" }, &out, &errb); err == nil {
		t.Fatal("unknown command accepted")
	}
	env := map[string]string{"WALLET_BIND": "127.0.0.2", "WALLET_PORT": "9999", "JWT_ACCESS_TOKEN_EXPIRES": "60", "PENDING_TTL": "1h", "EVM_RPC_URL": "http://node:8545"}
	cfg, err := parseServeConfig(nil, func(k string) string { return env[k] }, &errb)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Addr != "127.0.0.2:9999" || cfg.TokenTTL.Seconds() != 60 || cfg.PendingTTL.Hours() != 1 || cfg.ChainURL != "http://node:8545" {
		t.Fatalf("config from env: %+v", cfg)
	}
	cfg, _ = parseServeConfig([]string{"--addr", "127.0.0.1:1"}, func(k string) string { return env[k] }, &errb)
	if cfg.Addr != "127.0.0.1:1" {
		t.Fatal("the flag does not win over the environment")
	}
	for _, bad := range []map[string]string{{"JWT_ACCESS_TOKEN_EXPIRES": "soon"}, {"PENDING_TTL": "-1h"}, {"PASSWORD_ARGON_MEMORY_MB": "100000"}} {
		if _, err := parseServeConfig(nil, func(k string) string { return bad[k] }, &errb); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
	if got := redactURL("https://user:secret@node.example/v3/KEY?apikey=x"); strings.Contains(got, "secret") || strings.Contains(got, "apikey") {
		t.Fatalf("redactURL: %s", got)
	}
	c := &Config{DB: "postgres://x"}
	if _, err := openStore(context.Background(), c); err == nil || !strings.Contains(err.Error(), "PostgreSQL") {
		t.Fatalf("postgres: %v", err)
	}
}
