package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// Credit top-ups. An agent (or the low-credit check on its behalf) asks a
// provider for credits; the provider answers with a charge (a Coinbase
// Commerce transfer intent); countersign pays it from the agent's wallet
// as an ordinary agent request — prepare, the wallet's policy (deny,
// human, quorum, delay, or auto within a budget), execute, tracked to
// confirmed — and follows it in a persisted state machine:
//
//	pending → charge_created → tx_broadcast → confirmed | failed
//
// The worker (RunTopups, every poll, on every replica) advances every open
// top-up under a lease (ClaimTopup), and every write is a compare-and-set
// on the status the worker read and its lease, so two replicas never both
// record a charge or pay one twice: a payment request is created in the
// same database transaction that links it to its top-up, and a charge id
// belongs to one top-up only. A restart resumes from the stored row: the
// charge is kept, so it is paid as it was made, never asked for again.

// TopupConfig configures credit top-ups.
type TopupConfig struct {
	Providers []countersign.TopupProvider // the configured providers, by Name
	// Contract is the only Transfers contract a charge may name (empty:
	// KnownTransfersContracts' entry for the chain; none: top-ups refused).
	Contract    string
	MaxCents    int64         // the largest top-up (default $500)
	Auto        []AutoTopup   // automatic top-ups
	CheckEvery  time.Duration // how often the credits are read for automatic top-ups (default 5 min)
	Lease       time.Duration // how long a replica holds a top-up while it works on it (default 2 min)
	MaxAttempts int           // transient provider failures before a top-up fails (default 10)
	Invalid     error         // a configuration error found while wiring: New refuses to start with it
}

// AutoTopup prepares a top-up of AmountCents for AgentID's wallet when
// Provider reports less than ThresholdCents of credits.
type AutoTopup struct {
	Provider       string
	AgentID        string
	ThresholdCents int64
	AmountCents    int64
}

func (c *TopupConfig) defaults() {
	if c.MaxCents <= 0 {
		c.MaxCents = 500_00
	}
	if c.CheckEvery <= 0 {
		c.CheckEvery = 5 * time.Minute
	}
	if c.Lease <= 0 {
		c.Lease = 2 * time.Minute
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 10
	}
}

// topupState is the service's top-up state.
type topupState struct {
	providers map[string]countersign.TopupProvider
	contract  common.Address // zero: no contract known, top-ups fail closed
	holder    string         // this replica's name on leases
	lastCheck atomic.Int64   // unix ns of the last credits check
}

// TopupEventTypes are the outbox events of top-ups, one per status.
var TopupEventTypes = []string{"topup.pending", "topup.charge_created", "topup.tx_broadcast", "topup.confirmed", "topup.failed"}

// initTopups is called once by New.
func (s *Service) initTopups(ctx context.Context) error {
	c := &s.cfg.Topups
	c.defaults()
	if c.Invalid != nil {
		return fmt.Errorf("top-ups: %w", c.Invalid)
	}
	s.topups.providers = map[string]countersign.TopupProvider{}
	for _, p := range c.Providers {
		if p == nil {
			continue
		}
		if _, dup := s.topups.providers[p.Name()]; dup {
			return fmt.Errorf("top-up provider %q is configured twice", p.Name())
		}
		s.topups.providers[p.Name()] = p
	}
	contract := c.Contract
	if contract == "" {
		contract = KnownTransfersContracts[s.chainID.Int64()]
	}
	if contract != "" {
		a, err := ParseAddress("TOPUP_TRANSFERS_CONTRACT", contract)
		if err != nil {
			return err
		}
		s.topups.contract = a
	}
	for _, a := range c.Auto {
		if _, ok := s.topups.providers[a.Provider]; !ok {
			return fmt.Errorf("automatic top-up: provider %q is not configured", a.Provider)
		}
		if a.AgentID == "" || a.AmountCents <= 0 || a.ThresholdCents <= 0 {
			return errors.New("automatic top-up: an agent, a threshold and an amount above zero are required")
		}
		if a.AmountCents > c.MaxCents {
			return fmt.Errorf("automatic top-up: TOPUP_AMOUNT_USD %s is above TOPUP_MAX_USD %s", countersign.FormatUSD(a.AmountCents), countersign.FormatUSD(c.MaxCents))
		}
	}
	s.topups.holder = "topups-" + uuid.NewString()
	return nil
}

// MaxOpenTopups is how many top-ups an agent may have open at once.
const MaxOpenTopups = 5

// TopupRequest is an agent's request for credits.
type TopupRequest struct {
	Provider  string `json:"provider"`
	AmountUSD string `json:"amount_usd"` // decimal dollars, e.g. "10" or "12.50"
}

