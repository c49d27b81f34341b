package core

import (
	"bytes"
	"context"
	"encoding/hex"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// Approvers and quorum approval. A wallet's approvers are its owner
// (always, without a row) and the users the owner invited who accepted with
// their own TOTP code. An approver sees the wallet's requests (and only
// that wallet's), approves or rejects them with their own code through
// Authorize, may withdraw an approval before execution, and may freeze the
// wallet. A request that needs a quorum (ApprovalsNeeded > 1) is
// authorized once that many distinct current approvers have approved its
// digest; any approver's reject rejects it.

// InvitationTTL is how long an approver invitation stays open.
const InvitationTTL = 7 * 24 * time.Hour

// PolicyEventTypes are the event types of approvals, quorum, freezes and
// policies, besides transaction.<status> (webhooks may subscribe to them).
var PolicyEventTypes = []string{"quorum.progress", "approval.withdrawn", "delay.started", "policy.changed", "budget.low",
	"policy.change_pending",
	"approver.invited", "approver.added", "approver.removed", "wallet.frozen", "wallet.unfrozen"}

// ApproverView is one approver of a wallet as the API shows it.
type ApproverView struct {
	UserID   string    `json:"user_id"`
	Username string    `json:"username"`
	Role     string    `json:"role"` // "owner" or "approver"
	AddedAt  time.Time `json:"added_at"`
}

// walletOf returns the wallet with id if p is its owner or one of its
// approvers (owner reports which). Anything else is NotFound, so a user
// cannot probe other users' wallets.
func (s *Service) walletOf(ctx context.Context, p *Principal, id string) (w *countersign.Wallet, owner bool, err error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, false, countersign.Errorf(countersign.BadRequest, "wallet id must be a UUID")
	}
	w, err = s.store.WalletByID(ctx, id)
	if countersign.ErrorCode(err) == countersign.NotFound {
		return nil, false, countersign.Errorf(countersign.NotFound, "wallet not found")
	}
	if err != nil {
		return nil, false, err
	}
	if w.OwnerID == p.User.ID {
		return w, true, nil
	}
	ok, err := s.isApprover(ctx, w, p.User.ID)
	if err != nil {
		return nil, false, err
	}
	if !ok {
		return nil, false, countersign.Errorf(countersign.NotFound, "wallet not found")
	}
	return w, false, nil
}

// isApprover reports whether userID is an approver of w: its owner, or an
// invited approver who accepted.
func (s *Service) isApprover(ctx context.Context, w *countersign.Wallet, userID string) (bool, error) {
	if w.OwnerID == userID {
		return true, nil
	}
	list, err := s.store.Approvers(ctx, w.ID)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(list, func(a *countersign.Approver) bool { return a.UserID == userID }), nil
}

// canSee returns nil if p may see t: its owner, the agent that made it, or
// (users only) an approver of its wallet. Anything else is NotFound.
func (s *Service) canSee(ctx context.Context, p *Principal, t *countersign.Transaction) error {
	if visible(p, t) == nil {
		return nil
	}
	if p.IsAgent() || t.WalletID == "" {
		return countersign.Errorf(countersign.NotFound, "transaction not found")
	}
	list, err := s.store.Approvers(ctx, t.WalletID)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(list, func(a *countersign.Approver) bool { return a.UserID == p.User.ID }) {
		return countersign.Errorf(countersign.NotFound, "transaction not found")
	}
	return nil
}

// approverInbox is the ids of the wallets p approves (not owns), for the
// inbox filter; nil for agents.
func (s *Service) approverInbox(ctx context.Context, p *Principal) ([]string, error) {
	if p.IsAgent() {
		return nil, nil
	}
	return s.store.ApproverWallets(ctx, p.User.ID)
}

