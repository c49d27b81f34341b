package core

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
	"github.com/countersign/countersign/policy"
)

// The policy wiring (docs/POLICY.md): every agent request is decided by
// the agent's policy and by its wallet's, inside the store transaction
// that writes the request row and its budget reservations, so concurrent
// prepares can never together reserve past a budget.
//
// Combining two documents: each stored document is evaluated on its own
// (a level without a document has no say), and the stricter decision wins
// — deny > quorum > human > delay > auto; between two quorums the larger
// N, between two delays the longer. With no document at all the request
// waits for one human, exactly as before policies existed.

// BudgetLowPercent is the threshold of the budget.low event: it is sent
// once, when a reservation takes a budget's remaining amount from at or
// above this share of its max to below it.
const BudgetLowPercent = 10

// MaxPolicyDocument is the largest policy document (policy.MaxDocument),
// for the transports that read one.
const MaxPolicyDocument = policy.MaxDocument

// PolicyView is a stored policy as the API returns it.
type PolicyView struct {
	Level     countersign.PolicyLevel `json:"level"`
	SubjectID string                  `json:"subject_id"`
	Document  *policy.Policy          `json:"document"` // canonical form: rules in order
	Hash      string                  `json:"hash"`
	UpdatedBy string                  `json:"updated_by"`
	UpdatedAt time.Time               `json:"updated_at"`
	// Pending is a loosening change waiting for the wallet's quorum (PUT's
	// answer only; approvers_policy.go).
	Pending *PendingPolicyChange `json:"pending_change,omitempty"`
}

// BudgetState is one budget's counters now.
type BudgetState struct {
	Level     countersign.PolicyLevel `json:"level,omitempty"`
	RuleID    string                  `json:"rule_id,omitempty"`
	Asset     string                  `json:"asset,omitempty"`
	Scope     string                  `json:"scope,omitempty"`
	Max       string                  `json:"max"`
	Spent     string                  `json:"spent"`
	Reserved  string                  `json:"reserved"`
	Remaining string                  `json:"remaining"`
	Window    string                  `json:"window"`
}

// SimulateResult is the dry run's answer: what Prepare would decide now.
type SimulateResult struct {
	Decision string       `json:"decision"`
	RuleID   string       `json:"rule_id"`
	Budget   *BudgetState `json:"budget"`
	Warnings []Warning    `json:"warnings"` // {code: "policy", severity, text} (review_warnings.go)
}

// reservation is one budget claim a decision makes.
type reservation struct {
	key    countersign.BudgetKey
	amount *big.Int
	view   *policy.BudgetView
}

// decision is the combined outcome of the agent's and the wallet's
// policies for one request.
type decision struct {
	none     bool // no policy is set at either level: today's behaviour
	outcome  policy.Outcome
	ruleID   string
	level    countersign.PolicyLevel // the deciding document
	quorum   int
	delay    time.Duration
	budget   *policy.BudgetView
	warnings []string
	reserve  []reservation
}

// parsedPolicies caches parsed documents by hash: the stored text is the
// canonical form, so its hash names exactly one parse.
var parsedPolicies sync.Map // hash → *policy.Policy

func parseStored(r *countersign.PolicyRecord) (*policy.Policy, error) {
	if v, ok := parsedPolicies.Load(r.Hash); ok {
		return v.(*policy.Policy), nil
	}
	p, err := policy.Parse([]byte(r.Document))
	if err != nil {
		return nil, err
	}
	if p.Hash() != r.Hash {
		return nil, countersign.Errorf(countersign.Internal, "stored policy of %s %s does not match its hash", r.Level, r.SubjectID)
	}
	parsedPolicies.Store(r.Hash, p)
	return p, nil
}

