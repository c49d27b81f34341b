package awskms

import (
	"context"
	"strings"

	ethtypes "github.com/ethereum/go-ethereum/core/types"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
)

// Wallet is s as the server's wallet signer port: a countersigned wallet
// whose key is this KMS key (countersign.WalletKeyAWSKMS) signs its
// transactions and digests here, after the same approval and policy as
// any wallet. The key never leaves KMS; a KMS that cannot sign fails the
// signature (nothing is signed elsewhere).
func (s *Signer) Wallet() countersign.Signer { return walletSigner{s} }

type walletSigner struct{ s *Signer }

func (k walletSigner) check(w *countersign.Wallet) error {
	if w == nil || !strings.EqualFold(w.Address, k.s.address.Hex()) {
		return countersign.Errorf(countersign.Internal, "the AWS KMS signer holds the key of %s only", k.s.address.Hex())
	}
	return nil
}

// NewKey is refused: the KMS key is made in KMS.
func (walletSigner) NewKey(context.Context, string) (string, string, []byte, error) {
	return "", "", nil, countersign.Errorf(countersign.BadRequest, "the AWS KMS signer cannot create wallet keys: create an ECC_SECG_P256K1 key in KMS")
}

// SignHash signs a 32-byte digest: r ‖ s ‖ v with v = 27 or 28.
func (k walletSigner) SignHash(ctx context.Context, w *countersign.Wallet, hash []byte) ([]byte, error) {
	if err := k.check(w); err != nil {
		return nil, err
	}
	sig, err := k.s.SignHash(ctx, hash)
	if err != nil {
		return nil, countersign.Wrap(countersign.Unavailable, err, "the AWS KMS signer could not sign")
	}
	sig[64] += 27
	return sig, nil
}

// SignTx signs u as an EIP-1559 transaction.
func (k walletSigner) SignTx(ctx context.Context, w *countersign.Wallet, u *countersign.UnsignedTx) ([]byte, string, error) {
	if err := k.check(w); err != nil {
		return nil, "", err
	}
	signer := ethtypes.LatestSignerForChainID(u.ChainID)
	tx := ethsig.EIP1559Tx(u)
	sig, err := k.s.SignHash(ctx, signer.Hash(tx).Bytes())
	if err != nil {
		return nil, "", countersign.Wrap(countersign.Unavailable, err, "the AWS KMS signer could not sign")
	}
	signed, err := tx.WithSignature(signer, sig)
	if err != nil {
		return nil, "", err
	}
	return ethsig.Encode(signed)
}

var _ countersign.Signer = walletSigner{}
