package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/countersign/countersign/core"
)

// runCmd runs the command line in-process and returns its stdout.
func runCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &out, &errb)
	return out.String(), err
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// spendOnce prepares, approves, executes and confirms one native spend
// from the agent's wallet, funding it first (the embedded dev chain starts
// empty on every start), and returns its transaction id.
func spendOnce(t *testing.T, e *env, u *user, wallet, key string) string {
	t.Helper()
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(1).String()}).must(t, 200)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	e.approveAndExecute(u, key, id)
	return id
}

// relogin signs u in again (a restored or restarted server): the password
// hash and, with the first MFA code, the sealed TOTP secret are the
// restored ones.
func relogin(t *testing.T, e *env, u *user) {
	t.Helper()
	u.token = e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password}).must(t, 200).str("access_token")
}

// The restore test: a server with a wallet and a spend is
// backed up while it serves (spends keep being prepared during the
// backup), the backup is restored into a new directory, a server started
// from it signs with the restored wallet (the sealed unlock secret opens
// under the KEK, the keystore file is there, the TOTP secret checks the
// approval's code), and audit verify passes.
func TestBackupRestore_EndToEnd(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	u, wallet, _, key := setup(t, e)
	first := spendOnce(t, e, u, wallet, key)

	out := filepath.Join(t.TempDir(), "countersign.backup")
	var busy sync.WaitGroup
	var stopBusy atomic.Bool
	prepared := 0
	busy.Add(1)
	go func() { // the server keeps writing while the backup runs
		defer busy.Done()
		for !stopBusy.Load() && prepared < 200 {
			e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "7"}).must(t, 202)
			prepared++
		}
	}()
	msg, err := runCmd(t, "backup", "--out", out, "--data-dir", dir)
	stopBusy.Store(true)
	busy.Wait()
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if !strings.Contains(msg, "master key is not in the backup") {
		t.Fatalf("backup output: %s", msg)
	}
	info, err := os.Stat(out)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v %v", info, err)
	}
	if _, err := os.Stat(out + ".tmp"); !os.IsNotExist(err) {
		t.Fatalf("temp file left: %v", err)
	}
	if _, err := runCmd(t, "backup", "--out", out, "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("backup over an existing file: %v", err)
	}
	names := archiveNames(t, out)
	if names[0] != backupManifestName || !contains(names, backupDBName) || !hasPrefix(names, "keystore/") {
		t.Fatalf("archive entries: %v", names)
	}
	// Secrets stay sealed: the master key is not in the archive, in any form.
	mk, err := os.ReadFile(filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(out)
	if bytes.Contains(raw, bytes.TrimSpace(mk)) || contains(names, "master.key") {
		t.Fatal("the master key is in the backup")
	}

	target := filepath.Join(t.TempDir(), "restored")
	msg, err = runCmd(t, "restore", "--from", out, "--data-dir", target, "--master-key-file", filepath.Join(dir, "master.key"))
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if !strings.Contains(msg, "audit chain OK") || !strings.Contains(msg, "sealed values open") {
		t.Fatalf("restore output: %s", msg)
	}
	stop()
	copyFile(t, filepath.Join(dir, "master.key"), filepath.Join(target, "master.key"))

	e2, stop2, err := startAt(t, target, clock)
	if err != nil {
		t.Fatalf("start on the restored data: %v", err)
	}
	relogin(t, e2, u)
	if st := e2.do("GET", "/api/transaction_status?transaction_id="+first, apiKey(key), nil).must(t, 200); st.str("status") != "confirmed" {
		t.Fatalf("the spend from before the backup: %s", st.raw)
	}
	spendOnce(t, e2, u, wallet, key) // the restored wallet key signs
	stop2()
	if msg, err := runCmd(t, "audit", "verify", "--data-dir", target); err != nil || !strings.Contains(msg, "audit chain OK") {
		t.Fatalf("audit verify on the restored data: %v %s", err, msg)
	}
}

