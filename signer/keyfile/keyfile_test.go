package keyfile

import (
	"context"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/keys/keystore"
)

const pass = "operator passphrase 1"

func writeKey(t *testing.T, mode os.FileMode) (string, string) {
	t.Helper()
	k, _ := crypto.GenerateKey()
	b, err := keystore.ExportV3(crypto.FromECDSA(k), pass, 1<<12, 6)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "op.json")
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p, crypto.PubkeyToAddress(k.PublicKey).Hex()
}

func TestSignsAsItsAddress(t *testing.T) {
	p, addr := writeKey(t, 0o600)
	s, err := Open(p, pass)
	if err != nil {
		t.Fatal(err)
	}
	if s.Address() != addr {
		t.Fatalf("address %s, want %s", s.Address(), addr)
	}
	w := &countersign.Wallet{Address: strings.ToLower(addr)}
	raw, hash, err := s.SignTx(context.Background(), w, &countersign.UnsignedTx{ChainID: big.NewInt(8453), Nonce: 3, To: addr, Value: big.NewInt(5), Gas: 21000, Tip: big.NewInt(1), FeeCap: big.NewInt(2)})
	if err != nil {
		t.Fatal(err)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil || tx.Hash().Hex() != hash {
		t.Fatal("bad transaction", err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(8453)), &tx)
	if err != nil || from.Hex() != addr {
		t.Fatalf("signed by %s, want %s", from.Hex(), addr)
	}
	digest := crypto.Keccak256([]byte("x"))
	sig, err := s.SignHash(context.Background(), w, digest)
	if err != nil {
		t.Fatal(err)
	}
	sig[64] -= 27
	pub, err := crypto.SigToPub(digest, sig)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != addr {
		t.Fatal("hash signature does not recover to the address")
	}
}

func TestSecurity_KeyfileRefusals(t *testing.T) {
	p, addr := writeKey(t, 0o600)
	if _, err := Open(p, "wrong passphrase"); err == nil || strings.Contains(err.Error(), "wrong passphrase ") || !strings.Contains(err.Error(), "is wrong") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if _, err := Open(p, ""); err == nil {
		t.Fatal("opened without a passphrase")
	}
	open, _ := writeKey(t, 0o644)
	if _, err := Open(open, pass); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable file: %v", err)
	}
	s, err := Open(p, pass)
	if err != nil {
		t.Fatal(err)
	}
	other := &countersign.Wallet{Address: "0x000000000000000000000000000000000000dEaD"}
	if _, err := s.SignHash(context.Background(), other, make([]byte, 32)); err == nil {
		t.Fatal("signed for another wallet")
	}
	if _, _, _, err := s.NewKey(context.Background(), "w"); err == nil {
		t.Fatal("created a key")
	}
	s.Close()
	if _, err := s.SignHash(context.Background(), &countersign.Wallet{Address: addr}, make([]byte, 32)); err == nil {
		t.Fatal("signed after Close")
	}
}
