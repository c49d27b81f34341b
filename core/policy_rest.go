package core

import (
	"context"
	"math/big"
	"slices"
	"sort"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/policy"
)

// The policy issue's loose ends: quorums checked against the approvers
// who can reach them, the owner's management of invitations and webhooks,
// the wallets a user approves, and the owner's budget view of a wallet.

// approverCount is how many people can approve walletID's requests: its
// owner and every approver who accepted.
func (s *Service) approverCount(ctx context.Context, walletID string) (int, error) {
	list, err := s.store.Approvers(ctx, walletID)
	if err != nil {
		return 0, err
	}
	return 1 + len(list), nil
}

// checkQuorumReachable refuses a policy with a quorum more than the
// wallet's approvers (the owner included) could ever give: its requests
// would wait until they expire and nobody would learn why. It names the
// first such rule, like any other invalid field (rules[1].quorum).
func (s *Service) checkQuorumReachable(ctx context.Context, walletID string, pol *policy.Policy) error {
	if pol.MaxQuorum() <= 1 {
		return nil
	}
	n, err := s.approverCount(ctx, walletID)
	if err != nil {
		return err
	}
	for i := range pol.Rules {
		if q := pol.Rules[i].Quorum; q > n {
			return countersign.Errorf(countersign.BadRequest, "rules[%d].quorum: a quorum of %d can never be met: the wallet has %d approver(s), the owner included; invite approvers first", i, q, n)
		}
	}
	return nil
}

// checkRemovalKeepsQuorum refuses to remove an approver when the wallet's
// policies (its own and its agents') ask for a quorum the remaining
// approvers could not reach. Requests already pending keep the quorum
// they were prepared with and count only current approvers, so a removal
// can never let fewer people approve them; this check keeps future
// requests approvable too.
func (s *Service) checkRemovalKeepsQuorum(ctx context.Context, w *countersign.Wallet) error {
	need, err := s.walletQuorum(ctx, w) // freeze.go
	if err != nil {
		return err
	}
	n, err := s.approverCount(ctx, w.ID)
	if err != nil {
		return err
	}
	if need > n-1 {
		return countersign.Errorf(countersign.Conflict, "a policy of this wallet needs a quorum of %d and only %d approver(s) would remain: lower the quorum first", need, n-1)
	}
	return nil
}

// InvitationInfo is an invitation with what either side needs to know:
// the wallet (name, address), who invited and who is invited.
type InvitationInfo struct {
	*countersign.Invitation
	WalletName      string
	WalletAddress   string
	OwnerUsername   string
	InviteeUsername string
}

// describeInvitation names inv's wallet, owner and invitee.
func (s *Service) describeInvitation(ctx context.Context, inv *countersign.Invitation) InvitationInfo {
	out := InvitationInfo{Invitation: inv, OwnerUsername: s.username(ctx, inv.OwnerID), InviteeUsername: s.username(ctx, inv.InviteeID)}
	if w, err := s.store.WalletByID(ctx, inv.WalletID); err == nil {
		out.WalletName, out.WalletAddress = w.Name, w.Address
	}
	return out
}

// DescribedInvitations is Invitations (the caller's open ones) with the
// wallet's name and address and the inviting owner's username.
func (s *Service) DescribedInvitations(ctx context.Context, p *Principal) ([]InvitationInfo, error) {
	list, err := s.Invitations(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]InvitationInfo, 0, len(list))
	for _, inv := range list {
		out = append(out, s.describeInvitation(ctx, inv))
	}
	return out, nil
}

