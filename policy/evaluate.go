package policy

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// BudgetQuery names one budget's counter: the amounts of Asset reserved or
// spent under RuleID by the agent (ScopeAgent) or by every agent of the
// wallet (ScopeWallet) after Since. Since is exclusive: an entry exactly
// one window old no longer counts, so a "24h" window never holds more than
// 24 hours.
type BudgetQuery struct {
	Scope    Scope
	WalletID string
	AgentID  string // set for both scopes; ScopeWallet ignores it
	RuleID   string
	Asset    string
	Since    time.Time
}

// History is what evaluation needs from the past. The caller (core, from
// the store, inside the transaction that will write the reservation)
// supplies it; the policy package does no I/O. An error from either
// method sends the request to a human.
type History interface {
	// BudgetUsed returns the amounts spent and still reserved under q.
	BudgetUsed(q BudgetQuery) (spent, reserved *big.Int, err error)
	// PaidBefore says whether walletID has sent value to recipient before.
	PaidBefore(walletID, recipient string) (bool, error)
}

// Decision is the outcome of Evaluate and why.
type Decision struct {
	Outcome Outcome
	// RuleID is the deciding rule, DefaultRuleID when no rule matched,
	// and "" when evaluation failed (Warnings says why).
	RuleID  string
	Quorum  int           // approvals needed when Outcome is Quorum
	Delay   time.Duration // cooling-off when Outcome is Delay
	Budget  *BudgetView   // the deciding rule's budget, nil without one
	Reserve *big.Int      // what to reserve against Budget with the request row; nil: nothing
	// Warnings are for the human and the agent alike: a hard rule that
	// changed the outcome, a budget exceeded, a failure.
	Warnings []string
}

// BudgetView is a budget's state when the decision was made (before the
// request's own reservation).
type BudgetView struct {
	Max, Spent, Reserved, Remaining *big.Int
	Window                          string // as written: "24h"
	Scope                           Scope
	Asset                           string
}

// Evaluate decides what happens to req under p at now. It never fails
// open: a panic, a history error or anything it cannot decide gives Human
// with RuleID "" and a warning. A nil policy is the default: Human.
func Evaluate(p *Policy, req Request, hist History, now time.Time) (d Decision) {
	defer func() {
		if r := recover(); r != nil {
			d = failed(fmt.Sprintf("policy evaluation failed (%v): sent to a human", r))
		}
	}()
	if p == nil {
		return Decision{Outcome: Human, RuleID: DefaultRuleID}
	}
	if !p.parsed {
		return failed("policy was not built by Parse: sent to a human")
	}
	if req.Amount != nil && req.Amount.Sign() < 0 {
		// A negative reservation would hand budget back.
		return failed("the request's amount is negative: sent to a human")
	}
	req = normalize(req)
	e := evaluation{req: &req, hist: hist, now: now}
	for i := range p.Rules {
		r := &p.Rules[i]
		ok, err := e.matches(&r.When)
		if err != nil {
			return failed(fmt.Sprintf("policy evaluation failed at rule %q (%v): sent to a human", r.ID, err))
		}
		if ok {
			d, err := e.decide(r)
			if err != nil {
				return failed(fmt.Sprintf("policy evaluation failed at rule %q (%v): sent to a human", r.ID, err))
			}
			return hardRules(d, &req)
		}
	}
	return hardRules(Decision{Outcome: p.Default, RuleID: DefaultRuleID}, &req)
}

func failed(warning string) Decision {
	return Decision{Outcome: Human, Warnings: []string{warning}}
}

func normalize(r Request) Request {
	r.Asset = strings.ToLower(r.Asset)
	if len(r.To) > 0 {
		to := make([]string, len(r.To))
		for i, a := range r.To {
			to[i] = strings.ToLower(a)
		}
		r.To = to
	}
	r.Contract = strings.ToLower(r.Contract)
	r.Selector = strings.ToLower(r.Selector)
	if r.TypedData != nil {
		td := *r.TypedData
		td.VerifyingContract = strings.ToLower(td.VerifyingContract)
		r.TypedData = &td
	}
	return r
}

