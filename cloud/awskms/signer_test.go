package awskms

import (
	"context"
	"crypto/rand"
	"encoding/asn1"
	"math/big"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/ethereum/go-ethereum/common"
	ethtypes "github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign/chain/sim"
	"github.com/countersign/countersign/cloud/awskms/kmstest"
)

func newSigner(t *testing.T, s *kmstest.Server, keyID string) *Signer {
	t.Helper()
	sg, err := NewSigner(context.Background(), Config{KeyID: keyID, Region: kmstest.Region, Endpoint: s.Endpoint})
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

// The signer's address is the KMS key's (from GetPublicKey's SPKI), and
// over many digests every signature is 65 bytes, has a low s, and
// recovers with go-ethereum's Ecrecover to that key — including the ones
// whose raw KMS signature had a high s (about half: KMS does not
// normalise), which are counted so the normalisation is known to have
// been exercised.
func TestSigner_SignaturesRecoverLowS(t *testing.T) {
	s := kmstest.Start(t)
	arn := s.Secp256k1Key(t)
	sg := newSigner(t, s, arn)
	pk, err := s.Client.GetPublicKey(context.Background(), &kms.GetPublicKeyInput{KeyId: &arn})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(pk.PublicKey)
	if err != nil || sg.Address() != crypto.PubkeyToAddress(*pub) || sg.ARN() != arn {
		t.Fatalf("address %s, key %v %v", sg.Address(), pub, err)
	}
	const n = 120
	high := 0
	for i := range n {
		hash := make([]byte, 32)
		rand.Read(hash)
		raw, err := s.Client.Sign(context.Background(), &kms.SignInput{KeyId: &arn, Message: hash, MessageType: types.MessageTypeDigest, SigningAlgorithm: types.SigningAlgorithmSpecEcdsaSha256})
		if err != nil {
			t.Fatal(err)
		}
		_, rs, err := ParseDERSignature(raw.Signature)
		if err != nil {
			t.Fatalf("KMS's own DER: %v", err)
		}
		if rs.Cmp(secp256k1HalfN) > 0 {
			high++
		}
		sig, err := sg.SignHash(context.Background(), hash)
		if err != nil {
			t.Fatalf("signature %d: %v", i, err)
		}
		if len(sig) != 65 || sig[64] > 1 {
			t.Fatalf("signature %d: %d bytes, v %d", i, len(sig), sig[64])
		}
		if new(big.Int).SetBytes(sig[32:64]).Cmp(secp256k1HalfN) > 0 {
			t.Fatalf("signature %d has a high s", i)
		}
		got, err := crypto.Ecrecover(hash, sig)
		if err != nil || string(got) != string(crypto.FromECDSAPub(pub)) {
			t.Fatalf("signature %d recovers to another key: %v", i, err)
		}
		if !crypto.VerifySignature(crypto.FromECDSAPub(pub), hash, sig[:64]) {
			t.Fatalf("signature %d does not verify", i)
		}
	}
	if high == 0 {
		t.Fatalf("none of %d KMS signatures had a high s: the normalisation was not exercised", n)
	}
	if _, err := sg.SignHash(context.Background(), make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte digest was signed")
	}
}

// TestMoney_KMSSignedTxMinedOnTheChain: an EIP-1559 transaction signed by
// the KMS signer recovers to its address and is mined by the simulated
// chain, moving exactly the value.
func TestMoney_KMSSignedTxMinedOnTheChain(t *testing.T) {
	s := kmstest.Start(t)
	sg := newSigner(t, s, s.Secp256k1Key(t))
	ctx := context.Background()
	c, err := sim.Start(ctx, []byte("awskms signer test"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Fund(ctx, sg.Address(), big.NewInt(1e18)); err != nil {
		t.Fatal(err)
	}
	cl := c.Client()
	chainID, err := cl.ChainID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	head, err := cl.HeaderByNumber(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x000000000000000000000000000000000000bEEF")
	value := big.NewInt(123456789)
	for nonce := range uint64(3) {
		tx := ethtypes.NewTx(&ethtypes.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: big.NewInt(1e9),
			GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), big.NewInt(1e9)), Gas: 21000, To: &to, Value: value})
		signed, err := sg.SignTx(ctx, tx, chainID)
		if err != nil {
			t.Fatal(err)
		}
		from, err := ethtypes.Sender(ethtypes.LatestSignerForChainID(chainID), signed)
		if err != nil || from != sg.Address() {
			t.Fatalf("the signed transaction recovers to %s (%v), want %s", from, err, sg.Address())
		}
		if err := cl.SendTransaction(ctx, signed); err != nil {
			t.Fatalf("the chain refused the KMS-signed transaction: %v", err)
		}
		r, err := cl.TransactionReceipt(ctx, signed.Hash())
		if err != nil || r.Status != ethtypes.ReceiptStatusSuccessful {
			t.Fatalf("receipt: %+v %v", r, err)
		}
	}
	bal, err := cl.BalanceAt(ctx, to, nil)
	if err != nil || bal.Cmp(new(big.Int).Mul(value, big.NewInt(3))) != 0 {
		t.Fatalf("recipient balance %s, want 3 × %s", bal, value)
	}
}

// TestSecurity_KMSSignerFailsClosed: a key that is not secp256k1 (a
// symmetric key, a P-256 signing key) is refused at NewSigner — a P-256
// key would "sign" with a curve whose signatures recover to some other
// address; a KMS that is not there is refused naming its endpoint; and a
// signature that does not recover to the key is an error, not a
// signature.
func TestSecurity_KMSSignerFailsClosed(t *testing.T) {
	s := kmstest.Start(t)
	for _, arn := range []string{s.SymmetricKey(t), s.CreateKey(t, types.KeySpecEccNistP256, types.KeyUsageTypeSignVerify)} {
		if _, err := NewSigner(context.Background(), Config{KeyID: arn, Endpoint: s.Endpoint}); err == nil || !strings.Contains(err.Error(), "ECC_SECG_P256K1") {
			t.Fatalf("%s as an Ethereum signer: %v", arn, err)
		}
	}
	l := "http://127.0.0.1:" + strconv.Itoa(freePortInternal(t))
	if _, err := NewSigner(context.Background(), Config{KeyID: "k", Region: "eu-west-2", Endpoint: l}); err == nil || !strings.Contains(err.Error(), l) {
		t.Fatalf("unreachable KMS: %v", err)
	}
	sg := newSigner(t, s, s.Secp256k1Key(t))
	hash := crypto.Keccak256([]byte("x"))
	sig, err := sg.SignHash(context.Background(), hash)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := crypto.GenerateKey()
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	if _, err := ethereumSignature(hash, r, sv, &other.PublicKey); err == nil {
		t.Fatal("a signature was accepted for a key it does not recover to")
	}
	s.Stop()
	if _, err := sg.SignHash(context.Background(), hash); err == nil || !strings.Contains(err.Error(), s.Endpoint) {
		t.Fatalf("sign with KMS down: %v", err)
	}
}

// A high-s signature (what KMS may return) is normalised to (r, n−s) with
// the recovery id flipped: checked against go-ethereum's own signatures.
func TestEthereumSignature_NormalisesHighS(t *testing.T) {
	key, _ := crypto.GenerateKey()
	for i := range 20 {
		hash := crypto.Keccak256([]byte{byte(i)})
		want, _ := crypto.Sign(hash, key) // low s
		r, s := new(big.Int).SetBytes(want[:32]), new(big.Int).SetBytes(want[32:64])
		highS := new(big.Int).Sub(secp256k1N, s)
		for _, sv := range []*big.Int{s, highS} {
			got, err := ethereumSignature(hash, r, sv, &key.PublicKey)
			if err != nil || string(got) != string(want) {
				t.Fatalf("%d: %x, want %x (%v)", i, got, want, err)
			}
		}
	}
}

func TestParseDERSignature(t *testing.T) {
	good, _ := asn1.Marshal(derSignature{R: big.NewInt(1), S: big.NewInt(2)})
	top, _ := asn1.Marshal(derSignature{R: new(big.Int).Sub(secp256k1N, big.NewInt(1)), S: big.NewInt(2)})
	overN, _ := asn1.Marshal(derSignature{R: secp256k1N, S: big.NewInt(2)})
	zero, _ := asn1.Marshal(derSignature{R: big.NewInt(0), S: big.NewInt(2)})
	neg, _ := asn1.Marshal(derSignature{R: big.NewInt(-5), S: big.NewInt(2)})
	tests := map[string]struct {
		der []byte
		ok  bool
	}{
		"ok/small":             {der: good, ok: true},
		"ok/n-1":               {der: top, ok: true},
		"fail/r = n":           {der: overN},
		"fail/zero":            {der: zero},
		"fail/negative":        {der: neg},
		"fail/trailing":        {der: append(append([]byte(nil), good...), 0)},
		"fail/long length":     {der: []byte{0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}},
		"fail/padded integer":  {der: []byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02}},
		"fail/one integer":     {der: []byte{0x30, 0x03, 0x02, 0x01, 0x01}},
		"fail/three integers":  {der: []byte{0x30, 0x09, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x02, 0x01, 0x03}},
		"fail/empty":           {der: nil},
		"fail/not a sequence":  {der: []byte{0x31, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02}},
		"fail/truncated":       {der: good[:len(good)-1]},
		"fail/indefinite form": {der: []byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00, 0x00}},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			r, s, err := ParseDERSignature(tt.der)
			if tt.ok != (err == nil) {
				t.Fatalf("err %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && (r == nil || s == nil) {
				t.Fatal("nil r or s")
			}
		})
	}
}

