package main

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/cloud/awskms/kmstest"
)

// kekURI runs the server with an AWS KMS key as its KEK; openOnly makes
// the KMS key open only (KEK_OPEN_ONLY=1).
func kekURI(uri string, openOnly bool) envOption {
	return func(c *Config) { c.KEKURI, c.KEKOpenOnly = uri, openOnly }
}

// sealedUnder fails unless every sealed value of dir is under key id want.
func sealedUnder(t *testing.T, dir, want string) map[string]map[string]int {
	t.Helper()
	st := sealedState(t, dir)
	for _, kind := range []string{countersign.SealedWallet, countersign.SealedMFA, countersign.SealedSigningKey} {
		if st[kind][want] == 0 {
			t.Fatalf("no %s value under %s: %v", kind, want, st)
		}
	}
	for kind, ids := range st {
		for id, n := range ids {
			if id != want {
				t.Fatalf("%d %s values under %s, want all under %s: %v", n, kind, id, want, st)
			}
		}
	}
	return st
}

// spendFresh makes a new wallet and agent for u (the agent's creation
// checks u's TOTP code: the sealed TOTP secret opens) and spends once
// from it. After a restart the tests spend from a new wallet: the
// embedded dev chain is new on every start, and an old wallet's history
// from the previous chain is the tracker's business, not the KEK's.
func spendFresh(t *testing.T, e *env, u *user) (wallet, key string) {
	t.Helper()
	wallet = e.createWallet(u)
	_, key = e.createAgent(u, wallet)
	spendOnce(t, e, u, wallet, key)
	return wallet, key
}

// A server with KEK_URI on local-kms creates a wallet, enrols TOTP and
// signs a transaction on the embedded chain; every secret is sealed under
// the KMS key and no master key file is ever written. Restarted, it signs
// again. Restarted with the KMS unreachable (a port where nothing
// listens), or without KEK_URI, it refuses to start, saying why, and
// leaves no master key file behind.
func TestKMS_ServerSignsWithKMSKEK(t *testing.T) {
	kms := kmstest.Start(t)
	arn := kms.SymmetricKey(t)
	kms.Alias(t, "countersign", arn)
	uri := kms.URI("alias/countersign") // an alias resolves to the key's ARN
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock, kekURI(uri, false))
	if err != nil {
		t.Fatal(err)
	}
	u, wallet, _, key := setup(t, e)
	spendOnce(t, e, u, wallet, key)
	stop()
	mk := filepath.Join(dir, "master.key")
	if _, err := os.Stat(mk); !os.IsNotExist(err) {
		t.Fatalf("a master key file was written although KMS seals: %v", err)
	}
	sealedUnder(t, dir, "awskms:"+arn)

	e, stop, err = startAt(t, dir, clock, kekURI(uri, false))
	if err != nil {
		t.Fatalf("restart on KMS: %v", err)
	}
	relogin(t, e, u)
	spendFresh(t, e, u)
	stop()

	down := "http://127.0.0.1:" + strconv.Itoa(freePort(t))
	_, _, err = startAt(t, dir, clock, kekURI(kmstest.KEKURIAt(arn, down), false))
	if err == nil || !strings.Contains(err.Error(), down) || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("start with the KMS unreachable: %v", err)
	}
	_, _, err = startAt(t, dir, clock)
	if err == nil || !strings.Contains(err.Error(), arn) || !strings.Contains(err.Error(), "KEK_URI") {
		t.Fatalf("start without KEK_URI on KMS-sealed data: %v", err)
	}
	if _, err := os.Stat(mk); !os.IsNotExist(err) {
		t.Fatalf("a refused start left a master key file: %v", err)
	}
}

// TestSecurity_KMSOutageWhileServingFailsClosed: when KMS goes away under
// a running server, an approval with a valid TOTP code cannot be checked
// (the TOTP secret is sealed under KMS) and is refused: the transaction
// stays pending, nothing is signed. The log names the KMS endpoint.
func TestSecurity_KMSOutageWhileServingFailsClosed(t *testing.T) {
	kms := kmstest.Start(t)
	arn := kms.SymmetricKey(t)
	e := newEnv(t, kekURI(kms.URI(arn), false))
	u, wallet, _, key := setup(t, e)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(1).String()}).must(t, 200)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	kms.Stop()
	r := e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)})
	if r.status >= 200 && r.status < 300 {
		t.Fatalf("authorized while the KMS holding the TOTP secret was down: %d %s", r.status, r.raw)
	}
	if st := e.do("GET", "/api/transaction_status?transaction_id="+id, apiKey(key), nil).must(t, 200).str("status"); st != "pending" {
		t.Fatalf("status %s after the refused approval, want pending", st)
	}
	if !strings.Contains(e.logs.String(), kms.Endpoint) {
		t.Fatalf("the log does not name the KMS endpoint %s", kms.Endpoint)
	}
}

