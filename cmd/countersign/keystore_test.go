package main

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign/keys/keystore"
)

// ethers (an independent client) reads our v3 keystores and we read its —
// in the library, and through the daemon's import and export routes.
func TestKeystoreV3WithEthers(t *testing.T) {
	node := needTool(t, "node")
	e := newEnv(t, fastDaemon, func(c *Config) { c.ExportScryptN = 1 << 12 })
	priv, _ := crypto.GenerateKey()
	ours, err := keystore.ExportV3(crypto.FromECDSA(priv), "correct horse", 1<<12, 1)
	if err != nil {
		t.Fatal(err)
	}
	ethersReads := func(ks []byte) (res struct{ OurAddress, Theirs, TheirAddress, TheirKey string }) {
		out := runExample(t, e, "unused", []string{"KEYSTORE=" + string(ks), "PASSWORD=correct horse"}, node, "checks/keystore_checks.mjs")
		if err := json.Unmarshal(out, &res); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return res
	}
	res := ethersReads(ours)
	if res.OurAddress != crypto.PubkeyToAddress(priv.PublicKey).Hex() {
		t.Fatalf("ethers read %s from our keystore", res.OurAddress)
	}
	key, addr, err := keystore.ImportV3([]byte(res.Theirs), "correct horse")
	if err != nil || addr.Hex() != res.TheirAddress || "0x"+hex.EncodeToString(key) != res.TheirKey {
		t.Fatalf("importing ethers' keystore: %v %s", err, addr.Hex())
	}

	// the daemon imports ethers' file as a wallet (the JSON object as is) …
	body := map[string]any{"name": "from ethers", "password": "pw-123456", "keystore_json": json.RawMessage(res.Theirs), "keystore_password": "wrong"}
	e.do("POST", "/v1/wallet/import-keystore", anon, body).refused(t, 403, "BAD_PASSWORD")
	body["keystore_json"] = json.RawMessage(`{"version":3,"crypto":{}}`)
	e.do("POST", "/v1/wallet/import-keystore", anon, body).refused(t, 400, "BAD_REQUEST")
	if n := len(e.do("GET", "/v1/wallets", anon, nil).must(t, 200).body["wallets"].([]any)); n != 0 {
		t.Fatalf("refused imports created %d wallets", n)
	}
	body["keystore_json"], body["keystore_password"] = res.Theirs, "correct horse" // or as a string
	w := e.do("POST", "/v1/wallet/import-keystore", anon, body).must(t, 201)
	if w.str("evm_address") != res.TheirAddress {
		t.Fatalf("imported %s, want %s", w.str("evm_address"), res.TheirAddress)
	}
	// … and exports it again for ethers to read
	e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": w.str("wallet_id"), "password": "pw-123456"}).must(t, 200)
	x := e.do("POST", "/v1/wallet/export", anon, map[string]string{"account_id": w.str("account_id"), "export_password": "correct horse"}).must(t, 200)
	exported, _ := base64.StdEncoding.DecodeString(x.str("keystore_base64"))
	if back := ethersReads(exported); back.OurAddress != res.TheirAddress {
		t.Fatalf("ethers read %s from the daemon's export", back.OurAddress)
	}
}
