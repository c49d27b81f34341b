package core

import (
	"context"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign"
)

// Facts are what an approver needs beside the request itself to decide:
// which wallet pays and what it has left, the whole cost, the chain, what
// the token is, the names the approver gave addresses, and once decided,
// who decided and when.
type Facts struct {
	WalletName    string
	WalletAddress string
	ChainName     string

	Balance      string // of what the request spends, e.g. "1.2 ETH", "100 TEST"
	BalanceAfter string // the same after the request at its most expensive; "" when unknown
	Short        bool   // the wallet cannot pay it all
	NativeAfter  string // ETH left after the fee, for token requests

	Fee   string // the most the network fee can be, in the native coin
	Total string // what the request costs at most: "0.25005 ETH", "25 TEST + at most 0.00005 ETH"

	TokenAddress string
	TokenName    string
	TokenSymbol  string
	TokenKnown   bool // in the known-token list (TOKENS_FILE or the built-in one)

	Labels map[string]string // the approver's address book: lower-case address → label

	DecidedBy string // the username who rejected, or who approved last
	DecidedAt time.Time
}

// Label is the approver's name for address, "" when it has none.
func (f *Facts) Label(address string) string {
	return f.Labels[strings.ToLower(address)]
}

// reviewFacts fills r.Facts for p: wallet, balances, fee and total, chain,
// token, labels and the decision, and the warnings they give (a token that
// is not in the known list; a look-alike symbol; not enough funds; a SIWE
// message for another address or chain). For an answer (reviewAnswer) it
// leaves out the names only the page shows — the wallet's, the address
// book's, who decided — and reads the balance as of the head in ctx.
func (s *Service) reviewFacts(ctx context.Context, p *Principal, t *countersign.Transaction, r *Review, use reviewUse) {
	f := &r.Facts
	f.ChainName = s.ChainName(t.ChainID)
	f.WalletAddress = t.From
	if use == reviewPage {
		if w, err := s.store.WalletByID(ctx, t.WalletID); err == nil {
			f.WalletName, f.WalletAddress = w.Name, w.Address
		}
		f.Labels = s.AddressLabels(ctx, p)
		if t.Status == countersign.StatusRejected && t.DecidedBy != "" {
			f.DecidedBy, f.DecidedAt = s.username(ctx, t.DecidedBy), t.DecidedAt
		} else if n := len(r.View.Approvals); n > 0 && t.Status != countersign.StatusPending {
			f.DecidedBy, f.DecidedAt = r.View.Approvals[n-1].User, r.View.Approvals[n-1].At
		} else if !t.DecidedAt.IsZero() && t.DecidedBy != "" {
			f.DecidedBy, f.DecidedAt = s.username(ctx, t.DecidedBy), t.DecidedAt
		}
	}

	token := t.TokenAddress
	if t.Type == countersign.TxContractCall && (r.Approval != "" || strings.HasPrefix(r.Function, "transfer")) {
		token = t.ContractAddress
	}
	if token != "" {
		f.TokenAddress = token
		if info, err := s.CachedTokenInfo(ctx, token); err == nil {
			f.TokenSymbol = info.Symbol
		}
		if k, ok := s.KnownToken(t.ChainID, token); ok {
			f.TokenKnown, f.TokenName = true, k.Name
			if f.TokenSymbol == "" {
				f.TokenSymbol = k.Symbol
			}
		} else {
			if out, err := s.erc20Call(ctx, common.HexToAddress(token), "name"); err == nil && len(out) == 1 {
				if n, ok := out[0].(string); ok && utf8.ValidString(n) && printable(n) {
					f.TokenName = clampText(n, 64)
				}
			}
			if f.TokenSymbol != "" && s.knownSymbol(t.ChainID, f.TokenSymbol) {
				r.warn(WarnLookalikeToken, SeverityCaution, "This token calls itself "+f.TokenSymbol+" but is not the known "+f.TokenSymbol+" of this chain: it may be a look-alike.")
			} else {
				r.warn(WarnUnknownToken, SeverityInfo, "The token "+token+" is not in the known-token list.")
			}
		}
	}

	if t.Type.IsMessage() {
		if m := r.SIWE; m != nil {
			if !strings.EqualFold(m.Address, t.From) {
				r.warn(WarnSIWEMismatch, SeverityCaution, "The sign-in message names "+m.Address+", not this wallet.")
			}
			if m.ChainID != "" && m.ChainID != big.NewInt(t.ChainID).String() {
				r.warn(WarnSIWEMismatch, SeverityCaution, "The sign-in message is for chain "+m.ChainID+", not this wallet's chain.")
			}
		}
		return
	}
	fee := maxFee(t)
	if fee != nil {
		f.Fee = r.MaxFee
	}
	if t.Status != countersign.StatusPending && t.Status != countersign.StatusAuthorized {
		return // spent or never to be: a balance "after" would mislead
	}
	balance := s.chain.BalanceAt
	if use == reviewAnswer {
		balance = s.nativeBalance
	}
	native, err := balance(ctx, t.From)
	if err != nil {
		return // no balances: the chain is unreachable (the simulation says so)
	}
	spend := new(big.Int)
	if v, ok := new(big.Int).SetString(t.TxValue, 10); ok {
		spend.Add(spend, v)
	}
	withFee := new(big.Int).Set(spend)
	if fee != nil {
		withFee.Add(withFee, fee)
	}
	switch {
	case (t.Type == countersign.TxERC20 || t.Type == countersign.TxX402) && token != "":
		amount, _ := new(big.Int).SetString(t.Amount, 10)
		if b, err := s.Balance(ctx, t.From, token); err == nil && amount != nil {
			after := new(big.Int).Sub(b.Balance, amount)
			f.Balance = countersign.FormatUnits(b.Balance, int(b.Decimals)) + " " + b.Symbol
			f.BalanceAfter = countersign.FormatUnits(after, int(b.Decimals)) + " " + b.Symbol
			f.Short = after.Sign() < 0
			f.Total = countersign.FormatUnits(amount, int(b.Decimals)) + " " + b.Symbol
			if f.Fee != "" {
				f.Total += " + at most " + f.Fee
			}
		}
		nativeAfter := new(big.Int).Sub(native, withFee)
		f.NativeAfter = countersign.FormatUnits(nativeAfter, 18) + " " + NativeSymbol
		f.Short = f.Short || nativeAfter.Sign() < 0
	default:
		after := new(big.Int).Sub(native, withFee)
		f.Balance = countersign.FormatUnits(native, 18) + " " + NativeSymbol
		f.BalanceAfter = countersign.FormatUnits(after, 18) + " " + NativeSymbol
		f.Short = after.Sign() < 0
		f.Total = countersign.FormatUnits(withFee, 18) + " " + NativeSymbol
		if fee != nil && spend.Sign() > 0 {
			f.Total += " (" + countersign.FormatUnits(spend, 18) + " + at most " + f.Fee + " fee)"
		} else if fee != nil {
			f.Total += " in fees (no value is sent)"
		}
	}
	if f.Short {
		r.warn(WarnBalance, SeverityCaution, "The wallet does not hold enough to pay this now (amount and the most the fee can be): it would fail when executed.")
	}
}

