package main

import (
	"encoding/hex"
	"encoding/json"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign/keys/keystore"
)

// ethers (an independent client) reads our v3 keystores and we read its.
func TestKeystoreV3WithEthers(t *testing.T) {
	node := needTool(t, "node")
	e := newEnv(t)
	priv, _ := crypto.GenerateKey()
	ours, err := keystore.ExportV3(crypto.FromECDSA(priv), "correct horse", 1<<12, 1)
	if err != nil {
		t.Fatal(err)
	}
	out := runExample(t, e, "unused", []string{"KEYSTORE=" + string(ours), "PASSWORD=correct horse"}, node, "checks/keystore_checks.mjs")
	var res struct{ OurAddress, Theirs, TheirAddress, TheirKey string }
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.OurAddress != crypto.PubkeyToAddress(priv.PublicKey).Hex() {
		t.Fatalf("ethers read %s from our keystore", res.OurAddress)
	}
	key, addr, err := keystore.ImportV3([]byte(res.Theirs), "correct horse")
	if err != nil || addr.Hex() != res.TheirAddress || "0x"+hex.EncodeToString(key) != res.TheirKey {
		t.Fatalf("importing ethers' keystore: %v %s", err, addr.Hex())
	}
}
