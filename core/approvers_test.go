package core

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/policy"
)

// Approvers, quorum, withdrawal, AUTHORIZED_TTL and the kill switch, on
// the lifecycle environment (the owner has MFA; approvers are more users
// with MFA).

type mfaUser struct {
	p      *Principal
	secret []byte
}

// newMFAUser stores a user with MFA on.
func (l *lifecycle) newMFAUser(name string) *mfaUser {
	l.t.Helper()
	secret, err := auth.NewTOTPSecret()
	if err != nil {
		l.t.Fatal(err)
	}
	u := &countersign.User{ID: uuid.NewString(), Username: name + uuid.NewString()[:6], PasswordHash: "$argon2id$unused", CreatedAt: l.clock.Now(), MFAEnabled: true}
	if u.MFASealed, err = l.svc.sealer.Seal("mfa:"+u.ID, secret); err != nil {
		l.t.Fatal(err)
	}
	if err := l.svc.store.CreateUser(l.ctx, u); err != nil {
		l.t.Fatal(err)
	}
	return &mfaUser{p: &Principal{User: u}, secret: secret}
}

// codeOf is a fresh code of u (the clock moves on a step first).
func (l *lifecycle) codeOf(u *mfaUser) string {
	l.clock.Advance(auth.TOTPPeriod * time.Second)
	return auth.TOTPCode(u.secret, l.clock.Now())
}

// addApprover invites u to the wallet and accepts with u's own code.
func (l *lifecycle) addApprover(walletID string, u *mfaUser) {
	l.t.Helper()
	inv, err := l.svc.InviteApprover(l.ctx, l.human, walletID, u.p.User.Username, l.code())
	if err != nil {
		l.t.Fatal(err)
	}
	if _, err := l.svc.AcceptInvitation(l.ctx, u.p, inv.ID, l.codeOf(u)); err != nil {
		l.t.Fatal(err)
	}
}

// setWalletPolicy stores doc as the wallet's policy.
func (l *lifecycle) setWalletPolicy(walletID, doc string) {
	l.t.Helper()
	pol, err := policy.Parse([]byte(doc))
	if err != nil {
		l.t.Fatal(err)
	}
	if err := l.svc.store.PutPolicy(l.ctx, &countersign.PolicyRecord{Level: countersign.PolicyWallet, SubjectID: walletID, OwnerID: l.user.ID,
		Document: string(pol.Marshal()), Hash: pol.Hash(), UpdatedBy: "user:" + l.user.ID, UpdatedAt: l.clock.Now()}); err != nil {
		l.t.Fatal(err)
	}
}

const quorum2 = `{"rules": [{"id": "two", "when": {}, "then": "quorum", "quorum": 2}], "default": "human"}`

func (l *lifecycle) approveAs(u *mfaUser, id string) error {
	_, err := l.svc.Authorize(l.ctx, u.p, []string{id}, l.codeOf(u), Approve, "")
	return err
}

func (l *lifecycle) ownerUser() *mfaUser { return &mfaUser{p: l.human, secret: l.secret} }

func TestSecurity_QuorumNeedsTwoDistinctApprovers(t *testing.T) {
	l := newLifecycle(t)
	l.fund(l.wallet.Address, eth(1))
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	l.setWalletPolicy(l.wallet.ID, quorum2)
	tx := l.prepare()
	if tx.Status != countersign.StatusPending || tx.ApprovalsNeeded != 2 {
		t.Fatalf("prepared %s needing %d, want pending needing 2", tx.Status, tx.ApprovalsNeeded)
	}
	owner := l.ownerUser()
	if err := l.approveAs(owner, tx.ID); err != nil {
		t.Fatal(err)
	}
	if r := l.row(tx.ID); r.Status != countersign.StatusPending || len(r.ApprovedDigest) != 0 {
		t.Fatalf("one approval of two authorized it: %s", r.Status)
	}
	// The same person's second code never counts twice.
	if err := l.approveAs(owner, tx.ID); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("the owner approved twice: %v", err)
	}
	if r := l.row(tx.ID); r.Status != countersign.StatusPending {
		t.Fatalf("the same approver twice authorized it: %s", r.Status)
	}
	if _, err := l.execute(tx.ID); countersign.ErrorCode(err) != countersign.NotAuthorized {
		t.Fatalf("executed short of the quorum: %v", err)
	}
	if err := l.approveAs(bob, tx.ID); err != nil {
		t.Fatal(err)
	}
	r := l.row(tx.ID)
	if r.Status != countersign.StatusAuthorized {
		t.Fatalf("two distinct approvals: %s", r.Status)
	}
	v, err := l.svc.ViewOf(l.ctx, r)
	if err != nil || len(v.Approvals) != 2 || v.Approvals[0].User != l.user.Username || v.Approvals[1].User != bob.p.User.Username || v.ApprovalsNeeded != 2 {
		t.Fatalf("approvals %+v (need %d) %v", v.Approvals, v.ApprovalsNeeded, err)
	}
	_, events := l.trail(tx.ID)
	if n := count(events, "quorum.progress"); n != 2 {
		t.Fatalf("%d quorum.progress events, want 2: %v", n, events)
	}
	if _, err := l.execute(tx.ID); err != nil {
		t.Fatalf("execute after the quorum: %v", err)
	}
}

