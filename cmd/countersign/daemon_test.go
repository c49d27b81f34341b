package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	cshttp "github.com/countersign/countersign/http"
	"github.com/countersign/countersign/keys/keystore"
)

func fastDaemon(c *Config) { c.DaemonArgon = keystore.Params{Time: 1, MemoryKiB: 8 << 10, Threads: 1} }

func TestWalletDaemon(t *testing.T) {
	for _, kind := range []string{"dir", "store"} {
		t.Run(kind, func(t *testing.T) {
			var dir string
			e := newEnv(t, fastDaemon, func(c *Config) { c.KeystoreKind = kind; dir = c.DataDir })
			op := anon // the local operator: the harness sends the wallet token

			r := e.do("POST", "/v1/wallet/create", op, map[string]any{"name": "main", "password": "pw-123", "mnemonic_len": 12, "show_mnemonic": true}).must(t, 201)
			id, mnemonic := r.str("wallet_id"), r.str("mnemonic")
			if len(strings.Fields(mnemonic)) != 12 {
				t.Fatalf("mnemonic %q", mnemonic)
			}
			if r := e.do("POST", "/v1/wallet/create", op, map[string]any{"name": "x", "password": "pw-123"}).must(t, 201); r.str("mnemonic") != "" {
				t.Fatal("mnemonic shown without show_mnemonic")
			}
			e.do("POST", "/v1/account/derive", op, map[string]string{"wallet_id": id}).refused(t, 423, "WALLET_LOCKED")
			e.do("POST", "/v1/wallet/unlock", op, map[string]string{"wallet_id": id, "password": "wrong"}).refused(t, 403, "BAD_PASSWORD")
			e.do("POST", "/v1/wallet/unlock", op, map[string]string{"wallet_id": id, "password": "pw-123"}).must(t, 200)

			ed := e.do("POST", "/v1/account/derive", op, map[string]string{"wallet_id": id}).must(t, 201)
			if !strings.HasPrefix(ed.str("address"), "ait1") || ed.str("path") != "m/44'/12345'/0'/0'/0'" || ed.str("curve") != "ed25519" {
				t.Fatalf("ed25519 account: %s", ed.raw)
			}
			sk := e.do("POST", "/v1/account/derive", op, map[string]string{"wallet_id": id, "curve": "secp256k1"}).must(t, 201)
			if !strings.HasPrefix(sk.str("evm_address"), "0x") || sk.str("path") != "m/44'/12345'/0'/0/0" {
				t.Fatalf("secp256k1 account: %s", sk.raw)
			}
			e.do("POST", "/v1/account/derive", op, map[string]string{"wallet_id": id, "curve": "ed25519", "path": "m/44'/12345'/0'/0/0"}).refused(t, 400, "BAD_REQUEST")
			if a := e.do("GET", "/v1/address/"+ed.str("account_id"), op, nil).must(t, 200); a.str("address") != ed.str("address") {
				t.Fatalf("address: %s", a.raw)
			}
			if l := e.do("GET", "/v1/accounts?wallet_id="+id, op, nil).must(t, 200); len(l.body["accounts"].([]any)) != 2 {
				t.Fatalf("accounts: %s", l.raw)
			}

			// signatures verify: ed25519 plain, secp256k1 EIP-191
			msg := []byte("job 42 done")
			s := e.do("POST", "/v1/sign/message", op, map[string]string{"account_id": ed.str("account_id"), "message_base64": base64.StdEncoding.EncodeToString(msg)}).must(t, 200)
			sig, _ := base64.StdEncoding.DecodeString(s.str("signature_base64"))
			pub, _ := hex.DecodeString(s.str("public_key_hex"))
			if s.str("algo") != "ed25519" || !ed25519.Verify(pub, msg, sig) {
				t.Fatalf("ed25519 signature: %s", s.raw)
			}
			s = e.do("POST", "/v1/sign/message", op, map[string]string{"account_id": sk.str("account_id"), "message_base64": base64.StdEncoding.EncodeToString(msg)}).must(t, 200)
			sig, _ = base64.StdEncoding.DecodeString(s.str("signature_base64"))
			sig[64] -= 27
			if p, err := crypto.SigToPub(accounts.TextHash(msg), sig); err != nil || crypto.PubkeyToAddress(*p).Hex() != sk.str("evm_address") {
				t.Fatalf("secp256k1 signature does not recover to %s", sk.str("evm_address"))
			}

			// the unlock expires with the injected clock; lock is immediate
			e.clock.Advance(121 * time.Second)
			e.do("POST", "/v1/sign/message", op, map[string]string{"account_id": ed.str("account_id"), "message_base64": "aGk="}).refused(t, 423, "WALLET_LOCKED")
			e.do("POST", "/v1/wallet/unlock", op, map[string]string{"wallet_id": id, "password": "pw-123"}).must(t, 200)
			if l := e.do("POST", "/v1/wallet/lock", op, nil).must(t, 200); l.body["locked"].(float64) != 1 {
				t.Fatalf("lock: %s", l.raw)
			}
			e.do("POST", "/v1/sign/message", op, map[string]string{"account_id": ed.str("account_id"), "message_base64": "aGk="}).refused(t, 423, "WALLET_LOCKED")

			// the BIP-44 vector through the API: "abandon ×11 about" at m/44'/60'/0'/0/0
			im := e.do("POST", "/v1/wallet/import-mnemonic", op, map[string]string{"name": "vec", "password": "pw-123",
				"mnemonic": "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"}).must(t, 201)
			e.do("POST", "/v1/wallet/unlock", op, map[string]string{"wallet_id": im.str("wallet_id"), "password": "pw-123"}).must(t, 200)
			v := e.do("POST", "/v1/account/derive", op, map[string]string{"wallet_id": im.str("wallet_id"), "curve": "secp256k1", "path": "m/44'/60'/0'/0/0"}).must(t, 201)
			if v.str("evm_address") != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" {
				t.Fatalf("BIP-44 vector: %s", v.raw)
			}
			// a raw key
			k := e.do("POST", "/v1/wallet/import-key", op, map[string]string{"name": "raw", "password": "pw-123", "curve": "secp256k1",
				"private_key_hex": "1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727"}).must(t, 201)
			if a := e.do("GET", "/v1/address/"+k.str("account_id"), op, nil).must(t, 200); a.str("evm_address") != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" {
				t.Fatalf("imported key: %s", a.raw)
			}
			e.do("POST", "/v1/wallet/import-key", op, map[string]string{"name": "raw", "password": "pw-123", "curve": "p256", "private_key_hex": strings.Repeat("11", 32)}).refused(t, 400, "BAD_REQUEST")

			// listing never shows secrets
			w := e.do("GET", "/v1/wallets", op, nil).must(t, 200)
			if len(w.body["wallets"].([]any)) != 4 || strings.Contains(w.raw, strings.Fields(mnemonic)[0]+" ") {
				t.Fatalf("wallets: %s", w.raw)
			}
			if kind == "dir" {
				// files: 0600 in a 0700 directory; a tampered file is refused
				p := filepath.Join(dir, "keystore", id+".kdb")
				fi, err := os.Stat(p)
				di, _ := os.Stat(filepath.Dir(p))
				if err != nil || fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
					t.Fatalf("file modes: %v %v %v", err, fi, di)
				}
				b, _ := os.ReadFile(p)
				b[len(b)-5] ^= 1
				os.WriteFile(p, b, 0o600)
				e.do("POST", "/v1/wallet/unlock", op, map[string]string{"wallet_id": id, "password": "pw-123"}).refused(t, 403, "BAD_PASSWORD")
			}
			if strings.Contains(e.logs.String(), mnemonic) || strings.Contains(e.logs.String(), "pw-123") {
				t.Fatal("a secret reached the log")
			}
		})
	}
}

