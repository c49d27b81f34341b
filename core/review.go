package core

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/countersign/countersign"
)

// Field is one labelled value of a decoded request.
type Field struct {
	Label string
	Value string
}

// Review is everything a human needs to decide on a request: what it does
// in plain terms, decoded; what a simulation says; and warnings.
type Review struct {
	Tx        *countersign.Transaction
	View      TxView
	AgentName string
	Summary   string  // one line: "Send 1.5 ETH to 0x…"
	Fields    []Field // decoded details
	Function  string  // decoded function signature, if any
	Args      []Field // its named arguments
	RawData   string  // calldata that could not be decoded
	Message   string  // personal_sign text or pretty typed data
	SimOK     bool
	SimGas    uint64
	SimError  string
	Simulated bool
	MaxFee    string // the most the network fee can be, e.g. "0.000052 ETH"; "" when none is bound
	Warnings  []string
}

// tokenCache keeps ERC-20 metadata: it never changes for a deployed token.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]*TokenInfo
}

var tokens = tokenCache{m: map[string]*TokenInfo{}}

// CachedTokenInfo is TokenInfo with a process-wide cache.
func (s *Service) CachedTokenInfo(ctx context.Context, token string) (*TokenInfo, error) {
	key := s.chainID.String() + ":" + strings.ToLower(token)
	tokens.mu.Lock()
	info, ok := tokens.m[key]
	tokens.mu.Unlock()
	if ok {
		return info, nil
	}
	info, err := s.TokenInfo(ctx, common.HexToAddress(token))
	if err != nil {
		return nil, err
	}
	tokens.mu.Lock()
	tokens.m[key] = info
	tokens.mu.Unlock()
	return info, nil
}

// HumanAmount renders a request's amount in display units: "1.5 ETH",
// "250 TEST". Base units stay in the View.
func (s *Service) HumanAmount(ctx context.Context, t *countersign.Transaction) string {
	amount, ok := new(big.Int).SetString(t.Amount, 10)
	if !ok {
		return t.Amount
	}
	switch t.Type {
	case countersign.TxERC20:
		if info, err := s.CachedTokenInfo(ctx, t.TokenAddress); err == nil {
			sym := info.Symbol
			if sym == "" {
				sym = "tokens"
			}
			return countersign.FormatUnits(amount, int(info.Decimals)) + " " + sym
		}
		return t.Amount + " base units"
	case countersign.TxPersonalSign, countersign.TxTypedData:
		return "signature"
	default:
		return countersign.FormatUnits(amount, 18) + " " + NativeSymbol
	}
}

var (
	maxUint256  = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	unlimitedAt = new(big.Int).Lsh(big.NewInt(1), 255) // anything this large is "unlimited" in practice
)

// knownSelectors decode calldata that came without an ABI.
var knownSelectors = map[string]string{"a9059cbb": "transfer", "095ea7b3": "approve", "23b872dd": "transferFrom"}

