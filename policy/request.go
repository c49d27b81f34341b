package policy

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strings"

	"github.com/countersign/countersign"
)

// Kind is the kind of an agent request, as in prepare_transaction's "type".
type Kind string

const (
	KindNative       Kind = "native"
	KindERC20        Kind = "erc20"
	KindContractCall Kind = "contract_call"
	KindPersonalSign Kind = "personal_sign"
	KindTypedData    Kind = "typed_data"
	KindX402         Kind = "x402" // an x402 payment (an EIP-3009 authorization for a resource)
)

func kindBit(k Kind) uint16 {
	switch k {
	case KindNative:
		return 1 << 0
	case KindERC20:
		return 1 << 1
	case KindContractCall:
		return 1 << 2
	case KindPersonalSign:
		return 1 << 3
	case KindTypedData:
		return 1 << 4
	case KindX402:
		return 1 << 5
	}
	return 0
}

// AssetNative is the asset of the chain's own coin (wei).
const AssetNative = "native"

// Request is what the policy sees of a prepared request. Addresses are
// compared lower-case; Evaluate lower-cases them itself, so callers may
// pass EIP-55 forms.
type Request struct {
	Kind     Kind
	ChainID  int64
	WalletID string
	From     string // the wallet's address
	AgentID  string

	// Asset and Amount are what the request moves: Asset is AssetNative
	// or a token address; Amount is base units of it. Amount is nil when
	// the request moves no value the server can see (a personal_sign, an
	// unrecognised typed data): then the amount matchers never hold and a
	// budget counts it as 0. A native contract call with no value moves 0,
	// not nil: its calldata may still move tokens.
	Asset  string
	Amount *big.Int

	// To holds the recipients: the payee of a native or ERC-20 transfer,
	// the "to" of an EIP-3009 authorization, the spender of a permit.
	To []string
	// Contract and Selector describe a contract call: the address called
	// and the calldata's first four bytes ("0xa9059cbb"; "" for none).
	Contract string
	Selector string

	TypedData *TypedDataInfo // for KindTypedData

	// UnlimitedApproval is an ERC-20 approve or a permit (EIP-2612,
	// Permit2) for 2^256−1 (Permit2: ≥ 2^160−1); Authorization7702 is an
	// EIP-7702 authorization, which hands the account's code to a
	// contract. Both are never auto and never delay, whatever the policy.
	UnlimitedApproval bool
	Authorization7702 bool

	// Unvalued says the request may move value the server could not
	// measure (a Permit2 batch of several tokens, a malformed permit):
	// it is never auto or delay, and it exceeds every budget.
	Unvalued bool

	// NewRecipient, when set, says whether some recipient was never paid
	// from this wallet. When nil, Evaluate asks History, and only if a
	// rule has a new_recipient matcher.
	NewRecipient *bool
}

// TypedDataInfo is what an EIP-712 request's domain and type say.
type TypedDataInfo struct {
	PrimaryType       string
	VerifyingContract string
	ChainID           *big.Int // the domain's chainId, nil if absent
}

// TypedDomain is the part of an EIP-712 domain the valuation needs.
type TypedDomain struct {
	VerifyingContract string
	ChainID           *big.Int
}

// TypedValue is what a value-moving typed data is worth: a transfer (or an
// allowance) of Amount base units of the token Asset to Recipient.
type TypedValue struct {
	Standard  string // "eip3009", "eip2612", "permit2"
	Asset     string // lower-case token address
	Amount    *big.Int
	Recipient string // lower-case: the payee (EIP-3009) or the spender (permits)
	Unlimited bool   // an allowance no budget can bound
	// MultiAsset is a Permit2 batch over several tokens: Asset and
	// Amount are empty, and the request should be marked Unvalued.
	MultiAsset bool
}

var (
	maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	maxUint160 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 160), big.NewInt(1))
)

// ValueTypedData values EIP-712 typed data that moves money: EIP-3009
// TransferWithAuthorization / ReceiveWithAuthorization (the domain's
// verifying contract is the token), EIP-2612 Permit (including DAI's
// allowed-flag form), and Permit2's PermitSingle, PermitBatch,
// PermitTransferFrom, PermitBatchTransferFrom and
// PermitWitnessTransferFrom. message is the typed data's message as
// decoded JSON (apitypes.TypedData.Message: numbers as float64,
// json.Number or strings, decimal or 0x-hex).
//
// It returns nil, nil for a primary type that moves no value it knows of.
// A known type whose fields do not parse returns a BadRequest error: the
// caller must not pretend it moves nothing (refuse it, or mark the request
// Unvalued).
func ValueTypedData(primaryType string, domain TypedDomain, message map[string]any) (*TypedValue, error) {
	switch primaryType {
	case "TransferWithAuthorization", "ReceiveWithAuthorization":
		token, err := addrOf("domain.verifyingContract", domain.VerifyingContract)
		if err != nil {
			return nil, err
		}
		v, err := uintField(message, "value", maxUint256)
		if err != nil {
			return nil, err
		}
		to, err := addrField(message, "to")
		if err != nil {
			return nil, err
		}
		return &TypedValue{Standard: "eip3009", Asset: token, Amount: v, Recipient: to}, nil

	case "Permit":
		token, err := addrOf("domain.verifyingContract", domain.VerifyingContract)
		if err != nil {
			return nil, err
		}
		spender, err := addrField(message, "spender")
		if err != nil {
			return nil, err
		}
		if allowed, ok := message["allowed"]; ok {
			// DAI's permit: allowed=true is an unlimited allowance.
			if _, hasValue := message["value"]; hasValue {
				return nil, countersign.Errorf(countersign.BadRequest, "permit has both value and allowed")
			}
			b, ok := allowed.(bool)
			if !ok {
				return nil, countersign.Errorf(countersign.BadRequest, "permit.allowed must be a boolean")
			}
			tv := &TypedValue{Standard: "eip2612", Asset: token, Amount: new(big.Int), Recipient: spender}
			if b {
				tv.Amount, tv.Unlimited = new(big.Int).Set(maxUint256), true
			}
			return tv, nil
		}
		v, err := uintField(message, "value", maxUint256)
		if err != nil {
			return nil, err
		}
		return &TypedValue{Standard: "eip2612", Asset: token, Amount: v, Recipient: spender, Unlimited: v.Cmp(maxUint256) == 0}, nil

	case "PermitSingle", "PermitBatch":
		spender, err := addrField(message, "spender")
		if err != nil {
			return nil, err
		}
		var details []any
		if primaryType == "PermitSingle" {
			details = []any{message["details"]}
		} else {
			d, ok := message["details"].([]any)
			if !ok || len(d) == 0 {
				return nil, countersign.Errorf(countersign.BadRequest, "PermitBatch.details must be a non-empty list")
			}
			details = d
		}
		return permit2(details, "details", spender, maxUint160)

	case "PermitTransferFrom", "PermitWitnessTransferFrom", "PermitBatchTransferFrom", "PermitBatchWitnessTransferFrom":
		spender, err := addrField(message, "spender")
		if err != nil {
			return nil, err
		}
		var permitted []any
		if d, ok := message["permitted"].([]any); ok {
			permitted = d
		} else {
			permitted = []any{message["permitted"]}
		}
		if len(permitted) == 0 {
			return nil, countersign.Errorf(countersign.BadRequest, "permitted must not be empty")
		}
		// SignatureTransfer amounts are uint256; the spender picks the
		// payee, so the spender is the recipient the policy sees.
		return permit2(permitted, "permitted", spender, maxUint256)
	}
	return nil, nil
}

