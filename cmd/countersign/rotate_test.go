package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/envelope"
)

// sealedState opens the data dir's store and returns the KEK ids of every
// sealed value, per kind.
func sealedState(t *testing.T, dir string) map[string]map[string]int {
	t.Helper()
	st := mustOpenStore(t, dir)
	defer st.Close()
	out := map[string]map[string]int{}
	if err := eachSealed(context.Background(), st, func(v *countersign.SealedValue) error {
		id, _ := envelope.SealedKeyID(v.Sealed)
		if out[v.Kind] == nil {
			out[v.Kind] = map[string]int{}
		}
		out[v.Kind][id]++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func keyIDOfFile(t *testing.T, path string) []string {
	t.Helper()
	keks, err := envelope.LoadKeys(path)
	if err != nil {
		t.Fatal(err)
	}
	return keyIDs(keks)
}

// systemActions returns the actions of the system audit chain.
func systemActions(t *testing.T, dir string) []map[string]any {
	t.Helper()
	st := mustOpenStore(t, dir)
	defer st.Close()
	es, err := st.AuditEntries(context.Background(), core.SystemOwner, 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range es {
		m := map[string]any{"action": e.Action, "subject": e.Subject}
		var d map[string]any
		json.Unmarshal([]byte(e.Details), &d)
		m["details"] = d
		out = append(out, m)
	}
	return out
}

// Every kind of sealed secret — the wallet's keystore unlock secret, a
// TOTP secret, a TOTP secret being enrolled, the session and audit signing
// keys, a webhook secret — is re-wrapped under the new KEK while the
// server serves (it signs during and after the rotation without a
// restart), the rotation is audited, and once the old key is retired
// (removed from the file) a restarted server still starts, logs in with
// TOTP and signs. The values really moved: the old key alone opens none.
func TestRotate_EveryKindWhileServing(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock, allowLoopbackHooks)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	u, wallet, _, key := setup(t, e)
	spendOnce(t, e, u, wallet, key)
	e.do("POST", "/v1/webhooks", anon, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"signed"}}).must(t, 201)
	pendingUser := e.newUser(false)
	pu, err := e.app.Store.UserByName(ctx, pendingUser.name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Svc.BeginMFA(ctx, &core.Principal{User: pu}, ""); err != nil {
		t.Fatal(err)
	}
	mk := filepath.Join(dir, "master.key")
	oldKey, err := envelope.LoadKeys(mk)
	if err != nil {
		t.Fatal(err)
	}
	oldID := envelope.KeyID(oldKey[0])
	before := sealedState(t, dir)
	for _, kind := range countersign.SealedKinds {
		if before[kind][oldID] == 0 {
			t.Fatalf("the test made no %s value: %v", kind, before)
		}
	}

	newFile := filepath.Join(t.TempDir(), "new.key")
	msg, err := runCmd(t, "rotate-master-key", "--new-key-file", newFile, "--data-dir", dir)
	if err != nil {
		t.Fatalf("rotate: %v\n%s", err, msg)
	}
	newID := keyIDOfFile(t, newFile)[0]
	if ids := keyIDOfFile(t, mk); len(ids) != 2 || ids[0] != newID || ids[1] != oldID {
		t.Fatalf("master key file after the rotation: %v (new %s, old %s)", ids, newID, oldID)
	}
	after := sealedState(t, dir)
	for _, kind := range countersign.SealedKinds {
		if len(after[kind]) != 1 || after[kind][newID] != before[kind][oldID] {
			t.Fatalf("%s values after the rotation: %v (before %v)", kind, after[kind], before[kind])
		}
	}
	if !strings.Contains(msg, "no sealed value uses key id(s) "+oldID) {
		t.Fatalf("rotation output: %s", msg)
	}
	// the running server, started before the rotation, signs and checks
	// TOTP with the re-wrapped values: it picked the new key up itself
	spendOnce(t, e, u, wallet, key)
	if _, err := e.app.Svc.PendingMFA(ctx, &core.Principal{User: pu}); err != nil {
		t.Fatalf("the pending enrolment after the rotation: %v", err)
	}
	// audited in the system chain, one entry per batch and a completion
	var rotated, complete int
	for _, a := range systemActions(t, dir) {
		switch a["action"] {
		case "kek.rotate":
			d := a["details"].(map[string]any)
			if d["to"] != newID || !strings.Contains(toJSONString(d["from"]), oldID) {
				t.Fatalf("kek.rotate details: %v", d)
			}
			rotated += int(d["count"].(float64))
		case "kek.rotate.complete":
			complete++
		}
	}
	total := 0
	for _, kind := range countersign.SealedKinds {
		total += before[kind][oldID]
	}
	if rotated != total || complete != 1 {
		t.Fatalf("audited %d re-wrapped values and %d completions, want %d and 1", rotated, complete, total)
	}
	// again: nothing left to do, nothing audited
	if msg, err := runCmd(t, "rotate-master-key", "--data-dir", dir); err != nil || !strings.Contains(msg, "re-wrapped 0") {
		t.Fatalf("second run: %v %s", err, msg)
	}

	// the old key alone opens nothing any more
	oldOnly := filepath.Join(t.TempDir(), "old.key")
	if err := envelope.WriteKeys(oldOnly, oldKey); err != nil {
		t.Fatal(err)
	}
	if _, err := runCmd(t, "rotate-master-key", "--check", "--data-dir", dir, "--master-key-file", oldOnly); err == nil {
		t.Fatal("the old key alone opens the rotated values")
	}

	if msg, err := runCmd(t, "rotate-master-key", "--check", "--data-dir", dir); err != nil || !strings.Contains(msg, "may be retired") {
		t.Fatalf("check: %v %s", err, msg)
	}
	if msg, err := runCmd(t, "rotate-master-key", "--retire", "--data-dir", dir); err != nil || !strings.Contains(msg, "retired key id(s) "+oldID) {
		t.Fatalf("retire: %v %s", err, msg)
	}
	if ids := keyIDOfFile(t, mk); len(ids) != 1 || ids[0] != newID {
		t.Fatalf("master key file after retiring: %v", ids)
	}
	// the file's changes are audited too: the new key made current, the old one retired
	var added, retired []map[string]any
	for _, a := range systemActions(t, dir) {
		switch a["action"] {
		case "kek.add":
			added = append(added, a["details"].(map[string]any))
		case "kek.retire":
			retired = append(retired, a["details"].(map[string]any))
		}
	}
	if len(added) != 1 || added[0]["key_id"] != newID || added[0]["role"] != "seals" {
		t.Fatalf("kek.add entries: %v", added)
	}
	if len(retired) != 1 || retired[0]["current"] != newID || toJSONString(retired[0]["retired"]) != toJSONString([]string{oldID}) {
		t.Fatalf("kek.retire entries: %v", retired)
	}
	stop()

	// only the new key now: the server starts, TOTP and signing work
	e, stop, err = startAt(t, dir, clock, allowLoopbackHooks)
	if err != nil {
		t.Fatalf("start with only the new key: %v", err)
	}
	relogin(t, e, u)
	spendOnce(t, e, u, wallet, key)
	if _, err := e.app.Svc.PendingMFA(ctx, &core.Principal{User: pu}); err != nil {
		t.Fatalf("the pending enrolment with only the new key: %v", err)
	}
	stop()
	if msg, err := runCmd(t, "audit", "verify", "--data-dir", dir); err != nil {
		t.Fatalf("audit verify: %v %s", err, msg)
	}
}

func toJSONString(v any) string { b, _ := json.Marshal(v); return string(b) }

// A rotation cut short (its context cancelled after two batches of one)
// leaves some values under each key; the server, whose file holds both,
// still logs everyone in; running the rotation again finishes what is
// left, and the check then passes.
func TestRotate_InterruptedResumes(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	var users []*user
	for range 4 {
		users = append(users, e.newUser(true))
	}
	mk := filepath.Join(dir, "master.key")
	oldID := keyIDOfFile(t, mk)[0]

	ctx, cancel := context.WithCancel(context.Background())
	rotateBatchDone = func(done int) {
		if done >= 2 {
			cancel()
		}
	}
	defer func() { rotateBatchDone = nil }()
	var out strings.Builder
	newFile := filepath.Join(t.TempDir(), "new.key")
	err = run(ctx, []string{"rotate-master-key", "--new-key-file", newFile, "--batch", "1", "--data-dir", dir}, func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "run rotate-master-key again") {
		t.Fatalf("the cut-short rotation: %v\n%s", err, out.String())
	}
	rotateBatchDone = nil
	newID := keyIDOfFile(t, newFile)[0]
	mixed := sealedState(t, dir)
	onNew, onOld := 0, 0
	for _, ids := range mixed {
		onNew += ids[newID]
		onOld += ids[oldID]
	}
	if onNew != 2 || onOld == 0 {
		t.Fatalf("after the cut: %d values under the new key, %d under the old: %v", onNew, onOld, mixed)
	}
	if _, err := runCmd(t, "rotate-master-key", "--check", "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "older keys") {
		t.Fatalf("check on a half-done rotation: %v", err)
	}
	for _, u := range users { // the half-rotated TOTP secrets all check
		relogin(t, e, u)
		e.do("POST", "/api/agents", bearer(u.token), map[string]string{"name": "a", "wallet_address": e.createWallet(u), "mfa_code": e.code(u)}).must(t, 201)
	}

	msg, err := runCmd(t, "rotate-master-key", "--data-dir", dir)
	if err != nil {
		t.Fatalf("resume: %v %s", err, msg)
	}
	done := sealedState(t, dir)
	for kind, ids := range done {
		if len(ids) != 1 || ids[newID] == 0 {
			t.Fatalf("%s after the resumed rotation: %v", kind, ids)
		}
	}
	if _, err := runCmd(t, "rotate-master-key", "--check", "--data-dir", dir); err != nil {
		t.Fatalf("check after the resumed rotation: %v", err)
	}
	stop()
	if _, err := runCmd(t, "audit", "verify", "--data-dir", dir); err != nil {
		t.Fatal(err)
	}
}

// A missing or wrong master key fails closed: the rotation refuses before
// it writes anything (and never creates a master key file), the check
// names the key id the values need, and the server refuses to start
// rather than run without its keys. A rotation that generated a master
// key where none was, or re-wrapped under a key it could not check, would
// lose the wallets.
func TestSecurity_RotateWrongKeyFailsClosed(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	setup(t, e)
	stop()
	mk := filepath.Join(dir, "master.key")
	oldID := keyIDOfFile(t, mk)[0]
	before := sealedState(t, dir)

	missing := filepath.Join(t.TempDir(), "missing.key")
	for _, args := range [][]string{
		{"rotate-master-key", "--data-dir", dir, "--master-key-file", missing},
		{"rotate-master-key", "--check", "--data-dir", dir, "--master-key-file", missing},
		{"rotate-master-key", "--new-key-file", filepath.Join(t.TempDir(), "n.key"), "--data-dir", dir, "--master-key-file", missing},
	} {
		if _, err := runCmd(t, args...); err == nil || !strings.Contains(err.Error(), "no master key file") {
			t.Fatalf("%v: %v", args, err)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatalf("%v created a master key file", args)
		}
	}

	wrong := filepath.Join(t.TempDir(), "wrong.key")
	writeKeyFile(t, wrong)
	if _, err := runCmd(t, "rotate-master-key", "--data-dir", dir, "--master-key-file", wrong); err == nil || !strings.Contains(err.Error(), "master key file") {
		t.Fatalf("rotation with the wrong key: %v", err)
	}
	if _, err := runCmd(t, "rotate-master-key", "--check", "--data-dir", dir, "--master-key-file", wrong); err == nil || !strings.Contains(err.Error(), oldID) {
		t.Fatalf("check with the wrong key: %v", err)
	}
	if after := sealedState(t, dir); toJSONString(after) != toJSONString(before) {
		t.Fatalf("the refused rotation changed values: %v → %v", before, after)
	}
	// a world-readable new key file is refused
	open := filepath.Join(t.TempDir(), "open.key")
	writeKeyFile(t, open)
	os.Chmod(open, 0o644)
	if _, err := runCmd(t, "rotate-master-key", "--new-key-file", open, "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("world-readable new key: %v", err)
	}
	if ids := keyIDOfFile(t, mk); len(ids) != 1 || ids[0] != oldID {
		t.Fatalf("the master key file changed: %v", ids)
	}

	// the server with the wrong key refuses to start
	_, _, err = startAt(t, dir, clock, func(c *Config) { c.MasterKeyFile = wrong })
	if err == nil || !strings.Contains(err.Error(), wrong) || !strings.Contains(err.Error(), "key id "+oldID) {
		t.Fatalf("the server with a master key that opens none of its secrets: %v", err)
	}
	// a master key file gone missing: refused, and the key the start
	// generated is not left behind to be mistaken for the real one
	gone := filepath.Join(t.TempDir(), "gone.key")
	_, _, err = startAt(t, dir, clock, func(c *Config) { c.MasterKeyFile = gone })
	if err == nil || !strings.Contains(err.Error(), "key id "+oldID) {
		t.Fatalf("the server without its master key file: %v", err)
	}
	if _, err := os.Stat(gone); !os.IsNotExist(err) {
		t.Fatalf("the refused start left a new master key file: %v", err)
	}
	// and the right key still starts it
	if _, stop, err := startAt(t, dir, clock); err != nil {
		t.Fatalf("start with the right key: %v", err)
	} else {
		stop()
	}
}

// The several-replica procedure: --stage adds the new key to the master
// key file as a key that opens but does not seal (the running server keeps
// sealing under the old one), the file is copied to a replica, and then
// the rotation proper makes the new key current and re-wraps. The replica,
// whose copy of the file still has the old key first, opens every
// re-wrapped value: no replica meets a key it lacks.
func TestRotate_StagedForReplicas(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock, allowLoopbackHooks)
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	u, wallet, _, key := setup(t, e)
	mk := filepath.Join(dir, "master.key")
	oldID := keyIDOfFile(t, mk)[0]
	newFile := filepath.Join(t.TempDir(), "new.key")
	if msg, err := runCmd(t, "rotate-master-key", "--new-key-file", newFile, "--stage", "--data-dir", dir); err != nil || !strings.Contains(msg, "opens only") {
		t.Fatalf("stage: %v %s", err, msg)
	}
	newID := keyIDOfFile(t, newFile)[0]
	if ids := keyIDOfFile(t, mk); len(ids) != 2 || ids[0] != oldID || ids[1] != newID {
		t.Fatalf("staged master key file: %v", ids)
	}
	// staging is audited; staging the same file again changes nothing and records nothing
	if msg, err := runCmd(t, "rotate-master-key", "--new-key-file", newFile, "--stage", "--data-dir", dir); err != nil || !strings.Contains(msg, "already in") {
		t.Fatalf("stage again: %v %s", err, msg)
	}
	var staged []map[string]any
	for _, a := range systemActions(t, dir) {
		if a["action"] == "kek.add" {
			staged = append(staged, a["details"].(map[string]any))
		}
	}
	if len(staged) != 1 || staged[0]["key_id"] != newID || staged[0]["role"] != "opens only" {
		t.Fatalf("kek.add entries after staging twice: %v", staged)
	}
	envelope.RefreshEvery = 0 // the server looks at the file on its next seal
	defer func() { envelope.RefreshEvery = time.Second }()
	e.do("POST", "/v1/webhooks", anon, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"signed"}}).must(t, 201)
	if st := sealedState(t, dir); st[countersign.SealedWebhook][oldID] != 1 {
		t.Fatalf("a staged key sealed: %v", st)
	}
	replicaFile := filepath.Join(t.TempDir(), "replica.key")
	copyFile(t, mk, replicaFile)
	replica, _, err := envelope.OpenFile(replicaFile)
	if err != nil {
		t.Fatal(err)
	}

	if msg, err := runCmd(t, "rotate-master-key", "--new-key-file", newFile, "--data-dir", dir); err != nil {
		t.Fatalf("rotate: %v %s", err, msg)
	}
	st := mustOpenStore(t, dir)
	n := 0
	if err := eachSealed(context.Background(), st, func(v *countersign.SealedValue) error {
		if id, _ := envelope.SealedKeyID(v.Sealed); id != newID {
			t.Errorf("%s %s still under %s", v.Kind, v.ID, id)
		}
		pt, err := replica.Open(v.RecordID(), v.Sealed)
		if err != nil {
			t.Errorf("the replica cannot open %s %s: %v", v.Kind, v.ID, err)
		}
		clear(pt)
		n++
		return nil
	}); err != nil || n == 0 {
		t.Fatalf("%d values: %v", n, err)
	}
	spendOnce(t, e, u, wallet, key)
}

