package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gethks "github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"

	cskeystore "github.com/countersign/countersign/keys/keystore"
)

const keygenPass = "operator passphrase 1"

func keygenEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestKeygen: the file decrypts with go-ethereum's keystore package and
// with ethers, to the address keygen printed; it is 0600; it is never
// overwritten; a short or missing passphrase writes nothing.
func TestKeygen(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "operator.json")
	var stdout, stderr bytes.Buffer
	getenv := keygenEnv(map[string]string{"OPERATOR_KEYSTORE_PATH": out, "OPERATOR_WALLET_PASSPHRASE": keygenPass})
	if err := keygenCmd([]string{"--kdf", "light"}, getenv, &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	addr := strings.TrimSpace(stdout.String())
	if strings.Contains(stdout.String()+stderr.String(), keygenPass) {
		t.Fatal("keygen printed its passphrase")
	}
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
	file, _ := os.ReadFile(out)
	k, err := gethks.DecryptKey(file, keygenPass)
	if err != nil {
		t.Fatalf("go-ethereum cannot decrypt keygen's file: %v", err)
	}
	if k.Address.Hex() != addr {
		t.Fatalf("printed %s, file holds %s", addr, k.Address.Hex())
	}
	if _, err := gethks.DecryptKey(file, "wrong passphrase!!"); err == nil {
		t.Fatal("a wrong passphrase decrypted the file")
	}
	var v struct {
		Crypto struct {
			KDFParams struct {
				N int `json:"n"`
			} `json:"kdfparams"`
		} `json:"crypto"`
	}
	if json.Unmarshal(file, &v); v.Crypto.KDFParams.N != 1<<12 {
		t.Fatalf("--kdf light wrote n=%d", v.Crypto.KDFParams.N)
	}

	// ethers (npm) reads it too
	node := needTool(t, "node")
	e := &env{t: t}
	res := runExample(t, e, "unused", []string{"KEYSTORE=" + string(file), "PASSWORD=" + keygenPass}, node, "checks/keystore_checks.mjs")
	var got struct{ OurAddress string }
	if err := json.Unmarshal(res, &got); err != nil || got.OurAddress != addr {
		t.Fatalf("ethers read %q (%v), want %s", got.OurAddress, err, addr)
	}

	// never overwritten
	before, _ := os.ReadFile(out)
	if err := keygenCmd(nil, getenv, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("second keygen on the same file: %v", err)
	}
	if after, _ := os.ReadFile(out); !bytes.Equal(before, after) {
		t.Fatal("the existing key file changed")
	}
	// refusals write nothing
	for name, c := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"short passphrase":              {nil, map[string]string{"OPERATOR_WALLET_PASSPHRASE": "short"}, "at least 12"},
		"no passphrase and no terminal": {nil, map[string]string{}, "OPERATOR_WALLET_PASSPHRASE"},
		"passphrase as an argument":     {[]string{"secretpassphrase"}, map[string]string{"OPERATOR_WALLET_PASSPHRASE": keygenPass}, "never a flag"},
		"unknown kdf":                   {[]string{"--kdf", "fast"}, map[string]string{"OPERATOR_WALLET_PASSPHRASE": keygenPass}, "standard or light"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".json")
		err := keygenCmd(append([]string{"--out", p}, c.args...), keygenEnv(c.env), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error about %q", name, err, c.want)
		}
		if fileExists(p) {
			t.Errorf("%s: a file was written", name)
		}
	}
}

