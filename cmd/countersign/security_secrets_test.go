package main

import (
	"bytes"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// recorder keeps every response body the test client receives, with the
// request that got it.
type recorder struct {
	mu   sync.Mutex
	next http.RoundTripper
	got  []recorded
}

type recorded struct {
	what string // "METHOD /path"
	body []byte
}

func masterKeyBytes(t *testing.T, hexKey []byte) []byte {
	b, err := hex.DecodeString(string(hexKey))
	if err != nil || len(b) != 32 {
		t.Fatalf("master key file: %v", err)
	}
	return b
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if err != nil {
		return res, err
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		return nil, err
	}
	res.Body = io.NopCloser(bytes.NewReader(b))
	r.mu.Lock()
	r.got = append(r.got, recorded{req.Method + " " + req.URL.Path, b})
	r.mu.Unlock()
	return res, nil
}

// TestSecurity_SecretsHygiene runs the whole product with debug logging —
// users, MFA with recovery codes, API wallets, agents, the countersigned
// spend, the web UI, the wallet daemon (generated and imported keys) and
// the derived-key signer — then looks for every secret it handled in every
// log line, every response other than the one that created it, and the
// bytes of every file in the data directory (database, WAL, keystore).
func TestSecurity_SecretsHygiene(t *testing.T) {
	e := newEnv(t, withSigner)
	rec := &recorder{next: http.DefaultTransport}
	e.http = &http.Client{Transport: rec, Timeout: e.http.Timeout}

	// the countersigned flow
	u := e.newUser(true)
	mfa := e.do("POST", "/api/mfa/recovery_codes", bearer(u.token), map[string]string{"mfa_code": e.code(u)}).must(t, 201)
	var recovery []string
	for _, c := range mfa.body["recovery_codes"].([]any) {
		recovery = append(recovery, c.(string))
	}
	wallet := e.createWallet(u)
	e.do("POST", "/api/dev/faucet", bearer(u.token), map[string]string{"address": wallet, "amount": ether(1).String()}).must(t, 200)
	_, key := e.createAgent(u, wallet)
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": randomAddress(), "amount": "1000"}).must(t, 202).str("transaction_id")
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	e.do("POST", "/api/execute_transaction", apiKey(key), map[string]string{"transaction_id": id}).must(t, 201)
	e.waitStatus(apiKey(key), id, "confirmed")
	// wrong credentials, which reach error paths and logs
	e.do("POST", "/api/login", anon, map[string]string{"username": u.name, "password": u.password + "x"}).must(t, 401)
	e.do("POST", "/api/create_wallet", bearer(u.token), map[string]string{"password": u.password + "x"}).must(t, 403)
	e.do("GET", "/api/wallets", bearer(u.token+"x"), nil).must(t, 401)
	e.do("GET", "/api/transactions", apiKey(key+"x"), nil).must(t, 401)

	// the web UI
	f := newFormClient(t, e)
	f.c.Transport = rec
	f.get("/login")
	f.post("/login", url.Values{"csrf": {f.csrf()}, "username": {u.name}, "password": {u.password}})
	f.get("/inbox")
	f.get("/wallets")
	f.get("/agents")
	f.get("/mfa")

	// the wallet daemon: a generated wallet (mnemonic shown once) and an
	// imported raw key
	const daemonPassword = "daemon wallet password 42"
	cr := e.do("POST", "/v1/wallet/create", anon, map[string]any{"name": "hot", "password": daemonPassword, "mnemonic_len": 24, "show_mnemonic": true}).must(t, 201)
	mnemonic := cr.str("mnemonic")
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": cr.str("wallet_id"), "password": daemonPassword}).must(t, 200)
	acct := e.do("POST", "/v1/account/derive", anon, map[string]any{"wallet_id": cr.str("wallet_id"), "curve": "secp256k1", "path": "m/44'/60'/0'/0/0"}).must(t, 201)
	e.do("POST", "/v1/sign/message", anon, map[string]any{"account_id": acct.str("account_id"), "message_base64": base64.StdEncoding.EncodeToString([]byte("hello"))}).must(t, 200)
	pk, _ := crypto.GenerateKey()
	rawKey := hex.EncodeToString(crypto.FromECDSA(pk))
	e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "imported", "password": daemonPassword, "curve": "secp256k1", "private_key_hex": rawKey}).must(t, 201)
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": cr.str("wallet_id"), "password": daemonPassword + "x"}).must(t, 403)

	// the derived-key signer
	e.do("POST", "/dev/sign-message", bearer(testSignerToken), map[string]string{"omni_account": strings.Repeat("a", 64), "message_hex": "0x00"}).must(t, 200)
	e.do("POST", "/dev/sign-message", bearer(testSignerToken+"x"), map[string]string{"omni_account": strings.Repeat("a", 64), "message_hex": "0x00"}).must(t, 401)

	masterKey, err := os.ReadFile(filepath.Join(e.app.DataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	masterKey = bytes.TrimSpace(masterKey)

	// each secret, the response allowed to carry it ("" for none), and the
	// forms it could leak in
	type secret struct {
		name, createdBy string
		forms           []string
	}
	text := func(name, createdBy, s string) secret { return secret{name, createdBy, []string{s}} }
	binary := func(name, createdBy string, b []byte) secret {
		return secret{name, createdBy, []string{hex.EncodeToString(b), base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
			strings.TrimRight(base32.StdEncoding.EncodeToString(b), "="), string(b)}}
	}
	secrets := []secret{
		text("password", "", u.password),
		text("session token", "POST /api/login", u.token),
		binary("TOTP secret", "POST /api/setup_mfa", u.secret),
		text("API key", "POST /api/agents", key),
		text("daemon wallet password", "", daemonPassword),
		text("mnemonic", "POST /v1/wallet/create", mnemonic),
		text("imported private key", "", rawKey),
		text("master key", "", string(masterKey)),
		binary("master key bytes", "", masterKeyBytes(t, masterKey)),
		text("signer token", "", testSignerToken),
	}
	for _, c := range recovery {
		secrets = append(secrets, secret{"recovery code", "POST /api/mfa/recovery_codes", []string{c, strings.ReplaceAll(c, "-", "")}})
	}
	if walletToken := e.app.walletToken; walletToken != "" {
		secrets = append(secrets, text("wallet token", "", walletToken))
	}

	logs := e.logs.String()
	var files []string
	if err := filepath.WalkDir(e.app.DataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(p) != "master.key" && filepath.Base(p) != "wallet.token" {
			files = append(files, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(files) < 3 {
		t.Fatalf("expected the database, its WAL and keystore files, found %v", files)
	}
	for _, s := range secrets {
		for _, form := range s.forms {
			if len(form) < 8 {
				t.Fatalf("%s: form too short to search for", s.name)
			}
			if strings.Contains(logs, form) {
				t.Errorf("the %s appears in the server log", s.name)
			}
			rec.mu.Lock()
			for _, r := range rec.got {
				if r.what != s.createdBy && bytes.Contains(r.body, []byte(form)) {
					t.Errorf("the %s appears in the response to %s", s.name, r.what)
				}
			}
			rec.mu.Unlock()
			for _, p := range files {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(b, []byte(form)) {
					t.Errorf("the %s appears in the bytes of %s", s.name, strings.TrimPrefix(p, e.app.DataDir))
				}
			}
		}
	}
	// the search can find things: the creating responses do carry them
	found := map[string]bool{}
	for _, r := range rec.got {
		for _, s := range secrets {
			if r.what == s.createdBy && bytes.Contains(r.body, []byte(s.forms[0])) {
				found[s.name] = true
			}
		}
	}
	for _, n := range []string{"session token", "API key", "mnemonic", "recovery code"} {
		if !found[n] {
			t.Errorf("the %s was not seen even in the response that creates it: the search is broken", n)
		}
	}
}