// SIWEMessage is the part of an EIP-4361 Sign-In with Ethereum message an
// approver needs: who asks, for which account, where and on which chain.
type SIWEMessage struct {
	Domain, Address, URI, ChainID, Statement string
}

// parseSIWE recognises an EIP-4361 message by its first two lines
// ("<domain> wants you to sign in with your Ethereum account:", then the
// address) and reads its URI and chain. Anything else is a plain message.
func parseSIWE(msg string) (*SIWEMessage, bool) {
	const head = " wants you to sign in with your Ethereum account:"
	lines := strings.Split(strings.ReplaceAll(msg, "\r\n", "\n"), "\n")
	if len(lines) < 2 || !strings.HasSuffix(lines[0], head) {
		return nil, false
	}
	m := &SIWEMessage{Domain: strings.TrimSuffix(lines[0], head), Address: strings.TrimSpace(lines[1])}
	if m.Domain == "" || strings.ContainsAny(m.Domain, " \t") || !common.IsHexAddress(m.Address) {
		return nil, false
	}
	m.Domain = clampText(m.Domain, 80)
	if len(lines) > 3 && lines[2] == "" && lines[3] != "" && !strings.Contains(lines[3], ": ") {
		m.Statement = clampText(lines[3], 200)
	}
	for _, l := range lines[2:] {
		if v, ok := strings.CutPrefix(l, "URI: "); ok {
			m.URI = clampText(v, 200)
		}
		if v, ok := strings.CutPrefix(l, "Chain ID: "); ok {
			m.ChainID = clampText(v, 32)
		}
	}
	return m, true
}

// clampText shortens s to at most n characters, ending in "…" when cut.
func clampText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " …"
	}
	return s
}

// shortAddress is 0x6813…9eFf: enough to tell addresses apart at a glance
// (the page shows the whole address beside it).
func shortAddress(a string) string {
	if len(a) < 12 {
		return a
	}
	return a[:6] + "…" + a[len(a)-4:]
}

// Line is an inbox row's summary of a request: its kind, the decoded
// action and counterparty, the warnings a row can know without a
// simulation, and the paying wallet's name.
type Line struct {
	Kind         string // "Payment", "Token transfer", "Contract call", "Signature", …
	Action       string
	Counterparty string
	Warnings     []Warning
	Severity     Severity // the highest of Warnings (and the policy's), "" when none
	WalletName   string
}

// Lines summarises list for the inbox of p: each row decoded as its page
// would be (without the simulation), each history asked once a page.
func (s *Service) Lines(ctx context.Context, p *Principal, list []*countersign.Transaction) []Line {
	histories := map[countersign.PaymentQuery]*countersign.PaymentSummary{}
	wallets := map[string]string{}
	out := make([]Line, 0, len(list))
	for _, t := range list {
		r := s.decodeReview(ctx, t)
		if q, ok := paymentQuery(t); ok {
			h, ok := histories[q]
			if !ok {
				if sum, err := s.store.PaymentHistory(ctx, q); err == nil {
					h = &sum
				}
				histories[q] = h
			}
			if h != nil {
				warnFromHistory(t, r, *h)
			}
		}
		name, ok := wallets[t.WalletID]
		if !ok {
			if w, err := s.store.WalletByID(ctx, t.WalletID); err == nil {
				name = w.Name
			}
			wallets[t.WalletID] = name
		}
		ws := append(PolicyWarnings(t.PolicyWarnings), r.Warnings...)
		out = append(out, Line{Kind: kindName(t.Type), Action: r.Action, Counterparty: r.Counterparty, Warnings: ws, Severity: Highest(ws), WalletName: name})
	}
	return out
}

func kindName(k countersign.TxType) string {
	switch k {
	case countersign.TxNative:
		return "Payment"
	case countersign.TxERC20:
		return "Token transfer"
	case countersign.TxContractCall:
		return "Contract call"
	case countersign.TxPersonalSign:
		return "Message signature"
	case countersign.TxTypedData:
		return "Typed-data signature"
	case countersign.TxNonceFill:
		return "Nonce fill"
	case countersign.TxX402:
		return "x402 payment"
	}
	return string(k)
}