func TestWalletDaemonAuth(t *testing.T) {
	e := newEnv(t, fastDaemon, func(c *Config) { c.WalletToken = "daemon-token-0123456789abcdef0123" })
	e.do("GET", "/v1/wallets", anon, nil, "X-Auth-Token", "").refused(t, 401, "UNAUTHORIZED")
	e.do("GET", "/v1/wallets", anon, nil, "X-Auth-Token", "nope").refused(t, 401, "UNAUTHORIZED")
	e.do("GET", "/v1/wallets", anon, nil, "X-Auth-Token", "daemon-token-0123456789abcdef0123").must(t, 200)
	// agents never reach the daemon, even with the token
	_, _, _, key := setup(t, e)
	e.do("POST", "/v1/sign/message", apiKey(key), map[string]string{"account_id": "x", "message_base64": "aGk="}, "X-Auth-Token", "daemon-token-0123456789abcdef0123").refused(t, 403, "FORBIDDEN")

	// every daemon route: refused without the token, and to agents with it
	n := 0
	for _, rt := range cshttp.Routes() {
		if rt.Access != cshttp.Daemon {
			continue
		}
		path := strings.Replace(rt.Path, "{account_id}", "x", 1)
		var body any
		if rt.Method == "POST" {
			body = map[string]string{}
		}
		e.do(rt.Method, path, anon, body, "X-Auth-Token", "").refused(t, 401, "UNAUTHORIZED")
		e.do(rt.Method, path, apiKey(key), body, "X-Auth-Token", "daemon-token-0123456789abcdef0123").refused(t, 403, "FORBIDDEN")
		n++
	}
	if n != 23 {
		t.Fatalf("%d daemon routes", n)
	}

	// no token: refuses to listen beyond loopback
	cfg := &Config{Addr: "0.0.0.0:0", DataDir: t.TempDir(), Clock: e.clock}
	cfg.defaults()
	log, _ := newLogger("json", "error", &syncBuffer{})
	if _, err := Start(context.Background(), cfg, log); err == nil || !strings.Contains(err.Error(), "WALLET_TOKEN") {
		t.Fatalf("non-loopback without a token: %v", err)
	}
}

