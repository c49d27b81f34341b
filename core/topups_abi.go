package core

import (
	"encoding/json"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/countersign/countersign"
)

// The Coinbase Commerce Transfers contract, as far as a top-up calls it:
// transferNative (the charge is priced in the chain's coin: value =
// recipientAmount + feeAmount) and transferTokenPreApproved (priced in an
// ERC-20, which the wallet approves to the contract first, for exactly
// that sum). The ABI goes into the payment request, so the approver sees
// the call decoded, field by field.

const transferIntentComponents = `[{"name":"recipientAmount","type":"uint256"},{"name":"deadline","type":"uint256"},` +
	`{"name":"recipient","type":"address"},{"name":"recipientCurrency","type":"address"},{"name":"refundDestination","type":"address"},` +
	`{"name":"feeAmount","type":"uint256"},{"name":"id","type":"bytes16"},{"name":"operator","type":"address"},` +
	`{"name":"signature","type":"bytes"},{"name":"prefix","type":"bytes"}]`

// TransfersABIJSON is the ABI of the two Transfers functions a top-up
// calls.
const TransfersABIJSON = `[{"type":"function","name":"transferNative","stateMutability":"payable","outputs":[],"inputs":[{"name":"_intent","type":"tuple","internalType":"struct TransferIntent","components":` +
	transferIntentComponents + `}]},{"type":"function","name":"transferTokenPreApproved","stateMutability":"nonpayable","outputs":[],"inputs":[{"name":"_intent","type":"tuple","internalType":"struct TransferIntent","components":` +
	transferIntentComponents + `}]}]`

var transfersABI = func() abi.ABI {
	a, err := abi.JSON(strings.NewReader(TransfersABIJSON))
	if err != nil {
		panic(err)
	}
	return a
}()

// KnownTransfersContracts are the Commerce Transfers deployments published
// by Coinbase (commerce-onchain-payment-protocol README), by chain id: the
// default of TOPUP_TRANSFERS_CONTRACT. The contract is not upgradeable, so
// a new version has a new address: check it before relying on it.
var KnownTransfersContracts = map[int64]string{
	8453:  "0x131642c019AF815Ae5F9926272A70C84AE5C37ab", // Base
	84532: "0x1A8f790a10D26bAd97dB8Da887D212eA49461cCC", // Base Sepolia
}

// transferIntentArgs is the intent as the function's JSON arguments
// (one tuple, given as an object with its field names).
func transferIntentArgs(in countersign.TransferIntent) json.RawMessage {
	prefix := in.Prefix
	if prefix == "" {
		prefix = "0x"
	}
	b, _ := json.Marshal([]map[string]string{{
		"recipientAmount": in.RecipientAmount, "deadline": in.Deadline, "recipient": in.Recipient,
		"recipientCurrency": in.RecipientCurrency, "refundDestination": in.RefundDestination, "feeAmount": in.FeeAmount,
		"id": in.ID, "operator": in.Operator, "signature": in.Signature, "prefix": prefix,
	}})
	return b
}

// TransferIntentStruct is the intent in go-ethereum's ABI form (tests
// cross-check the encoding with it).
type TransferIntentStruct struct {
	RecipientAmount   *big.Int
	Deadline          *big.Int
	Recipient         common.Address
	RecipientCurrency common.Address
	RefundDestination common.Address
	FeeAmount         *big.Int
	Id                [16]byte
	Operator          common.Address
	Signature         []byte
	Prefix            []byte
}

// PackTransfer encodes method(intent) with go-ethereum's encoder directly.
func PackTransfer(method string, in countersign.TransferIntent) ([]byte, error) {
	amt, _ := new(big.Int).SetString(in.RecipientAmount, 10)
	dl, _ := new(big.Int).SetString(in.Deadline, 10)
	fee, _ := new(big.Int).SetString(in.FeeAmount, 10)
	if amt == nil || dl == nil || fee == nil {
		return nil, countersign.Errorf(countersign.BadRequest, "the intent's amounts are not integers")
	}
	id, err := hexutil.Decode(in.ID)
	if err != nil || len(id) != 16 {
		return nil, countersign.Errorf(countersign.BadRequest, "the intent's id is not 16 bytes of hex")
	}
	sig, err := hexutil.Decode(in.Signature)
	if err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "the intent's signature is not hex")
	}
	prefix := []byte{}
	if in.Prefix != "" && in.Prefix != "0x" {
		if prefix, err = hexutil.Decode(in.Prefix); err != nil {
			return nil, countersign.Errorf(countersign.BadRequest, "the intent's prefix is not hex")
		}
	}
	s := TransferIntentStruct{RecipientAmount: amt, Deadline: dl, Recipient: common.HexToAddress(in.Recipient),
		RecipientCurrency: common.HexToAddress(in.RecipientCurrency), RefundDestination: common.HexToAddress(in.RefundDestination),
		FeeAmount: fee, Operator: common.HexToAddress(in.Operator), Signature: sig, Prefix: prefix}
	copy(s.Id[:], id)
	return transfersABI.Pack(method, s)
}
