package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

const (
	testMaster      = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	testSignerToken = "signer-token-for-tests-0123456789"
)

func withSigner(c *Config) { c.SignerSecret, c.SignerToken = testMaster, testSignerToken }

const typedJSON = `{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"version","type":"string"},{"name":"chainId","type":"uint256"}],
"Login":[{"name":"who","type":"string"},{"name":"amount","type":"uint256"}]},"primaryType":"Login",
"domain":{"name":"countersign test","version":"1","chainId":1},"message":{"who":"agent","amount":"42"}}`

func TestDerivedSignerRoutes(t *testing.T) {
	omni := countersign.OmniAccount("countersign", "email", "onboard@example.com")
	svc := bearer(testSignerToken)

	// without the master secret: 503, whoever asks
	plain := newEnv(t)
	plain.do("POST", "/dev/derive-address", svc, map[string]string{"omni_account": omni}).refused(t, 503, "SIGNER_DISABLED")

	e := newEnv(t, withSigner)
	for name, c := range map[string]cred{"no credential": anon, "wrong token": bearer("nope"), "user-looking token": bearer(testSignerToken + "x")} {
		if r := e.do("POST", "/dev/sign-message", c, map[string]string{"omni_account": omni, "message_hex": "0x00"}); r.status != 401 {
			t.Errorf("%s: %d %s", name, r.status, r.raw)
		}
	}
	addr := e.do("POST", "/dev/derive-address", svc, map[string]string{"omni_account": omni}).must(t, 200).str("address")
	e.do("POST", "/dev/derive-address", svc, map[string]string{"omni_account": "ABC"}).refused(t, 400, "BAD_REQUEST")
	msg := "sign in to countersign"
	sig := e.do("POST", "/dev/sign-message", svc, map[string]string{"omni_account": omni, "message_hex": hexutil.Encode([]byte(msg))}).must(t, 200).str("signature")
	tsig := e.do("POST", "/dev/sign-typed-data", svc, map[string]any{"omni_account": omni, "typed_data": json.RawMessage(typedJSON)}).must(t, 200).str("signature")
	// a refused signature (bad typed data) is not audited
	e.do("POST", "/dev/sign-typed-data", svc, map[string]any{"omni_account": omni, "typed_data": json.RawMessage(`{"types":{}}`)}).refused(t, 400, "BAD_REQUEST")
	// each signature is one entry on the omni account's audit chain, naming
	// the signed hash (never the message), and the chain verifies
	entries, err := e.app.Store.AuditEntries(context.Background(), "omni:"+omni, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries[0].Action != "derived.sign.message" || entries[1].Action != "derived.sign.typed_data" {
		t.Fatalf("audit entries of the signatures: %+v", entries)
	}
	for _, en := range entries {
		if en.Actor != "service" || en.Subject != omni || !strings.Contains(en.Details, `"message_hash":"`) || strings.Contains(en.Details, hexutil.Encode([]byte(msg))[2:]) {
			t.Fatalf("audit entry %+v", en)
		}
	}
	if _, err := core.VerifyAudit(context.Background(), e.app.Store); err != nil {
		t.Fatal(err)
	}

	// deterministic across restarts
	e2 := newEnv(t, withSigner)
	if a := e2.do("POST", "/dev/derive-address", svc, map[string]string{"omni_account": omni}).must(t, 200).str("address"); a != addr {
		t.Fatalf("after a restart: %s, want %s", a, addr)
	}

	// a separate signer process, and the server using it through SIGNER_URL
	signerURL, stopSigner := startSignerProcess(t)
	viaRemote := newEnv(t, func(c *Config) { c.SignerURL, c.SignerToken = signerURL, testSignerToken })
	if a := viaRemote.do("POST", "/dev/derive-address", svc, map[string]string{"omni_account": omni}).must(t, 200).str("address"); a != addr {
		t.Fatalf("through the separate signer: %s, want %s", a, addr)
	}
	if s := viaRemote.do("POST", "/dev/sign-message", svc, map[string]string{"omni_account": omni, "message_hex": hexutil.Encode([]byte(msg))}).must(t, 200).str("signature"); s != sig {
		t.Fatal("the separate signer signs differently") // RFC 6979: deterministic signatures
	}
	if err := stopSigner(); err != nil {
		t.Fatalf("signer: %v", err)
	}
	// the signer refuses to start without its secret or its token
	if err := run(context.Background(), []string{"signer"}, func(string) string { return "" }, &bytes.Buffer{}, &bytes.Buffer{}); err == nil {
		t.Fatal("signer started without a master secret")
	}
	if err := run(context.Background(), []string{"signer"}, func(k string) string {
		return map[string]string{"DEV_KEY_SERVICE_MASTER_SECRET": testMaster}[k]
	}, &bytes.Buffer{}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "SIGNER_TOKEN") {
		t.Fatalf("signer without a token: %v", err)
	}

	// ethers recovers the derived address and agrees on the EIP-712 digest
	node := needTool(t, "node")
	out := runExample(t, e, "unused", []string{"MESSAGE=" + msg, "SIGNATURE=" + sig, "TYPED=" + typedJSON, "TYPED_SIGNATURE=" + tsig}, node, "checks/derived_checks.mjs")
	var chk struct{ Recovered, TypedDigest, TypedRecovered string }
	if err := json.Unmarshal(out, &chk); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var td apitypes.TypedData
	json.Unmarshal([]byte(typedJSON), &td)
	digest, _, _ := apitypes.TypedDataAndHash(td)
	if chk.Recovered != addr || chk.TypedRecovered != addr || chk.TypedDigest != hexutil.Encode(digest) {
		t.Fatalf("ethers: %s (address %s, digest %x)", out, addr, digest)
	}
}