// TopupView is the public shape of a top-up.
type TopupView struct {
	ID              string     `json:"id"`
	Provider        string     `json:"provider"`
	AmountUSD       string     `json:"amount_usd"`
	Automatic       bool       `json:"automatic"`
	Status          string     `json:"status"`
	AgentID         string     `json:"agent_id"`
	WalletID        string     `json:"wallet_id"`
	ChargeID        *string    `json:"charge_id"`
	ChargeExpiresAt *time.Time `json:"charge_expires_at"`
	Contract        *string    `json:"contract_address"`        // the Transfers contract paid
	PayAmount       *string    `json:"pay_amount"`              // base units of pay_asset: recipient amount + fee
	PayAsset        *string    `json:"pay_asset"`               // native, or the token's address
	ApprovalTxID    *string    `json:"approval_transaction_id"` // the exact-amount ERC-20 approve request (token charges)
	TransactionID   *string    `json:"transaction_id"`          // the payment request: its policy decision and approvals are there
	TxHash          *string    `json:"tx_hash"`
	Error           *string    `json:"error"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
}

// TopupViewOf renders t for clients.
func TopupViewOf(t *countersign.Topup) TopupView {
	opt := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	v := TopupView{ID: t.ID, Provider: t.Provider, AmountUSD: countersign.FormatUSD(t.AmountCents), Automatic: t.Automatic, Status: string(t.Status),
		AgentID: t.AgentID, WalletID: t.WalletID, ChargeID: opt(t.ChargeID), ApprovalTxID: opt(t.ApprovalTxID), TransactionID: opt(t.TransactionID),
		TxHash: opt(t.TxHash), Error: opt(t.Error), CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
	if !t.ChargeExpiresAt.IsZero() {
		at := t.ChargeExpiresAt
		v.ChargeExpiresAt = &at
	}
	if ch, err := chargeOfTopup(t); err == nil && ch != nil {
		total, asset := intentTotal(ch.Intent)
		v.Contract, v.PayAsset = opt(ch.Contract), opt(asset)
		if total != nil {
			v.PayAmount = opt(total.String())
		}
	}
	return v
}

// RequestTopup records an agent's request for credits and starts it: the
// charge is asked for and its payment prepared (which the policy decides)
// before it returns, when the provider answers in time; the worker goes on
// from wherever it stopped. p is an agent (http: Agent).
func (s *Service) RequestTopup(ctx context.Context, p *Principal, req TopupRequest) (*countersign.Topup, error) {
	if !p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "top-ups are requested by agents")
	}
	if _, ok := s.topups.providers[req.Provider]; !ok {
		return nil, s.unknownProvider(req.Provider)
	}
	cents, err := countersign.ParseUSD("amount_usd", req.AmountUSD)
	if err != nil {
		return nil, err
	}
	if cents > s.cfg.Topups.MaxCents {
		return nil, countersign.Errorf(countersign.BadRequest, "amount_usd %s is above the largest top-up this server allows (TOPUP_MAX_USD %s)",
			countersign.FormatUSD(cents), countersign.FormatUSD(s.cfg.Topups.MaxCents))
	}
	w, err := s.store.WalletByID(ctx, p.Agent.WalletID)
	if err != nil {
		return nil, err
	}
	if err := s.frozen(ctx, w.OwnerID, w.ID); err != nil {
		return nil, err
	}
	// Each open top-up holds a charge at the provider: an agent may not
	// pile them up (its payments are bounded by the policy anyway).
	n := 0
	for _, st := range []countersign.TopupStatus{countersign.TopupPending, countersign.TopupChargeCreated, countersign.TopupTxBroadcast} {
		open, err := s.store.Topups(ctx, countersign.TopupFilter{OwnerID: p.User.ID, AgentID: p.Agent.ID, Status: st, Limit: MaxOpenTopups})
		if err != nil {
			return nil, err
		}
		n += len(open)
	}
	if n >= MaxOpenTopups {
		return nil, countersign.Errorf(countersign.Conflict, "this agent has %d top-ups that have not ended: wait for them (GET /api/topups) before asking for more", n)
	}
	// The top-up is created leased to this request, so the worker does
	// not take it between its creation and the request's first steps: the
	// answer shows the charge and the payment request when the provider
	// answered in time.
	holder := s.topups.holder + "/" + uuid.NewString()
	// Not cancelled with the request: a charge the provider made while
	// the client went away must still be recorded, or the worker would
	// ask for a second one. The provider client's own timeout bounds it.
	// The top-up is created on it too: a commit that lands as the client
	// leaves must not be reported as failed, leaving the top-up leased to
	// a request that gave up on it.
	actx, cancel := detach(ctx, providerWait)
	defer cancel()
	t, err := s.createTopup(actx, p.Agent, req.Provider, cents, false, p.Actor(), holder)
	if err != nil {
		return nil, err
	}
	if err := s.advanceTopupAs(actx, t.ID, holder); err != nil {
		s.log.Warn("top-up", "topup_id", t.ID, "err", err) // the worker tries again; the row says where it is
	}
	return s.store.Topup(ctx, t.ID)
}

func (s *Service) unknownProvider(name string) error {
	var names []string
	for n := range s.topups.providers {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(names) == 0 {
		return countersign.Errorf(countersign.BadRequest, "no top-up provider is configured on this server (set OPENROUTER_API_KEY for openrouter)")
	}
	return countersign.Errorf(countersign.BadRequest, "unknown top-up provider %q: this server has %s", truncate(name, 32), strings.Join(names, ", "))
}

// createTopup stores a pending top-up with its audit entry and event.
// holder, when set, holds its lease from the start.
func (s *Service) createTopup(ctx context.Context, a *countersign.Agent, provider string, cents int64, automatic bool, actor, holder string) (*countersign.Topup, error) {
	now := s.clock.Now().UTC()
	t := &countersign.Topup{ID: uuid.NewString(), OwnerID: a.OwnerID, AgentID: a.ID, WalletID: a.WalletID, Provider: provider,
		AmountCents: cents, Automatic: automatic, Status: countersign.TopupPending, CreatedAt: now, UpdatedAt: now}
	if holder != "" {
		t.ClaimedBy, t.ClaimedUntil = holder, now.Add(s.cfg.Topups.Lease)
	}
	err := s.Record(ctx, topupChange(t, actor, "topup.request", map[string]any{"provider": provider, "amount_usd": countersign.FormatUSD(cents), "automatic": automatic}),
		func(ctx context.Context) error { return s.store.CreateTopup(ctx, t) })
	return t, err
}

// topupChange is the audit entry and the topup.<status> event of a change.
func topupChange(t *countersign.Topup, actor, action string, details any) countersign.Change {
	return countersign.Change{Owner: t.OwnerID, Actor: actor, Action: action, Subject: t.ID, Details: details,
		Events: []countersign.ChangeEvent{{Type: "topup." + string(t.Status), Subject: t.ID, Payload: TopupViewOf(t)}}}
}

// Topups lists the top-ups p may see: an agent its own, a user every one of
// their agents'. Newest first.
func (s *Service) Topups(ctx context.Context, p *Principal, status string) ([]*countersign.Topup, error) {
	f := countersign.TopupFilter{OwnerID: p.User.ID, Status: countersign.TopupStatus(status), Limit: 1000}
	if p.IsAgent() {
		f.AgentID = p.Agent.ID
	}
	if status != "" && !f.Status.Valid() {
		return nil, countersign.Errorf(countersign.BadRequest, "status must be pending, charge_created, tx_broadcast, confirmed or failed")
	}
	return s.store.Topups(ctx, f)
}

// Topup returns one top-up p may see.
func (s *Service) Topup(ctx context.Context, p *Principal, id string) (*countersign.Topup, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "the top-up id must be a UUID")
	}
	t, err := s.store.Topup(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.OwnerID != p.User.ID || (p.IsAgent() && t.AgentID != p.Agent.ID) {
		return nil, countersign.Errorf(countersign.NotFound, "top-up not found")
	}
	return t, nil
}

// RunTopups is one pass of the top-up worker (Run calls it every poll): the
// automatic check when it is due, then every open top-up advanced as far as
// it can go now.
func (s *Service) RunTopups(ctx context.Context) error {
	if len(s.topups.providers) == 0 {
		return nil
	}
	var errs []error
	if err := s.checkCredits(ctx); err != nil {
		errs = append(errs, err)
	}
	open, err := s.store.OpenTopups(ctx, 100)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, t := range open {
		if ctx.Err() != nil {
			break
		}
		if err := s.advanceTopup(ctx, t.ID); err != nil {
			errs = append(errs, fmt.Errorf("top-up %s: %w", t.ID, err))
		}
	}
	return errors.Join(errs...)
}

// checkCredits reads each automatic top-up's provider credits, at most
// once per CheckEvery on this replica, and prepares a top-up when they are
// below the threshold. The store refuses a second open automatic top-up
// for a wallet and provider, so replicas checking at once make one.
func (s *Service) checkCredits(ctx context.Context) error {
	if len(s.cfg.Topups.Auto) == 0 {
		return nil
	}
	now := s.clock.Now()
	last := s.topups.lastCheck.Load()
	if last != 0 && now.Sub(time.Unix(0, last)) < s.cfg.Topups.CheckEvery {
		return nil
	}
	if !s.topups.lastCheck.CompareAndSwap(last, now.UnixNano()) {
		return nil // a concurrent pass took it
	}
	var errs []error
	for _, a := range s.cfg.Topups.Auto {
		credits, err := s.topups.providers[a.Provider].Credits(ctx)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s credits: %w", a.Provider, err))
			continue
		}
		if credits >= a.ThresholdCents {
			continue
		}
		agent, err := s.store.AgentByID(ctx, a.AgentID)
		if err != nil {
			errs = append(errs, fmt.Errorf("automatic top-up: agent %s (TOPUP_AGENT_ID): %w", a.AgentID, err))
			continue
		}
		if agent.Revoked() {
			errs = append(errs, fmt.Errorf("automatic top-up: agent %s (TOPUP_AGENT_ID) is revoked", a.AgentID))
			continue
		}
		_, err = s.createTopup(ctx, agent, a.Provider, a.AmountCents, true, "system:topup", "")
		switch {
		case countersign.ErrorCode(err) == countersign.Conflict:
			// one is open already: it is the one that tops up
		case err != nil:
			errs = append(errs, err)
		default:
			s.log.Info("automatic top-up prepared", "provider", a.Provider, "agent_id", a.AgentID,
				"credits_usd", countersign.FormatUSD(credits), "threshold_usd", countersign.FormatUSD(a.ThresholdCents), "amount_usd", countersign.FormatUSD(a.AmountCents))
		}
	}
	return errors.Join(errs...)
}

// providerWait bounds the work around a provider's charge that is not
// cancelled with its caller (the provider client's own timeout is shorter).
const providerWait = time.Minute

// advanceTopup takes id's lease and moves it as far as it can go now.
func (s *Service) advanceTopup(ctx context.Context, id string) error {
	// A holder per pass, not per replica: the request that starts a
	// top-up and this replica's worker must not both hold it either.
	return s.advanceTopupAs(ctx, id, s.topups.holder+"/"+uuid.NewString())
}

// advanceTopupAs is advanceTopup as holder (which may hold the lease
// already: the request that created the top-up).
func (s *Service) advanceTopupAs(ctx context.Context, id, holder string) error {
	ctx = context.WithValue(ctx, topupHolderKey{}, holder)
	cctx, cancel := claimContext(ctx)
	ok, err := s.store.ClaimTopup(cctx, id, holder, s.clock.Now().UTC(), s.cfg.Topups.Lease)
	cancel()
	if err != nil {
		// The claim may have been taken although it reports an error: give
		// back what this holder may hold (nothing happens when it holds
		// nothing), or the top-up waits a lease for no one.
		s.releaseTopup(ctx, id, holder)
		return err
	}
	if !ok {
		return nil // another replica is on it, or it ended
	}
	defer s.releaseTopup(ctx, id, holder)
	for range 8 { // each step moves one state; the bound only guards against a loop
		t, err := s.store.Topup(ctx, id)
		if err != nil {
			return err
		}
		if !t.Status.Open() {
			return nil
		}
		moved, err := s.stepTopup(ctx, t)
		if err != nil || !moved {
			return err
		}
	}
	return nil
}

// releaseTopup gives back holder's lease on id, if it holds one.
func (s *Service) releaseTopup(ctx context.Context, id, holder string) {
	rctx, cancel := claimContext(ctx)
	defer cancel()
	_ = s.store.ReleaseTopup(rctx, id, holder)
}

// stepTopup makes one move of t; it reports whether t changed.
func (s *Service) stepTopup(ctx context.Context, t *countersign.Topup) (bool, error) {
	switch t.Status {
	case countersign.TopupPending:
		if t.Attempts > 0 && s.clock.Now().Before(t.UpdatedAt.Add(topupBackoff(t.Attempts))) {
			return false, nil // a transient failure: not again yet
		}
		return s.topupCharge(ctx, t)
	case countersign.TopupChargeCreated, countersign.TopupTxBroadcast:
		return s.topupPay(ctx, t)
	}
	return false, nil
}

// topupBackoff is the wait after the n-th transient provider failure: 5 s
// doubling to at most 10 min, so MaxAttempts (10) spans about half an
// hour of a provider's outage rather than ten polls.
func topupBackoff(n int) time.Duration {
	d := 5 * time.Second << min(n-1, 7)
	return min(d, 10*time.Minute)
}

type topupHolderKey struct{}

// topupHolder is the lease holder of the pass ctx belongs to.
func topupHolder(ctx context.Context) string {
	h, _ := ctx.Value(topupHolderKey{}).(string)
	return h
}

// saveTopup writes t, which was in status from, with its audit entry and
// event, in one transaction (also the caller's, when nested).
func (s *Service) saveTopup(ctx context.Context, t *countersign.Topup, from countersign.TopupStatus, action string, details any) error {
	t.UpdatedAt = s.clock.Now().UTC()
	return s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		if err := s.store.UpdateTopup(ctx, t, from, topupHolder(ctx)); err != nil {
			return err
		}
		if action != "" {
			cs.add(topupChange(t, "system:topup", action, details))
		}
		return nil
	})
}

// failTopup ends t as failed with why, for the operator.
func (s *Service) failTopup(ctx context.Context, t *countersign.Topup, why string) (bool, error) {
	from := t.Status
	t.Status, t.Error = countersign.TopupFailed, why
	if err := s.saveTopup(ctx, t, from, "topup.fail", map[string]string{"error": why}); err != nil {
		return false, err
	}
	s.log.Warn("top-up failed", "topup_id", t.ID, "provider", t.Provider, "reason", why)
	return true, nil
}

// topupCharge asks the provider for t's charge and checks it before
// keeping it. A permanent refusal (a 410) fails t at once, with no
// retries; a transient one is tried again on later passes, MaxAttempts
// times in all.
func (s *Service) topupCharge(ctx context.Context, t *countersign.Topup) (bool, error) {
	prov, ok := s.topups.providers[t.Provider]
	if !ok {
		return s.failTopup(ctx, t, fmt.Sprintf("the top-up provider %q is no longer configured on this server", t.Provider))
	}
	w, err := s.store.WalletByID(ctx, t.WalletID)
	if err != nil {
		return false, err
	}
	if s.topups.contract == (common.Address{}) {
		return s.failTopup(ctx, t, fmt.Sprintf("no Commerce Transfers contract is known for chain %s: set TOPUP_TRANSFERS_CONTRACT to the contract charges must name", s.chainID))
	}
	// From the request to the provider on, not cancelled with the pass: a
	// charge the provider made while the server was stopping must still be
	// recorded, or the next pass would ask for a second one. The provider
	// client's own timeout bounds the wait.
	ctx, cancel := detach(ctx, providerWait)
	defer cancel()
	ch, err := prov.CreateCharge(ctx, countersign.TopupChargeRequest{AmountCents: t.AmountCents, Sender: w.Address, ChainID: s.chainID.Int64()})
	if err != nil {
		var pe *countersign.ProviderError
		if errors.As(err, &pe) && pe.Permanent {
			return s.failTopup(ctx, t, pe.Detail)
		}
		detail := "the provider could not be reached"
		if pe != nil {
			detail = pe.Detail
		}
		from := t.Status
		t.Attempts++
		if t.Attempts >= s.cfg.Topups.MaxAttempts {
			return s.failTopup(ctx, t, fmt.Sprintf("gave up after %d attempts: %s", t.Attempts, detail))
		}
		t.Error = detail
		if serr := s.saveTopup(ctx, t, from, "", nil); serr != nil {
			return false, serr
		}
		return false, fmt.Errorf("create charge (attempt %d of %d): %w", t.Attempts, s.cfg.Topups.MaxAttempts, err)
	}
	if err := s.checkCharge(ch, w); err != nil {
		return s.failTopup(ctx, t, "the provider's charge was not paid: "+err.Error())
	}
	b, _ := json.Marshal(ch)
	from := t.Status
	t.Status, t.ChargeID, t.Charge, t.Error = countersign.TopupChargeCreated, ch.ID, string(b), ""
	t.ChargeExpiresAt = ch.ExpiresAt
	if dl, _ := strconv.ParseInt(ch.Intent.Deadline, 10, 64); t.ChargeExpiresAt.IsZero() || time.Unix(dl, 0).Before(t.ChargeExpiresAt) {
		t.ChargeExpiresAt = time.Unix(dl, 0).UTC()
	}
	total, asset := intentTotal(ch.Intent)
	err = s.saveTopup(ctx, t, from, "topup.charge", map[string]string{"charge_id": ch.ID, "contract": ch.Contract, "amount": total.String(), "asset": asset})
	if countersign.ErrorCode(err) == countersign.Conflict {
		if cur, gerr := s.store.Topup(ctx, t.ID); gerr == nil && cur.Status == from && cur.ClaimedBy == topupHolder(ctx) {
			// Still ours and still pending: the charge id is another
			// top-up's. One charge is paid once; this one is not paid.
			*t = *cur
			return s.failTopup(ctx, t, fmt.Sprintf("the provider answered with charge %s, which another top-up already holds: it is not paid twice", truncate(ch.ID, 64)))
		}
	}
	return err == nil, err
}

// checkCharge verifies what countersign can about a charge before any
// payment is prepared from it: it is for this chain and this wallet, it
// names the configured Transfers contract, its refunds come back to the
// wallet, and every field the contract call needs is well formed. What it
// costs is then the policy's to decide, on the decoded call.
func (s *Service) checkCharge(ch *countersign.TopupCharge, w *countersign.Wallet) error {
	if ch.ChainID != s.chainID.Int64() {
		return fmt.Errorf("it is for chain %d, and this server is on chain %s", ch.ChainID, s.chainID)
	}
	if !strings.EqualFold(ch.Sender, w.Address) {
		return fmt.Errorf("it is for sender %s, not this wallet (%s)", truncate(ch.Sender, 64), w.Address)
	}
	contract, err := ParseAddress("contract_address", ch.Contract)
	if err != nil {
		return err
	}
	if contract != s.topups.contract {
		return fmt.Errorf("it names the contract %s, not the Transfers contract %s (TOPUP_TRANSFERS_CONTRACT)", contract.Hex(), s.topups.contract.Hex())
	}
	in := ch.Intent
	for _, f := range []struct{ name, v string }{{"recipient", in.Recipient}, {"recipient_currency", in.RecipientCurrency}, {"refund_destination", in.RefundDestination}, {"operator", in.Operator}} {
		if _, err := ParseAddress(f.name, f.v); err != nil {
			return err
		}
	}
	if common.HexToAddress(in.Recipient) == (common.Address{}) || common.HexToAddress(in.Operator) == (common.Address{}) {
		return errors.New("its recipient or operator is the zero address")
	}
	if refund := common.HexToAddress(in.RefundDestination); refund != (common.Address{}) && refund != common.HexToAddress(w.Address) {
		return fmt.Errorf("its refunds would go to %s, not back to this wallet", refund.Hex())
	}
	amount, ok1 := new(big.Int).SetString(in.RecipientAmount, 10)
	fee, ok2 := new(big.Int).SetString(in.FeeAmount, 10)
	deadline, ok3 := new(big.Int).SetString(in.Deadline, 10)
	if !ok1 || !ok2 || !ok3 || amount.Sign() <= 0 || fee.Sign() < 0 || amount.BitLen() > 128 || fee.BitLen() > 128 || !deadline.IsInt64() {
		return errors.New("its amounts or deadline are not positive integers in range")
	}
	if time.Unix(deadline.Int64(), 0).Before(s.clock.Now()) {
		return errors.New("its deadline has passed")
	}
	if id, err := hexutil.Decode(in.ID); err != nil || len(id) != 16 {
		return errors.New("its id is not 16 bytes of 0x hex")
	}
	if sig, err := hexutil.Decode(in.Signature); err != nil || len(sig) != 65 {
		return errors.New("its operator signature is not 65 bytes of 0x hex")
	}
	if in.Prefix != "" && in.Prefix != "0x" {
		if p, err := hexutil.Decode(in.Prefix); err != nil || len(p) > 64 {
			return errors.New("its signature prefix is not 0x hex of at most 64 bytes")
		}
	}
	return nil
}

// chargeOfTopup is t's stored charge (nil before charge_created).
func chargeOfTopup(t *countersign.Topup) (*countersign.TopupCharge, error) {
	if t.Charge == "" {
		return nil, nil
	}
	var ch countersign.TopupCharge
	if err := json.Unmarshal([]byte(t.Charge), &ch); err != nil {
		return nil, countersign.Wrap(countersign.Internal, err, "the stored charge cannot be read")
	}
	return &ch, nil
}

// intentTotal is what paying in costs: recipient amount plus fee, and the
// asset ("native" or the token's lower-case address).
func intentTotal(in countersign.TransferIntent) (*big.Int, string) {
	amount, _ := new(big.Int).SetString(in.RecipientAmount, 10)
	fee, _ := new(big.Int).SetString(in.FeeAmount, 10)
	if amount == nil || fee == nil {
		return nil, ""
	}
	asset := "native"
	if cur := common.HexToAddress(in.RecipientCurrency); cur != (common.Address{}) {
		asset = strings.ToLower(cur.Hex())
	}
	return amount.Add(amount, fee), asset
}

// topupPay moves a charged top-up on: the ERC-20 approval first for a
// token charge, then the payment — each prepared once (the policy decides
// it), executed once authorized, followed to its end.
func (s *Service) topupPay(ctx context.Context, t *countersign.Topup) (bool, error) {
	ch, err := chargeOfTopup(t)
	if err != nil || ch == nil {
		return s.failTopup(ctx, t, "the top-up's stored charge cannot be read")
	}
	agent, err := s.store.AgentByID(ctx, t.AgentID)
	if err != nil {
		return false, err
	}
	actor := "agent:" + agent.ID
	total, asset := intentTotal(ch.Intent)
	token := asset != "native"

	if token {
		if t.ApprovalTxID == "" {
			if agent.Revoked() {
				return s.failTopup(ctx, t, "the agent was revoked before the payment was prepared")
			}
			data, err := erc20ABI.Pack("approve", common.HexToAddress(ch.Contract), total)
			if err != nil {
				return false, err
			}
			req := &PrepareRequest{Type: string(countersign.TxContractCall), ContractAddress: common.HexToAddress(asset).Hex(), Data: hexutil.Encode(data),
				Memo: fmt.Sprintf("%s top-up %s: approve exactly %s base units of the charge's token to the Transfers contract %s (then the payment)",
					t.Provider, countersign.FormatUSD(t.AmountCents), total, ch.Contract)}
			return s.prepareTopupTx(ctx, t, agent, req, func(id string) { t.ApprovalTxID = id }, "approval")
		}
		done, moved, err := s.followTopupTx(ctx, t, actor, t.ApprovalTxID, "approval")
		if err != nil || !done {
			return moved, err
		}
	}

	if t.TransactionID == "" {
		if agent.Revoked() {
			return s.failTopup(ctx, t, "the agent was revoked before the payment was prepared")
		}
		if !t.ChargeExpiresAt.IsZero() && !s.clock.Now().Before(t.ChargeExpiresAt) {
			return s.failTopup(ctx, t, "the charge expired before its payment was prepared")
		}
		method, value := "transferNative", total.String()
		if token {
			method, value = "transferTokenPreApproved", ""
		}
		req := &PrepareRequest{Type: string(countersign.TxContractCall), ContractAddress: common.HexToAddress(ch.Contract).Hex(),
			ContractABI: json.RawMessage(TransfersABIJSON), FunctionName: method, FunctionArgs: transferIntentArgs(ch.Intent), Value: value,
			Memo: fmt.Sprintf("%s credit top-up of $%s (charge %s)", t.Provider, countersign.FormatUSD(t.AmountCents), truncate(ch.ID, 64))}
		return s.prepareTopupTx(ctx, t, agent, req, func(id string) { t.TransactionID = id }, "payment")
	}
	done, moved, err := s.followTopupTx(ctx, t, actor, t.TransactionID, "payment")
	if err != nil || !done {
		return moved, err
	}
	from := t.Status
	t.Status, t.Error = countersign.TopupConfirmed, ""
	return true, s.saveTopup(ctx, t, from, "topup.confirm", map[string]string{"transaction_id": t.TransactionID, "tx_hash": t.TxHash})
}

// prepareTopupTx prepares one request of t on its agent's behalf and links
// it to t in the same database transaction, so a top-up's request exists
// exactly when its row names it. A policy that denies the request fails
// the top-up in that transaction too.
func (s *Service) prepareTopupTx(ctx context.Context, t *countersign.Topup, agent *countersign.Agent, req *PrepareRequest, link func(id string), what string) (bool, error) {
	tx, err := s.agentSpend(ctx, agent.WalletID, req) // reads the chain: outside the database transaction
	if err != nil {
		if code := countersign.ErrorCode(err); code == countersign.BadRequest || code == countersign.Frozen {
			return s.failTopup(ctx, t, fmt.Sprintf("its %s could not be prepared: %s", what, publicDetail(err)))
		}
		return false, err
	}
	if !tx.Type.IsMessage() && tx.GasLimit == 0 {
		// The simulation fails now (most often: the wallet cannot cover
		// the charge yet). Such a request could never execute, so none is
		// made: the next pass tries again, until the charge expires.
		why := fmt.Sprintf("its %s does not simulate on chain now (is the wallet funded?); tried again until the charge expires", what)
		if t.Error != why {
			from := t.Status
			t.Error = why
			if err := s.saveTopup(ctx, t, from, "", nil); err != nil {
				return false, err
			}
		}
		return false, nil
	}
	now := s.clock.Now().UTC()
	tx.AgentID, tx.Status, tx.RequestHash = agent.ID, countersign.StatusPending, requestHash(req)
	tx.CreatedAt, tx.UpdatedAt, tx.ExpiresAt = now, now, now.Add(s.cfg.PendingTTL)
	from := t.Status
	failed := false
	err = s.inTx(ctx, func(ctx context.Context) error {
		perr := s.preparePolicy(ctx, tx, "agent:"+agent.ID)
		if countersign.ErrorCode(perr) == countersign.PolicyDenied {
			failed = true
			t.Status, t.Error = countersign.TopupFailed, fmt.Sprintf("the policy denied its %s: %s", what, publicDetail(perr))
			return s.saveTopup(ctx, t, from, "topup.fail", map[string]string{"error": t.Error})
		}
		if perr != nil {
			return perr
		}
		link(tx.ID)
		t.Error = ""
		return s.saveTopup(ctx, t, from, "topup."+what, map[string]string{"transaction_id": tx.ID, "decision": tx.Decision, "rule_id": tx.RuleID})
	})
	if err != nil {
		return false, err
	}
	if failed {
		s.log.Warn("top-up failed", "topup_id", t.ID, "reason", t.Error)
	}
	return true, nil
}

// followTopupTx moves t's request id on: executes it once the policy or
// its approvers authorized it, records its broadcast, and reports done
// once it is confirmed. An ended request (rejected, expired, cancelled,
// failed, dropped) fails the top-up.
func (s *Service) followTopupTx(ctx context.Context, t *countersign.Topup, actor, id, what string) (done, moved bool, err error) {
	tx, err := s.store.Transaction(ctx, id)
	if err != nil {
		return false, false, err
	}
	if (tx.Status == countersign.StatusPending || tx.Status == countersign.StatusAuthorized) && !t.ChargeExpiresAt.IsZero() && !s.clock.Now().Before(t.ChargeExpiresAt) {
		// The charge's deadline passed before its request was sent: the
		// contract would refuse it (ExpiredIntent) and the fee would be
		// lost. The request is withdrawn (its budget released) and the
		// top-up fails, in one transaction.
		why := fmt.Sprintf("the charge expired (%s) before its %s was sent; the request %s was cancelled", t.ChargeExpiresAt.Format(time.RFC3339), what, tx.ID)
		from := t.Status
		t.Status, t.Error = countersign.TopupFailed, why
		err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
			cur, err := s.store.Transaction(ctx, tx.ID)
			if err != nil {
				return err
			}
			if cur.Status == countersign.StatusPending || cur.Status == countersign.StatusAuthorized {
				if err := s.setStatus(ctx, cs, cur, countersign.StatusCancelled, "system:topup", "transaction.cancel", map[string]string{"reason": "the top-up's charge expired"}); err != nil {
					return err
				}
			}
			return s.saveTopup(ctx, t, from, "topup.fail", map[string]string{"error": why})
		})
		return false, err == nil, err
	}
	if tx.Status == countersign.StatusAuthorized {
		if tx, err = s.execute(ctx, actor, tx); err != nil {
			// The request stays authorized: the next pass tries again
			// until it executes or its window (AUTHORIZED_TTL) passes.
			if t.Error != publicDetail(err) {
				from := t.Status
				t.Error = publicDetail(err)
				if serr := s.saveTopup(ctx, t, from, "", nil); serr != nil {
					return false, false, serr
				}
			}
			return false, false, fmt.Errorf("execute the %s: %w", what, err)
		}
	}
	switch tx.Status {
	case countersign.StatusPending, countersign.StatusAuthorized:
		return false, false, nil // waiting for a human, a quorum or a delay
	case countersign.StatusSubmitted, countersign.StatusConfirmed:
		if what == "payment" && t.Status == countersign.TopupChargeCreated {
			from := t.Status
			t.Status, t.TxHash, t.Error = countersign.TopupTxBroadcast, tx.TxHash, ""
			if err := s.saveTopup(ctx, t, from, "topup.broadcast", map[string]string{"transaction_id": tx.ID, "tx_hash": tx.TxHash}); err != nil {
				return false, false, err
			}
			moved = true
		}
		return tx.Status == countersign.StatusConfirmed, moved, nil
	default:
		why := fmt.Sprintf("its %s request %s is %s", what, tx.ID, tx.Status)
		if tx.Error != "" {
			why += ": " + tx.Error
		} else if tx.Reason != "" {
			why += ": " + tx.Reason
		}
		moved, err := s.failTopup(ctx, t, why)
		return false, moved, err
	}
}

// publicDetail is the client-safe text of err.
func publicDetail(err error) string {
	var ce *countersign.Error
	if errors.As(err, &ce) {
		return ce.Detail
	}
	return "internal error"
}

// topupReceipt sets a confirmed top-up request's receipt: reason
// <provider>_topup for the payment (openrouter_topup), with the charge's
// token and amount for a token charge (the contract call itself moves no
// coin). The approval keeps contract_call: it moves nothing.
// settleCharge (charges.go) calls it in the transaction that confirms.
func (s *Service) topupReceipt(ctx context.Context, t *countersign.Transaction, r *countersign.ChargeReceipt) error {
	if t.Type != countersign.TxContractCall || t.AgentID == "" {
		return nil
	}
	tp, err := s.store.TopupByTransaction(ctx, t.ID)
	if countersign.ErrorCode(err) == countersign.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	if tp.TransactionID != t.ID {
		return nil
	}
	r.Reason = tp.Provider + "_topup"
	if ch, _ := chargeOfTopup(tp); ch != nil {
		if total, asset := intentTotal(ch.Intent); total != nil && asset != "native" {
			r.Asset, r.Amount = asset, total.String()
		}
	}
	r.USDEstimate = countersign.FormatUSD(tp.AmountCents)
	return nil
}