type evaluation struct {
	req  *Request
	hist History
	now  time.Time

	newKnown, isNew bool // new_recipient, asked of History at most once
}

// targets are what to and not_to compare: the recipients, and the called
// contract of a contract call.
func (e *evaluation) target(i int) (string, bool) {
	r := e.req
	if i < len(r.To) {
		return r.To[i], true
	}
	if i == len(r.To) && r.Kind == KindContractCall && r.Contract != "" {
		return r.Contract, true
	}
	return "", false
}

func (e *evaluation) matches(w *When) (bool, error) {
	r := e.req
	if w.kinds != 0 && w.kinds&kindBit(r.Kind) == 0 {
		return false, nil
	}
	if w.Asset != "" && r.Asset != w.Asset {
		return false, nil
	}
	// A request that moves nothing visible has no amount to compare: it
	// matches neither bound, so "max_amount" never catches a signature.
	if w.MinAmount != nil && (r.Amount == nil || r.Amount.Cmp(w.MinAmount) < 0) {
		return false, nil
	}
	if w.MaxAmount != nil && (r.Amount == nil || r.Amount.Cmp(w.MaxAmount) > 0) {
		return false, nil
	}
	if w.to != nil {
		// Every recipient must be listed: an allowlist must not let an
		// unlisted payee ride along with a listed one.
		n := 0
		for i := 0; ; i++ {
			t, ok := e.target(i)
			if !ok {
				break
			}
			if _, in := w.to[t]; !in {
				return false, nil
			}
			n++
		}
		if n == 0 {
			return false, nil
		}
	}
	if w.notTo != nil {
		for i := 0; ; i++ {
			t, ok := e.target(i)
			if !ok {
				break
			}
			if _, in := w.notTo[t]; in {
				return false, nil
			}
		}
	}
	if w.selectors != nil {
		if r.Kind != KindContractCall || r.Selector == "" {
			return false, nil
		}
		if _, in := w.selectors[r.Selector]; !in {
			return false, nil
		}
	}
	if len(w.ChainID) > 0 {
		found := false
		for _, id := range w.ChainID {
			found = found || id == r.ChainID
		}
		if !found {
			return false, nil
		}
	}
	if td := w.TypedData; td != nil {
		if r.Kind != KindTypedData || r.TypedData == nil {
			return false, nil
		}
		if td.PrimaryType != "" && td.PrimaryType != r.TypedData.PrimaryType {
			return false, nil
		}
		if td.VerifyingContract != "" && td.VerifyingContract != r.TypedData.VerifyingContract {
			return false, nil
		}
	}
	if w.Hours != nil && !w.Hours.contains(e.now) {
		return false, nil
	}
	if w.NewRecipient != nil {
		isNew, known, err := e.newRecipient()
		if err != nil {
			return false, err
		}
		// A request without a recipient is neither new nor known.
		if !known || isNew != *w.NewRecipient {
			return false, nil
		}
	}
	return true, nil
}

// newRecipient says whether any recipient was never paid from the wallet;
// known is false when the request has no recipient.
func (e *evaluation) newRecipient() (isNew, known bool, err error) {
	if _, ok := e.target(0); !ok {
		return false, false, nil
	}
	if e.req.NewRecipient != nil {
		return *e.req.NewRecipient, true, nil
	}
	if e.newKnown {
		return e.isNew, true, nil
	}
	if e.hist == nil {
		return false, false, errors.New("no history to tell a new recipient")
	}
	for i := 0; ; i++ {
		t, ok := e.target(i)
		if !ok {
			break
		}
		paid, err := e.hist.PaidBefore(e.req.WalletID, t)
		if err != nil {
			return false, false, err
		}
		if !paid {
			e.isNew = true
			break
		}
	}
	e.newKnown = true
	return e.isNew, true, nil
}

