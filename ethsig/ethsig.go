// Package ethsig holds the Ethereum signing values that several packages
// need — EIP-191 and EIP-712 message parsing and hashing, and the 65-byte
// secp256k1 signature form — so that signers and services share one copy
// and adapters need not import core. It does no I/O.
package ethsig

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"io"
	"math/big"
	"strings"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/countersign/countersign"
)

// MaxMessage bounds a message to sign.
const MaxMessage = 64 << 10

// ParsePersonalMessage reads a personal_sign message: 0x-hex bytes, or
// otherwise the UTF-8 text itself.
func ParsePersonalMessage(s string) ([]byte, error) {
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		b, err := hexutil.Decode(s)
		if err == nil {
			return b, nil
		}
		if s == "0x" {
			return []byte{}, nil
		}
	}
	if !utf8.ValidString(s) {
		return nil, countersign.Errorf(countersign.BadRequest, "message must be 0x-hex or UTF-8 text")
	}
	return []byte(s), nil
}

// AnyChain is ParseTypedData's chainID for callers documented as chain-free.
const AnyChain = -1

// ParseTypedData parses and hashes EIP-712 typed data for chainID.
//
// chainID >= 0 (the countersigned flow: agent requests and /eth
// eth_signTypedData_v4): domain.chainId is required and must equal chainID,
// compared as integers of any size — comparing truncated int64s let
// 2^64+1337 pass as 1337 while the wallet signs for another chain. Typed
// data without a chain id is replayable on every chain, so it is refused
// here rather than shown to a human who cannot tell.
//
// chainID < 0 (callers that are documented as chain-free: the derived-key
// signer's /dev/sign-typed-data): any domain.chainId, or none, is accepted.
// Pass AnyChain to say so.
func ParseTypedData(raw []byte, chainID int64) (apitypes.TypedData, []byte, error) {
	var td apitypes.TypedData
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&td); err != nil {
		return td, nil, countersign.Errorf(countersign.BadRequest, "message is not EIP-712 typed data: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return td, nil, countersign.Errorf(countersign.BadRequest, "typed data must be one JSON object with nothing after it")
	}
	if td.PrimaryType == "" || len(td.Types) == 0 {
		return td, nil, countersign.Errorf(countersign.BadRequest, "typed data needs types and primaryType")
	}
	if chainID >= 0 {
		if td.Domain.ChainId == nil {
			return td, nil, countersign.Errorf(countersign.BadRequest, "typed data needs domain.chainId (this wallet is on chain %d): without it the signature is valid on every chain", chainID)
		}
		if got := (*big.Int)(td.Domain.ChainId); got.Cmp(big.NewInt(chainID)) != 0 {
			return td, nil, countersign.Errorf(countersign.BadRequest, "typed data is for chain %s, this wallet is on chain %d", got, chainID)
		}
	}
	hash, _, err := apitypes.TypedDataAndHash(td)
	if err != nil {
		return td, nil, countersign.Errorf(countersign.BadRequest, "typed data does not hash: %v", err)
	}
	return td, hash, nil
}

// SignHash signs a 32-byte digest with key and returns r ‖ s ‖ v with
// v = 27 or 28: the form personal_sign and eth_signTypedData_v4 return
// (crypto.Sign's recovery id is 0 or 1, which wallets and ecrecover in
// contracts do not accept).
func SignHash(key *ecdsa.PrivateKey, hash []byte) ([]byte, error) {
	sig, err := crypto.Sign(hash, key)
	if err != nil {
		return nil, err
	}
	sig[64] += 27
	return sig, nil
}

// SignTx signs u as an EIP-1559 transaction with key and returns the raw
// signed bytes and the transaction hash: the one way every in-process
// signer (signer/local, signer/keyfile) turns an UnsignedTx into bytes.
func SignTx(key *ecdsa.PrivateKey, u *countersign.UnsignedTx) ([]byte, string, error) {
	tx, err := types.SignTx(EIP1559Tx(u), types.LatestSignerForChainID(u.ChainID), key)
	if err != nil {
		return nil, "", err
	}
	return Encode(tx)
}

// EIP1559Tx is u as an unsigned EIP-1559 transaction: what every signer
// (in-process or remote, such as a KMS key) signs for an UnsignedTx.
func EIP1559Tx(u *countersign.UnsignedTx) *types.Transaction {
	to := common.HexToAddress(u.To)
	value := u.Value
	if value == nil {
		value = new(big.Int)
	}
	return types.NewTx(&types.DynamicFeeTx{
		ChainID: u.ChainID, Nonce: u.Nonce, GasTipCap: u.Tip, GasFeeCap: u.FeeCap, Gas: u.Gas, To: &to, Value: value, Data: u.Data,
	})
}

// Encode returns a signed transaction's raw bytes and hash.
func Encode(tx *types.Transaction) ([]byte, string, error) {
	b, err := tx.MarshalBinary()
	if err != nil {
		return nil, "", err
	}
	return b, tx.Hash().Hex(), nil
}
