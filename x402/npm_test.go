package x402

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
)

// The cross-check with the reference implementation (npm @x402/core and
// @x402/evm 2.27): its facilitator's verify accepts the payment payload
// countersign builds, and countersign's parsers and verifier accept the
// PAYMENT-REQUIRED header and the payment its client builds. The test
// installs the packages itself (testdata/npm, pinned by its lockfile);
// without node it skips, except under CI=true, where it fails.

func npmDir(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("node is not installed: the x402 cross-check needs it (scripts/ensure-tools.sh installs it)")
		}
		t.Skip("node is not installed (CI installs it)")
	}
	_ = node
	dir, _ := filepath.Abs("testdata/npm")
	stamp := filepath.Join(dir, "node_modules", ".countersign-stamp")
	st, err := os.Stat(stamp)
	pj, _ := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil || (pj != nil && pj.ModTime().After(st.ModTime())) {
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--silent")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", dir, err, out)
		}
		if err := os.WriteFile(stamp, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func runNode(t *testing.T, dir string, in any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(in)
	cmd := exec.Command("node", "crosscheck.mjs")
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(b)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node crosscheck.mjs: %v\n%s", err, stderr.String())
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("node said %q: %v", out, err)
	}
	return m
}

const (
	ccAsset = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"
	ccPayTo = "0x209693Bc6afc0C5328bA36FaF03C514EF312287C"
)

func ccRequired(network string) *PaymentRequired {
	b := []byte(`{"x402Version":2,"resource":{"url":"https://api.example/paid","description":"d","mimeType":"text/plain"},
		"accepts":[{"scheme":"exact","network":"` + network + `","amount":"10000","asset":"` + ccAsset + `","payTo":"` + ccPayTo + `",
		"maxTimeoutSeconds":300,"extra":{"name":"USD Coin","version":"2"}}]}`)
	pr, err := ParsePaymentRequired(b)
	if err != nil {
		panic(err)
	}
	return pr
}

// signOffer builds and signs a payment for o as countersign does.
func signOffer(t *testing.T, key *ecdsa.PrivateKey, pr *PaymentRequired, o *Offer, nonce byte) *PaymentPayload {
	t.Helper()
	now := time.Now().Unix()
	a := &Authorization{From: crypto.PubkeyToAddress(key.PublicKey), To: o.PayTo, Value: o.Amount,
		ValidAfter: big.NewInt(now - 600), ValidBefore: big.NewInt(now + 300)}
	a.Nonce[0], a.Nonce[31] = nonce, 0x5a
	h, err := Hash(TypedData(o, a))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := crypto.Sign(h, key)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] += 27
	return NewPaymentPayload(pr, o, NewExactPayload(a, sig))
}

func TestCrossCheck_ReferenceFacilitatorAcceptsOurPayment(t *testing.T) {
	dir := npmDir(t)
	key, _ := crypto.GenerateKey()
	for _, network := range []string{"eip155:84532", "eip155:1337"} {
		pr := ccRequired(network)
		offers, _ := Offers(pr, mustChain(network))
		p := signOffer(t, key, pr, &offers[0], 1)
		h, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		var reqs map[string]any
		_ = json.Unmarshal(offers[0].Req.Raw, &reqs)
		got := runNode(t, dir, map[string]any{"mode": "verify", "header": h, "requirements": reqs, "asset": ccAsset})
		if got["isValid"] != true || got["payer"] != crypto.PubkeyToAddress(key.PublicKey).Hex() {
			t.Fatalf("%s: the reference facilitator refused countersign's payment: %v", network, got)
		}
		// a tampered payment is refused by it: the check can fail
		bad := *p
		bad.Payload.Authorization.Value = "10001"
		hb, _ := bad.Encode()
		if got := runNode(t, dir, map[string]any{"mode": "verify", "header": hb, "requirements": reqs, "asset": ccAsset}); got["isValid"] != false {
			t.Fatalf("%s: the reference facilitator accepted a tampered value: %v", network, got)
		}
	}
}

func TestCrossCheck_WeAcceptTheReferenceClientsPayment(t *testing.T) {
	dir := npmDir(t)
	key, _ := crypto.GenerateKey()
	pr := ccRequired("eip155:84532")
	got := runNode(t, dir, map[string]any{"mode": "build", "privateKey": hexutil.Encode(crypto.FromECDSA(key)), "paymentRequired": map[string]any{
		"x402Version": 2, "resource": json.RawMessage(pr.Resource), "accepts": []json.RawMessage{pr.Accepts[0].Raw}}})
	their, err := ParsePaymentRequiredHeader(got["paymentRequiredHeader"].(string))
	if err != nil {
		t.Fatalf("their PAYMENT-REQUIRED header: %v", err)
	}
	offers, refused := Offers(their, 84532)
	if len(offers) != 1 || len(refused) != 0 || offers[0].Amount.String() != "10000" || offers[0].PayTo != common.HexToAddress(ccPayTo) {
		t.Fatalf("their requirements: %+v %+v", offers, refused)
	}
	p, err := DecodePaymentPayload(got["paymentSignature"].(string))
	if err != nil {
		t.Fatalf("their PAYMENT-SIGNATURE header: %v", err)
	}
	payer, err := Verify(p, &offers[0], time.Now().Unix())
	if err != nil || payer != crypto.PubkeyToAddress(key.PublicKey) {
		t.Fatalf("their payment does not verify here: %v (payer %s)", err, payer.Hex())
	}
}

func mustChain(network string) int64 {
	id, ok := ChainID(network)
	if !ok {
		panic(network)
	}
	return id
}