// SentInvitations lists the open, unexpired invitations of a wallet.
// Only its owner may read them (approvers see nil, not an error, so the
// approvers list stays readable to them).
func (s *Service) SentInvitations(ctx context.Context, p *Principal, walletID string) ([]InvitationInfo, error) {
	w, owner, err := s.walletOf(ctx, p, walletID)
	if err != nil || !owner {
		return nil, err
	}
	list, err := s.store.InvitationsOfWallet(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	out := []InvitationInfo{}
	for _, inv := range list {
		if now.Before(inv.ExpiresAt) {
			out = append(out, s.describeInvitation(ctx, inv))
		}
	}
	return out, nil
}

// RevokeInvitation withdraws an open invitation: its owner revokes it, or
// the invitee declines it. Anyone else gets NotFound. Revoking takes
// nothing away from anyone, so it needs no TOTP code; it is audited on
// the owner's chain.
func (s *Service) RevokeInvitation(ctx context.Context, p *Principal, id string) error {
	if _, err := uuid.Parse(id); err != nil {
		return countersign.Errorf(countersign.BadRequest, "invitation id must be a UUID")
	}
	inv, err := s.store.Invitation(ctx, id)
	if err != nil || (inv.OwnerID != p.User.ID && inv.InviteeID != p.User.ID) {
		if err == nil || countersign.ErrorCode(err) == countersign.NotFound {
			return countersign.Errorf(countersign.NotFound, "invitation not found")
		}
		return err
	}
	if !inv.AcceptedAt.IsZero() {
		return countersign.Errorf(countersign.Conflict, "the invitation was already accepted: remove the approver instead")
	}
	action := "approver.invitation_revoke"
	if inv.InviteeID == p.User.ID {
		action = "approver.invitation_decline"
	}
	return s.Record(ctx, countersign.Change{Owner: inv.OwnerID, Actor: p.Actor(), Action: action, Subject: inv.WalletID,
		Details: map[string]string{"invitation_id": inv.ID, "user_id": inv.InviteeID}},
		func(ctx context.Context) error {
			if err := s.store.DeleteInvitation(ctx, inv.ID); err != nil {
				if countersign.ErrorCode(err) == countersign.NotFound { // accepted or revoked meanwhile
					return countersign.Errorf(countersign.Conflict, "the invitation is no longer open")
				}
				return err
			}
			return nil
		})
}

// DeleteUserWebhook removes one of the caller's webhooks: no new
// deliveries are queued for it and pending ones are never sent. Audited.
// Anyone else's webhook (another user's, the operator's) is NotFound.
func (s *Service) DeleteUserWebhook(ctx context.Context, p *Principal, webhookID string) error {
	if _, err := uuid.Parse(webhookID); err != nil {
		return countersign.Errorf(countersign.NotFound, "webhook not found")
	}
	w, err := s.store.Webhook(ctx, webhookID)
	if err != nil || w.OwnerID != p.User.ID {
		if err == nil || countersign.ErrorCode(err) == countersign.NotFound {
			return countersign.Errorf(countersign.NotFound, "webhook not found")
		}
		return err
	}
	return s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "webhook.delete", Subject: w.ID,
		Details: map[string]any{"url": w.URL, "events": w.Events}},
		func(ctx context.Context) error { return s.store.DeleteWebhook(ctx, w.ID) })
}

// ApprovedWallet is a wallet a user may act on: one they own or one they
// approve.
type ApprovedWallet struct {
	*countersign.Wallet
	Owner bool // the user owns it (else they approve it)
}

// ApprovedWallets lists the wallets p owns, then the wallets p approves
// (for the freeze buttons and the approver's pages).
func (s *Service) ApprovedWallets(ctx context.Context, p *Principal) ([]ApprovedWallet, error) {
	if p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "agents approve nothing")
	}
	own, err := s.Wallets(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]ApprovedWallet, 0, len(own))
	for _, w := range own {
		out = append(out, ApprovedWallet{Wallet: w, Owner: true})
	}
	ids, err := s.store.ApproverWallets(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		w, err := s.store.WalletByID(ctx, id)
		if countersign.ErrorCode(err) == countersign.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		if w.OwnerID != p.User.ID {
			out = append(out, ApprovedWallet{Wallet: w})
		}
	}
	return out, nil
}

