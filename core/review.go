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
	Warnings  []Warning

	// The inbox's one line (review_facts.go): "Approve unlimited TEST for",
	// then the counterparty's address, which the page labels.
	Action       string
	Counterparty string
	Approval     string // an ERC-20 approve: "unlimited TEST", "25 TEST"
	Spender      string // its spender
	Unlimited    bool
	SIWE         *SIWEMessage // a personal_sign text that is a Sign-In with Ethereum message
	callLine     string

	// The facts beside the request (review_facts.go): the wallet, its
	// balance before and after, the fee and the total, the chain, the
	// token, the address book's labels, a SIWE summary, who decided.
	Facts Facts
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
	case countersign.TxERC20, countersign.TxX402: // x402: an authorization to transfer Amount of the token
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

var unlimitedAt = new(big.Int).Lsh(big.NewInt(1), 255) // anything this large is "unlimited" in practice

// knownSelectors decode calldata that came without an ABI.
var knownSelectors = map[string]string{"a9059cbb": "transfer", "095ea7b3": "approve", "23b872dd": "transferFrom"}

// Review decodes a request the caller owns for a human decision.
func (s *Service) Review(ctx context.Context, p *Principal, id string) (*Review, error) {
	t, err := s.load(ctx, p, id)
	if err != nil {
		return nil, err
	}
	return s.review(ctx, p, t, reviewPage), nil
}

// reviewUse is whom a review is for.
type reviewUse int

const (
	// reviewPage: the approver's page and the assistant, every fact.
	reviewPage reviewUse = iota
	// reviewAnswer: the review status and prepare answers carry
	// (PollReview): what their JSON holds — summary, fields, call, fee
	// and warnings — without the names only the page shows (the agent's,
	// the wallet's, the address book, who decided), and the owner's
	// history and balance as of the chain head in ctx (review_cache.go).
	reviewAnswer
)

// review is Review of a request already loaded for p.
func (s *Service) review(ctx context.Context, p *Principal, t *countersign.Transaction, use reviewUse) *Review {
	r := s.decodeReview(ctx, t)
	switch {
	case p.IsAgent() && p.Agent.ID == t.AgentID: // the agent asking about its own request: it is at hand
		r.AgentName = p.Agent.Name
	case use == reviewAnswer:
	case t.AgentID != "":
		if a, err := s.store.AgentByID(ctx, t.AgentID); err == nil {
			r.AgentName = a.Name
		}
	default:
		r.AgentName = "you (user-initiated)"
	}
	s.warn(ctx, t, r, use)
	if onChain(t) && (t.Status == countersign.StatusPending || t.Status == countersign.StatusAuthorized) {
		value, _ := new(big.Int).SetString(t.TxValue, 10)
		gas, err := s.simulate(ctx, countersign.CallMsg{From: t.From, To: t.TxTo, Value: value, Data: t.TxData})
		r.Simulated = true
		if err != nil {
			r.SimError = countersign.ErrorDetail(err)
			r.warn(WarnSimulationFails, SeverityCaution, "The simulation fails: this transaction would not succeed now ("+r.SimError+").")
		} else {
			r.SimOK, r.SimGas = true, gas
		}
	}
	s.reviewFacts(ctx, p, t, r, use) // review_facts.go
	return r
}