// TestKeystoreImportExport: the official v3 vectors and an ethers-written
// file import as wallets with the vectors' addresses; an export decrypts
// (go-ethereum) to the same key; every refusal changes nothing.
func TestKeystoreImportExport(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	var vec struct {
		Cases []struct {
			Name, Password, Priv, Address string
			JSON                          json.RawMessage
		}
	}
	raw, err := os.ReadFile("../../keys/keystore/testdata/keystore-v3.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &vec); err != nil || len(vec.Cases) == 0 {
		t.Fatal("vectors", err)
	}
	seen := map[string]bool{}
	for _, c := range vec.Cases {
		priv, _ := hex.DecodeString(strings.TrimPrefix(c.Priv, "0x"))
		k, err := crypto.ToECDSA(append(make([]byte, 32-len(priv)), priv...))
		if err != nil {
			t.Fatal(err)
		}
		want := crypto.PubkeyToAddress(k.PublicKey).Hex()
		r := e.do("POST", "/api/import_wallet", bearer(u.token), map[string]any{"password": u.password, "mfa_code": e.code(u), "name": c.Name,
			"keystore": c.JSON, "keystore_passphrase": c.Password})
		if seen[want] { // the wiki's scrypt and pbkdf2 vectors hold one key
			r.refused(t, 409, "CONFLICT")
			continue
		}
		seen[want] = true
		if r.must(t, 201); r.str("address") != want {
			t.Fatalf("%s: imported as %s, want %s", c.Name, r.str("address"), want)
		}
	}
	first := vec.Cases[0]
	wallets := func() int {
		return len(e.do("GET", "/api/wallets", bearer(u.token), nil).must(t, 200).body["wallets"].([]any))
	}
	n := wallets()
	if n != len(seen) {
		t.Fatalf("%d wallets after %d imports", n, len(seen))
	}
	// refusals: nothing created
	e.do("POST", "/api/import_wallet", bearer(u.token), map[string]any{"password": u.password, "mfa_code": e.code(u),
		"keystore": first.JSON, "keystore_passphrase": first.Password}).refused(t, 409, "CONFLICT")
	e.do("POST", "/api/import_wallet", bearer(u.token), map[string]any{"password": u.password, "mfa_code": e.code(u),
		"keystore": vec.Cases[1].JSON, "keystore_passphrase": "wrong"}).refused(t, 400, "BAD_REQUEST")
	e.do("POST", "/api/import_wallet", bearer(u.token), map[string]any{"password": u.password, "mfa_code": e.code(u),
		"keystore": `{"version":3}`, "keystore_passphrase": "x"}).refused(t, 400, "BAD_REQUEST")
	e.do("POST", "/api/import_wallet", bearer(u.token), map[string]any{"password": "not the password", "mfa_code": e.code(u),
		"keystore": first.JSON, "keystore_passphrase": first.Password}).refused(t, 403, "BAD_PASSWORD")
	if wallets() != n {
		t.Fatal("a refused import created a wallet")
	}

	// export the ethers-written key back out and decrypt it
	node := needTool(t, "node")
	// (the script decrypts a file first: one it can read, n=2^12 r=8)
	seedKey, _ := crypto.GenerateKey()
	light, err := cskeystore.ExportV3(crypto.FromECDSA(seedKey), first.Password, 1<<12, 6)
	if err != nil {
		t.Fatal(err)
	}
	res := runExample(t, e, "unused", []string{"KEYSTORE=" + string(light), "PASSWORD=" + first.Password}, node, "checks/keystore_checks.mjs")
	var theirs struct{ Theirs, TheirAddress, TheirKey string }
	if err := json.Unmarshal(res, &theirs); err != nil {
		t.Fatal(err)
	}
	r := e.do("POST", "/api/import_wallet", bearer(u.token), map[string]any{"password": u.password, "mfa_code": e.code(u),
		"keystore": theirs.Theirs, "keystore_passphrase": first.Password}).must(t, 201)
	if r.str("address") != theirs.TheirAddress {
		t.Fatalf("ethers' file imported as %s, want %s", r.str("address"), theirs.TheirAddress)
	}
	const exportPass = "a fresh export passphrase"
	r = e.do("POST", "/api/export_wallet", bearer(u.token), map[string]any{"address": theirs.TheirAddress, "password": u.password, "mfa_code": e.code(u), "export_passphrase": exportPass}).must(t, 200)
	var exp struct {
		Keystore json.RawMessage `json:"keystore"`
	}
	json.Unmarshal([]byte(r.raw), &exp)
	k, err := gethks.DecryptKey(exp.Keystore, exportPass)
	if err != nil {
		t.Fatalf("go-ethereum cannot decrypt the export: %v", err)
	}
	if got := "0x" + hex.EncodeToString(crypto.FromECDSA(k.PrivateKey)); got != theirs.TheirKey {
		t.Fatal("the exported key is not the imported one")
	}
	if strings.Contains(r.raw, exportPass) {
		t.Fatal("the export's response holds its passphrase")
	}
	// export refusals
	e.do("POST", "/api/export_wallet", bearer(u.token), map[string]any{"address": theirs.TheirAddress, "password": u.password, "mfa_code": e.code(u), "export_passphrase": "short"}).refused(t, 400, "BAD_REQUEST")
	other := e.newUser(true)
	e.do("POST", "/api/export_wallet", bearer(other.token), map[string]any{"address": theirs.TheirAddress, "password": other.password, "mfa_code": e.code(other), "export_passphrase": exportPass}).refused(t, 404, "NOT_FOUND")
	_, key := e.createAgent(u, theirs.TheirAddress)
	if r := e.do("POST", "/api/export_wallet", apiKey(key), map[string]any{"address": theirs.TheirAddress, "password": u.password, "mfa_code": e.code(u), "export_passphrase": exportPass}); r.status < 400 || r.status >= 500 {
		t.Fatalf("an agent's key exported a wallet: %d", r.status)
	}
	// audited, without secrets
	audit := e.do("GET", "/api/audit?limit=500", bearer(u.token), nil).must(t, 200).raw
	for _, a := range []string{"wallet.import", "wallet.export"} {
		if !strings.Contains(audit, a) {
			t.Errorf("no %s in the audit log", a)
		}
	}
	for _, secret := range []string{exportPass, first.Password, strings.TrimPrefix(theirs.TheirKey, "0x")} {
		if strings.Contains(audit, secret) || strings.Contains(e.logs.String(), secret) {
			t.Errorf("a secret reached the audit log or the logs")
		}
	}
}