func count(list []string, s string) int {
	n := 0
	for _, v := range list {
		if v == s {
			n++
		}
	}
	return n
}

func TestQuorum_AnyRejectRejects(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	l.setWalletPolicy(l.wallet.ID, quorum2)
	tx := l.prepare()
	if err := l.approveAs(l.ownerUser(), tx.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.Authorize(l.ctx, bob.p, []string{tx.ID}, l.codeOf(bob), Reject, "no"); err != nil {
		t.Fatal(err)
	}
	if r := l.row(tx.ID); r.Status != countersign.StatusRejected || r.DecidedBy != bob.p.User.ID {
		t.Fatalf("after an approver's reject: %s by %s", r.Status, r.DecidedBy)
	}
}

func TestSecurity_ApproverOfOneWalletCannotSeeAnother(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	// A second wallet of the same owner, with its own agent: bob does not approve it.
	w2 := &countersign.Wallet{ID: uuid.NewString(), OwnerID: l.user.ID, Name: "w2", CreatedAt: l.clock.Now()}
	var err error
	if w2.Address, w2.KeyFormat, w2.KeySealed, err = l.svc.signer.NewKey(l.ctx, w2.ID); err != nil {
		t.Fatal(err)
	}
	if err := l.svc.store.CreateWallet(l.ctx, w2); err != nil {
		t.Fatal(err)
	}
	a2 := &countersign.Agent{ID: uuid.NewString(), OwnerID: l.user.ID, Name: "a2", WalletID: w2.ID, KeyHash: []byte(uuid.NewString()), KeyPrefix: "cs_", CreatedAt: l.clock.Now()}
	if err := l.svc.store.CreateAgent(l.ctx, a2); err != nil {
		t.Fatal(err)
	}
	mine := l.prepare()
	other, err := l.svc.Prepare(l.ctx, &Principal{User: l.user, Agent: a2}, &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: "5"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.Status(l.ctx, bob.p, mine.ID, 0); err != nil {
		t.Fatalf("an approver cannot see their wallet's request: %v", err)
	}
	if _, err := l.svc.Status(l.ctx, bob.p, other.ID, 0); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("an approver of wallet A sees wallet B's request: %v", err)
	}
	if _, err := l.svc.Authorize(l.ctx, bob.p, []string{other.ID}, l.codeOf(bob), Approve, ""); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("an approver of wallet A approved wallet B's request: %v", err)
	}
	if r := l.row(other.ID); r.Status != countersign.StatusPending {
		t.Fatalf("wallet B's request is %s", r.Status)
	}
	list, err := l.svc.Transactions(l.ctx, bob.p, countersign.TxFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{}
	for _, x := range list {
		ids = append(ids, x.ID)
	}
	if !slices.Contains(ids, mine.ID) || slices.Contains(ids, other.ID) {
		t.Fatalf("approver's inbox %v: want %s and not %s", ids, mine.ID, other.ID)
	}
	if _, err := l.svc.WalletApprovers(l.ctx, bob.p, w2.ID); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("approver lists another wallet's approvers: %v", err)
	}
	if _, err := l.svc.Freeze(l.ctx, bob.p, w2.ID); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("approver froze another wallet: %v", err)
	}
	if _, err := l.svc.Freeze(l.ctx, bob.p, ""); err != nil {
		t.Fatal(err) // owner-wide for bob: bob's own (no) wallets
	}
	if _, err := l.svc.Prepare(l.ctx, &Principal{User: l.user, Agent: a2}, &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: "5"}, ""); err != nil {
		t.Fatalf("bob's freeze of his own wallets stopped the owner's: %v", err)
	}
	// Removed: bob sees nothing any more, and his approval stops counting.
	if err := l.svc.RemoveApprover(l.ctx, l.human, l.wallet.ID, bob.p.User.ID, l.code()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.Status(l.ctx, bob.p, mine.ID, 0); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("a removed approver still sees the wallet: %v", err)
	}
	if a, _ := l.trail(l.wallet.ID); !slices.Contains(a, "approver.remove") {
		t.Fatalf("removal not audited: %v", a)
	}
}