// Review decodes a request the caller owns for a human decision.
func (s *Service) Review(ctx context.Context, p *Principal, id string) (*Review, error) {
	t, err := s.load(ctx, p, id)
	if err != nil {
		return nil, err
	}
	r := &Review{Tx: t, View: View(t)}
	if t.AgentID != "" {
		if a, err := s.store.AgentByID(ctx, t.AgentID); err == nil {
			r.AgentName = a.Name
		}
	} else {
		r.AgentName = "you (user-initiated)"
	}
	human := s.HumanAmount(ctx, t)
	switch t.Type {
	case countersign.TxNative:
		r.Summary = fmt.Sprintf("Send %s to %s", human, t.To)
		r.Fields = []Field{{"Amount", human}, {"Amount (wei)", t.Amount}, {"Recipient", t.To}}
	case countersign.TxERC20:
		r.Summary = fmt.Sprintf("Transfer %s to %s", human, t.To)
		r.Fields = []Field{{"Amount", human}, {"Amount (base units)", t.Amount}, {"Token", t.TokenAddress}, {"Recipient", t.To}}
		r.Function, r.Args = "transfer(address,uint256)", []Field{{"to", t.To}, {"amount", human}}
	case countersign.TxContractCall:
		r.Fields = []Field{{"Contract", t.ContractAddress}, {"Value sent", human}}
		s.decodeCall(ctx, t, r)
		if r.Function != "" {
			r.Summary = fmt.Sprintf("Call %s on %s", r.Function, t.ContractAddress)
		} else {
			r.Summary = fmt.Sprintf("Call contract %s with undecoded data", t.ContractAddress)
		}
		if v, _ := new(big.Int).SetString(t.Value, 10); v != nil && v.Sign() > 0 {
			r.Summary += " sending " + human
		}
	case countersign.TxNonceFill:
		r.Summary = "Fill a refused nonce: send 0 " + NativeSymbol + " from the wallet to itself"
		r.Fields = []Field{{"Why", t.Memo}, {"Wallet", t.From}}
	case countersign.TxPersonalSign:
		b, _ := hexutil.Decode(t.Message)
		r.Summary = "Sign a message (EIP-191)"
		if utf8.Valid(b) && printable(string(b)) {
			r.Message = string(b)
		} else {
			r.Message = t.Message
			r.Warnings = append(r.Warnings, "The message is binary data, not text: you cannot read what you are signing.")
		}
	case countersign.TxTypedData:
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, []byte(t.Message), "", "  ")
		r.Message = pretty.String()
		var td apitypes.TypedData
		_ = json.Unmarshal([]byte(t.Message), &td)
		r.Summary = fmt.Sprintf("Sign typed data %q for %q (EIP-712)", td.PrimaryType, td.Domain.Name)
		// The chain the signature is valid on, read from the signed domain as
		// an integer of any size: the wallet's chain below is where it lives,
		// not what the typed data says.
		chain := "none: valid on every chain"
		if td.Domain.ChainId != nil {
			chain = (*big.Int)(td.Domain.ChainId).String()
		}
		r.Fields = append(r.Fields, Field{"Signed for chain (domain.chainId)", chain})
		if strings.Contains(strings.ToLower(td.PrimaryType), "permit") || strings.Contains(strings.ToLower(td.PrimaryType), "authorization") {
			r.Warnings = append(r.Warnings, "This is a permit or transfer authorization: signing it can let someone move tokens without another approval.")
		}
	}
	s.warn(ctx, t, r)
	if !t.Type.IsMessage() {
		// The most the network fee can be, in the native coin: the approval
		// binds it (money.go), so the human sees it before approving.
		if f := maxFee(t); f != nil {
			perGas, _ := new(big.Int).SetString(t.MaxFeePerGas, 10)
			r.MaxFee = countersign.FormatUnits(f, 18) + " " + NativeSymbol
			r.Fields = append(r.Fields, Field{"Network fee (at most)", fmt.Sprintf("%s (gas limit %d × up to %s gwei per gas)", r.MaxFee, t.GasLimit, countersign.FormatUnits(perGas, 9))})
		} else {
			r.Fields = append(r.Fields, Field{"Network fee (at most)", "not bound: the simulation failed when this was prepared, so it cannot be executed; the agent must prepare it again"})
			r.Warnings = append(r.Warnings, "No network fee limit is bound to this request: approving it lets nothing be sent; the agent must prepare it again.")
		}
	}
	if !t.Type.IsMessage() && (t.Status == countersign.StatusPending || t.Status == countersign.StatusAuthorized) {
		value, _ := new(big.Int).SetString(t.TxValue, 10)
		gas, err := s.chain.EstimateGas(ctx, countersign.CallMsg{From: t.From, To: t.TxTo, Value: value, Data: t.TxData})
		r.Simulated = true
		if err != nil {
			r.SimError = countersign.ErrorDetail(err)
			r.Warnings = append(r.Warnings, "The simulation fails: this transaction would not succeed now ("+r.SimError+").")
		} else {
			r.SimOK, r.SimGas = true, gas
		}
	}
	return r, nil
}