// InviteApprover invites the user called username to approve the wallet's
// requests. Only the owner may, with a current TOTP code; the invitee must
// have MFA set up (every decision is their own code).
func (s *Service) InviteApprover(ctx context.Context, p *Principal, walletID, username, code string) (*countersign.Invitation, error) {
	w, owner, err := s.walletOf(ctx, p, walletID)
	if err != nil {
		return nil, err
	}
	if !owner {
		return nil, countersign.Errorf(countersign.Forbidden, "only the wallet's owner can invite approvers")
	}
	name, err := NormalizeUsername(username)
	if err != nil {
		return nil, err
	}
	invitee, err := s.store.UserByName(ctx, name)
	if countersign.ErrorCode(err) == countersign.NotFound {
		return nil, countersign.Errorf(countersign.NotFound, "no user is called %q", truncate(username, 64))
	}
	if err != nil {
		return nil, err
	}
	if invitee.ID == w.OwnerID {
		return nil, countersign.Errorf(countersign.Conflict, "the owner is always an approver of their wallets")
	}
	if !invitee.MFAEnabled {
		return nil, countersign.Errorf(countersign.Conflict, "%s has no MFA: approvers must set up MFA before they can be invited", invitee.Username)
	}
	if ok, err := s.isApprover(ctx, w, invitee.ID); err != nil {
		return nil, err
	} else if ok {
		return nil, countersign.Errorf(countersign.Conflict, "%s is already an approver of this wallet", invitee.Username)
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	inv := &countersign.Invitation{ID: uuid.NewString(), WalletID: w.ID, OwnerID: w.OwnerID, InviteeID: invitee.ID, CreatedAt: now, ExpiresAt: now.Add(InvitationTTL)}
	err = s.Record(ctx, countersign.Change{Owner: w.OwnerID, Actor: p.Actor(), Action: "approver.invite", Subject: w.ID,
		Details: map[string]string{"invitation_id": inv.ID, "user_id": invitee.ID, "username": invitee.Username},
		Events:  []countersign.ChangeEvent{{Type: "approver.invited", Subject: w.ID, Payload: map[string]string{"wallet_id": w.ID, "invitation_id": inv.ID, "user_id": invitee.ID}}}},
		func(ctx context.Context) error { return s.store.CreateInvitation(ctx, inv) })
	if err != nil {
		return nil, err
	}
	return inv, nil
}

// Invitations lists the caller's open invitations.
func (s *Service) Invitations(ctx context.Context, p *Principal) ([]*countersign.Invitation, error) {
	list, err := s.store.InvitationsFor(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	return slices.DeleteFunc(list, func(i *countersign.Invitation) bool { return !now.Before(i.ExpiresAt) }), nil
}

// AcceptInvitation makes the caller an approver of the invitation's
// wallet. Only the invitee may, with their own current TOTP code: the
// owner cannot make someone an approver without that person's consent and
// second factor.
func (s *Service) AcceptInvitation(ctx context.Context, p *Principal, id, code string) (*countersign.Approver, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "invitation id must be a UUID")
	}
	inv, err := s.store.Invitation(ctx, id)
	if err != nil || inv.InviteeID != p.User.ID {
		if err == nil || countersign.ErrorCode(err) == countersign.NotFound {
			return nil, countersign.Errorf(countersign.NotFound, "invitation not found")
		}
		return nil, err
	}
	if !inv.AcceptedAt.IsZero() {
		return nil, countersign.Errorf(countersign.Conflict, "the invitation was already accepted")
	}
	if !s.clock.Now().Before(inv.ExpiresAt) {
		return nil, countersign.Errorf(countersign.Conflict, "the invitation has expired: ask the owner for a new one")
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	a := &countersign.Approver{WalletID: inv.WalletID, UserID: p.User.ID, AddedBy: inv.OwnerID, AddedAt: now}
	err = s.Record(ctx, countersign.Change{Owner: inv.OwnerID, Actor: p.Actor(), Action: "approver.add", Subject: inv.WalletID,
		Details: map[string]string{"invitation_id": inv.ID, "user_id": p.User.ID, "username": p.User.Username},
		Events:  []countersign.ChangeEvent{{Type: "approver.added", Subject: inv.WalletID, Payload: map[string]string{"wallet_id": inv.WalletID, "user_id": p.User.ID}}}},
		func(ctx context.Context) error {
			if err := s.store.AcceptInvitation(ctx, inv.ID, now); err != nil {
				return err
			}
			return s.store.AddApprover(ctx, a)
		})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// WalletApprovers lists a wallet's approvers, the owner first. Owner and
// approvers may read it.
func (s *Service) WalletApprovers(ctx context.Context, p *Principal, walletID string) ([]ApproverView, error) {
	w, _, err := s.walletOf(ctx, p, walletID)
	if err != nil {
		return nil, err
	}
	out := []ApproverView{{UserID: w.OwnerID, Username: s.username(ctx, w.OwnerID), Role: "owner", AddedAt: w.CreatedAt}}
	list, err := s.store.Approvers(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	for _, a := range list {
		out = append(out, ApproverView{UserID: a.UserID, Username: s.username(ctx, a.UserID), Role: "approver", AddedAt: a.AddedAt})
	}
	return out, nil
}

// username is a user's name for display ("" if unknown).
func (s *Service) username(ctx context.Context, id string) string {
	if strings.HasPrefix(id, policyActor("")) { // a rule decided (policy.go): no user to read
		return ""
	}
	u, err := s.store.UserByID(ctx, id)
	if err != nil {
		return ""
	}
	return u.Username
}

// RemoveApprover removes userID from the wallet's approvers. The owner may
// remove anyone (with a current TOTP code); an approver may remove only
// themselves. The owner cannot be removed. Their approvals of requests
// still pending stop counting at once (only current approvers count).
func (s *Service) RemoveApprover(ctx context.Context, p *Principal, walletID, userID, code string) error {
	w, owner, err := s.walletOf(ctx, p, walletID)
	if err != nil {
		return err
	}
	if userID == w.OwnerID {
		return countersign.Errorf(countersign.Conflict, "the owner is always an approver of their wallets")
	}
	if !owner && userID != p.User.ID {
		return countersign.Errorf(countersign.Forbidden, "only the wallet's owner can remove other approvers")
	}
	if ok, err := s.isApprover(ctx, w, userID); err != nil {
		return err
	} else if !ok {
		return countersign.Errorf(countersign.NotFound, "approver not found")
	}
	// Refused (409) before the code is spent when the wallet's policies
	// would ask for more approvers than would remain; checked again inside
	// the transaction against a concurrent policy change (policy_rest.go).
	if err := s.checkRemovalKeepsQuorum(ctx, w); err != nil {
		return err
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return err
	}
	return s.Record(ctx, countersign.Change{Owner: w.OwnerID, Actor: p.Actor(), Action: "approver.remove", Subject: w.ID,
		Details: map[string]string{"user_id": userID},
		Events:  []countersign.ChangeEvent{{Type: "approver.removed", Subject: w.ID, Payload: map[string]string{"wallet_id": w.ID, "user_id": userID}}}},
		func(ctx context.Context) error {
			if err := s.checkRemovalKeepsQuorum(ctx, w); err != nil {
				return err
			}
			return s.store.RemoveApprover(ctx, w.ID, userID)
		})
}

// approvalsNeeded is how many distinct approvers must approve t: the
// policy's quorum, and at least one.
func approvalsNeeded(t *countersign.Transaction) int { return max(1, t.ApprovalsNeeded) }

// countedApprovals returns t's approvals that count: not withdrawn, for
// t's digest, by a current approver of its wallet (the owner included).
func (s *Service) countedApprovals(ctx context.Context, t *countersign.Transaction) ([]*countersign.Approval, error) {
	list, err := s.store.Approvals(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	return s.counting(ctx, t, list)
}

// counting keeps the approvals of list that count for t (countedApprovals).
// list is not changed.
func (s *Service) counting(ctx context.Context, t *countersign.Transaction, list []*countersign.Approval) ([]*countersign.Approval, error) {
	list = slices.Clone(list)
	approvers := map[string]bool{t.OwnerID: true}
	others := slices.ContainsFunc(list, func(a *countersign.Approval) bool { return a.UserID != t.OwnerID })
	if t.WalletID != "" && others { // the owner always counts: only others' approvals need the wallet's approvers
		as, err := s.store.Approvers(ctx, t.WalletID)
		if err != nil {
			return nil, err
		}
		for _, a := range as {
			approvers[a.UserID] = true
		}
	}
	return slices.DeleteFunc(list, func(a *countersign.Approval) bool {
		return !approvers[a.UserID] || !bytes.Equal(a.Digest, t.Digest)
	}), nil
}

// approve records p's approval of pending t inside the caller's change and
// authorizes t once enough distinct approvers have approved; short of the
// quorum it states a quorum.progress event instead. The same person
// approving twice is a Conflict: one person's codes never count twice.
func (s *Service) approve(ctx context.Context, cs *changeSet, p *Principal, t *countersign.Transaction, reason string) error {
	now := s.clock.Now().UTC()
	if err := s.store.AddApproval(ctx, &countersign.Approval{TransactionID: t.ID, UserID: p.User.ID, Digest: t.Digest, At: now}); err != nil {
		if countersign.ErrorCode(err) == countersign.Conflict {
			return countersign.Errorf(countersign.Conflict, "you have already approved transaction %s: another approver must approve it", t.ID)
		}
		return err
	}
	counted, err := s.countedApprovals(ctx, t)
	if err != nil {
		return err
	}
	need := approvalsNeeded(t)
	details := map[string]any{"digest": hex.EncodeToString(t.Digest), "reason": reason, "approvals": len(counted), "approvals_needed": need}
	if len(counted) < need {
		t.UpdatedAt = now
		if err := s.store.UpdateTransaction(ctx, t); err != nil {
			return err
		}
		cs.add(countersign.Change{Owner: t.OwnerID, Actor: p.Actor(), Action: "transaction.approve", Subject: t.ID, Details: details,
			Events: []countersign.ChangeEvent{{Type: "quorum.progress", Subject: t.ID, Payload: s.quorumPayload(ctx, t, counted)}}})
		return nil
	}
	t.DecidedBy, t.DecidedAt, t.Reason, t.ApprovedDigest = p.User.ID, now, reason, t.Digest
	if need > 1 {
		// The last approval: the progress event first, then the status.
		cs.add(countersign.Change{Owner: t.OwnerID, Actor: p.Actor(), Action: "transaction.approve", Subject: t.ID, Details: details,
			Events: []countersign.ChangeEvent{{Type: "quorum.progress", Subject: t.ID, Payload: s.quorumPayload(ctx, t, counted)}}})
	}
	return s.setStatus(ctx, cs, t, countersign.StatusAuthorized, p.Actor(), "transaction.authorize", map[string]string{"digest": hex.EncodeToString(t.Digest), "reason": reason})
}

func (s *Service) quorumPayload(ctx context.Context, t *countersign.Transaction, counted []*countersign.Approval) map[string]any {
	return map[string]any{"transaction_id": t.ID, "approvals": s.approvalViews(ctx, counted), "approvals_needed": approvalsNeeded(t)}
}

func (s *Service) approvalViews(ctx context.Context, list []*countersign.Approval) []TxApproval {
	out := []TxApproval{}
	for _, a := range list {
		out = append(out, TxApproval{User: s.username(ctx, a.UserID), At: a.At})
	}
	return out
}

// ViewOf is View(t) with the approvals that count so far (who and when).
func (s *Service) ViewOf(ctx context.Context, t *countersign.Transaction) (TxView, error) {
	v := View(t)
	list, err := s.approvalRows(ctx, t)
	if err != nil {
		return v, err
	}
	counted, err := s.counting(ctx, t, list)
	if err != nil {
		return v, err
	}
	v.Approvals = s.approvalViews(ctx, counted)
	return v, nil
}

// approvalsKey is a request as of its last update: every approval and
// withdrawal also updates the request (approve, WithdrawApproval), so its
// approval rows are the same for as long as its updated_at is.
type approvalsKey struct {
	id      string
	updated int64
}

// approvalRows is t's approval rows, remembered for reviewCacheTTL per
// approvalsKey: a status poll read them on every call. For views only:
// what decides (approve, withdraw) reads them under the row's lock.
// Whether each counts is still judged each time (counting: an approver
// removed since no longer counts).
func (s *Service) approvalRows(ctx context.Context, t *countersign.Transaction) ([]*countersign.Approval, error) {
	k := approvalsKey{id: t.ID, updated: t.UpdatedAt.UnixNano()}
	now := time.Now()
	if list, ok := s.approvalsSeen.get(k, now); ok {
		return list, nil
	}
	list, err := s.store.Approvals(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	s.approvalsSeen.put(k, list, now)
	return list, nil
}

// WithdrawApproval takes back p's approval of a request before it is
// executed, with p's own TOTP code. A pending request counts one approval
// fewer; an authorized one that no longer has its quorum goes back to
// pending (its approval window as before), so it cannot be executed.
func (s *Service) WithdrawApproval(ctx context.Context, p *Principal, id, code string) (*countersign.Transaction, error) {
	t, err := s.load(ctx, p, id)
	if err != nil {
		return nil, err
	}
	withdrawable := func(t *countersign.Transaction) error {
		if t.Status != countersign.StatusPending && t.Status != countersign.StatusAuthorized {
			return countersign.Errorf(countersign.Conflict, "transaction %s is %s: only an approval of a pending or authorized request can be withdrawn", t.ID, t.Status)
		}
		if t.TxHash != "" || len(t.Signature) > 0 {
			return countersign.Errorf(countersign.Conflict, "transaction %s is already being executed", t.ID)
		}
		return nil
	}
	if err := withdrawable(t); err != nil {
		return nil, err
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, id)
		if err != nil {
			return err
		}
		t = cur
		if err := withdrawable(cur); err != nil {
			return err
		}
		now := s.clock.Now().UTC()
		if err := s.store.WithdrawApproval(ctx, cur.ID, p.User.ID, now); err != nil {
			if countersign.ErrorCode(err) == countersign.NotFound {
				return countersign.Errorf(countersign.NotFound, "you have no approval of transaction %s to withdraw", cur.ID)
			}
			return err
		}
		counted, err := s.countedApprovals(ctx, cur)
		if err != nil {
			return err
		}
		cs.add(countersign.Change{Owner: cur.OwnerID, Actor: p.Actor(), Action: "transaction.approval_withdraw", Subject: cur.ID,
			Details: map[string]any{"approvals": len(counted), "approvals_needed": approvalsNeeded(cur)},
			Events:  []countersign.ChangeEvent{{Type: "approval.withdrawn", Subject: cur.ID, Payload: s.quorumPayload(ctx, cur, counted)}}})
		if cur.Status == countersign.StatusAuthorized && len(counted) < approvalsNeeded(cur) {
			cur.ApprovedDigest, cur.DecidedBy, cur.DecidedAt = nil, "", time.Time{}
			return s.setStatus(ctx, cs, cur, countersign.StatusPending, p.Actor(), "transaction.unauthorize", map[string]string{"reason": "approval withdrawn"})
		}
		cur.UpdatedAt = now
		return s.store.UpdateTransaction(ctx, cur)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// authorizedExpired reports whether an authorized, unexecuted t has passed
// AUTHORIZED_TTL since it was authorized.
func (s *Service) authorizedExpired(t *countersign.Transaction, now time.Time) bool {
	return t.Status == countersign.StatusAuthorized && t.TxHash == "" && len(t.Signature) == 0 &&
		!now.Before(authorizedAt(t).Add(s.cfg.AuthorizedTTL))
}

// authorizedAt is when t was authorized: the decision's time, or for a
// request no human decided (auto, delay) the later of its creation and its
// delay's end.
func authorizedAt(t *countersign.Transaction) time.Time {
	if !t.DecidedAt.IsZero() {
		return t.DecidedAt
	}
	if t.AuthorizeAt.After(t.CreatedAt) {
		return t.AuthorizeAt
	}
	return t.CreatedAt
}

// expireAuthorizedIfDue expires t if it was authorized longer than
// AUTHORIZED_TTL ago without being executed (setStatus releases its
// budget reservations), and returns the current row.
func (s *Service) expireAuthorizedIfDue(ctx context.Context, t *countersign.Transaction) (*countersign.Transaction, error) {
	if !s.authorizedExpired(t, s.clock.Now()) {
		return t, nil
	}
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		t = cur
		now := s.clock.Now()
		if !s.authorizedExpired(cur, now) {
			return nil
		}
		return s.setStatus(ctx, cs, cur, countersign.StatusExpired, "system", "transaction.expire_authorized",
			map[string]string{"authorized_at": authorizedAt(cur).Format(time.RFC3339), "authorized_ttl": s.cfg.AuthorizedTTL.String()})
	})
	return t, err
}

// ExpireAuthorized expires every authorized request not executed within
// AUTHORIZED_TTL (the sweeper in Run).
func (s *Service) ExpireAuthorized(ctx context.Context) error {
	list, err := s.store.AuthorizedExpired(ctx, s.clock.Now().UTC().Add(-s.cfg.AuthorizedTTL), 500)
	if err != nil {
		return err
	}
	return s.settleEach(ctx, list, s.expireAuthorizedIfDue)
}

// approverWebhooks returns the webhooks of e's wallet's approvers (other
// than its owner, whose own webhooks enqueueDeliveries already has), so a
// wallet's events reach every approver who subscribed — and no one who
// approves only another wallet of the same owner. walletID is e's wallet
// when its writer named it; "" looks it up from e's subject. Under the
// group commit's memo (record.go) each wallet's approvers and their
// webhooks are read once per transaction.
func (s *Service) approverWebhooks(ctx context.Context, e *countersign.Event, walletID string) ([]*countersign.Webhook, error) {
	if e.OwnerID == "daemon" || e.Subject == "" || strings.HasPrefix(e.Type, "mfa.") {
		return nil, nil
	}
	if walletID == "" {
		walletID = s.walletOfEvent(ctx, e)
	}
	if walletID == "" {
		return nil, nil
	}
	memo := memoOf(ctx)
	if hooks, ok := memo.approverHooks(walletID); ok {
		return hooks, nil
	}
	approvers, err := s.store.Approvers(ctx, walletID)
	if err != nil {
		return nil, err
	}
	var out []*countersign.Webhook
	for _, a := range approvers {
		hooks, err := s.store.WebhooksOf(ctx, a.UserID)
		if err != nil {
			return nil, err
		}
		out = append(out, hooks...)
	}
	memo.setApproverHooks(walletID, out)
	return out, nil
}

// walletOfEvent is the wallet an event of e.OwnerID is about: its subject
// is a transaction, a wallet or an agent of that owner ("" otherwise).
func (s *Service) walletOfEvent(ctx context.Context, e *countersign.Event) string {
	if _, err := uuid.Parse(e.Subject); err != nil {
		return ""
	}
	if t, err := s.store.Transaction(ctx, e.Subject); err == nil {
		if t.OwnerID == e.OwnerID {
			return t.WalletID
		}
		return ""
	}
	if w, err := s.store.WalletByID(ctx, e.Subject); err == nil {
		if w.OwnerID == e.OwnerID {
			return w.ID
		}
		return ""
	}
	if a, err := s.store.AgentByID(ctx, e.Subject); err == nil && a.OwnerID == e.OwnerID {
		return a.WalletID
	}
	return ""
}

// CreateUserWebhook subscribes url to events of the caller's wallets and
// of the wallets they approve: the same machinery (SSRF guard, sealed
// secret, HMAC outbox) as the operator's webhooks.
func (s *Service) CreateUserWebhook(ctx context.Context, p *Principal, url string, events []string) (*countersign.Webhook, string, error) {
	return s.createWebhook(ctx, p.User.ID, p.Actor(), url, events)
}

// UserWebhooks lists the caller's webhooks.
func (s *Service) UserWebhooks(ctx context.Context, p *Principal) ([]*countersign.Webhook, error) {
	return s.store.WebhooksOf(ctx, p.User.ID)
}

// UserDeliveries is the delivery log of one of the caller's webhooks.
func (s *Service) UserDeliveries(ctx context.Context, p *Principal, webhookID string) ([]*countersign.Delivery, error) {
	if _, err := uuid.Parse(webhookID); err != nil {
		return nil, countersign.Errorf(countersign.NotFound, "webhook not found")
	}
	return s.Deliveries(ctx, p.User.ID, webhookID)
}