func TestSecurity_InvitationAcceptNeedsInviteesOwnMFA(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	inv, err := l.svc.InviteApprover(l.ctx, l.human, l.wallet.ID, bob.p.User.Username, l.code())
	if err != nil {
		t.Fatal(err)
	}
	// The owner cannot accept for bob, not even with bob's principal and the owner's code.
	if _, err := l.svc.AcceptInvitation(l.ctx, l.human, inv.ID, l.code()); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("the owner accepted bob's invitation: %v", err)
	}
	if _, err := l.svc.AcceptInvitation(l.ctx, bob.p, inv.ID, l.code()); countersign.ErrorCode(err) != countersign.MFAInvalid {
		t.Fatalf("bob accepted with the owner's code: %v", err)
	}
	if ok, _ := l.svc.isApprover(l.ctx, l.wallet, bob.p.User.ID); ok {
		t.Fatal("bob became an approver without his own code")
	}
	if _, err := l.svc.AcceptInvitation(l.ctx, bob.p, inv.ID, l.codeOf(bob)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.AcceptInvitation(l.ctx, bob.p, inv.ID, l.codeOf(bob)); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("accepted twice: %v", err)
	}
	// A user without MFA cannot be invited.
	carol := l.newMFAUser("carol")
	carol.p.User.MFAEnabled = false
	if err := l.svc.store.UpdateUserMFA(l.ctx, carol.p.User); err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.InviteApprover(l.ctx, l.human, l.wallet.ID, carol.p.User.Username, l.code()); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("invited a user without MFA: %v", err)
	}
	// Only the owner invites.
	if _, err := l.svc.InviteApprover(l.ctx, bob.p, l.wallet.ID, carol.p.User.Username, l.codeOf(bob)); countersign.ErrorCode(err) != countersign.Forbidden {
		t.Fatalf("an approver invited someone: %v", err)
	}
	// An expired invitation cannot be accepted.
	dave := l.newMFAUser("dave")
	inv2, err := l.svc.InviteApprover(l.ctx, l.human, l.wallet.ID, dave.p.User.Username, l.code())
	if err != nil {
		t.Fatal(err)
	}
	l.clock.Advance(InvitationTTL)
	if _, err := l.svc.AcceptInvitation(l.ctx, dave.p, inv2.ID, l.codeOf(dave)); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("accepted an expired invitation: %v", err)
	}
}