func TestWalletDaemonSignTxAndRPC(t *testing.T) {
	e := newEnv(t, fastDaemon)
	op := anon
	rpc := func(body string) string {
		return e.do("POST", "/rpc", op, body).must(t, 200).raw
	}
	// by name and by position, in a batch
	out := rpc(`[{"jsonrpc":"2.0","id":1,"method":"wallet_import_mnemonic","params":{"name":"v","password":"pw-123","mnemonic":"abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"}},
		{"jsonrpc":"2.0","id":2,"method":"wallet_list"}]`)
	var batch []struct {
		ID     int
		Result map[string]any
		Error  *struct {
			Code int
			Data map[string]string
		}
	}
	if err := json.Unmarshal([]byte(out), &batch); err != nil || len(batch) != 2 || batch[0].Error != nil {
		t.Fatalf("batch: %s", out)
	}
	id := batch[0].Result["wallet_id"].(string)
	one := func(body string) (map[string]any, *struct {
		Code int
		Data map[string]string
	}) {
		var r struct {
			Result map[string]any
			Error  *struct {
				Code int
				Data map[string]string
			}
		}
		json.Unmarshal([]byte(rpc(body)), &r)
		return r.Result, r.Error
	}
	if _, e1 := one(`{"jsonrpc":"2.0","id":3,"method":"account_derive","params":["` + id + `","secp256k1","m/44'/60'/0'/0/0"]}`); e1 == nil || e1.Code != -32001 || e1.Data["code"] != "WALLET_LOCKED" {
		t.Fatalf("derive while locked: %+v", e1)
	}
	if _, e1 := one(`{"jsonrpc":"2.0","id":4,"method":"wallet_unlock","params":["` + id + `","nope"]}`); e1 == nil || e1.Code != -32002 {
		t.Fatalf("bad password: %+v", e1)
	}
	one(`{"jsonrpc":"2.0","id":5,"method":"wallet_unlock","params":{"wallet_id":"` + id + `","password":"pw-123"}}`)
	acct, _ := one(`{"jsonrpc":"2.0","id":6,"method":"account_derive","params":["` + id + `","secp256k1","m/44'/60'/0'/0/0"]}`)
	if acct["evm_address"] != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" {
		t.Fatalf("rpc derive: %v", acct)
	}
	aid := acct["account_id"].(string)
	for body, code := range map[string]int{
		`{"jsonrpc":"2.0","id":7,"method":"nope"}`:                                -32601,
		`{"jsonrpc":"2.0","id":8,"method":"sign_message","params":{"bogus":1}}`:   -32602,
		`{"jsonrpc":"2.0","id":9,"method":"address_get","params":["missing-id"]}`: -32004,
		`{"jsonrpc":"1.0","id":10,"method":"wallet_list"}`:                        -32600,
	} {
		if _, e1 := one(body); e1 == nil || e1.Code != code {
			t.Errorf("%s: %+v, want %d", body, e1, code)
		}
	}
	if r := rpc(`{"jsonrpc":"2.0","id":1,`); !strings.Contains(r, "-32700") {
		t.Fatalf("parse error: %s", r)
	}

	// sign_tx evm: an unsigned EIP-1559 transaction in, a signed one out
	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	unsigned := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 3, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to, Value: big.NewInt(5)})
	ub, _ := unsigned.MarshalBinary()
	st, e1 := one(`{"jsonrpc":"2.0","id":11,"method":"sign_tx","params":["` + aid + `","` + base64.StdEncoding.EncodeToString(ub) + `","evm"]}`)
	if e1 != nil {
		t.Fatalf("sign_tx: %+v", e1)
	}
	raw, _ := base64.StdEncoding.DecodeString(st["signed_tx_base64"].(string))
	var signed types.Transaction
	if err := signed.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(1337)), &signed)
	if err != nil || from.Hex() != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" || signed.Hash().Hex() != st["tx_hash"] || signed.Nonce() != 3 {
		t.Fatalf("signed tx: from %s, %v", from.Hex(), err)
	}
	// REST sign/tx aitbc_v0 with an ed25519 account: Ed25519 over the bytes
	ed := e.do("POST", "/v1/account/derive", op, map[string]string{"wallet_id": id}).must(t, 201)
	txb := []byte("aitbc transfer 1")
	r := e.do("POST", "/v1/sign/tx", op, map[string]string{"account_id": ed.str("account_id"), "tx_bytes_base64": base64.StdEncoding.EncodeToString(txb), "type": "aitbc_v0"}).must(t, 200)
	sig, _ := base64.StdEncoding.DecodeString(r.str("signature_base64"))
	pub, _ := hex.DecodeString(r.str("public_key_hex"))
	blob, _ := base64.StdEncoding.DecodeString(r.str("signed_tx_base64"))
	if !ed25519.Verify(pub, txb, sig) || !bytes.Equal(blob, append(append([]byte{}, txb...), sig...)) {
		t.Fatalf("aitbc_v0: %s", r.raw)
	}
	e.do("POST", "/v1/sign/tx", op, map[string]string{"account_id": ed.str("account_id"), "tx_bytes_base64": base64.StdEncoding.EncodeToString(ub), "type": "evm"}).refused(t, 400, "BAD_REQUEST")
	e.do("POST", "/v1/sign/tx", op, map[string]string{"account_id": aid, "tx_bytes_base64": "AAAA", "type": "evm"}).refused(t, 400, "BAD_REQUEST")

	// ethers recovers the daemon's EIP-191 signature
	node := needTool(t, "node")
	msg := "daemon says hi"
	s := e.do("POST", "/v1/sign/message", op, map[string]string{"account_id": aid, "message_base64": base64.StdEncoding.EncodeToString([]byte(msg))}).must(t, 200)
	sb, _ := base64.StdEncoding.DecodeString(s.str("signature_base64"))
	chk := runExample(t, e, "unused", []string{"MESSAGE=" + msg, "SIGNATURE=0x" + hex.EncodeToString(sb)}, node, "checks/verify_message.mjs")
	if !strings.Contains(string(chk), "0x9858EfFD232B4033E47d90003D41EC34EcaEda94") {
		t.Fatalf("ethers: %s", chk)
	}

	// /about names the algorithms and versions
	ab := e.do("GET", "/about", op, nil).must(t, 200).raw
	for _, want := range []string{"Argon2id", "XChaCha20-Poly1305", "SLIP-10", "github.com/ethereum/go-ethereum"} {
		if !strings.Contains(ab, want) {
			t.Errorf("/about lacks %q", want)
		}
	}
}