func printable(s string) bool {
	for _, r := range s {
		if !unicode.IsPrint(r) && !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

func (s *Service) decodeCall(ctx context.Context, t *countersign.Transaction, r *Review) {
	data := t.TxData
	if len(data) < 4 {
		if len(data) > 0 {
			r.RawData = "0x" + hex.EncodeToString(data)
			r.Warnings = append(r.Warnings, "The call data is too short to name a function.")
		}
		return
	}
	var m *abi.Method
	if t.ContractABI != "" {
		if a, err := abi.JSON(strings.NewReader(t.ContractABI)); err == nil {
			if mm, err := a.MethodById(data[:4]); err == nil {
				m = mm
			}
		}
	}
	if m == nil {
		if name, ok := knownSelectors[hex.EncodeToString(data[:4])]; ok {
			mm := erc20ABI.Methods[name]
			m = &mm
		}
	}
	if m == nil {
		r.RawData = "0x" + hex.EncodeToString(data)
		r.Warnings = append(r.Warnings, fmt.Sprintf("Unknown function selector 0x%x: countersign cannot decode what this call does.", data[:4]))
		return
	}
	vals, err := m.Inputs.Unpack(data[4:])
	if err != nil {
		r.RawData = "0x" + hex.EncodeToString(data)
		r.Warnings = append(r.Warnings, "The call data does not match "+m.Sig+".")
		return
	}
	r.Function = m.Sig
	// ERC-20 amounts in token units, when the contract is a token
	var info *TokenInfo
	if m.Sig == "transfer(address,uint256)" || m.Sig == "approve(address,uint256)" || m.Sig == "transferFrom(address,address,uint256)" {
		info, _ = s.CachedTokenInfo(ctx, t.ContractAddress)
	}
	for i, in := range m.Inputs {
		name := in.Name
		if name == "" {
			name = fmt.Sprintf("arg%d", i)
		}
		val := fmt.Sprint(vals[i])
		switch v := vals[i].(type) {
		case common.Address:
			val = v.Hex()
		case []byte:
			val = "0x" + hex.EncodeToString(v)
		case *big.Int:
			if info != nil && in.Type.T == abi.UintTy {
				val = countersign.FormatUnits(v, int(info.Decimals)) + " " + info.Symbol + " (" + v.String() + ")"
			}
			if m.RawName == "approve" && v.Cmp(unlimitedAt) >= 0 {
				r.Warnings = append(r.Warnings, "Unlimited approval: the spender could take every token of this kind the wallet ever holds.")
			}
		}
		if a, ok := vals[i].([32]byte); ok {
			val = "0x" + hex.EncodeToString(a[:])
		}
		r.Args = append(r.Args, Field{Label: name, Value: val})
	}
}

// warn adds warnings that need the owner's history.
func (s *Service) warn(ctx context.Context, t *countersign.Transaction, r *Review) {
	if t.Type.IsMessage() {
		return
	}
	zero := common.Address{}.Hex()
	if t.To == zero || t.TxTo == zero {
		r.Warnings = append(r.Warnings, "The recipient is the zero address: anything sent there is lost.")
	}
	if t.Type != countersign.TxNative && t.Type != countersign.TxERC20 {
		return
	}
	history, err := s.store.Transactions(ctx, countersign.TxFilter{OwnerID: t.OwnerID, Status: countersign.StatusConfirmed, Limit: 500})
	if err != nil {
		return
	}
	paid := false
	largest := new(big.Int)
	previous := 0
	for _, h := range history {
		if h.Type == t.Type && strings.EqualFold(h.To, t.To) {
			paid = true
		}
		if h.AgentID == t.AgentID && t.AgentID != "" && h.Type == t.Type && strings.EqualFold(h.TokenAddress, t.TokenAddress) {
			if v, ok := new(big.Int).SetString(h.Amount, 10); ok {
				previous++
				if v.Cmp(largest) > 0 {
					largest = v
				}
			}
		}
	}
	if !paid {
		r.Warnings = append(r.Warnings, "New recipient: this wallet has never paid "+t.To+" before.")
	}
	amount, _ := new(big.Int).SetString(t.Amount, 10)
	if previous > 0 && amount != nil && amount.Cmp(new(big.Int).Mul(largest, big.NewInt(2))) > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("Unusual amount: more than twice this agent's largest confirmed payment of this kind (%d before).", previous))
	}
	_ = maxUint256
}