// loadPolicy returns the parsed policy of (level, subject), nil if none.
func (s *Service) loadPolicy(ctx context.Context, level countersign.PolicyLevel, subject string) (*policy.Policy, *countersign.PolicyRecord, error) {
	r, err := s.store.Policy(ctx, level, subject)
	if countersign.ErrorCode(err) == countersign.NotFound {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	p, err := parseStored(r)
	if err != nil {
		return nil, nil, err
	}
	return p, r, nil
}

// history is what Evaluate reads from the store for one policy level. With
// lock set (prepare), it locks each budget's counter row before reading
// it, inside the caller's store transaction.
type history struct {
	ctx   context.Context
	s     *Service
	level countersign.PolicyLevel
	lock  bool
}

func budgetKey(level countersign.PolicyLevel, scope policy.Scope, walletID, agentID, ruleID, asset string) countersign.BudgetKey {
	subject := "agent:" + agentID
	if scope == policy.ScopeWallet {
		subject = "wallet:" + walletID
	}
	return countersign.BudgetKey{Level: level, Subject: subject, RuleID: ruleID, Asset: strings.ToLower(asset)}
}

func (h *history) BudgetUsed(q policy.BudgetQuery) (*big.Int, *big.Int, error) {
	k := budgetKey(h.level, q.Scope, q.WalletID, q.AgentID, q.RuleID, q.Asset)
	if h.lock {
		return h.s.store.LockBudgetUsed(h.ctx, k, q.Since)
	}
	return h.s.store.BudgetUsed(h.ctx, k, q.Since)
}

func (h *history) PaidBefore(walletID, recipient string) (bool, error) {
	return h.s.store.PaidBefore(h.ctx, walletID, recipient)
}

// unlimitedApprove reports calldata that grants a spender an allowance no
// budget bounds: ERC-20 approve(spender, amount) and
// increaseAllowance(spender, amount), and Permit2's approve(token,
// spender, uint160 amount, uint48 expiration), with an amount of 2^128 or
// more. No token's supply comes near 2^128 base units (10^38), so such an
// allowance is "unlimited" in effect whatever its exact value (2^256−1,
// 2^255−1, uint160's maximum); the hard rule keeps it from auto and delay.
func unlimitedApprove(data []byte) bool {
	if len(data) < 4 {
		return false
	}
	at := 0 // where the amount word starts
	switch hex.EncodeToString(data[:4]) {
	case "095ea7b3", "39509351": // approve, increaseAllowance
		at = 36
	case "87517c45": // Permit2 approve(address,address,uint160,uint48)
		at = 68
	default:
		return false
	}
	if len(data) < at+32 {
		return false
	}
	return new(big.Int).SetBytes(data[at:at+32]).Cmp(unlimitedAllowance) >= 0
}

// unlimitedAllowance: see unlimitedApprove.
var unlimitedAllowance = new(big.Int).Lsh(big.NewInt(1), 128)

// policyRequest is what the policy sees of a prepared transaction.
//
// EIP-7702: no request kind of this server can carry an authorization
// (transactions are EIP-1559; personal_sign is EIP-191-prefixed, so it
// can never sign the 0x05 authorization digest), so Authorization7702 is
// never set here; a kind that can carry one must set it.
func policyRequest(t *countersign.Transaction) (policy.Request, []string) {
	r := policy.Request{Kind: policy.Kind(t.Type), ChainID: t.ChainID, WalletID: t.WalletID, From: t.From, AgentID: t.AgentID}
	var warnings []string
	units := func(s string) *big.Int {
		v, ok := new(big.Int).SetString(s, 10)
		if !ok {
			r.Unvalued = true
			return nil
		}
		return v
	}
	switch t.Type {
	case countersign.TxNative:
		r.Asset, r.Amount, r.To = policy.AssetNative, units(t.Amount), []string{t.To}
	case countersign.TxERC20, countersign.TxX402: // an x402 payment is a transfer of Amount of the token to To (core/x402.go)
		r.Asset, r.Amount, r.To = strings.ToLower(t.TokenAddress), units(t.Amount), []string{t.To}
	case countersign.TxContractCall:
		r.Asset, r.Amount, r.Contract = policy.AssetNative, units(t.TxValue), t.ContractAddress
		if len(t.TxData) >= 4 {
			r.Selector = "0x" + hex.EncodeToString(t.TxData[:4])
		}
		r.UnlimitedApproval = unlimitedApprove(t.TxData)
	case countersign.TxTypedData:
		td, _, err := ethsig.ParseTypedData([]byte(t.Message), t.ChainID)
		if err != nil {
			r.Unvalued = true
			warnings = append(warnings, "the typed data could not be read for the policy: treated as of unmeasured value")
			break
		}
		info := &policy.TypedDataInfo{PrimaryType: td.PrimaryType, VerifyingContract: td.Domain.VerifyingContract}
		if td.Domain.ChainId != nil {
			info.ChainID = (*big.Int)(td.Domain.ChainId)
		}
		r.TypedData = info
		tv, err := policy.ValueTypedData(td.PrimaryType, policy.TypedDomain{VerifyingContract: td.Domain.VerifyingContract, ChainID: info.ChainID}, td.Message)
		if err != nil {
			// A known value-moving type whose amount cannot be read exactly
			// must not pass for one that moves nothing.
			r.Unvalued = true
			warnings = append(warnings, "the typed data looks like a "+td.PrimaryType+" but its value cannot be read ("+countersign.ErrorDetail(err)+"): treated as of unmeasured value")
			break
		}
		tv.Apply(&r)
	}
	return r, warnings
}

// decide evaluates the agent's and the wallet's policies for t. It never
// fails: a store error or a broken document decides human, with a
// warning. With lock it locks the budgets it reads (prepare, inside the
// write transaction); without, it only reads (the dry run).
func (s *Service) decide(ctx context.Context, t *countersign.Transaction, lock bool) decision {
	failed := func(why string) decision {
		return decision{outcome: policy.Human, warnings: []string{why + ": sent to a human"}}
	}
	levels := []struct {
		level   countersign.PolicyLevel
		subject string
	}{{countersign.PolicyAgent, t.AgentID}, {countersign.PolicyWallet, t.WalletID}}
	req, reqWarnings := policyRequest(t)
	now := s.clock.Now().UTC()
	var out *decision
	for _, l := range levels {
		if l.subject == "" {
			continue
		}
		p, _, err := s.loadPolicy(ctx, l.level, l.subject)
		if err != nil {
			s.log.Warn("policy: cannot load", "level", l.level, "subject", l.subject, "err", err)
			return failed("the " + string(l.level) + " policy could not be read")
		}
		if p == nil {
			continue
		}
		d := policy.Evaluate(p, req, &history{ctx: ctx, s: s, level: l.level, lock: lock}, now)
		one := decision{outcome: d.Outcome, ruleID: d.RuleID, level: l.level, quorum: d.Quorum, delay: d.Delay, budget: d.Budget, warnings: d.Warnings}
		if d.Reserve != nil && d.Budget != nil && d.Outcome != policy.Deny {
			one.reserve = []reservation{{key: budgetKey(l.level, d.Budget.Scope, t.WalletID, t.AgentID, d.RuleID, d.Budget.Asset), amount: d.Reserve, view: d.Budget}}
		}
		if out == nil {
			out = &one
			continue
		}
		out = combine(out, &one)
	}
	if out == nil {
		return decision{none: true, outcome: policy.Human}
	}
	out.warnings = append(reqWarnings, out.warnings...)
	return *out
}

func outcomeRank(o policy.Outcome) int {
	switch o {
	case policy.Auto:
		return 0
	case policy.Delay:
		return 1
	case policy.Human:
		return 2
	case policy.Quorum:
		return 3
	}
	return 4 // deny, and anything unknown
}

// combine returns the stricter of a and b, with both documents' warnings
// and budget claims: a request that passes counts against every budget
// whose rule matched it.
func combine(a, b *decision) *decision {
	win, lose := a, b
	ra, rb := outcomeRank(a.outcome), outcomeRank(b.outcome)
	switch {
	case rb > ra:
		win, lose = b, a
	case ra == rb && a.outcome == policy.Quorum && b.quorum > a.quorum:
		win, lose = b, a
	case ra == rb && a.outcome == policy.Delay && b.delay > a.delay:
		win, lose = b, a
	}
	out := *win
	out.warnings = append(append([]string{}, win.warnings...), lose.warnings...)
	out.reserve = append(append([]reservation{}, win.reserve...), lose.reserve...)
	if out.budget == nil {
		out.budget = lose.budget
	}
	return &out
}

// applyDecision writes what d decides on the new row t (not yet stored).
func (s *Service) applyDecision(t *countersign.Transaction, d decision, now time.Time) {
	t.Decision, t.RuleID, t.PolicyWarnings = string(d.outcome), d.ruleID, d.warnings
	switch d.outcome {
	case policy.Delay:
		t.AuthorizeAt = now.Add(d.delay)
		if !t.AuthorizeAt.Before(t.ExpiresAt) {
			// the approval window must outlast the cooling-off
			t.ExpiresAt = t.AuthorizeAt.Add(s.cfg.PendingTTL)
		}
	case policy.Quorum:
		t.ApprovalsNeeded = d.quorum
	}
}

// policyActor is the audit actor of a decision a rule made.
func policyActor(ruleID string) string { return "policy:" + ruleID }

// preparePolicy stores the prepared request t under its policy decision,
// in one store transaction: the decision (budgets locked and read), the
// request row, its reservations, the audit entries and events. A denied
// request stores nothing but its audit entry and returns POLICY_DENIED.
func (s *Service) preparePolicy(ctx context.Context, t *countersign.Transaction, actor string) error {
	var denied *countersign.Error
	window, updated := t.ExpiresAt, t.UpdatedAt                                  // an auto decision moves both (setStatus): a rerun starts from the request as prepared
	err := s.changeGrouped(ctx, func(ctx context.Context, cs *changeSet) error { // concurrent prepares share a commit; re-runnable: it resets what it sets
		denied = nil
		t.ExpiresAt, t.UpdatedAt = window, updated
		t.Status, t.Decision, t.RuleID, t.PolicyWarnings, t.AuthorizeAt, t.ApprovalsNeeded = countersign.StatusPending, "", "", nil, time.Time{}, 0
		t.ApprovedDigest, t.DecidedBy, t.DecidedAt = nil, "", time.Time{}
		now := s.clock.Now().UTC()
		d := s.decide(ctx, t, true)
		s.applyDecision(t, d, now)
		details := map[string]any{"type": string(t.Type), "to": t.To, "amount": t.Amount, "token": t.TokenAddress, "digest": hex.EncodeToString(t.Digest),
			"decision": t.Decision, "rule_id": t.RuleID}
		if d.none {
			t.Decision = string(policy.Human)
			details = map[string]any{"type": string(t.Type), "to": t.To, "amount": t.Amount, "token": t.TokenAddress, "digest": hex.EncodeToString(t.Digest)}
		}
		if len(d.warnings) > 0 {
			details["warnings"] = d.warnings
		}
		if d.outcome == policy.Deny {
			details["level"] = string(d.level)
			cs.add(countersign.Change{Owner: t.OwnerID, Actor: actor, Action: "transaction.deny", Subject: t.ID, Details: details})
			denied = &countersign.Error{Code: countersign.PolicyDenied, RuleID: d.ruleID,
				Detail: fmt.Sprintf("the %s policy's rule %q denies this request", d.level, d.ruleID)}
			return nil
		}
		// An auto decision authorizes the request in the change that
		// stores it: the row is written once, already authorized, with the
		// same audit entries and events as a pending request authorized in
		// turn — transaction.pending showing it as prepared, then
		// transaction.authorized (authorizeByPolicy).
		events := []countersign.ChangeEvent{{Type: "transaction.pending", Subject: t.ID, Payload: View(t), WalletID: t.WalletID}}
		auto := d.outcome == policy.Auto
		if auto {
			if err := s.approveByPolicy(t); err != nil {
				return err
			}
			if _, err := s.moveStatus(t, countersign.StatusAuthorized); err != nil {
				return err
			}
		}
		if err := s.store.CreateTransaction(ctx, t); err != nil {
			return err
		}
		for _, r := range d.reserve {
			if err := s.store.AddReservation(ctx, &countersign.BudgetReservation{TransactionID: t.ID, OwnerID: t.OwnerID, Key: r.key, Amount: r.amount,
				State: countersign.ReservationReserved, ReservedAt: now}); err != nil {
				return err
			}
			if ev, low := budgetLow(t, r); low {
				events = append(events, ev)
			}
		}
		if d.outcome == policy.Delay {
			events = append(events, countersign.ChangeEvent{Type: "delay.started", Subject: t.ID,
				Payload: map[string]any{"transaction_id": t.ID, "rule_id": t.RuleID, "authorize_at": t.AuthorizeAt, "agent_id": t.AgentID, "wallet_id": t.WalletID}})
		}
		cs.add(countersign.Change{Owner: t.OwnerID, Actor: actor, Action: "transaction.prepare", Subject: t.ID, Details: details, Events: events})
		if auto {
			return s.statusMoved(ctx, cs, t, countersign.StatusPending, policyActor(t.RuleID), "transaction.authorize", policyAuthorization(t, "auto"))
		}
		return nil
	})
	if err != nil {
		return err
	}
	if denied != nil {
		return denied
	}
	return nil
}

// authorizeByPolicy authorizes the pending t on its rule's behalf (auto at
// prepare, delay once it has passed): the approval binds t's digest like
// a human's.
func (s *Service) authorizeByPolicy(ctx context.Context, cs *changeSet, t *countersign.Transaction, why string) error {
	if err := s.approveByPolicy(t); err != nil {
		return err
	}
	return s.setStatus(ctx, cs, t, countersign.StatusAuthorized, policyActor(t.RuleID), "transaction.authorize", policyAuthorization(t, why))
}

// approveByPolicy records t's rule as its approver, bound to its digest.
func (s *Service) approveByPolicy(t *countersign.Transaction) error {
	if !equalDigest(Digest(t), t.Digest) {
		return countersign.Errorf(countersign.Internal, "transaction %s does not match its digest", t.ID)
	}
	t.ApprovedDigest, t.DecidedBy, t.DecidedAt = t.Digest, policyActor(t.RuleID), s.clock.Now().UTC()
	return nil
}

// policyAuthorization is the audit details of a rule's authorization.
func policyAuthorization(t *countersign.Transaction, why string) map[string]string {
	return map[string]string{"digest": hex.EncodeToString(t.Digest), "rule_id": t.RuleID, "by": why}
}

func equalDigest(a, b []byte) bool { return len(a) > 0 && bytes.Equal(a, b) }

// budgetLow is the budget.low event when r takes its budget's remaining
// amount below BudgetLowPercent of its max.
func budgetLow(t *countersign.Transaction, r reservation) (countersign.ChangeEvent, bool) {
	v := r.view
	if v == nil || v.Max.Sign() == 0 {
		return countersign.ChangeEvent{}, false
	}
	after := new(big.Int).Sub(v.Remaining, r.amount)
	if after.Sign() < 0 {
		after.SetInt64(0)
	}
	below := func(x *big.Int) bool { // x < max × pct / 100
		return new(big.Int).Mul(x, big.NewInt(100)).Cmp(new(big.Int).Mul(v.Max, big.NewInt(BudgetLowPercent))) < 0
	}
	if below(v.Remaining) || !below(after) {
		return countersign.ChangeEvent{}, false
	}
	return countersign.ChangeEvent{Type: "budget.low", Subject: r.key.RuleID, Payload: map[string]any{
		"level": r.key.Level, "subject": r.key.Subject, "rule_id": r.key.RuleID, "asset": r.key.Asset, "scope": string(v.Scope),
		"max": v.Max.String(), "remaining": after.String(), "window": v.Window, "transaction_id": t.ID, "agent_id": t.AgentID, "wallet_id": t.WalletID,
		"threshold_percent": BudgetLowPercent}}, true
}

// settleBudget settles t's reservations as its status moves from → to
// (called by setStatus inside the same change): spent once signed;
// released when it ends without moving money — rejected, expired,
// cancelled, dropped before signing, failed before or at a broadcast the
// node refused. A transaction that reverted on chain stays spent: it was
// signed and broadcast, and counting it is the safe side.
func (s *Service) settleBudget(ctx context.Context, t *countersign.Transaction, from, to countersign.Status, action string) error {
	if t.RuleID == "" || t.AgentID == "" {
		return nil // no policy decided it: nothing was reserved
	}
	state := ""
	switch to {
	case countersign.StatusSubmitted, countersign.StatusSigned:
		state = countersign.ReservationSpent
	case countersign.StatusRejected, countersign.StatusExpired, countersign.StatusCancelled:
		state = countersign.ReservationReleased
	case countersign.StatusDropped, countersign.StatusFailed:
		if from == countersign.StatusAuthorized || action == "transaction.broadcast_failed" {
			state = countersign.ReservationReleased
		}
	}
	if state == "" {
		return nil
	}
	_, err := s.store.SettleReservations(ctx, t.ID, state, s.clock.Now().UTC())
	return err
}

// AuthorizeDelayed authorizes every pending request whose delay has
// passed, on its rule's behalf. A reject (or cancel, or expiry) before
// then wins: only a row still pending is authorized.
func (s *Service) AuthorizeDelayed(ctx context.Context) error {
	due, err := s.store.DueDelayed(ctx, s.clock.Now().UTC(), 200)
	if err != nil {
		return err
	}
	for _, t := range due {
		err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
			cur, err := s.store.Transaction(ctx, t.ID)
			if err != nil {
				return err
			}
			now := s.clock.Now()
			if cur.Status != countersign.StatusPending || cur.AuthorizeAt.IsZero() || now.Before(cur.AuthorizeAt) || cur.Expired(now) {
				return nil
			}
			if cur.ApprovalsNeeded > 1 {
				return nil // a quorum decision is the approvers', never the clock's
			}
			// a frozen wallet's pending requests wait: the delay authorizes
			// nothing until the freeze is lifted
			if err := s.frozen(ctx, cur.OwnerID, cur.WalletID); err != nil {
				if countersign.ErrorCode(err) == countersign.Frozen {
					return nil
				}
				return err
			}
			return s.authorizeByPolicy(ctx, cs, cur, "delay")
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ---- the API of policies

// policySubject checks that p owns the agent or wallet id and returns its
// owner and wallet.
func (s *Service) policySubject(ctx context.Context, p *Principal, level countersign.PolicyLevel, id string) (walletID string, err error) {
	switch level {
	case countersign.PolicyAgent:
		a, err := s.store.AgentByID(ctx, id)
		if err != nil || a.OwnerID != p.User.ID || (p.IsAgent() && p.Agent.ID != a.ID) {
			return "", countersign.Errorf(countersign.NotFound, "agent not found")
		}
		return a.WalletID, nil
	case countersign.PolicyWallet:
		w, err := s.store.WalletByID(ctx, id)
		if err != nil || w.OwnerID != p.User.ID || (p.IsAgent() && p.Agent.WalletID != w.ID) {
			return "", countersign.Errorf(countersign.NotFound, "wallet not found")
		}
		return w.ID, nil
	}
	return "", countersign.Errorf(countersign.BadRequest, "unknown policy level %q", level)
}

func viewOf(r *countersign.PolicyRecord, p *policy.Policy) *PolicyView {
	return &PolicyView{Level: r.Level, SubjectID: r.SubjectID, Document: p, Hash: r.Hash, UpdatedBy: r.UpdatedBy, UpdatedAt: r.UpdatedAt}
}

// Policy returns the stored policy of an agent or wallet p owns (an agent
// may read its own and its wallet's); nil when none is set.
func (s *Service) Policy(ctx context.Context, p *Principal, level countersign.PolicyLevel, id string) (*PolicyView, error) {
	if _, err := s.policySubject(ctx, p, level, id); err != nil {
		return nil, err
	}
	pol, r, err := s.loadPolicy(ctx, level, id)
	if err != nil || pol == nil {
		return nil, err
	}
	return viewOf(r, pol), nil
}

// SetPolicy replaces the policy of an agent or wallet p owns with doc,
// after checking doc (a BadRequest naming the field, nothing changed) and
// then p's TOTP code. p is a user with MFA on (http: UserMFA).
func (s *Service) SetPolicy(ctx context.Context, p *Principal, level countersign.PolicyLevel, id string, doc []byte, mfaCode string) (*PolicyView, error) {
	walletID, err := s.policySubject(ctx, p, level, id)
	if err != nil {
		return nil, err
	}
	pol, err := policy.Parse(doc)
	if err != nil {
		return nil, err
	}
	// A quorum nobody can reach is as invalid as a bad field: refused
	// before the code is spent, the old policy stays (policy_rest.go).
	if err := s.checkQuorumReachable(ctx, walletID, pol); err != nil {
		return nil, err
	}
	if err := s.VerifyMFA(ctx, p.User.ID, mfaCode); err != nil {
		return nil, err
	}
	old, _, err := s.loadPolicy(ctx, level, id)
	if err != nil {
		return nil, err
	}
	loosens, why := policy.Loosens(old, pol)
	// Quorum-gated loosening (approvers_policy.go): a change that loosens
	// on a wallet with a quorum does not apply here; it becomes a pending
	// change that applies once the quorum approves it. The answer is the
	// policy in force, with the pending change beside it.
	if loosens {
		if pc, pending, err := s.gateLoosening(ctx, p, level, id, walletID, pol, why); err != nil || pending {
			if err != nil {
				return nil, err
			}
			cur, err := s.Policy(ctx, p, level, id)
			if err != nil {
				return nil, err
			}
			if cur == nil {
				cur = &PolicyView{Level: level, SubjectID: id}
			}
			cur.Pending = pc
			return cur, nil
		}
	}
	return s.applyPolicy(ctx, level, id, p.User.ID, pol, p.Actor(), loosens)
}

// applyPolicy stores pol as the policy of (level, subjectID) owned by
// ownerID, with its audit entry (old and new hash) and policy.changed
// event, in one transaction. It is the only place a policy changes: the
// PUT routes call it directly, and a quorum-approved pending change calls
// it once approved.
func (s *Service) applyPolicy(ctx context.Context, level countersign.PolicyLevel, subjectID, ownerID string, pol *policy.Policy, actor string, loosens bool) (*PolicyView, error) {
	r := &countersign.PolicyRecord{Level: level, SubjectID: subjectID, OwnerID: ownerID, Document: string(pol.Marshal()), Hash: pol.Hash(),
		UpdatedBy: actor, UpdatedAt: s.clock.Now().UTC()}
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		oldHash := ""
		if prev, err := s.store.Policy(ctx, level, subjectID); err == nil {
			oldHash = prev.Hash
		} else if countersign.ErrorCode(err) != countersign.NotFound {
			return err
		}
		if err := s.store.PutPolicy(ctx, r); err != nil {
			return err
		}
		details := map[string]any{"level": string(level), "subject_id": subjectID, "old_hash": oldHash, "new_hash": r.Hash, "loosens": loosens}
		cs.add(countersign.Change{Owner: ownerID, Actor: actor, Action: "policy.change", Subject: subjectID, Details: details,
			Events: []countersign.ChangeEvent{{Type: "policy.changed", Subject: subjectID, Payload: details}}})
		return nil
	})
	if err != nil {
		return nil, err
	}
	parsedPolicies.Store(r.Hash, pol)
	return viewOf(r, pol), nil
}

// AgentPolicies returns the agent's own policy and its wallet's (nil where
// none is set). p is an agent (http: Agent).
func (s *Service) AgentPolicies(ctx context.Context, p *Principal) (agent, wallet *PolicyView, err error) {
	if !p.IsAgent() {
		return nil, nil, countersign.Errorf(countersign.Forbidden, "only an agent has a policy of its own")
	}
	if agent, err = s.Policy(ctx, p, countersign.PolicyAgent, p.Agent.ID); err != nil {
		return nil, nil, err
	}
	wallet, err = s.Policy(ctx, p, countersign.PolicyWallet, p.Agent.WalletID)
	return agent, wallet, err
}

func budgetState(level countersign.PolicyLevel, ruleID string, v *policy.BudgetView) *BudgetState {
	if v == nil {
		return nil
	}
	return &BudgetState{Level: level, RuleID: ruleID, Asset: v.Asset, Scope: string(v.Scope), Max: v.Max.String(), Spent: v.Spent.String(),
		Reserved: v.Reserved.String(), Remaining: v.Remaining.String(), Window: v.Window}
}

// Budgets returns every budget of the agent's and its wallet's policies
// as it stands now for the agent. p is an agent (http: Agent).
func (s *Service) Budgets(ctx context.Context, p *Principal) ([]BudgetState, error) {
	if !p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "only an agent has budgets")
	}
	out := []BudgetState{}
	now := s.clock.Now().UTC()
	for _, l := range []struct {
		level   countersign.PolicyLevel
		subject string
	}{{countersign.PolicyAgent, p.Agent.ID}, {countersign.PolicyWallet, p.Agent.WalletID}} {
		pol, _, err := s.loadPolicy(ctx, l.level, l.subject)
		if err != nil {
			return nil, err
		}
		if pol == nil {
			continue
		}
		for i := range pol.Rules {
			r := &pol.Rules[i]
			if r.Budget == nil {
				continue
			}
			asset := r.When.Asset
			if asset == "" {
				asset = policy.AssetNative
			}
			k := budgetKey(l.level, r.Budget.Scope, p.Agent.WalletID, p.Agent.ID, r.ID, asset)
			spent, reserved, err := s.store.BudgetUsed(ctx, k, now.Add(-r.Budget.Window))
			if err != nil {
				return nil, err
			}
			remaining := new(big.Int).Sub(r.Budget.Max, spent)
			remaining.Sub(remaining, reserved)
			if remaining.Sign() < 0 {
				remaining.SetInt64(0)
			}
			out = append(out, *budgetState(l.level, r.ID, &policy.BudgetView{Max: r.Budget.Max, Spent: spent, Reserved: reserved, Remaining: remaining,
				Window: r.Budget.WindowText(), Scope: r.Budget.Scope, Asset: asset}))
		}
	}
	return out, nil
}