// AgentBudget is one budget of a policy as it stands for one agent.
type AgentBudget struct {
	AgentID   string // the agent whose view it is
	AgentName string
	// Shared: a wallet-scope budget, the same counter for every agent of
	// the wallet.
	Shared bool
	BudgetState
}

// WalletBudgets returns the budgets of the wallet's policy and of its
// agents' policies as they stand now, per live agent of the wallet. A
// wallet-scope budget of the wallet's policy is listed once (Shared, the
// first agent's view); an agent policy's stays per agent (each agent's
// document has its own max). Only the wallet's owner may read them: they
// are the owner's view of Budgets.
func (s *Service) WalletBudgets(ctx context.Context, p *Principal, walletID string) ([]AgentBudget, error) {
	w, owner, err := s.walletOf(ctx, p, walletID)
	if err != nil {
		return nil, err
	}
	if !owner {
		return nil, countersign.Errorf(countersign.NotFound, "wallet not found")
	}
	agents, err := s.store.AgentsByOwner(ctx, w.OwnerID)
	if err != nil {
		return nil, err
	}
	out := []AgentBudget{}
	seenWallet := map[string]bool{}
	for _, a := range agents {
		if a.WalletID != w.ID || a.Revoked() {
			continue
		}
		states, err := s.budgetsOf(ctx, a)
		if err != nil {
			return nil, err
		}
		for _, b := range states {
			ab := AgentBudget{AgentID: a.ID, AgentName: a.Name, Shared: b.Scope == string(policy.ScopeWallet), BudgetState: b}
			if ab.Shared && b.Level == countersign.PolicyWallet {
				if seenWallet[b.RuleID] {
					continue
				}
				seenWallet[b.RuleID] = true
			}
			out = append(out, ab)
		}
	}
	return out, nil
}

// budgetsOf is Budgets for agent a, without a principal of its own.
func (s *Service) budgetsOf(ctx context.Context, a *countersign.Agent) ([]BudgetState, error) {
	return s.Budgets(ctx, &Principal{Agent: a})
}

// AssetUnits renders base units of a policy asset ("native" or a token
// address) for people: ETH with 18 decimals, a token with its decimals
// and symbol when the chain answers, base units otherwise.
func (s *Service) AssetUnits(ctx context.Context, v *big.Int, asset string) string {
	if v == nil {
		v = new(big.Int)
	}
	if asset == "" || asset == policy.AssetNative {
		return countersign.FormatUnits(v, 18) + " " + NativeSymbol
	}
	if info, err := s.CachedTokenInfo(ctx, asset); err == nil {
		sym := info.Symbol
		if sym == "" {
			sym = "tokens"
		}
		return countersign.FormatUnits(v, int(info.Decimals)) + " " + sym
	}
	return v.String() + " base units of " + asset
}

// ---- the live stream for approvers

// EventStream is a user's live event feed: every event of their own
// chain (exactly what the owner's stream always carried) and the events
// of the wallets they approve — only those wallets' events of the other
// owner's chain, decided per event by walletOfEvent, the same test that
// routes events to approvers' webhooks (approvers.go). Events are stored
// once, on the owner's chain; the stream reads approved owners' chains and
// filters, so there is still one state-change path and one copy.
type EventStream struct {
	s    *Service
	p    *Principal
	wake chan struct{}
	mu   chan struct{} // guards subs (a one-slot semaphore: Refresh and Close)
	subs map[string]func()
	done chan struct{}
}

