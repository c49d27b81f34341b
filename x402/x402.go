// Package x402 is the client side of the x402 payment protocol (v1 and
// v2): its wire types, the header and body codecs, the choice of an
// `exact` EVM requirement, and the EIP-3009 TransferWithAuthorization
// typed data a payment signs. It does no I/O and holds no keys: core
// decides, signs and sends.
//
// Everything here parses what a resource server sent, so every parser
// bounds its input, refuses unknown versions and garbage with an error,
// and never panics (fuzzed in x402_fuzz_test.go).
package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/common"
)

// The HTTP headers of the two protocol versions.
const (
	HeaderPaymentRequired   = "PAYMENT-REQUIRED"      // v2: server → client, base64 JSON PaymentRequired
	HeaderPaymentSignature  = "PAYMENT-SIGNATURE"     // v2: client → server, base64 JSON PaymentPayload
	HeaderPaymentResponse   = "PAYMENT-RESPONSE"      // v2: server → client, base64 JSON settlement
	HeaderXPayment          = "X-PAYMENT"             // v1: client → server
	HeaderXPaymentResponse  = "X-PAYMENT-RESPONSE"    // v1: server → client
	MetaPayment             = "x402/payment"          // MCP: params._meta key of the payload
	MetaPaymentResponse     = "x402/payment-response" // MCP: result._meta key of the settlement
	SchemeExact             = "exact"
	PrimaryType             = "TransferWithAuthorization"
	MaxEncoded              = 32 << 10 // the largest header or body this package reads
	MaxAccepts              = 32       // the most requirements one 402 may offer
	maxField                = 1024     // the longest string field kept
	maxAmountDigits         = 78       // a uint256 has at most 78 decimal digits
	maxTimeoutSecondsAccept = 1 << 31
)

// ErrInvalid is wrapped by every error about a malformed message.
var ErrInvalid = errors.New("x402: invalid message")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Requirement is one way a resource accepts payment (an entry of
// "accepts"). Raw is the entry exactly as the server sent it: a v2 payment
// echoes it as "accepted", and servers compare it field by field.
type Requirement struct {
	Scheme            string          `json:"scheme"`
	Network           string          `json:"network"`
	Asset             string          `json:"asset"`
	Amount            string          `json:"amount,omitempty"`            // v2
	MaxAmountRequired string          `json:"maxAmountRequired,omitempty"` // v1
	PayTo             string          `json:"payTo"`
	MaxTimeoutSeconds int64           `json:"maxTimeoutSeconds"`
	Resource          string          `json:"resource,omitempty"` // v1
	Description       string          `json:"description,omitempty"`
	MimeType          string          `json:"mimeType,omitempty"`
	Extra             json.RawMessage `json:"extra,omitempty"`
	Raw               json.RawMessage `json:"-"`
}

// PaymentRequired is a 402's demand: v2 from the PAYMENT-REQUIRED header,
// v1 from the JSON body, either from an MCP tool result.
type PaymentRequired struct {
	X402Version int                        `json:"x402Version"`
	Error       string                     `json:"error,omitempty"`
	Resource    json.RawMessage            `json:"resource,omitempty"` // v2 ResourceInfo {url, description, mimeType}
	Accepts     []Requirement              `json:"accepts"`
	Extensions  map[string]json.RawMessage `json:"extensions,omitempty"`
}

// decodeBase64 reads standard base64 (what btoa writes), padded or not,
// and tolerates the URL-safe alphabet some servers use.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, invalid("empty header")
	}
	if len(s) > MaxEncoded {
		return nil, invalid("header is larger than %d KiB", MaxEncoded>>10)
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, invalid("header is not base64")
}

// decodeObject decodes one JSON object into v, with nothing after it.
func decodeObject(b []byte, v any) error {
	if len(b) > MaxEncoded {
		return invalid("message is larger than %d KiB", MaxEncoded>>10)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return invalid("not a JSON object: %s", jsonError(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return invalid("more than one JSON value")
	}
	return nil
}

// jsonError names what went wrong without echoing the input.
func jsonError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at offset " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + te.Field + " has the wrong type"
	}
	return "malformed"
}

// ParsePaymentRequiredHeader reads a v2 PAYMENT-REQUIRED header.
func ParsePaymentRequiredHeader(h string) (*PaymentRequired, error) {
	b, err := decodeBase64(h)
	if err != nil {
		return nil, err
	}
	pr, err := ParsePaymentRequired(b)
	if err != nil {
		return nil, err
	}
	if pr.X402Version != 2 {
		return nil, invalid("the %s header carries x402Version %d, not 2", HeaderPaymentRequired, pr.X402Version)
	}
	return pr, nil
}