// Simulate is the dry run: what Prepare would decide for req now, for the
// agent (p itself, or agentID of the owner p), changing nothing. It runs
// the same checks and the same decide as Prepare, without locks or
// writes.
func (s *Service) Simulate(ctx context.Context, p *Principal, agentID string, req *PrepareRequest) (*SimulateResult, error) {
	agent := p.Agent
	if !p.IsAgent() {
		a, err := s.store.AgentByID(ctx, agentID)
		if err != nil || a.OwnerID != p.User.ID {
			return nil, countersign.Errorf(countersign.NotFound, "agent not found")
		}
		agent = a
	}
	t, err := s.agentSpend(ctx, agent.WalletID, req) // what prepare would build, frozen wallets refused
	if err != nil {
		return nil, err
	}
	t.AgentID = agent.ID
	d := s.decide(ctx, t, false)
	res := &SimulateResult{Decision: string(d.outcome), RuleID: d.ruleID, Budget: budgetState(d.level, d.ruleID, d.budget), Warnings: PolicyWarnings(d.warnings)}
	if res.Budget != nil {
		res.Budget.Level, res.Budget.RuleID = "", "" // the answer's budget is the deciding rule's: {max, spent, reserved, remaining, window}
	}
	if res.Warnings == nil {
		res.Warnings = []Warning{}
	}
	return res, nil
}

// TxApproval is one approver's approval of a request: who and when (the
// approvals side fills TxView.Approvals).
type TxApproval struct {
	User string    `json:"user"`
	At   time.Time `json:"at"`
}