// TestKeystoreCLIAndFreeze: the keystore command round-trips a keygen file
// through a running server; a frozen wallet's key is not exported.
func TestKeystoreCLIAndFreeze(t *testing.T) {
	e := newEnv(t)
	u := e.newUser(true)
	dir := t.TempDir()
	file := filepath.Join(dir, "op.json")
	var stdout, stderr bytes.Buffer
	base := map[string]string{"OPERATOR_KEYSTORE_PATH": file, "OPERATOR_WALLET_PASSPHRASE": keygenPass, "COUNTERSIGN_URL": e.url,
		"COUNTERSIGN_USERNAME": u.name, "COUNTERSIGN_PASSWORD": u.password}
	if err := keygenCmd([]string{"--kdf", "light"}, keygenEnv(base), &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(stdout.String())
	withCode := func() func(string) string {
		m := map[string]string{"COUNTERSIGN_MFA_CODE": e.code(u), "COUNTERSIGN_EXPORT_PASSPHRASE": "export passphrase 2"}
		for k, v := range base {
			m[k] = v
		}
		return keygenEnv(m)
	}
	stdout.Reset()
	if err := keystoreCmd(context.Background(), []string{"import", file, "--name", "operator"}, withCode(), &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	if got := strings.TrimSpace(stdout.String()); got != addr {
		t.Fatalf("imported as %s, want %s", got, addr)
	}
	out := filepath.Join(dir, "back.json")
	if err := keystoreCmd(context.Background(), []string{"export", addr, "--out", out}, withCode(), &stdout, &stderr); err != nil {
		t.Fatal(err, stderr.String())
	}
	b, _ := os.ReadFile(out)
	if k, err := gethks.DecryptKey(b, "export passphrase 2"); err != nil || k.Address.Hex() != addr {
		t.Fatalf("exported file: %v", err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Fatalf("exported file mode %v", st.Mode().Perm())
	}
	if err := keystoreCmd(context.Background(), []string{"export", addr, "--out", out}, withCode(), &stdout, &stderr); err == nil {
		t.Fatal("export overwrote a file")
	}
	// frozen: no key leaves
	var id string
	for _, w := range e.do("GET", "/api/wallets", bearer(u.token), nil).must(t, 200).body["wallets"].([]any) {
		if m := w.(map[string]any); m["address"] == addr {
			id, _ = m["wallet_id"].(string)
		}
	}
	if id == "" {
		t.Fatal("no wallet id for", addr)
	}
	e.do("POST", "/api/freeze", bearer(u.token), map[string]string{"wallet_id": id}).must(t, 200)
	e.do("POST", "/api/export_wallet", bearer(u.token), map[string]any{"address": addr, "password": u.password, "mfa_code": e.code(u), "export_passphrase": "export passphrase 2"}).refused(t, 423, "FROZEN")
}
