package ethsig

import (
	"bytes"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"
)

// TestSignHash: the signature recovers to the signing key's address once v
// is taken back to 0/1, v is 27 or 28, and the bytes are crypto.Sign's
// (RFC 6979, deterministic) with only v moved.
func TestSignHash(t *testing.T) {
	for i := 0; i < 8; i++ {
		key, err := crypto.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		hash := accounts.TextHash([]byte{byte(i), 'm'})
		sig, err := SignHash(key, hash)
		if err != nil {
			t.Fatal(err)
		}
		if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
			t.Fatalf("sig = %x: want 65 bytes with v 27 or 28", sig)
		}
		raw, _ := crypto.Sign(hash, key)
		if !bytes.Equal(sig[:64], raw[:64]) || sig[64] != raw[64]+27 {
			t.Fatalf("sig = %x, crypto.Sign = %x", sig, raw)
		}
		rec := append([]byte(nil), sig...)
		rec[64] -= 27
		pub, err := crypto.SigToPub(hash, rec)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := crypto.PubkeyToAddress(*pub), crypto.PubkeyToAddress(key.PublicKey); got != want {
			t.Fatalf("recovered %s, signed with %s", got, want)
		}
	}
}

func TestSignHashBadDigest(t *testing.T) {
	key, _ := crypto.GenerateKey()
	if _, err := SignHash(key, make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte digest was signed")
	}
}

func TestParseTypedDataChain(t *testing.T) {
	const td = `{"types":{"EIP712Domain":[{"name":"chainId","type":"uint256"}],"M":[{"name":"x","type":"uint256"}]},"primaryType":"M","domain":{"chainId":"1337"},"message":{"x":"1"}}`
	if _, _, err := ParseTypedData([]byte(td), 1337); err != nil {
		t.Fatalf("ok/same chain: %v", err)
	}
	if _, _, err := ParseTypedData([]byte(td), 1); err == nil {
		t.Fatal("fail/other chain accepted")
	}
	if _, _, err := ParseTypedData([]byte(td), AnyChain); err != nil {
		t.Fatalf("ok/any chain: %v", err)
	}
}