func archiveNames(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return names
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasPrefix(list []string, p string) bool {
	for _, x := range list {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}

// rewriteArchive copies the backup at from to a new file, passing each
// entry through edit (which may change its name and bytes).
func rewriteArchive(t *testing.T, from string, edit func(name string, b []byte) (string, []byte)) string {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	to := filepath.Join(t.TempDir(), "edited.backup")
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	tr, tw := tar.NewReader(in), tar.NewWriter(out)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		name, nb := edit(h.Name, b)
		if name == "" {
			continue // dropped
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(nb)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(nb)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return to
}

// A restore refuses, and leaves no data directory behind, when: the
// target holds anything; the archive's database was altered (checksum);
// an entry would land outside the data directory; the audit chain in the
// backup is broken (even with a manifest checksum to match); the master
// key file given does not open the sealed values. A restore that skipped
// these checks would put a server on data it cannot sign with, or on
// rewritten history.
func TestSecurity_RestoreRefusesBadBackups(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	u, wallet, _, key := setup(t, e)
	spendOnce(t, e, u, wallet, key)
	stop()
	good := filepath.Join(t.TempDir(), "good.backup")
	if _, err := runCmd(t, "backup", "--out", good, "--data-dir", dir); err != nil {
		t.Fatal(err)
	}
	mk := filepath.Join(dir, "master.key")

	refused := func(name, from, want string, extra ...string) {
		t.Helper()
		target := filepath.Join(t.TempDir(), "restored")
		_, err := runCmd(t, append([]string{"restore", "--from", from, "--data-dir", target}, extra...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: restore gave %v, want an error with %q", name, err, want)
		}
		if _, err := os.Stat(target); !os.IsNotExist(err) {
			t.Fatalf("%s: the refused restore left %s", name, target)
		}
		if left, _ := filepath.Glob(filepath.Join(filepath.Dir(target), ".restored.restore-*")); len(left) > 0 {
			t.Fatalf("%s: temp dir left: %v", name, left)
		}
	}

	// not empty
	full := filepath.Join(t.TempDir(), "full")
	os.Mkdir(full, 0o700)
	os.WriteFile(filepath.Join(full, "countersign.db"), []byte("precious"), 0o600)
	if _, err := runCmd(t, "restore", "--from", good, "--data-dir", full); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore over a used data dir: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(full, "countersign.db")); string(b) != "precious" {
		t.Fatal("the refused restore changed the data dir")
	}

	refused("flipped database byte", rewriteArchive(t, good, func(n string, b []byte) (string, []byte) {
		if n == backupDBName {
			b[len(b)/2] ^= 1
		}
		return n, b
	}), "checksum")
	refused("path traversal", rewriteArchive(t, good, func(n string, b []byte) (string, []byte) {
		if strings.HasPrefix(n, "keystore/") {
			return "keystore/../../escape.kdb", b
		}
		return n, b
	}), "unexpected entry")
	refused("not a backup", mk, "not a countersign backup")
	refused("flipped key file byte", rewriteArchive(t, good, func(n string, b []byte) (string, []byte) {
		if strings.HasPrefix(n, "keystore/") {
			b[len(b)/2] ^= 1
		}
		return n, b
	}), "checksum")
	refused("key file dropped", rewriteArchive(t, good, func(n string, b []byte) (string, []byte) {
		if strings.HasPrefix(n, "keystore/") {
			return "", nil
		}
		return n, b
	}), "does not hold")

	// a backup run with another keystore than the server's (here an empty
	// KEYSTORE_DIR) refuses, rather than writing a backup without the keys
	elsewhere := filepath.Join(t.TempDir(), "bad.backup")
	env := map[string]string{"KEYSTORE_DIR": t.TempDir()}
	err = run(context.Background(), []string{"backup", "--out", elsewhere, "--data-dir", dir}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "has no key file") {
		t.Fatalf("backup with another KEYSTORE_DIR: %v", err)
	}
	if _, err := os.Stat(elsewhere); !os.IsNotExist(err) {
		t.Fatal("the refused backup left a file")
	}

	// An audit row edited in the database, the manifest's checksum redone
	// to match: the checksum passes, audit verify does not.
	tmpDB := filepath.Join(t.TempDir(), "x.db")
	var manifest backupManifest
	edited := rewriteArchive(t, good, func(n string, b []byte) (string, []byte) {
		switch n {
		case backupManifestName:
			json.Unmarshal(b, &manifest)
			return n, b
		case backupDBName:
			os.WriteFile(tmpDB, b, 0o600)
			db, err := sql.Open("sqlite", tmpDB)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`UPDATE audit SET details = '{"amount":"1"}' WHERE action = 'transaction.execute'`); err != nil {
				t.Fatal(err)
			}
			db.Close()
			nb, _ := os.ReadFile(tmpDB)
			return n, nb
		}
		return n, b
	})
	sum, _ := fileSHA256(tmpDB)
	manifest.DBSHA256 = sum
	mb, _ := json.Marshal(manifest)
	edited = rewriteArchive(t, edited, func(n string, b []byte) (string, []byte) {
		if n == backupManifestName {
			return n, mb
		}
		return n, b
	})
	refused("rewritten audit history", edited, "audit chain BROKEN")

	// the wrong master key
	wrong := filepath.Join(t.TempDir(), "wrong.key")
	if _, err := runCmd(t, "rotate-master-key", "--new-key-file", wrong, "--stage", "--master-key-file", filepath.Join(t.TempDir(), "none.key")); err == nil {
		t.Fatal("staged a key into a master key file that does not exist")
	}
	if _, err := os.Stat(wrong); !os.IsNotExist(err) {
		t.Fatal("a refused rotation generated a key file")
	}
	writeKeyFile(t, wrong)
	refused("wrong master key", good, "does not open", "--master-key-file", wrong)

	// the good one restores (and the checks above were not just failing)
	target := filepath.Join(t.TempDir(), "ok")
	if _, err := runCmd(t, "restore", "--from", good, "--data-dir", target, "--master-key-file", mk); err != nil {
		t.Fatalf("the good backup: %v", err)
	}
	if n, err := core.VerifyAudit(context.Background(), mustOpenStore(t, target)); err != nil || n == 0 {
		t.Fatalf("restored audit: %d %v", n, err)
	}
}

// writeKeyFile writes a master key file with one new random key.
func writeKeyFile(t *testing.T, path string) []byte {
	t.Helper()
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return k
}

// With KEYSTORE=store the wallet key files are rows: the backup is the
// database alone, and the restored server (KEYSTORE=store, as the restore
// says) signs with them.
func TestBackupRestore_KeystoreInStore(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	inStore := func(c *Config) { c.KeystoreKind = "store" }
	e, stop, err := startAt(t, dir, clock, inStore)
	if err != nil {
		t.Fatal(err)
	}
	u, wallet, _, key := setup(t, e)
	spendOnce(t, e, u, wallet, key)
	out := filepath.Join(t.TempDir(), "b")
	if _, err := runCmd(t, "backup", "--out", out, "--data-dir", dir, "--keystore", "store"); err != nil {
		t.Fatal(err)
	}
	stop()
	if names := archiveNames(t, out); hasPrefix(names, "keystore/") || len(names) != 2 {
		t.Fatalf("archive entries with KEYSTORE=store: %v", names)
	}
	target := filepath.Join(t.TempDir(), "r")
	msg, err := runCmd(t, "restore", "--from", out, "--data-dir", target, "--master-key-file", filepath.Join(dir, "master.key"))
	if err != nil || !strings.Contains(msg, "KEYSTORE=store") || !strings.Contains(msg, "1 wallet key files present") {
		t.Fatalf("restore: %v %s", err, msg)
	}
	copyFile(t, filepath.Join(dir, "master.key"), filepath.Join(target, "master.key"))
	e, stop, err = startAt(t, target, clock, inStore)
	if err != nil {
		t.Fatal(err)
	}
	relogin(t, e, u)
	spendOnce(t, e, u, wallet, key)
	stop()
}

// `backup` on PostgreSQL refuses before it opens the database (opening
// runs the migrations against it): here nothing listens, and the answer
// is still the pointer to pg_dump.
func TestBackup_PostgresRefusedBeforeOpening(t *testing.T) {
	_, err := runCmd(t, "backup", "--out", filepath.Join(t.TempDir(), "x"), "--db", "postgres://cs:pw@127.0.0.1:1/cs", "--data-dir", t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "pg_dump") || strings.Contains(err.Error(), "connect") {
		t.Fatalf("backup on PostgreSQL: %v", err)
	}
}
