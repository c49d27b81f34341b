// Package local implements countersign.Signer with keys held in the store,
// sealed under the key-encryption key and opened only for the moment of
// signing.
package local

import (
	"context"
	"crypto/ecdsa"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
)

// Signer signs with sealed secp256k1 keys.
type Signer struct {
	sealer countersign.Sealer
}

var _ countersign.Signer = (*Signer)(nil)

// New returns a Signer that seals and opens keys with sealer.
func New(sealer countersign.Sealer) *Signer { return &Signer{sealer: sealer} }

func recordID(walletID string) string { return "wallet:" + walletID }

// NewKey generates a secp256k1 key, sealed and bound to walletID.
func (s *Signer) NewKey(_ context.Context, walletID string) (string, []byte, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return "", nil, err
	}
	defer zero(key)
	raw := crypto.FromECDSA(key)
	defer clear(raw)
	sealed, err := s.sealer.Seal(recordID(walletID), raw)
	if err != nil {
		return "", nil, err
	}
	return crypto.PubkeyToAddress(key.PublicKey).Hex(), sealed, nil
}

// open unseals the wallet's key and checks it matches the wallet's
// address. The caller must zero the key.
func (s *Signer) open(w *countersign.Wallet) (*ecdsa.PrivateKey, error) {
	raw, err := s.sealer.Open(recordID(w.ID), w.KeySealed)
	if err != nil {
		return nil, countersign.Wrap(countersign.Internal, err, "wallet key cannot be opened")
	}
	key, err := crypto.ToECDSA(raw)
	clear(raw)
	if err != nil {
		return nil, countersign.Wrap(countersign.Internal, err, "wallet key is invalid")
	}
	if crypto.PubkeyToAddress(key.PublicKey) != common.HexToAddress(w.Address) {
		zero(key)
		return nil, countersign.Errorf(countersign.Internal, "wallet key does not match its address")
	}
	return key, nil
}

// SignHash signs a 32-byte digest and returns r ‖ s ‖ v with v = 27 or 28,
// the form personal_sign and eth_signTypedData_v4 return.
func (s *Signer) SignHash(_ context.Context, w *countersign.Wallet, hash []byte) ([]byte, error) {
	if len(hash) != 32 {
		return nil, countersign.Errorf(countersign.Internal, "digest must be 32 bytes")
	}
	key, err := s.open(w)
	if err != nil {
		return nil, err
	}
	defer zero(key)
	sig, err := crypto.Sign(hash, key)
	if err != nil {
		return nil, err
	}
	sig[64] += 27
	return sig, nil
}

// SignTx signs an EIP-1559 transaction with the wallet's key.
func (s *Signer) SignTx(_ context.Context, w *countersign.Wallet, u *countersign.UnsignedTx) ([]byte, string, error) {
	key, err := s.open(w)
	if err != nil {
		return nil, "", err
	}
	defer zero(key)
	to := common.HexToAddress(u.To)
	value := u.Value
	if value == nil {
		value = new(big.Int)
	}
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(u.ChainID), &types.DynamicFeeTx{
		ChainID: u.ChainID, Nonce: u.Nonce, GasTipCap: u.Tip, GasFeeCap: u.FeeCap, Gas: u.Gas, To: &to, Value: value, Data: u.Data,
	})
	if err != nil {
		return nil, "", err
	}
	b, err := tx.MarshalBinary()
	if err != nil {
		return nil, "", err
	}
	return b, tx.Hash().Hex(), nil
}

// zero overwrites the private scalar once the key is no longer needed.
// big.Int keeps its words in a slice we can reach through Bits. The key is
// go-ethereum's secp256k1, not a standard-library curve, so there is no
// internal precomputed state that modifying D could invalidate.
func zero(k *ecdsa.PrivateKey) {
	//lint:ignore SA1019 go-ethereum's secp256k1 keys only exist as D; zeroing it is the point
	if k == nil || k.D == nil {
		return
	}
	//lint:ignore SA1019 see above
	clear(k.D.Bits())
}