// OpenEventStream subscribes to p's chain and the chains of the owners of
// the wallets p approves. Close it when the stream ends.
func (s *Service) OpenEventStream(ctx context.Context, p *Principal) (*EventStream, error) {
	st := &EventStream{s: s, p: p, wake: make(chan struct{}, 1), mu: make(chan struct{}, 1), subs: map[string]func(){}, done: make(chan struct{})}
	if _, err := st.sources(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// Wake receives a value whenever one of the stream's chains has new events.
func (st *EventStream) Wake() <-chan struct{} { return st.wake }

// Close ends every subscription.
func (st *EventStream) Close() {
	st.mu <- struct{}{}
	defer func() { <-st.mu }()
	select {
	case <-st.done:
		return
	default:
	}
	close(st.done)
	for _, stop := range st.subs {
		stop()
	}
	st.subs = nil
}

// sources returns, per owner whose chain the stream reads, the wallets of
// that owner p approves (nil: every event, p's own chain), and subscribes
// to any owner not yet subscribed. It is asked again on every read, so a
// removed approver stops seeing the wallet at once.
func (st *EventStream) sources(ctx context.Context) (map[string]map[string]bool, error) {
	out := map[string]map[string]bool{st.p.User.ID: nil}
	ids, err := st.s.store.ApproverWallets(ctx, st.p.User.ID)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		w, err := st.s.store.WalletByID(ctx, id)
		if countersign.ErrorCode(err) == countersign.NotFound {
			continue
		}
		if err != nil {
			return nil, err
		}
		if w.OwnerID == st.p.User.ID {
			continue
		}
		if out[w.OwnerID] == nil {
			out[w.OwnerID] = map[string]bool{}
		}
		out[w.OwnerID][w.ID] = true
	}
	st.mu <- struct{}{}
	defer func() { <-st.mu }()
	select {
	case <-st.done:
		return out, nil
	default:
	}
	for owner := range out {
		if _, ok := st.subs[owner]; ok {
			continue
		}
		ch, stop := st.s.broker.Subscribe(owner)
		quit := make(chan struct{})
		st.subs[owner] = func() { stop(); close(quit) }
		go func() {
			for {
				select {
				case <-ch:
					select {
					case st.wake <- struct{}{}:
					default:
					}
				case <-quit:
					return
				}
			}
		}()
	}
	for owner, stop := range st.subs {
		if _, ok := out[owner]; !ok {
			stop()
			delete(st.subs, owner)
		}
	}
	return out, nil
}

// LastID is the newest event id the stream could show (0 when none): a
// stream that starts "from now" starts after it.
func (st *EventStream) LastID(ctx context.Context) (int64, error) {
	src, err := st.sources(ctx)
	if err != nil {
		return 0, err
	}
	var last int64
	for owner := range src {
		n, err := st.s.store.LastEventID(ctx, owner)
		if err != nil {
			return 0, err
		}
		last = max(last, n)
	}
	return last, nil
}

// StreamPage is the number of events Next reads per chain.
const StreamPage = 100

// Next returns the stream's events after the cursor, in id order, the
// cursor to continue from, and whether more may be waiting. Event ids are
// global, so one cursor serves every chain. When a chain's page is full,
// only events up to that page's last id are answered (a chain with fewer
// may hold later ones) and the cursor moves to it even if every event was
// another wallet's, so a busy owner's other wallets never stall the
// stream.
func (st *EventStream) Next(ctx context.Context, after int64) ([]*countersign.Event, int64, bool, error) {
	src, err := st.sources(ctx)
	if err != nil {
		return nil, after, false, err
	}
	var all []*countersign.Event
	bound, more := int64(-1), false
	for owner, wallets := range src {
		page, err := st.s.store.EventsAfter(ctx, owner, after, StreamPage)
		if err != nil {
			return nil, after, false, err
		}
		if len(page) == StreamPage {
			last := page[len(page)-1].ID
			if !more || last < bound {
				bound = last
			}
			more = true
		}
		for _, e := range page {
			if wallets == nil || wallets[st.s.walletOfEvent(ctx, e)] {
				all = append(all, e)
			}
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	if more {
		all = slices.DeleteFunc(all, func(e *countersign.Event) bool { return e.ID > bound })
	}
	next := after
	if len(all) > 0 {
		next = all[len(all)-1].ID
	}
	if more && bound > next {
		next = bound
	}
	return all, next, more, nil
}