// Rotation from the master key file to KMS and back, while a server
// serves and signs: staged (KEK_OPEN_ONLY: the KMS key opens, the file
// seals), re-wrapped with --to (cut short after two batches and resumed),
// audited; the server then runs with the file removed; back to a new
// file key (--new-key-file --stage creates the file, KEK_OPEN_ONLY, the
// rotation), after which the server runs without KEK_URI.
func TestKMS_RotateFileToKMSAndBack(t *testing.T) {
	kms := kmstest.Start(t)
	arn := kms.SymmetricKey(t)
	uri, kmsID := kms.URI(arn), "awskms:"+arn
	dir, clock := privateDir(t), restartClock()
	mk := filepath.Join(dir, "master.key")

	// 1. file KEK only
	e, stop, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	u, wallet, _, key := setup(t, e)
	spendOnce(t, e, u, wallet, key)
	fileID := keyIDOfFile(t, mk)[0]
	stop()

	// 2. staged: every replica opens under KMS, the file still seals
	e, stop, err = startAt(t, dir, clock, kekURI(uri, true))
	if err != nil {
		t.Fatalf("start staged: %v", err)
	}
	relogin(t, e, u)
	wallet, key = spendFresh(t, e, u)
	if e.app.Sealer.(interface{ CurrentKeyID() string }).CurrentKeyID() != fileID {
		t.Fatal("with KEK_OPEN_ONLY the KMS key seals")
	}

	// 3. re-wrap to KMS while serving, cut short after two batches of one
	ctx, cancel := context.WithCancel(context.Background())
	rotateBatchDone = func(done int) {
		if done >= 2 {
			cancel()
		}
	}
	var out strings.Builder
	err = run(ctx, []string{"rotate-master-key", "--to", uri, "--batch", "1", "--data-dir", dir}, func(string) string { return "" }, &out, &out)
	rotateBatchDone = nil
	if err == nil || !strings.Contains(err.Error(), "run rotate-master-key again") {
		t.Fatalf("the cut-short rotation: %v\n%s", err, out.String())
	}
	if _, err := runCmd(t, "rotate-master-key", "--check", "--to", uri, "--data-dir", dir); err == nil {
		t.Fatal("check passed on a half-done rotation")
	}
	spendOnce(t, e, u, wallet, key) // the server opens both meanwhile
	if msg, err := runCmd(t, "rotate-master-key", "--to", uri, "--data-dir", dir); err != nil {
		t.Fatalf("resume: %v %s", err, msg)
	}
	spendOnce(t, e, u, wallet, key) // seals under the file again (staged) …
	stop()
	// … so once every replica runs KEK_URI without KEK_OPEN_ONLY, the
	// rotation runs once more for what they sealed meanwhile
	e, stop, err = startAt(t, dir, clock, kekURI(uri, false))
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := runCmd(t, "rotate-master-key", "--kek-uri", uri, "--data-dir", dir); err != nil {
		t.Fatalf("last pass: %v %s", err, msg)
	}
	sealedUnder(t, dir, kmsID)
	if msg, err := runCmd(t, "rotate-master-key", "--check", "--kek-uri", uri, "--data-dir", dir); err != nil || !strings.Contains(msg, fileID) {
		t.Fatalf("check: %v %s", err, msg)
	}
	relogin(t, e, u)
	spendFresh(t, e, u)
	stop()
	var rotated int
	for _, a := range systemActions(t, dir) {
		if a["action"] == "kek.rotate" && a["details"].(map[string]any)["to"] == kmsID {
			rotated += int(a["details"].(map[string]any)["count"].(float64))
		}
	}
	if rotated == 0 {
		t.Fatal("the rotation to KMS is not in the audit log")
	}

	// 4. the file's keys removed: the server runs on KMS alone
	if err := os.Rename(mk, filepath.Join(t.TempDir(), "offline.key")); err != nil {
		t.Fatal(err)
	}
	e, stop, err = startAt(t, dir, clock, kekURI(uri, false))
	if err != nil {
		t.Fatalf("start on KMS with the master key file gone: %v", err)
	}
	relogin(t, e, u)
	spendFresh(t, e, u)

	// 5. back to a file key: stage it (creates the master key file)…
	newFile := filepath.Join(t.TempDir(), "new.key")
	if msg, err := runCmd(t, "rotate-master-key", "--new-key-file", newFile, "--stage", "--kek-uri", uri, "--data-dir", dir); err != nil || !strings.Contains(msg, "created") {
		t.Fatalf("stage the file key: %v %s", err, msg)
	}
	newID := keyIDOfFile(t, newFile)[0]
	stop()
	// … every replica seals under it and opens KMS …
	e, stop, err = startAt(t, dir, clock, kekURI(uri, true))
	if err != nil {
		t.Fatalf("start staged back: %v", err)
	}
	// … re-wrap while serving
	if msg, err := runCmd(t, "rotate-master-key", "--new-key-file", newFile, "--kek-uri", uri, "--data-dir", dir); err != nil {
		t.Fatalf("rotate back: %v %s", err, msg)
	}
	relogin(t, e, u)
	spendFresh(t, e, u)
	stop()
	sealedUnder(t, dir, newID)
	if _, err := runCmd(t, "rotate-master-key", "--check", "--data-dir", dir); err != nil {
		t.Fatalf("check without KMS: %v", err)
	}
	// 6. KEK_URI unset: the file alone
	e, stop, err = startAt(t, dir, clock)
	if err != nil {
		t.Fatalf("start on the file key alone: %v", err)
	}
	relogin(t, e, u)
	spendFresh(t, e, u)
	stop()
	if msg, err := runCmd(t, "audit", "verify", "--data-dir", dir); err != nil {
		t.Fatalf("audit verify: %v %s", err, msg)
	}
}