func TestApproval_Withdraw(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	l.setWalletPolicy(l.wallet.ID, quorum2)
	tx := l.prepare()
	owner := l.ownerUser()
	if err := l.approveAs(owner, tx.ID); err != nil {
		t.Fatal(err)
	}
	// a poll's view remembers the approval rows per update of the request: the withdrawal below is one
	if v, _ := l.svc.ViewOf(l.ctx, l.row(tx.ID)); len(v.Approvals) != 1 {
		t.Fatalf("approvals after the owner's: %+v", v.Approvals)
	}
	if _, err := l.svc.WithdrawApproval(l.ctx, bob.p, tx.ID, l.codeOf(bob)); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("bob withdrew an approval he never gave: %v", err)
	}
	if _, err := l.svc.WithdrawApproval(l.ctx, owner.p, tx.ID, l.code()); err != nil {
		t.Fatal(err)
	}
	if v, _ := l.svc.ViewOf(l.ctx, l.row(tx.ID)); len(v.Approvals) != 0 {
		t.Fatalf("approvals after withdrawing: %+v", v.Approvals)
	}
	// The withdrawn approval no longer counts: bob alone is one of two.
	if err := l.approveAs(bob, tx.ID); err != nil {
		t.Fatal(err)
	}
	if r := l.row(tx.ID); r.Status != countersign.StatusPending {
		t.Fatalf("a withdrawn approval still counted: %s", r.Status)
	}
	if err := l.approveAs(owner, tx.ID); err != nil {
		t.Fatal(err)
	}
	if r := l.row(tx.ID); r.Status != countersign.StatusAuthorized {
		t.Fatalf("after re-approving: %s", r.Status)
	}
	// Withdrawn after authorization: back to pending, not executable.
	back, err := l.svc.WithdrawApproval(l.ctx, bob.p, tx.ID, l.codeOf(bob))
	if err != nil || back.Status != countersign.StatusPending || len(back.ApprovedDigest) != 0 {
		t.Fatalf("withdraw after authorization: %+v %v", back, err)
	}
	if r := l.row(tx.ID); !r.ExpiresAt.Equal(r.CreatedAt.Add(l.svc.cfg.PendingTTL)) {
		t.Fatalf("back to pending: expires_at %s, want the approval window again (%s)", r.ExpiresAt, r.CreatedAt.Add(l.svc.cfg.PendingTTL))
	}
	if _, err := l.execute(tx.ID); countersign.ErrorCode(err) != countersign.NotAuthorized {
		t.Fatalf("executed after an approval was withdrawn: %v", err)
	}
	actions, events := l.trail(tx.ID)
	if count(actions, "transaction.approval_withdraw") != 2 || !slices.Contains(actions, "transaction.unauthorize") || count(events, "approval.withdrawn") != 2 {
		t.Fatalf("withdrawals not audited/evented: %v %v", actions, events)
	}
}

func TestApproval_AuthorizedTTLExpires(t *testing.T) {
	l := newLifecycle(t)
	tx := l.prepare()
	if v := View(l.row(tx.ID)); !v.ExpiresAt.Equal(tx.CreatedAt.Add(l.svc.cfg.PendingTTL)) {
		t.Fatalf("pending: expires_at %s, want PENDING_TTL from prepare", v.ExpiresAt)
	}
	l.clock.Advance(time.Minute)
	if _, err := l.decide(tx.ID, Approve, ""); err != nil {
		t.Fatal(err)
	}
	// once authorized, expires_at is the deadline execute enforces
	if r := l.row(tx.ID); !View(r).ExpiresAt.Equal(r.DecidedAt.Add(l.svc.cfg.AuthorizedTTL)) {
		t.Fatalf("authorized at %s: expires_at %s, want AUTHORIZED_TTL (%s) after the approval", r.DecidedAt, View(r).ExpiresAt, l.svc.cfg.AuthorizedTTL)
	}
	l.clock.Advance(l.svc.cfg.AuthorizedTTL - time.Second)
	if err := l.svc.ExpireAuthorized(l.ctx); err != nil {
		t.Fatal(err)
	}
	if r := l.row(tx.ID); r.Status != countersign.StatusAuthorized {
		t.Fatalf("expired before AUTHORIZED_TTL: %s", r.Status)
	}
	l.clock.Advance(time.Second)
	if err := l.svc.ExpireAuthorized(l.ctx); err != nil {
		t.Fatal(err)
	}
	if r := l.row(tx.ID); r.Status != countersign.StatusExpired {
		t.Fatalf("after AUTHORIZED_TTL: %s", r.Status)
	}
	if _, err := l.execute(tx.ID); countersign.ErrorCode(err) != countersign.NotAuthorized {
		t.Fatalf("an expired authorization executed: %v", err)
	}
	// Execute on its own expires a stale one too (no sweeper needed).
	tx2 := l.prepare()
	if _, err := l.decide(tx2.ID, Approve, ""); err != nil {
		t.Fatal(err)
	}
	l.clock.Advance(l.svc.cfg.AuthorizedTTL)
	if _, err := l.execute(tx2.ID); countersign.ErrorCode(err) != countersign.NotAuthorized {
		t.Fatalf("a stale authorization executed: %v", err)
	}
	actions, events := l.trail(tx.ID)
	if !slices.Contains(actions, "transaction.expire_authorized") || !slices.Contains(events, "transaction.expired") {
		t.Fatalf("expiry not audited/evented: %v %v", actions, events)
	}
}

