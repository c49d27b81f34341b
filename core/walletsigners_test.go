package core

import (
	"context"
	"crypto/ecdsa"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
)

// digestSigner signs every digest with one key, whatever omni it is asked for.
type digestSigner struct{ key *ecdsa.PrivateKey }

func (d digestSigner) SignDigest(_ context.Context, _ string, digest []byte) ([]byte, error) {
	return ethsig.SignHash(d.key, digest)
}

// TestSecurity_DerivedWalletRefusesAnotherKeysSignature: a derived
// wallet's signature must recover to the wallet's own address; one from
// any other key (a row naming another identity, a signer answering for
// someone else) is refused, never used.
func TestSecurity_DerivedWalletRefusesAnotherKeysSignature(t *testing.T) {
	mine, _ := crypto.GenerateKey()
	other, _ := crypto.GenerateKey()
	w := &countersign.Wallet{Address: crypto.PubkeyToAddress(mine.PublicKey).Hex(), KeyFormat: countersign.WalletKeyDerived,
		KeySealed: []byte("0000000000000000000000000000000000000000000000000000000000000001")}
	u := &countersign.UnsignedTx{ChainID: big.NewInt(1337), Nonce: 1, To: w.Address, Value: big.NewInt(1), Gas: 21000, Tip: big.NewInt(1), FeeCap: big.NewInt(2)}
	ctx := context.Background()
	if _, _, err := (derivedWallets{digestSigner{mine}}).SignTx(ctx, w, u); err != nil {
		t.Fatalf("its own key: %v", err)
	}
	if _, _, err := (derivedWallets{digestSigner{other}}).SignTx(ctx, w, u); countersign.ErrorCode(err) != countersign.Internal {
		t.Fatalf("another key's transaction signature was used: %v", err)
	}
	if _, err := (derivedWallets{digestSigner{other}}).SignHash(ctx, w, make([]byte, 32)); countersign.ErrorCode(err) != countersign.Internal {
		t.Fatalf("another key's digest signature was used: %v", err)
	}
	bad := *w
	bad.KeySealed = []byte("not an omni account")
	if _, err := (derivedWallets{digestSigner{mine}}).SignHash(ctx, &bad, make([]byte, 32)); err == nil {
		t.Fatal("a row without a valid omni_account signed")
	}
}