// decodeReview is the part of a review that depends on the request alone
// (no history, no simulation): what it does and the warnings that follow
// from its fields. Decide runs it too, to find the danger warnings an
// approval must acknowledge, so the page and the check cannot disagree.
func (s *Service) decodeReview(ctx context.Context, t *countersign.Transaction) *Review {
	r := &Review{Tx: t, View: View(t)}
	human := s.HumanAmount(ctx, t)
	switch t.Type {
	case countersign.TxNative:
		r.Summary = fmt.Sprintf("Send %s to %s", human, t.To)
		r.Action, r.Counterparty = "Send "+human+" to", t.To
		r.Fields = []Field{{"Amount", human}, {"Amount (wei)", t.Amount}, {"Recipient", t.To}}
	case countersign.TxERC20:
		r.Summary = fmt.Sprintf("Transfer %s to %s", human, t.To)
		r.Action, r.Counterparty = "Transfer "+human+" to", t.To
		r.Fields = []Field{{"Amount", human}, {"Amount (base units)", t.Amount}, {"Token", t.TokenAddress}, {"Recipient", t.To}}
		r.Function, r.Args = "transfer(address,uint256)", []Field{{"to", t.To}, {"amount", human}}
	case countersign.TxContractCall:
		r.Fields = []Field{{"Contract", t.ContractAddress}, {"Value sent", human}}
		s.decodeCall(ctx, t, r)
		switch {
		case r.Approval != "":
			// An ERC-20 approval reads as what it lets happen: who may take
			// how much of which token.
			r.Summary = fmt.Sprintf("Approve %s for %s", r.Approval, r.Spender)
			r.Action, r.Counterparty = "Approve "+r.Approval+" for", r.Spender
		case r.Function != "":
			r.Summary = fmt.Sprintf("Call %s on %s", r.Function, t.ContractAddress)
			r.Action, r.Counterparty = "Call "+r.callLine+" on", t.ContractAddress
		default:
			r.Summary = fmt.Sprintf("Call contract %s with undecoded data", t.ContractAddress)
			r.Action, r.Counterparty = "Call undecoded data on", t.ContractAddress
		}
		if v, _ := new(big.Int).SetString(t.Value, 10); v != nil && v.Sign() > 0 {
			r.Summary += " sending " + human
			r.Action = "Send " + human + " and " + strings.ToLower(r.Action[:1]) + r.Action[1:]
		}
	case countersign.TxNonceFill:
		r.Summary = "Fill a refused nonce: send 0 " + NativeSymbol + " from the wallet to itself"
		r.Action = "Fill a refused nonce"
		r.Fields = []Field{{"Why", t.Memo}, {"Wallet", t.From}}
	case countersign.TxPersonalSign:
		b, _ := hexutil.Decode(t.Message)
		r.Summary = "Sign a message (EIP-191)"
		r.Action = "Sign a binary message"
		if utf8.Valid(b) && printable(string(b)) {
			r.Message = string(b)
			r.Action = "Sign a message: “" + clampText(firstLine(r.Message), 48) + "”"
			if m, ok := parseSIWE(r.Message); ok { // review_facts.go
				r.SIWE = m
				r.Summary = "Sign in to " + m.Domain + " as " + m.Address + " (Sign-In with Ethereum)"
				r.Action = "Sign a message for " + m.Domain
			}
		} else {
			r.Message = t.Message
			r.warn(WarnBinaryMessage, SeverityCaution, "The message is binary data, not text: you cannot read what you are signing.")
		}
	case countersign.TxX402:
		// An x402 payment is a signed EIP-3009 authorization, not a
		// transaction: the payee (or anyone holding it) moves the amount
		// until it expires. The memo names the resource it pays for.
		r.Summary = fmt.Sprintf("Pay %s to %s for an x402 resource (EIP-3009 authorization)", human, t.To)
		r.Action, r.Counterparty = "Pay "+human+" (x402) to", t.To
		r.Fields = []Field{{"Amount", human}, {"Amount (base units)", t.Amount}, {"Token", t.TokenAddress}, {"Pay to", t.To}, {"For", t.Memo}}
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, []byte(t.Message), "", "  ")
		r.Message = pretty.String()
	case countersign.TxTypedData:
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, []byte(t.Message), "", "  ")
		r.Message = pretty.String()
		var td apitypes.TypedData
		_ = json.Unmarshal([]byte(t.Message), &td)
		r.Summary = fmt.Sprintf("Sign typed data %q for %q (EIP-712)", td.PrimaryType, td.Domain.Name)
		r.Action = clampText("Sign "+td.PrimaryType+" for "+td.Domain.Name, 80)
		// The chain the signature is valid on, read from the signed domain as
		// an integer of any size: the wallet's chain below is where it lives,
		// not what the typed data says.
		chain := "none: valid on every chain"
		if td.Domain.ChainId != nil {
			chain = (*big.Int)(td.Domain.ChainId).String()
		}
		r.Fields = append(r.Fields, Field{"Signed for chain (domain.chainId)", chain})
		if strings.Contains(strings.ToLower(td.PrimaryType), "permit") || strings.Contains(strings.ToLower(td.PrimaryType), "authorization") {
			r.warn(WarnPermit, SeverityCaution, "This is a permit or transfer authorization: signing it can let someone move tokens without another approval.")
		}
	}
	if t.Type == countersign.TxX402 && t.To == (common.Address{}).Hex() {
		r.warn(WarnZeroAddress, SeverityDanger, "The payee is the zero address: anything sent there is lost.")
	}
	if onChain(t) {
		zero := common.Address{}.Hex()
		if t.To == zero || t.TxTo == zero {
			r.warn(WarnZeroAddress, SeverityDanger, "The recipient is the zero address: anything sent there is lost.")
		}
		// The most the network fee can be, in the native coin: the approval
		// binds it (money.go), so the human sees it before approving.
		if f := maxFee(t); f != nil {
			perGas, _ := new(big.Int).SetString(t.MaxFeePerGas, 10)
			r.MaxFee = countersign.FormatUnits(f, 18) + " " + NativeSymbol
			r.Fields = append(r.Fields, Field{"Network fee (at most)", fmt.Sprintf("%s (gas limit %d × up to %s gwei per gas)", r.MaxFee, t.GasLimit, countersign.FormatUnits(perGas, 9))})
		} else {
			r.Fields = append(r.Fields, Field{"Network fee (at most)", "not bound: the simulation failed when this was prepared, so it cannot be executed; the agent must prepare it again"})
			r.warn(WarnNoFeeBound, SeverityCaution, "No network fee limit is bound to this request: approving it lets nothing be sent; the agent must prepare it again.")
		}
	}
	return r
}