func TestSecurity_FreezeRefusesAndBlocksExecute(t *testing.T) {
	l := newLifecycle(t)
	l.fund(l.wallet.Address, eth(1))
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	tx := l.prepare()
	if _, err := l.decide(tx.ID, Approve, ""); err != nil {
		t.Fatal(err)
	}
	pending := l.prepare()
	// An approver freezes: no MFA needed.
	f, err := l.svc.Freeze(l.ctx, bob.p, l.wallet.ID)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := l.svc.Freeze(l.ctx, l.human, l.wallet.ID); err != nil || again.ID != f.ID {
		t.Fatalf("freezing twice: %+v %v", again, err)
	}
	if _, err := l.svc.Prepare(l.ctx, l.agent, &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: "1"}, ""); countersign.ErrorCode(err) != countersign.Frozen {
		t.Fatalf("prepare while frozen: %v", err)
	}
	if _, err := l.execute(tx.ID); countersign.ErrorCode(err) != countersign.Frozen {
		t.Fatalf("execute while frozen: %v", err)
	}
	if r := l.row(tx.ID); r.Status != countersign.StatusAuthorized || r.TxHash != "" {
		t.Fatalf("frozen transaction is %s (%s)", r.Status, r.TxHash)
	}
	if r := l.row(pending.ID); r.Status != countersign.StatusPending {
		t.Fatalf("a pending request changed under a freeze: %s", r.Status)
	}
	// Lifting needs MFA.
	if _, err := l.svc.Unfreeze(l.ctx, l.human, l.wallet.ID, ""); countersign.ErrorCode(err) != countersign.BadRequest {
		t.Fatalf("unfreeze without a code: %v", err)
	}
	wrong := "000000"
	if _, ok := auth.VerifyTOTP(l.secret, wrong, l.clock.Now(), 0); ok {
		wrong = "111111"
	}
	if _, err := l.svc.Unfreeze(l.ctx, l.human, l.wallet.ID, wrong); countersign.ErrorCode(err) != countersign.MFAInvalid {
		t.Fatalf("unfreeze with a wrong code: %v", err)
	}
	// On a quorum wallet, as many distinct approvers as the quorum.
	l.setWalletPolicy(l.wallet.ID, quorum2)
	res, err := l.svc.Unfreeze(l.ctx, l.human, l.wallet.ID, l.code())
	if err != nil || res.Lifted || res.Approvals != 1 || res.Needed != 2 {
		t.Fatalf("first unfreeze of two: %+v %v", res, err)
	}
	if _, err := l.svc.Unfreeze(l.ctx, l.human, l.wallet.ID, l.code()); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("the same approver lifted twice: %v", err)
	}
	if _, err := l.execute(tx.ID); countersign.ErrorCode(err) != countersign.Frozen {
		t.Fatalf("execute after one of two lifts: %v", err)
	}
	if res, err = l.svc.Unfreeze(l.ctx, bob.p, l.wallet.ID, l.codeOf(bob)); err != nil || !res.Lifted {
		t.Fatalf("second unfreeze: %+v %v", res, err)
	}
	if _, err := l.execute(tx.ID); err != nil {
		t.Fatalf("execute after the freeze was lifted: %v", err)
	}
	actions, events := l.trail(l.wallet.ID)
	if !slices.Contains(actions, "freeze.on") || !slices.Contains(actions, "freeze.off") || !slices.Contains(events, "wallet.frozen") || !slices.Contains(events, "wallet.unfrozen") {
		t.Fatalf("freeze not audited/evented: %v %v", actions, events)
	}
	// Owner-wide: every wallet of the owner.
	if _, err := l.svc.Freeze(l.ctx, l.human, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.Prepare(l.ctx, l.agent, &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: "1"}, ""); countersign.ErrorCode(err) != countersign.Frozen {
		t.Fatalf("prepare under an owner-wide freeze: %v", err)
	}
	if _, err := l.svc.Unfreeze(l.ctx, bob.p, "", l.codeOf(bob)); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("an approver lifted the owner's owner-wide freeze: %v", err)
	}
	if res, err := l.svc.Unfreeze(l.ctx, l.human, "", l.code()); err != nil || !res.Lifted {
		t.Fatalf("owner-wide unfreeze: %+v %v", res, err)
	}
}