// Settings: KEK_URI is checked before anything is created (a malformed
// URI, a plain-http remote endpoint, KEK_OPEN_ONLY alone), and
// KEK_OPEN_ONLY without a master key file is refused, saying how to make
// one, instead of generating a replica-local key.
func TestKMS_Settings(t *testing.T) {
	for name, tt := range map[string]struct {
		uri      string
		openOnly bool
		want     string
	}{
		"fail/scheme":       {uri: "kms://k", want: "awskms://"},
		"fail/typo":         {uri: "awskms://k?regoin=eu-west-2", want: "regoin"},
		"fail/plain http":   {uri: "awskms://k?region=eu-west-2&endpoint=http://10.1.2.3:4599", want: "plain http"},
		"fail/open only":    {openOnly: true, want: "KEK_OPEN_ONLY goes with KEK_URI"},
		"fail/empty key id": {uri: "awskms://?region=eu-west-2", want: "key id"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			_, _, err := startAt(t, dir, restartClock(), kekURI(tt.uri, tt.openOnly))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("the refused start created %s", dir)
			}
		})
	}
	kms := kmstest.Start(t)
	uri := kms.URI(kms.SymmetricKey(t))
	dir := privateDir(t)
	_, _, err := startAt(t, dir, restartClock(), kekURI(uri, true))
	if err == nil || !strings.Contains(err.Error(), "--new-key-file") {
		t.Fatalf("KEK_OPEN_ONLY with no master key file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "master.key")); !os.IsNotExist(err) {
		t.Fatal("KEK_OPEN_ONLY generated a master key file")
	}
	// the environment variables reach the settings
	c, err := parseServeConfig(nil, func(k string) string {
		return map[string]string{"KEK_URI": uri, "KEK_OPEN_ONLY": "1"}[k]
	}, os.Stderr)
	if err != nil || c.KEKURI != uri || !c.KEKOpenOnly {
		t.Fatalf("parse: %+v %v", c, err)
	}
	if _, err := parseServeConfig(nil, func(k string) string { return map[string]string{"KEK_OPEN_ONLY": "maybe"}[k] }, os.Stderr); err == nil {
		t.Fatal("KEK_OPEN_ONLY=maybe accepted")
	}
}