func TestWalletDaemonSignRateLimit(t *testing.T) {
	e := newEnv(t, fastDaemon, func(c *Config) { c.SignRate, c.SignBurst = 1, 3 })
	w := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "k", "password": "pw", "curve": "ed25519", "private_key_hex": strings.Repeat("07", 32)}).must(t, 201)
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": w.str("wallet_id"), "password": "pw"}).must(t, 200)
	body := map[string]string{"account_id": w.str("account_id"), "message_base64": "aGk="}
	for range 3 {
		e.do("POST", "/v1/sign/message", anon, body).must(t, 200)
	}
	r := e.do("POST", "/v1/sign/message", anon, body).refused(t, 429, "RATE_LIMIT")
	if r.header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
}

func TestReceipts(t *testing.T) {
	e := newEnv(t, fastDaemon)
	w := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "m", "password": "pw", "curve": "ed25519", "private_key_hex": strings.Repeat("09", 32)}).must(t, 201)
	k := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "s", "password": "pw", "curve": "secp256k1", "private_key_hex": strings.Repeat("0a", 32)}).must(t, 201)
	for _, id := range []string{w.str("wallet_id"), k.str("wallet_id")} {
		e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": id, "password": "pw"}).must(t, 200)
	}
	payload := map[string]any{"ts": 1767225600, "result_hash": "0xabc", "miner_id": "miner-7 \"é\" <ok>\n\t\u0001", "job_id": "job-42"}
	for _, acct := range []string{w.str("account_id"), k.str("account_id")} {
		s := e.do("POST", "/v1/sign/receipt", anon, map[string]any{"account_id": acct, "payload": payload}).must(t, 200)
		want := `{"job_id":"job-42","miner_id":"miner-7 \"é\" <ok>\n\t\u0001","result_hash":"0xabc","ts":1767225600}`
		if s.str("canonical") != want {
			t.Fatalf("canonical form:\n%s\nwant\n%s", s.str("canonical"), want)
		}
		v := e.do("POST", "/v1/verify/receipt", anon, map[string]any{"payload": payload, "signature_base64": s.str("signature_base64"), "public_key_hex": s.str("public_key_hex")}).must(t, 200)
		if v.body["valid"] != true {
			t.Fatalf("receipt does not verify (%s)", s.str("algo"))
		}
		tampered := map[string]any{"ts": 1767225601, "result_hash": "0xabc", "miner_id": payload["miner_id"], "job_id": "job-42"}
		if v := e.do("POST", "/v1/verify/receipt", anon, map[string]any{"payload": tampered, "signature_base64": s.str("signature_base64"), "public_key_hex": s.str("public_key_hex")}).must(t, 200); v.body["valid"] != false {
			t.Fatal("a tampered receipt verifies")
		}
	}
	e.do("POST", "/v1/sign/receipt", anon, map[string]any{"account_id": w.str("account_id"), "payload": map[string]any{"job_id": "j", "extra": 1}}).refused(t, 400, "BAD_REQUEST")
	// an independent implementation: JSON.stringify with the keys in order is JCS for these types
	node := needTool(t, "node")
	out, err := exec.Command(node, "-e", `process.stdout.write(JSON.stringify({job_id:"job-42",miner_id:"miner-7 \"é\" <ok>\n\t\u0001",result_hash:"0xabc",ts:1767225600}))`).Output()
	if err != nil || string(out) != `{"job_id":"job-42","miner_id":"miner-7 \"é\" <ok>\n\t\u0001","result_hash":"0xabc","ts":1767225600}` {
		t.Fatalf("node's canonical form differs: %s %v", out, err)
	}
}