func TestApproverWebhooksOnlyTheirWallet(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	hook := &countersign.Webhook{ID: uuid.NewString(), OwnerID: bob.p.User.ID, URL: "https://example.com/h", Events: []string{"transaction.*", "quorum.progress"}, SecretSealed: []byte{1}, CreatedAt: l.clock.Now()}
	if err := l.svc.store.CreateWebhook(l.ctx, hook); err != nil {
		t.Fatal(err)
	}
	tx := l.prepare()
	ds, err := l.svc.store.Deliveries(l.ctx, hook.ID, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || ds[0].EventType != "transaction.pending" {
		t.Fatalf("approver's webhook got %d deliveries for %s", len(ds), tx.ID)
	}
	// After removal, nothing more.
	if err := l.svc.RemoveApprover(l.ctx, l.human, l.wallet.ID, bob.p.User.ID, l.code()); err != nil {
		t.Fatal(err)
	}
	l.prepare()
	if ds, _ := l.svc.store.Deliveries(l.ctx, hook.ID, 100); len(ds) != 1 {
		t.Fatalf("a removed approver's webhook still gets the wallet's events: %d", len(ds))
	}
}

func TestSecurity_LooseningOnQuorumWalletWaitsForQuorum(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	l.setWalletPolicy(l.wallet.ID, quorum2)
	before, _ := l.svc.store.Policy(l.ctx, countersign.PolicyWallet, l.wallet.ID)
	auto := `{"rules": [{"id": "small", "when": {"kind": ["native"]}, "then": "auto", "budget": {"max": "1000000", "window": "24h"}}], "default": "human"}`
	v, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyWallet, l.wallet.ID, []byte(auto), l.code())
	if err != nil {
		t.Fatal(err)
	}
	if v.Pending == nil || v.Pending.ApprovalsNeeded != 2 || len(v.Pending.Approvals) != 1 || v.Hash != before.Hash {
		t.Fatalf("a loosening change on a quorum wallet: %+v (pending %+v)", v, v.Pending)
	}
	if now, _ := l.svc.store.Policy(l.ctx, countersign.PolicyWallet, l.wallet.ID); now.Hash != before.Hash {
		t.Fatal("the owner alone loosened a quorum wallet's policy")
	}
	if tx := l.prepare(); tx.Status != countersign.StatusPending || tx.ApprovalsNeeded != 2 {
		t.Fatalf("the pending change already decides: %s, %d", tx.Status, tx.ApprovalsNeeded)
	}
	if _, err := l.svc.DecidePolicyChange(l.ctx, l.human, v.Pending.ChangeID, l.code(), Approve); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("the proposer approved twice: %v", err)
	}
	outsider := l.newMFAUser("eve")
	if _, err := l.svc.DecidePolicyChange(l.ctx, outsider.p, v.Pending.ChangeID, l.codeOf(outsider), Approve); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("a non-approver approved the change: %v", err)
	}
	list, err := l.svc.PolicyChanges(l.ctx, bob.p)
	if err != nil || len(list) != 1 || list[0].ChangeID != v.Pending.ChangeID {
		t.Fatalf("bob's pending changes: %+v %v", list, err)
	}
	done, err := l.svc.DecidePolicyChange(l.ctx, bob.p, v.Pending.ChangeID, l.codeOf(bob), Approve)
	if err != nil || done.Status != countersign.PolicyChangeApplied {
		t.Fatalf("bob's approval: %+v %v", done, err)
	}
	if now, _ := l.svc.store.Policy(l.ctx, countersign.PolicyWallet, l.wallet.ID); now.Hash != done.Hash {
		t.Fatal("the approved change was not applied")
	}
	if tx := l.prepare(); tx.Decision != "auto" {
		t.Fatalf("after the change: %s", tx.Decision)
	}
	actions, _ := l.trail(l.wallet.ID)
	for _, a := range []string{"policy.change_propose", "policy.change_approve", "policy.change"} {
		if !slices.Contains(actions, a) {
			t.Fatalf("%s not audited: %v", a, actions)
		}
	}
}

