package x402

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"
)

// Authorization is an EIP-3009 TransferWithAuthorization: From lets
// anyone move Value of the token to To, once (Nonce), between
// ValidAfter and ValidBefore (unix seconds).
type Authorization struct {
	From        common.Address
	To          common.Address
	Value       *big.Int
	ValidAfter  *big.Int
	ValidBefore *big.Int
	Nonce       [32]byte
}

// authorizationTypes are the EIP-712 types of TransferWithAuthorization.
var authorizationTypes = apitypes.Types{
	"EIP712Domain": {
		{Name: "name", Type: "string"},
		{Name: "version", Type: "string"},
		{Name: "chainId", Type: "uint256"},
		{Name: "verifyingContract", Type: "address"},
	},
	PrimaryType: {
		{Name: "from", Type: "address"},
		{Name: "to", Type: "address"},
		{Name: "value", Type: "uint256"},
		{Name: "validAfter", Type: "uint256"},
		{Name: "validBefore", Type: "uint256"},
		{Name: "nonce", Type: "bytes32"},
	},
}

// TypedData is the EIP-712 typed data an authorization signs, with the
// token's domain: name and version from the requirement's extra, the
// chain, and the token itself as the verifying contract.
func TypedData(o *Offer, a *Authorization) apitypes.TypedData {
	return apitypes.TypedData{
		Types:       authorizationTypes,
		PrimaryType: PrimaryType,
		Domain: apitypes.TypedDataDomain{Name: o.Name, Version: o.Version, ChainId: math.NewHexOrDecimal256(o.ChainID),
			VerifyingContract: o.Asset.Hex()},
		Message: apitypes.TypedDataMessage{
			"from": a.From.Hex(), "to": a.To.Hex(), "value": a.Value.String(),
			"validAfter": a.ValidAfter.String(), "validBefore": a.ValidBefore.String(),
			"nonce": hexutil.Encode(a.Nonce[:]),
		},
	}
}

// Hash is the EIP-712 digest of the typed data.
func Hash(td apitypes.TypedData) ([]byte, error) {
	h, _, err := apitypes.TypedDataAndHash(td)
	return h, err
}

// AuthorizationJSON is the authorization as the exact EVM payload carries
// it: every number a decimal string, the nonce 0x-hex.
type AuthorizationJSON struct {
	From        string `json:"from"`
	To          string `json:"to"`
	Value       string `json:"value"`
	ValidAfter  string `json:"validAfter"`
	ValidBefore string `json:"validBefore"`
	Nonce       string `json:"nonce"`
}

// ExactPayload is the exact EVM scheme's payload: the signature and what
// it signs.
type ExactPayload struct {
	Signature     string            `json:"signature"`
	Authorization AuthorizationJSON `json:"authorization"`
}

// NewExactPayload pairs an authorization with its 65-byte signature.
func NewExactPayload(a *Authorization, sig []byte) ExactPayload {
	return ExactPayload{Signature: hexutil.Encode(sig), Authorization: AuthorizationJSON{From: a.From.Hex(), To: a.To.Hex(),
		Value: a.Value.String(), ValidAfter: a.ValidAfter.String(), ValidBefore: a.ValidBefore.String(), Nonce: hexutil.Encode(a.Nonce[:])}}
}

// PaymentPayload is what the client sends: v2 echoes the accepted
// requirement (and the resource); v1 names scheme and network.
type PaymentPayload struct {
	X402Version int             `json:"x402Version"`
	Resource    json.RawMessage `json:"resource,omitempty"` // v2
	Accepted    json.RawMessage `json:"accepted,omitempty"` // v2
	Scheme      string          `json:"scheme,omitempty"`   // v1
	Network     string          `json:"network,omitempty"`  // v1
	Payload     ExactPayload    `json:"payload"`
}

// NewPaymentPayload builds the payload for offer o of pr.
func NewPaymentPayload(pr *PaymentRequired, o *Offer, p ExactPayload) *PaymentPayload {
	if pr.X402Version == 1 {
		return &PaymentPayload{X402Version: 1, Scheme: o.Req.Scheme, Network: o.Req.Network, Payload: p}
	}
	return &PaymentPayload{X402Version: 2, Resource: pr.Resource, Accepted: o.Req.Raw, Payload: p}
}