// Every place that seals a value names a record id the rotation knows: a
// new sealed column that rotate-master-key does not walk would be left
// under the old key, and unreadable once it is retired. The test reads the
// source: each sealer.Seal( call's record id must start with a prefix that
// SealedValue.RecordID produces (signer/local's are its keyRecord and
// secretRecord functions).
func TestRotate_CoversEverySealSite(t *testing.T) {
	known := map[string]bool{}
	for _, kind := range countersign.SealedKinds {
		for _, f := range []string{countersign.WalletKeyKDB, countersign.WalletKeySealed} {
			v := &countersign.SealedValue{Kind: kind, ID: "x", Format: f}
			known[strings.TrimSuffix(v.RecordID(), "x")] = true
		}
	}
	local := map[string]string{"keyRecord(": "wallet:", "secretRecord(": "wallet-kdb-secret:"}
	// countersign.Sealer values are named sealer everywhere (an AEAD's
	// Seal, as in keys/keystore, is another thing)
	call := regexp.MustCompile(`sealer\.Seal\(\s*("([a-z-]+:)"|[A-Za-z]+\()`)
	sites := 0
	err := filepath.WalkDir("../..", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules" || strings.HasPrefix(d.Name(), ".") && d.Name() != "." && d.Name() != "..") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") || strings.Contains(path, "keys/envelope") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		src := string(b)
		if n := strings.Count(src, "sealer.Seal("); n != len(call.FindAllString(src, -1)) {
			t.Errorf("%s: a sealer.Seal( call whose record id this test cannot read: name it with a literal prefix", path)
		}
		for _, m := range call.FindAllStringSubmatch(src, -1) {
			sites++
			prefix := m[2]
			if prefix == "" {
				prefix = local[m[1]]
			}
			if !known[prefix] {
				t.Errorf("%s seals record ids %q (%s), which rotate-master-key does not re-wrap: add its column to countersign.SealedKinds and the stores' Resealer", path, prefix, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if sites < 6 {
		t.Fatalf("found only %d seal sites: the pattern is out of date", sites)
	}
}

// --to another KMS key than the servers' KEK_URI is refused before
// anything is read or re-wrapped: no replica could open the result.
func TestRotate_KMSToAnotherKMSKeyRefused(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"KEK_URI": "awskms://alias/old?region=us-east-1&endpoint=http://127.0.0.1:1"}
	var out bytes.Buffer
	err := run(context.Background(), []string{"rotate-master-key", "--to", "awskms://alias/new?region=us-east-1&endpoint=http://127.0.0.1:1", "--data-dir", dir},
		func(k string) string { return env[k] }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "one KMS key") || !strings.Contains(err.Error(), "alias/old") {
		t.Fatalf("rotate --to another KMS key: %v", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("the refused rotation wrote %d entries into the data dir", len(left))
	}
}

// testKMS is a stand-in KMS key (wrapping is a copy: a test double);
// down, every call fails as an outage does, never with envelope.ErrOpen.
type testKMS struct{ down bool }

func (testKMS) ID() string { return "awskms:test" }
func (k testKMS) WrapKey(_ context.Context, _ string, dek []byte) ([]byte, error) {
	if k.down {
		return nil, errors.New("KMS at https://kms.test is unreachable")
	}
	return append([]byte(nil), dek...), nil
}
func (k testKMS) UnwrapKey(_ context.Context, _ string, wrapped []byte) ([]byte, error) {
	if k.down {
		return nil, errors.New("KMS at https://kms.test is unreachable")
	}
	return append([]byte(nil), wrapped...), nil
}

// A rotation (or its check) that cannot reach the KMS its values are
// sealed under says so, rather than calling the values damaged.
func TestRotate_KMSOutageIsNotReportedAsDamage(t *testing.T) {
	file := filepath.Join(t.TempDir(), "master.key")
	if err := envelope.WriteKeys(file, [][]byte{bytes.Repeat([]byte{9}, 32)}); err != nil {
		t.Fatal(err)
	}
	up, _, err := envelope.NewSealer(envelope.Options{File: file, External: []envelope.KEK{testKMS{}}, ExternalSeals: true})
	if err != nil {
		t.Fatal(err)
	}
	v := &countersign.SealedValue{Kind: countersign.SealedMFA, ID: "u1"}
	if v.Sealed, err = up.Seal(v.RecordID(), []byte("secret")); err != nil {
		t.Fatal(err)
	}
	down, _, err := envelope.NewSealer(envelope.Options{File: file, External: []envelope.KEK{testKMS{down: true}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = planRewrap(down, []*countersign.SealedValue{v}, down.CurrentKeyID())
	if err == nil || !strings.Contains(err.Error(), "unreachable") || strings.Contains(err.Error(), "does not open") {
		t.Fatalf("re-wrap with the KMS down: %v", err)
	}
}

// A batch's kek.rotate entry counts the values it replaced, not the ones
// it planned: a value the server re-sealed between the plan and the commit
// is left alone, and the entry says so.
func TestRotate_AuditCountsWhatWasReplaced(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		e.newUser(true)
	}
	stop()
	ctx := context.Background()
	cfg := &Config{DataDir: dir}
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	oldID := keyIDOfFile(t, cfg.MasterKeyFile)[0]
	if _, changed, err := installKey(cfg.MasterKeyFile, filepath.Join(t.TempDir(), "new.key"), true, false, io.Discard); err != nil || !changed {
		t.Fatalf("install: %v %v", changed, err)
	}
	sealer, st, rs, err := openMaint(ctx, cfg, rotateTarget{fileCurrent: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc, err := maintService(ctx, cfg, rotateTarget{fileCurrent: true}, st, sealer)
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	to := sealer.CurrentKeyID()
	vs, err := rs.SealedValues(ctx, countersign.SealedMFA, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	swaps, err := planRewrap(sealer, vs, to)
	if err != nil || len(swaps) != 3 {
		t.Fatalf("%d swaps planned: %v", len(swaps), err)
	}
	if ok, err := rs.ReplaceSealed(ctx, swaps[0].v, swaps[0].sealed); !ok || err != nil { // the server got there first
		t.Fatalf("replace: %v %v", ok, err)
	}
	n, err := commitRewrap(ctx, svc, rs, countersign.SealedMFA, []string{oldID}, to, swaps)
	if err != nil || n != 2 {
		t.Fatalf("replaced %d: %v", n, err)
	}
	var got []map[string]any
	for _, a := range systemActions(t, dir) {
		if a["action"] == "kek.rotate" {
			got = append(got, a["details"].(map[string]any))
		}
	}
	if len(got) != 1 || got[0]["count"] != float64(2) || got[0]["changed_meanwhile"] != float64(1) {
		t.Fatalf("kek.rotate entries: %v", got)
	}
	// a batch all of whose values changed meanwhile replaces nothing and records nothing
	if n, err := commitRewrap(ctx, svc, rs, countersign.SealedMFA, []string{oldID}, to, swaps); err != nil || n != 0 {
		t.Fatalf("the stale batch replaced %d: %v", n, err)
	}
	entries := 0
	for _, a := range systemActions(t, dir) {
		if a["action"] == "kek.rotate" {
			entries++
		}
	}
	if entries != 1 {
		t.Fatalf("%d kek.rotate entries after a batch that replaced nothing, want 1", entries)
	}
}

// A start whose master key file lacks the key of some sealed value (here
// a webhook secret left under a key the file no longer holds) still
// serves, and says at once which values and key id: before, only the
// session signing keys were looked at, and the rest failed one by one
// where they were used.
func TestRotate_StartNamesValuesUnderAMissingKey(t *testing.T) {
	dir, clock := privateDir(t), restartClock()
	e, stop, err := startAt(t, dir, clock, allowLoopbackHooks)
	if err != nil {
		t.Fatal(err)
	}
	e.newUser(true)
	e.do("POST", "/v1/webhooks", anon, map[string]any{"url": "http://127.0.0.1:9/hook", "events": []string{"signed"}}).must(t, 201)
	stop()
	mk := filepath.Join(dir, "master.key")
	oldID := keyIDOfFile(t, mk)[0]
	ctx := context.Background()
	hooks := func(st countersign.Store) []*countersign.SealedValue {
		vs, err := st.(countersign.Resealer).SealedValues(ctx, countersign.SealedWebhook, "", 10)
		if err != nil || len(vs) != 1 {
			t.Fatalf("%d webhook secrets: %v", len(vs), err)
		}
		return vs
	}
	st := mustOpenStore(t, dir)
	before := hooks(st)[0]
	st.Close()
	newFile := filepath.Join(t.TempDir(), "new.key")
	if msg, err := runCmd(t, "rotate-master-key", "--new-key-file", newFile, "--data-dir", dir); err != nil {
		t.Fatalf("rotate: %v %s", err, msg)
	}
	st = mustOpenStore(t, dir)
	if ok, err := st.(countersign.Resealer).ReplaceSealed(ctx, hooks(st)[0], before.Sealed); !ok || err != nil { // back under the old key
		t.Fatalf("replace: %v %v", ok, err)
	}
	st.Close()
	copyFile(t, newFile, mk) // the old key dropped by hand
	e, stop, err = startAt(t, dir, clock, allowLoopbackHooks)
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	defer stop()
	logs := e.logs.String()
	if !strings.Contains(logs, "does not hold") || !strings.Contains(logs, oldID) || !strings.Contains(logs, "webhook 1") {
		t.Fatalf("no warning naming key id %s and the webhook:\n%s", oldID, logs)
	}
	e.do("GET", "/readyz", anon, nil).must(t, 200)
}