func TestLooseningRejectedAndSuperseded(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	l.setWalletPolicy(l.wallet.ID, quorum2)
	loose := `{"rules": [{"id": "two", "when": {}, "then": "human"}], "default": "human"}`
	v, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyWallet, l.wallet.ID, []byte(loose), l.code())
	if err != nil || v.Pending == nil {
		t.Fatalf("loosening: %+v %v", v, err)
	}
	if c, err := l.svc.DecidePolicyChange(l.ctx, bob.p, v.Pending.ChangeID, l.codeOf(bob), Reject); err != nil || c.Status != countersign.PolicyChangeRejected {
		t.Fatalf("reject: %+v %v", c, err)
	}
	if _, err := l.svc.DecidePolicyChange(l.ctx, bob.p, v.Pending.ChangeID, l.codeOf(bob), Approve); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("approved a rejected change: %v", err)
	}
	// Proposed against one policy, approved after another was stored: superseded.
	v, err = l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyWallet, l.wallet.ID, []byte(loose), l.code())
	if err != nil || v.Pending == nil {
		t.Fatalf("loosening again: %+v %v", v, err)
	}
	l.setWalletPolicy(l.wallet.ID, `{"rules": [{"id": "two", "when": {}, "then": "quorum", "quorum": 2}, {"id": "x", "when": {}, "then": "deny"}], "default": "deny"}`)
	if _, err := l.svc.DecidePolicyChange(l.ctx, bob.p, v.Pending.ChangeID, l.codeOf(bob), Approve); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("a change approved over another policy: %v", err)
	}
	if c, _ := l.svc.store.PolicyChange(l.ctx, v.Pending.ChangeID); c.Status != countersign.PolicyChangeSuperseded {
		t.Fatalf("change is %s, want superseded", c.Status)
	}
	if now, _ := l.svc.store.Policy(l.ctx, countersign.PolicyWallet, l.wallet.ID); now.Hash == v.Pending.Hash || !strings.Contains(now.Document, "deny") {
		t.Fatalf("the superseded change applied: %s", now.Document)
	}
}

// flakyAuthorize fails the first write of an authorized row (a grouped
// part giving up on a lock, say) and from then on reads no policy, so the
// prepare's rerun decides differently from its first run.
type flakyAuthorize struct {
	countersign.Store
	failed bool
}

func (s *flakyAuthorize) CreateTransaction(ctx context.Context, t *countersign.Transaction) error {
	if t.Status == countersign.StatusAuthorized && !s.failed { // an auto decision stores the row authorized
		s.failed = true
		return errors.New("the part gave up on a lock")
	}
	return s.Store.CreateTransaction(ctx, t)
}

func (s *flakyAuthorize) UpdateTransaction(ctx context.Context, t *countersign.Transaction) error {
	if t.Status == countersign.StatusAuthorized && !s.failed {
		s.failed = true
		return errors.New("the part gave up on a lock")
	}
	return s.Store.UpdateTransaction(ctx, t)
}

func (s *flakyAuthorize) Policy(ctx context.Context, level countersign.PolicyLevel, id string) (*countersign.PolicyRecord, error) {
	if s.failed {
		return nil, countersign.Errorf(countersign.NotFound, "no policy")
	}
	return s.Store.Policy(ctx, level, id)
}

// A prepare whose first run an auto rule authorized (moving expires_at to
// AUTHORIZED_TTL) and whose rerun leaves pending keeps the approval
// window: before, the rerun kept the authorized deadline and the request
// expired 23 h early.
func TestApproval_PrepareRerunKeepsTheApprovalWindow(t *testing.T) {
	l := newLifecycle(t)
	l.setWalletPolicy(l.wallet.ID, `{"rules": [{"id": "small", "when": {"kind": ["native"]}, "then": "auto", "budget": {"max": "1000000", "window": "24h"}}], "default": "human"}`)
	flaky := &flakyAuthorize{Store: l.svc.store}
	l.svc.store = flaky
	tx := l.prepare()
	l.svc.store = flaky.Store
	if !flaky.failed {
		t.Fatal("the first run did not authorize")
	}
	r := l.row(tx.ID)
	if r.Status != countersign.StatusPending || !r.ExpiresAt.Equal(r.CreatedAt.Add(l.svc.cfg.PendingTTL)) {
		t.Fatalf("rerun: %s, created %s, expires %s (want PENDING_TTL after)", r.Status, r.CreatedAt, r.ExpiresAt)
	}
}