// Encode is the payload as a header value: base64 of its JSON.
func (p *PaymentPayload) Encode() (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// Header is the request header a payload of this version goes in.
func (p *PaymentPayload) Header() string {
	if p.X402Version == 1 {
		return HeaderXPayment
	}
	return HeaderPaymentSignature
}

// DecodePaymentPayload reads a PAYMENT-SIGNATURE or X-PAYMENT header (the
// resource server's and facilitator's side; countersign's tests and
// cross-checks use it).
func DecodePaymentPayload(h string) (*PaymentPayload, error) {
	b, err := decodeBase64(h)
	if err != nil {
		return nil, err
	}
	return ParsePaymentPayload(b)
}

// ParsePaymentPayload reads a payment payload JSON object (an MCP
// _meta["x402/payment"] value, a decoded header).
func ParsePaymentPayload(b []byte) (*PaymentPayload, error) {
	var p PaymentPayload
	if err := decodeObject(b, &p); err != nil {
		return nil, err
	}
	switch p.X402Version {
	case 1:
		if p.Scheme == "" || p.Network == "" {
			return nil, invalid("a v1 payload names scheme and network")
		}
	case 2:
		if !isObject(p.Accepted) {
			return nil, invalid("a v2 payload carries the accepted requirement")
		}
	default:
		return nil, invalid("x402Version must be 1 or 2")
	}
	if _, err := p.Payload.Authorization.parse(); err != nil {
		return nil, err
	}
	if _, err := hexutil.Decode(p.Payload.Signature); err != nil || len(p.Payload.Signature) != 2+130 {
		return nil, invalid("signature must be 65 bytes of 0x-hex")
	}
	return &p, nil
}

// parse reads the authorization's fields back.
func (j AuthorizationJSON) parse() (*Authorization, error) {
	a := &Authorization{}
	for _, f := range []struct {
		s   string
		dst *common.Address
	}{{j.From, &a.From}, {j.To, &a.To}} {
		if !common.IsHexAddress(f.s) || !strings.HasPrefix(f.s, "0x") {
			return nil, invalid("authorization from/to must be addresses")
		}
		*f.dst = common.HexToAddress(f.s)
	}
	var err error
	for _, f := range []struct {
		s   string
		dst **big.Int
	}{{j.Value, &a.Value}, {j.ValidAfter, &a.ValidAfter}, {j.ValidBefore, &a.ValidBefore}} {
		if *f.dst, err = ParseAmount(f.s); err != nil {
			return nil, invalid("authorization value/validAfter/validBefore must be decimal integers")
		}
	}
	n, err := hexutil.Decode(j.Nonce)
	if err != nil || len(n) != 32 {
		return nil, invalid("authorization nonce must be 32 bytes of 0x-hex")
	}
	copy(a.Nonce[:], n)
	return a, nil
}

// Authorization returns the payload's authorization, parsed.
func (p *PaymentPayload) Authorization() (*Authorization, error) {
	return p.Payload.Authorization.parse()
}

// Verify checks a payment the way a facilitator does, offline: the
// signature recovers to the authorization's from over the typed data of
// offer o; it pays o's payTo exactly o's amount; it is valid at now
// (unix seconds). It returns the payer.
func Verify(p *PaymentPayload, o *Offer, now int64) (common.Address, error) {
	a, err := p.Authorization()
	if err != nil {
		return common.Address{}, err
	}
	if a.To != o.PayTo {
		return a.From, fmt.Errorf("x402: authorization pays %s, not %s", a.To.Hex(), o.PayTo.Hex())
	}
	if a.Value.Cmp(o.Amount) != 0 {
		return a.From, fmt.Errorf("x402: authorization value %s is not the amount %s", a.Value, o.Amount)
	}
	if a.ValidBefore.Cmp(big.NewInt(now+6)) < 0 || a.ValidAfter.Cmp(big.NewInt(now)) > 0 {
		return a.From, fmt.Errorf("x402: authorization is not valid now")
	}
	if p.X402Version == 2 {
		acc, err := parseRequirement(p.Accepted, 2)
		if err != nil {
			return a.From, err
		}
		if acc.Scheme != o.Req.Scheme || acc.Network != o.Req.Network || !strings.EqualFold(acc.Asset, o.Req.Asset) || acc.Price() != o.Req.Price() ||
			!strings.EqualFold(acc.PayTo, o.Req.PayTo) {
			return a.From, fmt.Errorf("x402: accepted does not match the requirement")
		}
	}
	h, err := Hash(TypedData(o, a))
	if err != nil {
		return a.From, err
	}
	sig, _ := hexutil.Decode(p.Payload.Signature)
	if sig[64] >= 27 {
		sig[64] -= 27
	}
	pub, err := crypto.SigToPub(h, sig)
	if err != nil {
		return a.From, fmt.Errorf("x402: signature does not recover")
	}
	if crypto.PubkeyToAddress(*pub) != a.From {
		return a.From, fmt.Errorf("x402: signature is not from %s", a.From.Hex())
	}
	return a.From, nil
}

// Settlement is the server's answer about a payment (PAYMENT-RESPONSE,
// X-PAYMENT-RESPONSE, MCP _meta["x402/payment-response"]).
type Settlement struct {
	Success     bool   `json:"success"`
	ErrorReason string `json:"errorReason,omitempty"`
	Payer       string `json:"payer,omitempty"`
	Transaction string `json:"transaction"`
	Network     string `json:"network"`
	Amount      string `json:"amount,omitempty"`
}

// ParseSettlementHeader reads a PAYMENT-RESPONSE / X-PAYMENT-RESPONSE
// header.
func ParseSettlementHeader(h string) (*Settlement, error) {
	b, err := decodeBase64(h)
	if err != nil {
		return nil, err
	}
	return ParseSettlement(b)
}

// ParseSettlement reads a settlement JSON object and bounds its fields.
func ParseSettlement(b []byte) (*Settlement, error) {
	var s Settlement
	if err := decodeObject(b, &s); err != nil {
		return nil, err
	}
	if len(s.Transaction) > 256 || len(s.Network) > 128 || len(s.Payer) > 128 || len(s.Amount) > maxAmountDigits {
		return nil, invalid("settlement field too long")
	}
	s.ErrorReason = clip(s.ErrorReason)
	return &s, nil
}

// EncodeJSON is base64 of v's JSON: how every x402 header is written.
func EncodeJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// NonceHex is a nonce as the store and the payload write it.
func NonceHex(n [32]byte) string { return "0x" + hex.EncodeToString(n[:]) }

// SameRequirement reports whether b asks for exactly what a asked:
// scheme, network, asset, payTo (addresses compared case-insensitively)
// and the token domain; the amount is compared by the caller.
func SameRequirement(a, b *Offer) bool {
	return a.Req.Scheme == b.Req.Scheme && a.ChainID == b.ChainID && a.Asset == b.Asset && a.PayTo == b.PayTo &&
		a.Name == b.Name && a.Version == b.Version
}