// FuzzDERSignature: whatever parses is canonical DER for two integers in
// 1 … n−1 (encoding them again gives the same bytes), and what parses
// feeds ethereumSignature without a panic.
func FuzzDERSignature(f *testing.F) {
	good, _ := asn1.Marshal(derSignature{R: big.NewInt(1), S: big.NewInt(2)})
	high, _ := asn1.Marshal(derSignature{R: new(big.Int).Sub(secp256k1N, big.NewInt(1)), S: new(big.Int).Sub(secp256k1N, big.NewInt(2))})
	f.Add(good)
	f.Add(high)
	f.Add([]byte{0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x02, 0x00, 0x00})
	f.Add([]byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x02})
	f.Add([]byte{})
	key, _ := crypto.GenerateKey()
	hash := crypto.Keccak256([]byte("fuzz"))
	f.Fuzz(func(t *testing.T, der []byte) {
		r, s, err := ParseDERSignature(der)
		if err != nil {
			return
		}
		again, err := asn1.Marshal(derSignature{R: r, S: s})
		if err != nil || string(again) != string(der) {
			t.Fatalf("%x parsed but is not canonical (%x)", der, again)
		}
		if r.Sign() <= 0 || s.Sign() <= 0 || r.Cmp(secp256k1N) >= 0 || s.Cmp(secp256k1N) >= 0 {
			t.Fatalf("out of range r %s s %s", r, s)
		}
		if sig, err := ethereumSignature(hash, r, s, &key.PublicKey); err == nil {
			if new(big.Int).SetBytes(sig[32:64]).Cmp(secp256k1HalfN) > 0 {
				t.Fatal("a high s came out")
			}
		}
	})
}

func freePortInternal(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
