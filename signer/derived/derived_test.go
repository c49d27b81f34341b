package derived

import (
	"context"
	"crypto/hkdf"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"io"
	"os"
	"testing"

	xhkdf "golang.org/x/crypto/hkdf"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
)

// RFC 5869 Appendix A, all seven cases, against the HKDF the signer uses.
func TestHKDFRFC5869(t *testing.T) {
	var f struct {
		Vectors []struct {
			TestCase              int `json:"test_case"`
			Hash, IKM, Salt, Info string
			L                     int
			PRK, OKM              string
		}
	}
	b, err := os.ReadFile("testdata/rfc5869-hkdf.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil || len(f.Vectors) != 7 {
		t.Fatalf("%d vectors, %v", len(f.Vectors), err)
	}
	h := func(s string) []byte { v, _ := hex.DecodeString(s); return v }
	for _, v := range f.Vectors {
		fn := map[string]func() hash.Hash{"SHA-256": sha256.New, "SHA-1": sha1.New}[v.Hash]
		prk, err := hkdf.Extract(fn, h(v.IKM), h(v.Salt))
		if err != nil || hex.EncodeToString(prk) != v.PRK {
			t.Errorf("case %d PRK %x", v.TestCase, prk)
		}
		okm, err := hkdf.Key(fn, h(v.IKM), h(v.Salt), string(h(v.Info)), v.L)
		if err != nil || hex.EncodeToString(okm) != v.OKM {
			t.Errorf("case %d OKM %x", v.TestCase, okm)
		}
	}
}

const master = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

func TestDerivation(t *testing.T) {
	omni := countersign.OmniAccount("agentkeys", "email", "onboard@example.com")
	s, err := New(master)
	if err != nil {
		t.Fatal(err)
	}
	// an independent HKDF implementation gives the same key
	ikm, _ := hex.DecodeString(master)
	want := make([]byte, 32)
	if _, err := io.ReadFull(xhkdf.New(sha256.New, ikm, nil, []byte("agentkeys-evm-wallet-v1:"+omni)), want); err != nil {
		t.Fatal(err)
	}
	key, err := s.DeriveKey(omni)
	if err != nil || hex.EncodeToString(crypto.FromECDSA(key)) != hex.EncodeToString(want) {
		t.Fatal("the key is not HKDF-SHA256(master, no salt, info)")
	}
	a1, _ := s.DeriveAddress(context.Background(), omni)
	s2, _ := New("0x" + master) // a restart: a new signer, the same secret
	a2, _ := s2.DeriveAddress(context.Background(), omni)
	if a1 != a2 || a1 != crypto.PubkeyToAddress(key.PublicKey).Hex() {
		t.Fatalf("not deterministic: %s %s", a1, a2)
	}
	other, _ := New("ff" + master[2:])
	if a3, _ := other.DeriveAddress(context.Background(), omni); a3 == a1 {
		t.Fatal("another master secret gives the same address")
	}
	if a4, _ := s.DeriveAddress(context.Background(), countersign.OmniAccount("agentkeys", "email", "other@example.com")); a4 == a1 {
		t.Fatal("another omni_account gives the same address")
	}
	sig, err := s.SignMessage(context.Background(), omni, []byte("hello"))
	if err != nil || len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		t.Fatalf("sig %x %v", sig, err)
	}
	sig[64] -= 27
	pub, err := crypto.SigToPub(accounts.TextHash([]byte("hello")), sig)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != a1 {
		t.Fatal("the signature does not recover to the derived address")
	}
	for _, bad := range []string{"", "00", master + "00", "zz" + master[2:]} {
		if _, err := New(bad); err == nil {
			t.Errorf("master secret %q accepted", bad)
		}
	}
	if _, err := s.DeriveAddress(context.Background(), "not-an-omni-account"); err == nil {
		t.Fatal("bad omni_account accepted")
	}
}

func BenchmarkDeriveAddressUncached(b *testing.B) {
	s, _ := New(master)
	omni := countersign.OmniAccount("agentkeys", "email", "onboard@example.com")
	for b.Loop() {
		if _, err := s.DeriveKey(omni); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDeriveAddressCached(b *testing.B) {
	s, _ := New(master)
	omni := countersign.OmniAccount("agentkeys", "email", "onboard@example.com")
	s.DeriveAddress(context.Background(), omni)
	for b.Loop() {
		if _, err := s.DeriveAddress(context.Background(), omni); err != nil {
			b.Fatal(err)
		}
	}
}
