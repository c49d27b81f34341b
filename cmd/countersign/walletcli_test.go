package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign/keys/keystore"
)

// cli runs `countersign args…` against e with the given environment and
// standard input, and decodes its JSON output.
func (e *env) cli(env map[string]string, input string, args ...string) (map[string]any, error) {
	e.t.Helper()
	stdin = strings.NewReader(input)
	defer func() { stdin = strings.NewReader("") }()
	if env == nil {
		env = map[string]string{}
	}
	if _, ok := env["COUNTERSIGN_URL"]; !ok {
		env["COUNTERSIGN_URL"] = e.url
	}
	if _, ok := env["COUNTERSIGN_DATA_DIR"]; !ok {
		env["COUNTERSIGN_DATA_DIR"] = e.dataDir() // where the CLI finds the generated wallet token
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb); err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(out.Bytes(), &m); err != nil {
		e.t.Fatalf("%v: output %q is not JSON: %v", args, out.String(), err)
	}
	return m, nil
}

func (e *env) cliOK(env map[string]string, input string, args ...string) map[string]any {
	e.t.Helper()
	m, err := e.cli(env, input, args...)
	if err != nil {
		e.t.Fatalf("%v: %v", args, err)
	}
	return m
}

func TestWalletCLI(t *testing.T) {
	e := newEnv(t, fastDaemon, func(c *Config) { c.ExportScryptN = 1 << 12 })
	const pw = "cli-wallet-password"
	dir := t.TempDir()

	// create: the password is read from stdin, the mnemonic shown once
	w := e.cliOK(nil, pw+"\n", "wallet", "create", "--name", "ops", "--words", "12", "--show-mnemonic")
	id, _ := w["wallet_id"].(string)
	mnemonic, _ := w["mnemonic"].(string)
	if id == "" || len(strings.Fields(mnemonic)) != 12 {
		t.Fatalf("create: %v", w)
	}
	if _, err := e.cli(nil, "\n", "wallet", "create", "--name", "x"); err == nil {
		t.Fatal("create with an empty password")
	}
	list := e.cliOK(nil, "", "wallet", "list")
	if ws, _ := list["wallets"].([]any); len(ws) != 1 || !strings.Contains(mustJSON(t, ws), id) || strings.Contains(mustJSON(t, list), mnemonic) {
		t.Fatalf("list: %v", list)
	}

	// locked until unlocked; a wrong password unlocks nothing
	if _, err := e.cli(nil, "", "wallet", "derive", "--wallet", id, "--curve", "secp256k1"); err == nil || !strings.Contains(err.Error(), "WALLET_LOCKED") {
		t.Fatalf("derive while locked: %v", err)
	}
	if _, err := e.cli(map[string]string{"COUNTERSIGN_WALLET_PASSWORD": "not-the-password"}, "", "wallet", "unlock", "--wallet", id); err == nil || !strings.Contains(err.Error(), "BAD_PASSWORD") {
		t.Fatalf("unlock with a wrong password: %v", err)
	}
	e.cliOK(map[string]string{"COUNTERSIGN_WALLET_PASSWORD": pw}, "", "wallet", "unlock", "--wallet", id)
	sk := e.cliOK(nil, "", "wallet", "derive", "--wallet", id, "--curve", "secp256k1")
	ed := e.cliOK(nil, "", "wallet", "derive", "--wallet", id, "--curve", "ed25519")
	evm, _ := sk["evm_address"].(string)
	if !strings.HasPrefix(evm, "0x") || !strings.HasPrefix(ed["address"].(string), "ait1") {
		t.Fatalf("derive: %v %v", sk, ed)
	}

	// sign message: EIP-191 over the text, recovering to the account
	s := e.cliOK(nil, "", "sign", "message", "--account", sk["account_id"].(string), "--text", "hello from the cli")
	sig, _ := base64.StdEncoding.DecodeString(s["signature_base64"].(string))
	if len(sig) != 65 {
		t.Fatalf("signature: %v", s)
	}
	sig[64] -= 27
	if p, err := crypto.SigToPub(accounts.TextHash([]byte("hello from the cli")), sig); err != nil || crypto.PubkeyToAddress(*p).Hex() != evm {
		t.Fatalf("signature does not recover to %s", evm)
	}
	if _, err := e.cli(nil, "", "sign", "message", "--account", sk["account_id"].(string)); err == nil {
		t.Fatal("sign message without a message")
	}

	// export secp256k1: a v3 keystore that decrypts to the same address
	const exportPW = "export-password-1"
	out := filepath.Join(dir, "sk.json")
	x := e.cliOK(map[string]string{"COUNTERSIGN_EXPORT_PASSWORD": exportPW}, "", "wallet", "export", "--account", sk["account_id"].(string), "--out", out)
	if x["format"] != "web3-v3" {
		t.Fatalf("export: %v", x)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Fatalf("export file mode %v", st.Mode().Perm())
	}
	key, addr, err := keystore.ImportV3(raw, exportPW)
	if err != nil || addr.Hex() != evm {
		t.Fatalf("exported v3 keystore: %v %s", err, addr.Hex())
	}
	if _, _, err := keystore.ImportV3(raw, "wrong-password"); err == nil {
		t.Fatal("exported keystore opens with a wrong password")
	}
	// never overwrites
	if _, err := e.cli(map[string]string{"COUNTERSIGN_EXPORT_PASSWORD": exportPW}, "", "wallet", "export", "--account", ed["account_id"].(string), "--out", out); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Fatalf("export over an existing file: %v", err)
	}
	if again, _ := os.ReadFile(out); !bytes.Equal(again, raw) {
		t.Fatal("export changed an existing file")
	}

	// export ed25519: a v1-kdb file of the seed whose key signs as the account does
	edOut := filepath.Join(dir, "ed.kdb")
	if x := e.cliOK(map[string]string{"COUNTERSIGN_EXPORT_PASSWORD": exportPW}, "", "wallet", "export", "--account", ed["account_id"].(string), "--out", edOut); x["format"] != "v1-kdb" {
		t.Fatalf("export ed25519: %v", x)
	}
	kdb, _ := os.ReadFile(edOut)
	secret, _, err := keystore.Decrypt(kdb, []byte(exportPW))
	if err != nil {
		t.Fatalf("exported kdb: %v", err)
	}
	es := e.cliOK(nil, "", "sign", "message", "--account", ed["account_id"].(string), "--base64", base64.StdEncoding.EncodeToString([]byte("m")))
	var edPriv ed25519.PrivateKey
	switch len(secret) {
	case ed25519.SeedSize:
		edPriv = ed25519.NewKeyFromSeed(secret)
	case ed25519.PrivateKeySize:
		edPriv = secret
	default:
		t.Fatalf("exported ed25519 secret of %d bytes", len(secret))
	}
	if hex.EncodeToString(edPriv.Public().(ed25519.PublicKey)) != es["public_key_hex"] {
		t.Fatal("exported ed25519 key is not the account's")
	}

	// bad exports change nothing and write nothing
	short := filepath.Join(dir, "short.json")
	if _, err := e.cli(map[string]string{"COUNTERSIGN_EXPORT_PASSWORD": "short"}, "", "wallet", "export", "--account", sk["account_id"].(string), "--out", short); err == nil || !strings.Contains(err.Error(), "BAD_REQUEST") {
		t.Fatalf("export with a short password: %v", err)
	}
	if _, err := os.Stat(short); err == nil {
		t.Fatal("a refused export wrote a file")
	}

	// import the same key and the same mnemonic: same addresses
	keyFile := filepath.Join(dir, "key.hex")
	os.WriteFile(keyFile, []byte(hex.EncodeToString(key)+"\n"), 0o600)
	imp := e.cliOK(nil, pw+"\n", "wallet", "import", "--name", "imported", "--key-file", keyFile, "--curve", "secp256k1")
	if a := e.do("GET", "/v1/address/"+imp["account_id"].(string), anon, nil).must(t, 200); a.str("evm_address") != evm {
		t.Fatalf("imported key: %s", a.raw)
	}
	mFile := filepath.Join(dir, "words.txt")
	os.WriteFile(mFile, []byte(mnemonic+"\n"), 0o600)
	m := e.cliOK(map[string]string{"COUNTERSIGN_WALLET_PASSWORD": pw}, "", "wallet", "import", "--name", "restored", "--mnemonic-file", mFile)
	e.cliOK(map[string]string{"COUNTERSIGN_WALLET_PASSWORD": pw}, "", "wallet", "unlock", "--wallet", m["wallet_id"].(string))
	if r := e.cliOK(nil, "", "wallet", "derive", "--wallet", m["wallet_id"].(string), "--curve", "secp256k1"); r["evm_address"] != evm {
		t.Fatalf("restored mnemonic derives %v, want %s", r["evm_address"], evm)
	}
	// an Ethereum keystore file: wallet password, then keystore password, on stdin
	ksFile := filepath.Join(dir, "geth.json")
	os.WriteFile(ksFile, raw, 0o600)
	if _, err := e.cli(nil, pw+"\nwrong-keystore-pw\n", "wallet", "import", "--name", "geth", "--keystore-file", ksFile); err == nil || !strings.Contains(err.Error(), "BAD_PASSWORD") {
		t.Fatalf("keystore import with a wrong password: %v", err)
	}
	if g := e.cliOK(nil, pw+"\n"+exportPW+"\n", "wallet", "import", "--name", "geth", "--keystore-file", ksFile); g["evm_address"] != evm {
		t.Fatalf("keystore import: %v", g)
	}
	if _, err := e.cli(nil, pw+"\n", "wallet", "import", "--name", "none"); err == nil {
		t.Fatal("import without a file")
	}

	// exports leave the server encrypted only and are audited; no secret in logs
	logs := e.logs.String()
	for _, secret := range []string{pw, exportPW, mnemonic, hex.EncodeToString(key)} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a secret reached the logs: %.8s…", secret)
		}
	}
}

func TestWalletCLIToken(t *testing.T) {
	e := newEnv(t, fastDaemon, func(c *Config) { c.WalletToken = "cli-daemon-token-0123456789abcdef" })
	if _, err := e.cli(nil, "", "wallet", "list"); err == nil || !strings.Contains(err.Error(), "UNAUTHORIZED") {
		t.Fatalf("list without the token: %v", err)
	}
	if _, err := e.cli(map[string]string{"WALLET_TOKEN": "cli-daemon-token-0123456789abcdef"}, "", "wallet", "list"); err != nil {
		t.Fatalf("list with the token: %v", err)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