func TestMockLedger(t *testing.T) {
	e := newEnv(t, fastDaemon)
	w := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "a", "password": "pw", "curve": "ed25519", "private_key_hex": strings.Repeat("0b", 32)}).must(t, 201)
	from := w.str("address")
	other := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "b", "password": "pw", "curve": "ed25519", "private_key_hex": strings.Repeat("0c", 32)}).must(t, 201)
	to := other.str("address")

	for amount, ok := range map[string]bool{"1": true, "0.000001": true, "123.456": true, "0": false, "-1": false, "1.0000001": false, "1e3": false, "01": false, "1.": false, ".5": false, "": false} {
		r := e.do("POST", "/v1/ledger/faucet", anon, map[string]string{"address": from, "amount": amount})
		if (r.status == 200) != ok {
			t.Errorf("amount %q: %d %s", amount, r.status, r.raw)
		}
	}
	bal := e.do("GET", "/v1/ledger/balance/"+from, anon, nil).must(t, 200)
	if bal.str("balance") != "124.456001" || bal.str("balance_units") != "124456001" {
		t.Fatalf("balance: %s", bal.raw)
	}
	body := map[string]string{"from": from, "to": to, "amount": "100.5", "memo": "payout job 42"}
	e.do("POST", "/v1/ledger/transfer", anon, body).refused(t, 423, "WALLET_LOCKED")
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": w.str("wallet_id"), "password": "pw"}).must(t, 200)
	tx := e.do("POST", "/v1/ledger/transfer", anon, body).must(t, 201)
	if e.do("GET", "/v1/ledger/balance/"+from, anon, nil).must(t, 200).str("balance") != "23.956001" ||
		e.do("GET", "/v1/ledger/balance/"+to, anon, nil).must(t, 200).str("balance") != "100.5" {
		t.Fatal("balances after the transfer")
	}
	// the sender signed exactly what is recorded
	got := e.do("GET", "/v1/ledger/tx/"+tx.str("txid"), anon, nil).must(t, 200)
	sig, _ := base64.StdEncoding.DecodeString(got.str("signature_base64"))
	pub, _ := hex.DecodeString(got.str("public_key_hex"))
	if !ed25519.Verify(pub, []byte(got.str("signed")), sig) || !strings.Contains(got.str("signed"), `"amount_units":"100500000"`) {
		t.Fatalf("transfer signature: %s", got.raw)
	}
	e.do("POST", "/v1/ledger/transfer", anon, map[string]string{"from": from, "to": to, "amount": "1000"}).refused(t, 422, "INSUFFICIENT_FUNDS")
	e.do("POST", "/v1/ledger/transfer", anon, map[string]string{"from": to + "x", "to": to, "amount": "1"}).refused(t, 404, "NOT_FOUND")
	// over JSON-RPC too
	r := e.do("POST", "/rpc", anon, `{"jsonrpc":"2.0","id":1,"method":"ledger_transfer","params":["`+from+`","`+to+`","0.000001","rpc"]}`).must(t, 200)
	if !strings.Contains(r.raw, `"amount":"0.000001"`) {
		t.Fatalf("rpc transfer: %s", r.raw)
	}
	r = e.do("POST", "/rpc", anon, `{"jsonrpc":"2.0","id":2,"method":"ledger_getBalance","params":["`+to+`"]}`).must(t, 200)
	if !strings.Contains(r.raw, `"balance":"100.500001"`) {
		t.Fatalf("rpc balance: %s", r.raw)
	}
	// each transfer is an event in the outbox (for webhooks)
	evs, _ := e.app.Store.EventsAfter(context.Background(), "daemon", 0, 100)
	transfers := 0
	for _, ev := range evs {
		if ev.Type == "transfer" {
			transfers++
		}
	}
	if transfers != 2 {
		t.Fatalf("%d transfer events in %d", transfers, len(evs))
	}
}