// contains says whether t falls in the weekly window, on the local wall
// clock of the window's zone (so a DST change moves UTC, not the window).
func (h *Hours) contains(t time.Time) bool {
	lt := t.In(h.loc)
	m := lt.Hour()*60 + lt.Minute()
	day := lt.Weekday()
	on := func(d time.Weekday) bool { return h.dayMask&(1<<d) != 0 }
	if h.From < h.To {
		return on(day) && m >= h.From && m < h.To
	}
	// Crossing midnight: the evening of a listed day, or the early hours
	// after one.
	return on(day) && m >= h.From || on((day+6)%7) && m < h.To
}

func (e *evaluation) decide(r *Rule) (Decision, error) {
	d := Decision{Outcome: r.Then, RuleID: r.ID}
	req := e.req
	if r.Budget == nil {
		// auto without a budget is only for requests that move no value:
		// the promise is "auto only within its budget", and a rule
		// without one has no bound at all on what it would let through.
		if r.Then == Auto && (req.Amount != nil || req.Unvalued) {
			d.Outcome = Human
			d.Warnings = append(d.Warnings, fmt.Sprintf("rule %q is auto without a budget, which only covers requests that move no value: sent to a human", r.ID))
		}
		return d.withParams(r), nil
	}
	b := r.Budget
	// Parse made every budget pin its asset: the asset matcher, or kind
	// native alone.
	asset := r.When.Asset
	if asset == "" {
		asset = AssetNative
	}
	if e.hist == nil {
		return d, errors.New("no history to count the budget")
	}
	spent, reserved, err := e.hist.BudgetUsed(BudgetQuery{
		Scope: b.Scope, WalletID: req.WalletID, AgentID: req.AgentID,
		RuleID: r.ID, Asset: asset, Since: e.now.Add(-b.Window),
	})
	if err != nil {
		return d, err
	}
	if spent == nil {
		spent = new(big.Int)
	}
	if reserved == nil {
		reserved = new(big.Int)
	}
	if spent.Sign() < 0 || reserved.Sign() < 0 {
		return d, errors.New("history returned a negative amount")
	}
	remaining := new(big.Int).Sub(b.Max, spent)
	remaining.Sub(remaining, reserved)
	if remaining.Sign() < 0 {
		remaining.SetInt64(0)
	}
	d.Budget = &BudgetView{
		Max: new(big.Int).Set(b.Max), Spent: new(big.Int).Set(spent), Reserved: new(big.Int).Set(reserved),
		Remaining: remaining, Window: b.windowText, Scope: b.Scope, Asset: asset,
	}
	amt := req.Amount
	if amt == nil {
		amt = new(big.Int)
	}
	if req.Unvalued || amt.Cmp(remaining) > 0 {
		d.Outcome = r.Overflow
		if req.Unvalued {
			d.Warnings = append(d.Warnings, fmt.Sprintf("rule %q: the request's value could not be measured against the budget: %s", r.ID, r.Overflow))
		} else {
			d.Warnings = append(d.Warnings, fmt.Sprintf("rule %q: the request would exceed the budget (remaining %s of %s in %s): %s", r.ID, remaining, b.Max, b.windowText, r.Overflow))
		}
		return d.withParams(r), nil
	}
	d.Reserve = new(big.Int).Set(amt)
	return d.withParams(r), nil
}

func (d Decision) withParams(r *Rule) Decision {
	switch d.Outcome {
	case Quorum:
		d.Quorum = r.Quorum
	case Delay:
		d.Delay = r.Delay
	}
	return d
}

// hardRules applies what no policy can loosen: an unlimited approval, an
// EIP-7702 authorization, or a request of unmeasured value is never auto
// and never delay. Stricter outcomes stand.
func hardRules(d Decision, r *Request) Decision {
	if d.Outcome != Auto && d.Outcome != Delay {
		return d
	}
	var rule string
	switch {
	case r.UnlimitedApproval:
		rule = "hard rule unlimited-approval: an unlimited token approval is never auto or delay"
	case r.Authorization7702:
		rule = "hard rule eip7702-authorization: an EIP-7702 authorization is never auto or delay"
	case r.Unvalued:
		rule = "hard rule unvalued: a request whose value cannot be measured is never auto or delay"
	default:
		return d
	}
	d.Outcome, d.Delay = Human, 0
	d.Warnings = append(d.Warnings, rule+": sent to a human")
	return d
}