// ParsePaymentRequired reads a PaymentRequired JSON object (a v1 402 body,
// a decoded v2 header, an MCP tool result's structured content) and checks
// its shape: a known version and 1 to MaxAccepts requirements, each with
// the fields its version needs.
func ParsePaymentRequired(b []byte) (*PaymentRequired, error) {
	var raw struct {
		X402Version json.RawMessage            `json:"x402Version"`
		Error       string                     `json:"error"`
		Resource    json.RawMessage            `json:"resource"`
		Accepts     []json.RawMessage          `json:"accepts"`
		Extensions  map[string]json.RawMessage `json:"extensions"`
	}
	if err := decodeObject(b, &raw); err != nil {
		return nil, err
	}
	v, err := strconv.Atoi(string(raw.X402Version)) // a bare integer: not "1", not 1.0
	if err != nil || (v != 1 && v != 2) {
		return nil, invalid("x402Version must be 1 or 2")
	}
	if len(raw.Accepts) == 0 {
		return nil, invalid("accepts lists no payment requirement")
	}
	if len(raw.Accepts) > MaxAccepts {
		return nil, invalid("accepts lists more than %d requirements", MaxAccepts)
	}
	pr := &PaymentRequired{X402Version: v, Error: clip(raw.Error), Resource: raw.Resource, Extensions: raw.Extensions}
	if v == 2 && len(raw.Resource) > 0 && !isObject(raw.Resource) {
		return nil, invalid("resource must be an object")
	}
	for i, a := range raw.Accepts {
		r, err := parseRequirement(a, v)
		if err != nil {
			return nil, fmt.Errorf("accepts[%d]: %w", i, err)
		}
		pr.Accepts = append(pr.Accepts, r)
	}
	return pr, nil
}

func isObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{'
}

func clip(s string) string {
	if len(s) > maxField {
		return s[:maxField]
	}
	return s
}