// Accounts carry the operator's tags (seed 001 §15): set at derivation,
// replaced later, listed, validated, audited; over REST and JSON-RPC.
func TestAccountTags(t *testing.T) {
	e := newEnv(t, fastDaemon)
	w := e.do("POST", "/v1/wallet/create", anon, map[string]any{"name": "t", "password": "pw-123456"}).must(t, 201).str("wallet_id")
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": w, "password": "pw-123456"}).must(t, 200)
	a := e.do("POST", "/v1/account/derive", anon, map[string]any{"wallet_id": w, "tags": map[string]string{"role": "payout", "team": "gpu-ops"}}).must(t, 201)
	if tags, _ := a.body["tags"].(map[string]any); tags["role"] != "payout" || tags["team"] != "gpu-ops" {
		t.Fatalf("derive with tags: %s", a.raw)
	}
	plain := e.do("POST", "/v1/account/derive", anon, map[string]any{"wallet_id": w, "curve": "secp256k1"}).must(t, 201)
	if !strings.Contains(plain.raw, `"tags":{}`) {
		t.Fatalf("an untagged account: %s", plain.raw)
	}
	// replace (not merge)
	r := e.do("POST", "/v1/account/tags", anon, map[string]any{"account_id": a.str("account_id"), "tags": map[string]string{"role": "ops"}}).must(t, 200)
	if tags, _ := r.body["tags"].(map[string]any); len(tags) != 1 || tags["role"] != "ops" {
		t.Fatalf("replaced tags: %s", r.raw)
	}
	list := e.do("GET", "/v1/accounts?wallet_id="+w, anon, nil).must(t, 200).raw
	if !strings.Contains(list, `"tags":{"role":"ops"}`) || strings.Contains(list, "gpu-ops") {
		t.Fatalf("listed: %s", list)
	}
	// bad tags change nothing
	many := map[string]string{}
	for i := range 17 {
		many[fmt.Sprintf("t%d", i)] = "x"
	}
	for name, tags := range map[string]any{
		"too many":      many,
		"upper case":    map[string]string{"Role": "x"},
		"empty name":    map[string]string{"": "x"},
		"long name":     map[string]string{strings.Repeat("a", 33): "x"},
		"long value":    map[string]string{"a": strings.Repeat("é", 129)},
		"control":       map[string]string{"a": "x\ny"},
		"not a string":  map[string]any{"a": 1},
		"not an object": []string{"a"},
	} {
		t.Run(name, func(t *testing.T) {
			e.do("POST", "/v1/account/tags", anon, map[string]any{"account_id": a.str("account_id"), "tags": tags}).refused(t, 400, "BAD_REQUEST")
			e.do("POST", "/v1/account/derive", anon, map[string]any{"wallet_id": w, "path": "m/44'/12345'/9'/0'/0'", "tags": tags}).refused(t, 400, "BAD_REQUEST")
		})
	}
	if !strings.Contains(e.do("GET", "/v1/accounts?wallet_id="+w, anon, nil).must(t, 200).raw, `"tags":{"role":"ops"}`) {
		t.Fatal("refused tags changed the account")
	}
	if n := len(e.do("GET", "/v1/accounts?wallet_id="+w, anon, nil).must(t, 200).body["accounts"].([]any)); n != 2 {
		t.Fatalf("refused derivations created accounts: %d", n)
	}
	e.do("POST", "/v1/account/tags", anon, map[string]any{"account_id": "missing", "tags": map[string]string{}}).refused(t, 404, "NOT_FOUND")
	// filtering by tag
	for q, want := range map[string]int{"role": 1, "role=ops": 1, "role=payout": 0, "team": 0, "": 2} {
		got := e.do("GET", "/v1/accounts?wallet_id="+w+"&tag="+url.QueryEscape(q), anon, nil).must(t, 200).body["accounts"].([]any)
		if len(got) != want {
			t.Errorf("tag=%q: %d accounts, want %d", q, len(got), want)
		}
	}
	if res, er := e.rpcCall("account_list", []any{w, "role=ops"}); er != nil || strings.Count(string(res), `"account_id"`) != 1 {
		t.Fatalf("account_list by tag: %s %+v", res, er)
	}
	// JSON-RPC, by position; and an empty object clears
	res, er := e.rpcCall("account_setTags", []any{a.str("account_id"), map[string]string{}})
	if er != nil || !strings.Contains(string(res), `"tags":{}`) {
		t.Fatalf("account_setTags: %s %+v", res, er)
	}
	res, er = e.rpcCall("account_derive", []any{w, "ed25519", "m/44'/12345'/1'/0'/0'", map[string]string{"role": "miner"}})
	if er != nil || !strings.Contains(string(res), `"role":"miner"`) {
		t.Fatalf("account_derive with tags: %s %+v", res, er)
	}
	// audited
	entries, _ := e.app.Store.AuditEntries(context.Background(), "daemon", 0, 1000)
	n := 0
	for _, en := range entries {
		if en.Action == "daemon.account.tags" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d daemon.account.tags audit entries, want 2", n)
	}
}