// onChain reports whether t becomes a transaction of its own, with gas
// and a network fee: not a message signature and not an x402
// authorization (which the payee settles).
func onChain(t *countersign.Transaction) bool {
	return !t.Type.IsMessage() && t.Type != countersign.TxX402
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
			r.warn(WarnShortCalldata, SeverityCaution, "The call data is too short to name a function.")
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
		r.warn(WarnUnknownSelector, SeverityCaution, fmt.Sprintf("Unknown function selector 0x%x: countersign cannot decode what this call does.", data[:4]))
		return
	}
	vals, err := m.Inputs.Unpack(data[4:])
	if err != nil {
		r.RawData = "0x" + hex.EncodeToString(data)
		r.warn(WarnCalldataMismatch, SeverityCaution, "The call data does not match "+m.Sig+".")
		return
	}
	r.Function = m.Sig
	var line []string // the inbox's short form: increment(7, …)
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
				r.warn(WarnUnlimitedApproval, SeverityDanger, "Unlimited approval: the spender could take every token of this kind the wallet ever holds.")
				r.Unlimited = true
				if info != nil {
					val = "Unlimited " + info.Symbol + " (" + v.String() + ")"
				}
			}
		}
		if a, ok := vals[i].([32]byte); ok {
			val = "0x" + hex.EncodeToString(a[:])
		}
		r.Args = append(r.Args, Field{Label: name, Value: val})
		if len(line) == 0 { // the first argument, then … for the rest
			short := val
			if a, ok := vals[i].(common.Address); ok {
				short = shortAddress(a.Hex())
			}
			line = append(line, clampText(short, 24))
		} else if len(line) == 1 {
			line = append(line, "…")
		}
	}
	r.callLine = m.RawName + "(" + strings.Join(line, ", ") + ")"
	if m.Sig == "approve(address,uint256)" && len(vals) == 2 {
		spender, _ := vals[0].(common.Address)
		amount, _ := vals[1].(*big.Int)
		sym := "tokens"
		if info != nil && info.Symbol != "" {
			sym = info.Symbol
		}
		r.Spender = spender.Hex()
		switch {
		case amount == nil:
		case amount.Cmp(unlimitedAt) >= 0:
			r.Approval = "unlimited " + sym
		case info != nil:
			r.Approval = countersign.FormatUnits(amount, int(info.Decimals)) + " " + sym
		default:
			r.Approval = amount.String() + " base units of " + sym
		}
	}
}

// warn adds warnings that need the owner's history (for an answer, as
// remembered at the chain head in ctx: paymentHistory).
func (s *Service) warn(ctx context.Context, t *countersign.Transaction, r *Review, use reviewUse) {
	history := s.store.PaymentHistory
	if use == reviewAnswer {
		history = s.paymentHistory
	}
	if q, ok := paymentQuery(t); ok {
		if sum, err := history(ctx, q); err == nil {
			warnFromHistory(t, r, sum)
		}
	}
}

// paymentQuery is what a review asks of t's owner's confirmed history:
// only payments (native and token transfers) have one.
func paymentQuery(t *countersign.Transaction) (countersign.PaymentQuery, bool) {
	if t.Type != countersign.TxNative && t.Type != countersign.TxERC20 {
		return countersign.PaymentQuery{}, false
	}
	return countersign.PaymentQuery{OwnerID: t.OwnerID, Type: t.Type, To: t.To, AgentID: t.AgentID, Token: t.TokenAddress}, true
}

// warnFromHistory adds the warnings of t against its owner's confirmed
// history, as the store summarised it (Store.PaymentHistory): a recipient
// never paid before; more than twice the agent's largest payment of the kind.
func warnFromHistory(t *countersign.Transaction, r *Review, h countersign.PaymentSummary) {
	if !h.Paid {
		r.warn(WarnNewRecipient, SeverityInfo, "New recipient: this wallet has never paid "+t.To+" before.")
	}
	amount, _ := new(big.Int).SetString(t.Amount, 10)
	if h.Previous > 0 && h.Largest != nil && amount != nil && amount.Cmp(new(big.Int).Mul(h.Largest, big.NewInt(2))) > 0 {
		r.warn(WarnUnusualAmount, SeverityCaution, fmt.Sprintf("Unusual amount: more than twice this agent's largest confirmed payment of this kind (%d before).", h.Previous))
	}
}