func parseRequirement(b json.RawMessage, version int) (Requirement, error) {
	var r Requirement
	if !isObject(b) {
		return r, invalid("a requirement must be an object")
	}
	var m struct {
		Scheme            string          `json:"scheme"`
		Network           string          `json:"network"`
		Asset             string          `json:"asset"`
		Amount            *string         `json:"amount"`
		MaxAmountRequired *string         `json:"maxAmountRequired"`
		PayTo             string          `json:"payTo"`
		MaxTimeoutSeconds json.RawMessage `json:"maxTimeoutSeconds"`
		Resource          string          `json:"resource"`
		Description       string          `json:"description"`
		MimeType          string          `json:"mimeType"`
		Extra             json.RawMessage `json:"extra"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return r, invalid("requirement: %s", jsonError(err))
	}
	for name, v := range map[string]string{"scheme": m.Scheme, "network": m.Network, "asset": m.Asset, "payTo": m.PayTo, "resource": m.Resource,
		"description": m.Description, "mimeType": m.MimeType} {
		if len(v) > maxField {
			return r, invalid("%s is longer than %d bytes", name, maxField)
		}
	}
	if m.Scheme == "" || m.Network == "" {
		return r, invalid("scheme and network are required")
	}
	r = Requirement{Scheme: m.Scheme, Network: m.Network, Asset: m.Asset, PayTo: m.PayTo, Resource: m.Resource, Description: m.Description,
		MimeType: m.MimeType, Extra: m.Extra, Raw: append(json.RawMessage(nil), bytes.TrimSpace(b)...)}
	switch version {
	case 2:
		if m.Amount == nil {
			return r, invalid("amount is required (v2)")
		}
		r.Amount = *m.Amount
	case 1:
		if m.MaxAmountRequired == nil {
			return r, invalid("maxAmountRequired is required (v1)")
		}
		r.MaxAmountRequired = *m.MaxAmountRequired
	}
	if len(m.MaxTimeoutSeconds) > 0 && string(m.MaxTimeoutSeconds) != "null" {
		n, err := strconv.ParseInt(string(m.MaxTimeoutSeconds), 10, 64)
		if err != nil || n < 0 || n > maxTimeoutSecondsAccept {
			return r, invalid("maxTimeoutSeconds must be a whole number of seconds")
		}
		r.MaxTimeoutSeconds = n
	}
	if len(m.Extra) > 0 && string(bytes.TrimSpace(m.Extra)) != "null" && !isObject(m.Extra) {
		return r, invalid("extra must be an object")
	}
	return r, nil
}

// Price is the requirement's amount: v2's amount, v1's maxAmountRequired.
func (r *Requirement) Price() string {
	if r.Amount != "" {
		return r.Amount
	}
	return r.MaxAmountRequired
}

// ParseAmount reads a base-unit amount: decimal digits only, at most a
// uint256, no sign, no exponent, no leading zeros.
func ParseAmount(s string) (*big.Int, error) {
	if s == "" || len(s) > maxAmountDigits || strings.Trim(s, "0123456789") != "" || (len(s) > 1 && s[0] == '0') {
		return nil, invalid("amount must be a base-unit integer in decimal")
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.BitLen() > 256 {
		return nil, invalid("amount does not fit a uint256")
	}
	return v, nil
}

// v1Networks are the v1 network names of EVM chains (the names @x402/evm
// knows); v2 names chains in CAIP-2 ("eip155:8453").
var v1Networks = map[string]int64{
	"ethereum": 1, "sepolia": 11155111, "base": 8453, "base-sepolia": 84532, "polygon": 137, "polygon-amoy": 80002,
	"avalanche": 43114, "avalanche-fuji": 43113, "abstract": 2741, "abstract-testnet": 11124, "iotex": 4689,
	"sei": 1329, "sei-testnet": 1328, "peaq": 3338, "story": 1514, "educhain": 41923, "celo": 42220, "flare": 14,
}

var caip2 = regexp.MustCompile(`^eip155:([1-9][0-9]{0,18})$`)

// ChainID is the EVM chain a network names: CAIP-2 "eip155:N" (both
// versions) or a v1 name. ok is false for anything else (Solana, typos).
func ChainID(network string) (int64, bool) {
	if m := caip2.FindStringSubmatch(network); m != nil {
		n, err := strconv.ParseInt(m[1], 10, 64)
		return n, err == nil
	}
	id, ok := v1Networks[network]
	return id, ok
}

// Offer is a requirement countersign can pay: exact scheme, on the given
// chain, an EIP-3009 token with its EIP-712 domain named in extra.
type Offer struct {
	Index   int // its place in accepts
	Req     Requirement
	ChainID int64
	Amount  *big.Int
	Asset   common.Address
	PayTo   common.Address
	Name    string // the token's EIP-712 domain name (extra.name)
	Version string // and version (extra.version)
}

// Refusal says why one requirement cannot be paid.
type Refusal struct {
	Index  int
	Reason string
}

// extra is what the exact EVM scheme reads from a requirement's extra.
type extra struct {
	Name                string `json:"name"`
	Version             string `json:"version"`
	AssetTransferMethod string `json:"assetTransferMethod"`
}

// gasSponsoring are the v2 extensions that ask the client to sign an
// approval (an EIP-2612 permit or an ERC-20 approve of Permit2, in
// practice unlimited) so that a facilitator can pay the gas of a Permit2
// payment. countersign pays only with EIP-3009 authorizations, which move
// exactly the amount and nothing more, and never signs such an approval.
var gasSponsoring = []string{"eip2612GasSponsoring", "erc20ApprovalGasSponsoring"}

// Offers sorts pr's requirements into those countersign can pay on
// chainID (cheapest first) and the refused ones with their reasons.
func Offers(pr *PaymentRequired, chainID int64) ([]Offer, []Refusal) {
	var offers []Offer
	var refused []Refusal
	sponsored := ""
	for _, k := range gasSponsoring {
		if _, ok := pr.Extensions[k]; ok {
			sponsored = k
		}
	}
	for i, r := range pr.Accepts {
		o, why := offer(r, chainID)
		if why != "" {
			if sponsored != "" && strings.Contains(why, "Permit2") {
				why += " (the " + sponsored + " extension asks for an approval: countersign never signs one for a payment)"
			}
			refused = append(refused, Refusal{Index: i, Reason: why})
			continue
		}
		o.Index = i
		offers = append(offers, o)
	}
	sort.SliceStable(offers, func(a, b int) bool { return offers[a].Amount.Cmp(offers[b].Amount) < 0 })
	return offers, refused
}

func offer(r Requirement, chainID int64) (Offer, string) {
	if r.Scheme != SchemeExact {
		return Offer{}, fmt.Sprintf("scheme %q is not supported (only exact)", clipShort(r.Scheme))
	}
	id, ok := ChainID(r.Network)
	if !ok {
		return Offer{}, fmt.Sprintf("network %q is not an EVM chain", clipShort(r.Network))
	}
	if id != chainID {
		return Offer{}, fmt.Sprintf("network %s is chain %d, this server is on chain %d", clipShort(r.Network), id, chainID)
	}
	var ex extra
	if len(r.Extra) > 0 {
		if err := json.Unmarshal(r.Extra, &ex); err != nil {
			return Offer{}, "extra is not readable"
		}
	}
	if ex.AssetTransferMethod != "" && ex.AssetTransferMethod != "eip3009" {
		return Offer{}, fmt.Sprintf("asset transfer method %q needs a Permit2 approval: countersign pays only with EIP-3009 authorizations", clipShort(ex.AssetTransferMethod))
	}
	if ex.Name == "" || ex.Version == "" || len(ex.Name) > 128 || len(ex.Version) > 64 {
		return Offer{}, "extra.name and extra.version (the token's EIP-712 domain) are required"
	}
	amount, err := ParseAmount(r.Price())
	if err != nil {
		return Offer{}, "amount is not a base-unit integer"
	}
	if amount.Sign() == 0 {
		return Offer{}, "amount is zero"
	}
	if !common.IsHexAddress(r.Asset) || !strings.HasPrefix(r.Asset, "0x") {
		return Offer{}, "asset is not an EVM address"
	}
	if !common.IsHexAddress(r.PayTo) || !strings.HasPrefix(r.PayTo, "0x") {
		return Offer{}, "payTo is not an EVM address"
	}
	asset, payTo := common.HexToAddress(r.Asset), common.HexToAddress(r.PayTo)
	if asset == (common.Address{}) || payTo == (common.Address{}) {
		return Offer{}, "asset and payTo must not be the zero address"
	}
	return Offer{Req: r, ChainID: id, Amount: amount, Asset: asset, PayTo: payTo, Name: ex.Name, Version: ex.Version}, ""
}

func clipShort(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