// WALLET_CHAIN picks the ledger adapter: mock today; aitbc is refused with
// a clear reason until the seed's chain has a node to talk to.
func TestWalletChain(t *testing.T) {
	e := newEnv(t, fastDaemon)
	if ab := e.do("GET", "/about", anon, nil).must(t, 200).raw; !strings.Contains(ab, `"ledger":"mock"`) {
		t.Fatalf("/about: %s", ab)
	}
	for chain, want := range map[string]string{"aitbc": "no AITBC node adapter", "bitcoin": "WALLET_CHAIN must be mock"} {
		err := startFails(t, func(c *Config) { c.DataDir = t.TempDir(); c.WalletChain = chain })
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("WALLET_CHAIN=%s: %v", chain, err)
		}
	}
}

// startFails starts the server with fastDaemon and setup applied, expects
// Start to refuse, and returns its error.
func startFails(t *testing.T, setup func(*Config)) error {
	t.Helper()
	cfg := &Config{Addr: "127.0.0.1:0", LogFormat: "json"}
	setup(cfg)
	fastDaemon(cfg)
	if err := cfg.defaults(); err != nil {
		t.Fatal(err)
	}
	log, _ := newLogger("json", "error", io.Discard)
	app, err := Start(context.Background(), cfg, log)
	if err == nil {
		app.Close()
		t.Fatal("the server started")
	}
	return err
}