// permit2 sums Permit2 entries ({token, amount}) of one token; entries of
// several tokens make a MultiAsset value. unlimited is the amount from
// which the allowance is unbounded.
func permit2(entries []any, field, spender string, unlimited *big.Int) (*TypedValue, error) {
	tv := &TypedValue{Standard: "permit2", Amount: new(big.Int), Recipient: spender}
	for i, e := range entries {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, countersign.Errorf(countersign.BadRequest, "%s[%d] must be an object", field, i)
		}
		token, err := addrField(m, "token")
		if err != nil {
			return nil, err
		}
		amt, err := uintField(m, "amount", maxUint256)
		if err != nil {
			return nil, err
		}
		if amt.Cmp(unlimited) >= 0 {
			tv.Unlimited = true
		}
		switch {
		case i == 0:
			tv.Asset = token
		case token != tv.Asset:
			tv.MultiAsset = true
		}
		tv.Amount.Add(tv.Amount, amt)
	}
	if tv.MultiAsset {
		tv.Asset, tv.Amount = "", nil
	} else if tv.Amount.Cmp(maxUint256) > 0 {
		tv.Amount.Set(maxUint256)
	}
	return tv, nil
}

func addrField(m map[string]any, key string) (string, error) {
	s, ok := m[key].(string)
	if !ok {
		return "", countersign.Errorf(countersign.BadRequest, "typed data message.%s must be an address", key)
	}
	return addrOf("message."+key, s)
}

func addrOf(field, s string) (string, error) {
	if !isAddress(s) {
		return "", countersign.Errorf(countersign.BadRequest, "typed data %s must be an address", field)
	}
	return strings.ToLower(s), nil
}

// uintField reads an unsigned integer in any form a decoded typed-data
// message holds it: a decimal or 0x-hex string, a json.Number, or a
// float64 — which is refused unless it is a whole number below 2^53,
// since a larger float has already lost the digits a budget compares.
func uintField(m map[string]any, key string, limit *big.Int) (*big.Int, error) {
	v, ok := bigOf(m[key])
	if !ok || v.Sign() < 0 || v.Cmp(limit) > 0 {
		return nil, countersign.Errorf(countersign.BadRequest, "typed data message.%s must be an unsigned integer", key)
	}
	return v, nil
}

func bigOf(x any) (*big.Int, bool) {
	switch v := x.(type) {
	case string:
		if strings.HasPrefix(v, "0x") || strings.HasPrefix(v, "0X") {
			if len(v) < 3 || len(v) > 66 || !isHex(v[2:]) {
				return nil, false
			}
			return new(big.Int).SetString(v[2:], 16)
		}
		if !isDigits(v) || len(v) > 78 {
			return nil, false
		}
		return new(big.Int).SetString(v, 10)
	case json.Number:
		return bigOf(string(v))
	case float64:
		if v < 0 || v != math.Trunc(v) || v >= 1<<53 {
			return nil, false
		}
		return new(big.Int).SetUint64(uint64(v)), true
	case int:
		return big.NewInt(int64(v)), true
	case int64:
		return big.NewInt(v), true
	case uint64:
		return new(big.Int).SetUint64(v), true
	case *big.Int:
		if v == nil {
			return nil, false
		}
		return new(big.Int).Set(v), true
	case fmt.Stringer: // math.HexOrDecimal256 and friends
		return bigOf(v.String())
	}
	return nil, false
}

// Apply sets what tv says on r: the asset, amount, recipient, and the
// hard-rule and unvalued flags.
func (tv *TypedValue) Apply(r *Request) {
	if tv == nil {
		return
	}
	r.Asset, r.Amount = tv.Asset, tv.Amount
	r.To = []string{tv.Recipient}
	r.UnlimitedApproval = r.UnlimitedApproval || tv.Unlimited
	if tv.MultiAsset {
		r.Asset, r.Amount, r.Unvalued = "", nil, true
	}
}
