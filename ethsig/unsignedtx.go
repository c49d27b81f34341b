package ethsig

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"

	"github.com/countersign/countersign"
)

// The unsigned forms of an EVM transaction that POST /v1/sign/tx accepts.
// Tools do not agree on how to write an unsigned transaction: ethers'
// unsignedSerialized (and the signing pre-images of EIP-155, EIP-2930 and
// EIP-1559) leaves the signature fields out, go-ethereum writes them as
// zeros. Both are accepted; a transaction that carries a signature is not
// (signing it again would hide what was signed before).
//
//	legacy, no chain id   rlp([nonce, gasPrice, gas, to, value, data])
//	legacy, EIP-155       rlp([nonce, gasPrice, gas, to, value, data, chainId, 0, 0])
//	legacy, go-ethereum   rlp([nonce, gasPrice, gas, to, value, data, 0, 0, 0])
//	EIP-2930              0x01 ‖ rlp([chainId, nonce, gasPrice, gas, to, value, data, accessList(, 0, 0, 0)])
//	EIP-1559              0x02 ‖ rlp([chainId, nonce, tip, feeCap, gas, to, value, data, accessList(, 0, 0, 0)])

type unsignedLegacyTx struct {
	Nonce    uint64
	GasPrice *big.Int
	Gas      uint64
	To       *common.Address `rlp:"nil"`
	Value    *big.Int
	Data     []byte
	V, R, S  *big.Int `rlp:"optional"`
}

type unsignedAccessListTx struct {
	ChainID    *big.Int
	Nonce      uint64
	GasPrice   *big.Int
	Gas        uint64
	To         *common.Address `rlp:"nil"`
	Value      *big.Int
	Data       []byte
	AccessList types.AccessList
	V, R, S    *big.Int `rlp:"optional"`
}

type unsignedDynamicFeeTx struct {
	ChainID    *big.Int
	Nonce      uint64
	GasTipCap  *big.Int
	GasFeeCap  *big.Int
	Gas        uint64
	To         *common.Address `rlp:"nil"`
	Value      *big.Int
	Data       []byte
	AccessList types.AccessList
	V, R, S    *big.Int `rlp:"optional"`
}

// DecodeUnsignedEVMTx reads an unsigned EVM transaction in one of the forms
// above and returns it with the signer to sign it with: a typed
// transaction's own chain id, EIP-155 for chainID (the server's) for a
// legacy one. A legacy transaction that names another chain is refused
// rather than signed for a chain its bytes do not say. Errors are
// BadRequest.
func DecodeUnsignedEVMTx(b []byte, chainID *big.Int) (*types.Transaction, types.Signer, error) {
	bad := func(format string, a ...any) (*types.Transaction, types.Signer, error) {
		return nil, nil, countersign.Errorf(countersign.BadRequest, "tx_bytes_base64 is not an unsigned EVM transaction: "+format, a...)
	}
	if len(b) == 0 {
		return bad("empty")
	}
	if b[0] >= 0xc0 { // an RLP list: legacy
		if chainID == nil || chainID.Sign() <= 0 {
			return bad("there is no chain id to sign a legacy transaction for")
		}
		var t unsignedLegacyTx
		if err := rlp.DecodeBytes(b, &t); err != nil {
			return bad("%v", err)
		}
		if err := unsignedSig(t.V, t.R, t.S, true); err != nil {
			return bad("%v", err)
		}
		if t.V != nil && t.V.Sign() != 0 && t.V.Cmp(chainID) != 0 {
			return bad("its EIP-155 chain id %s is not this server's chain %s", t.V, chainID)
		}
		if err := bits256(t.GasPrice, t.Value); err != nil {
			return bad("%v", err)
		}
		tx := types.NewTx(&types.LegacyTx{Nonce: t.Nonce, GasPrice: t.GasPrice, Gas: t.Gas, To: t.To, Value: t.Value, Data: t.Data})
		return tx, types.LatestSignerForChainID(chainID), nil
	}
	var tx *types.Transaction
	var id *big.Int
	switch b[0] {
	case types.AccessListTxType:
		var t unsignedAccessListTx
		if err := rlp.DecodeBytes(b[1:], &t); err != nil {
			return bad("%v", err)
		}
		if err := unsignedSig(t.V, t.R, t.S, false); err != nil {
			return bad("%v", err)
		}
		if err := bits256(t.ChainID, t.GasPrice, t.Value); err != nil {
			return bad("%v", err)
		}
		id = t.ChainID
		tx = types.NewTx(&types.AccessListTx{ChainID: t.ChainID, Nonce: t.Nonce, GasPrice: t.GasPrice, Gas: t.Gas, To: t.To, Value: t.Value, Data: t.Data, AccessList: t.AccessList})
	case types.DynamicFeeTxType:
		var t unsignedDynamicFeeTx
		if err := rlp.DecodeBytes(b[1:], &t); err != nil {
			return bad("%v", err)
		}
		if err := unsignedSig(t.V, t.R, t.S, false); err != nil {
			return bad("%v", err)
		}
		if err := bits256(t.ChainID, t.GasTipCap, t.GasFeeCap, t.Value); err != nil {
			return bad("%v", err)
		}
		id = t.ChainID
		tx = types.NewTx(&types.DynamicFeeTx{ChainID: t.ChainID, Nonce: t.Nonce, GasTipCap: t.GasTipCap, GasFeeCap: t.GasFeeCap, Gas: t.Gas, To: t.To, Value: t.Value, Data: t.Data, AccessList: t.AccessList})
	default:
		return bad("type 0x%02x: only legacy, 0x01 (EIP-2930) and 0x02 (EIP-1559) are signed", b[0])
	}
	if id.Sign() == 0 {
		return bad("a typed transaction needs a chain id")
	}
	return tx, types.LatestSignerForChainID(id), nil
}

// unsignedSig checks the signature fields of an unsigned form: all absent,
// or all present and zero — except a legacy v, which is the EIP-155 chain
// id of the signing pre-image (r and s still zero). Some but not all
// present is malformed; a nonzero r or s is a signed transaction.
func unsignedSig(v, r, s *big.Int, legacy bool) error {
	switch {
	case v == nil && r == nil && s == nil:
		return nil
	case v == nil || r == nil || s == nil:
		return fmt.Errorf("it has some of the signature fields v, r, s but not all")
	case r.Sign() != 0 || s.Sign() != 0:
		return fmt.Errorf("it is already signed (r, s are not zero)")
	case !legacy && v.Sign() != 0:
		return fmt.Errorf("its y-parity is not zero")
	}
	return nil
}

// bits256 refuses amounts no EVM field can hold (they would sign, but no
// node would accept the transaction).
func bits256(xs ...*big.Int) error {
	for _, x := range xs {
		if x != nil && x.BitLen() > 256 {
			return fmt.Errorf("a number is larger than 256 bits")
		}
	}
	return nil
}
