package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/countersign/countersign/core"
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
	c := &Config{DB: "postgres://u:secret-pw@h:notaport/db"}
	if _, err := openStore(context.Background(), c); err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || strings.Contains(err.Error(), "secret-pw") {
		t.Fatalf("postgres: %v", err)
	}
}

// TestMoney_AuditCheckpointDetectsTruncation: deleting the newest entries
// of a chain leaves a chain that still links (audit verify passes: the
// finding), but not one that matches a signed checkpoint taken before.
// A checkpoint whose signature or heads were edited, or that another key
// signed, is refused.
func TestMoney_AuditCheckpointDetectsTruncation(t *testing.T) {
	var dataDir string
	e := newEnv(t, func(c *Config) { dataDir = c.DataDir })
	u, _, _, key := setup(t, e)
	for range 3 {
		e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1"}).must(t, 202)
	}
	cli := func(args ...string) (string, error) {
		var out, errb bytes.Buffer
		err := run(context.Background(), append(args, "--data-dir", dataDir), func(string) string { return "" }, &out, &errb)
		return out.String(), err
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}

	// the whole server's checkpoint, from the CLI
	out, err := cli("audit", "checkpoint")
	if err != nil {
		t.Fatalf("audit checkpoint: %v", err)
	}
	var cp core.AuditCheckpoint
	if err := json.Unmarshal([]byte(out), &cp); err != nil || cp.Version != 1 || len(cp.PublicKey) != 32 || len(cp.Signature) != 64 || len(cp.Heads) < 2 {
		t.Fatalf("checkpoint: %v %s", err, out)
	}
	full := write("full.json", []byte(out))

	// a user's own checkpoint, over the API: one head, their chain
	mine := e.do("GET", "/api/audit/checkpoint", bearer(u.token), nil).must(t, 200)
	heads, _ := mine.body["heads"].([]any)
	if len(heads) != 1 {
		t.Fatalf("user checkpoint: %s", mine.raw)
	}
	owner := heads[0].(map[string]any)["owner"].(string)
	seq := int64(heads[0].(map[string]any)["seq"].(float64))
	if seq < 5 {
		t.Fatalf("the user's chain has %d entries, the test needs 5", seq)
	}
	if pk, _ := mine.body["public_key"].(string); pk != base64.StdEncoding.EncodeToString(cp.PublicKey) {
		t.Fatal("the API and the CLI sign with different keys")
	}
	user := write("user.json", []byte(mine.raw))
	e.do("GET", "/api/audit/checkpoint", apiKey(key), nil).refused(t, 403, "FORBIDDEN")

	for _, f := range []string{full, user} {
		if out, err := cli("audit", "verify", "--checkpoint", f); err != nil || !strings.Contains(out, "checkpoint of") {
			t.Fatalf("untouched chain against %s: %q %v", f, out, err)
		}
	}

	db, err := sql.Open("sqlite", "file:"+dataDir+"/countersign.db?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE TABLE audit_cp_backup AS SELECT * FROM audit`)
	// the attack: the newest 3 entries of the user's chain go
	exec(`DELETE FROM audit WHERE owner_id = ? AND seq > ?`, owner, seq-3)
	if out, err := cli("audit", "verify"); err != nil {
		t.Fatalf("the truncated chain no longer links?: %q %v", out, err)
	}
	for _, f := range []string{full, user} {
		_, err := cli("audit", "verify", "--checkpoint", f)
		want := fmt.Sprintf("audit chain of %s: entries %d to %d", owner, seq-2, seq)
		if err == nil || !strings.Contains(err.Error(), "BROKEN") || !strings.Contains(err.Error(), want) {
			t.Fatalf("truncation not detected against %s: %v (want %q)", f, err, want)
		}
	}
	exec(`DELETE FROM audit`)
	exec(`INSERT INTO audit SELECT * FROM audit_cp_backup`)
	if _, err := cli("audit", "verify", "--checkpoint", user); err != nil {
		t.Fatalf("restored chain: %v", err)
	}

	// edited checkpoints
	tamper := func(name string, f func(cp *core.AuditCheckpoint)) string {
		var c core.AuditCheckpoint
		if err := json.Unmarshal([]byte(mine.raw), &c); err != nil {
			t.Fatal(err)
		}
		f(&c)
		b, _ := json.Marshal(c)
		return write(name, b)
	}
	other, otherPriv, _ := ed25519.GenerateKey(nil)
	for name, f := range map[string]func(*core.AuditCheckpoint){
		"signature": func(c *core.AuditCheckpoint) { c.Signature[0] ^= 1 },
		"seq":       func(c *core.AuditCheckpoint) { c.Heads[0].Seq-- },
		"created":   func(c *core.AuditCheckpoint) { c.CreatedAt = c.CreatedAt.Add(time.Second) },
		"other key": func(c *core.AuditCheckpoint) {
			// a consistent checkpoint, signed by someone else's key
			c.Heads[0].Seq -= 3
			c.PublicKey = other
			signCheckpointWith(t, c, otherPriv)
		},
	} {
		p := tamper(name+".json", f)
		if _, err := cli("audit", "verify", "--checkpoint", p); err == nil || !strings.Contains(err.Error(), "BROKEN") {
			t.Errorf("tampered checkpoint (%s) accepted: %v", name, err)
		}
	}
	if _, err := cli("audit", "verify", "--checkpoint", write("junk.json", []byte(`{"version":1,"extra":true}`))); err == nil {
		t.Error("a junk checkpoint file was accepted")
	}
}

// signCheckpointWith re-signs c with priv, as a forger with their own key would.
func signCheckpointWith(t *testing.T, c *core.AuditCheckpoint, priv ed25519.PrivateKey) {
	t.Helper()
	// The canonical encoding is the server's; a forger can compute it too
	// (it is public): only the key is theirs.
	c.Signature = ed25519.Sign(priv, core.AuditCheckpointMessage(c))
}
