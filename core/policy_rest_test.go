package core

import (
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// The policy issue's loose ends (policy_rest.go): quorums checked against
// the approvers who can reach them, invitations the owner manages, the
// live stream for approvers, the users' webhooks, the owner's budgets.

// secondWallet makes another wallet of the owner with an agent of its own.
func (l *lifecycle) secondWallet() (*countersign.Wallet, *Principal) {
	l.t.Helper()
	w := &countersign.Wallet{ID: uuid.NewString(), OwnerID: l.user.ID, Name: "w2", CreatedAt: l.clock.Now()}
	var err error
	if w.Address, w.KeyFormat, w.KeySealed, err = l.svc.signer.NewKey(l.ctx, w.ID); err != nil {
		l.t.Fatal(err)
	}
	if err := l.svc.store.CreateWallet(l.ctx, w); err != nil {
		l.t.Fatal(err)
	}
	a := &countersign.Agent{ID: uuid.NewString(), OwnerID: l.user.ID, Name: "a2", WalletID: w.ID, KeyHash: []byte(uuid.NewString()), KeyPrefix: "cs_", CreatedAt: l.clock.Now()}
	if err := l.svc.store.CreateAgent(l.ctx, a); err != nil {
		l.t.Fatal(err)
	}
	return w, &Principal{User: l.user, Agent: a}
}

func TestPolicy_QuorumAboveTheApproversIsRefusedAtSave(t *testing.T) {
	l := newLifecycle(t)
	doc := `{"rules": [{"id": "one", "when": {"kind": ["erc20"]}, "then": "human"}, {"id": "two", "when": {}, "then": "quorum", "quorum": 2}]}`
	for _, c := range []struct {
		level countersign.PolicyLevel
		id    string
	}{{countersign.PolicyWallet, l.wallet.ID}, {countersign.PolicyAgent, l.agent.Agent.ID}} {
		_, err := l.svc.SetPolicy(l.ctx, l.human, c.level, c.id, []byte(doc), l.code())
		if countersign.ErrorCode(err) != countersign.BadRequest || !strings.HasPrefix(countersign.ErrorDetail(err), "rules[1].quorum: ") ||
			!strings.Contains(countersign.ErrorDetail(err), "the wallet has 1 approver(s)") {
			t.Fatalf("%s: quorum 2 with only the owner: %v", c.level, err)
		}
		if v, err := l.svc.Policy(l.ctx, l.human, c.level, c.id); err != nil || v != nil {
			t.Fatalf("%s: a refused policy was stored: %+v %v", c.level, v, err)
		}
	}
	// overflow to a quorum counts too
	over := `{"rules": [{"id": "cap", "when": {"kind": ["native"]}, "then": "auto", "budget": {"max": "10", "window": "1h"}, "overflow": "quorum", "quorum": 3}]}`
	if _, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyWallet, l.wallet.ID, []byte(over), l.code()); !strings.HasPrefix(countersign.ErrorDetail(err), "rules[0].quorum: a quorum of 3") {
		t.Fatalf("overflow quorum 3 with only the owner: %v", err)
	}
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	if _, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyWallet, l.wallet.ID, []byte(doc), l.code()); err != nil {
		t.Fatalf("quorum 2 with two approvers: %v", err)
	}
	three := strings.Replace(doc, `"quorum": 2`, `"quorum": 3`, 1)
	if _, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyAgent, l.agent.Agent.ID, []byte(three), l.code()); countersign.ErrorCode(err) != countersign.BadRequest ||
		!strings.Contains(countersign.ErrorDetail(err), "the wallet has 2 approver(s)") {
		t.Fatalf("quorum 3 with two approvers: %v", err)
	}
}

func TestSecurity_RemovingAnApproverCannotLowerTheQuorum(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	if _, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyWallet, l.wallet.ID, []byte(quorum2), l.code()); err != nil {
		t.Fatal(err)
	}
	tx := l.prepare()
	if tx.ApprovalsNeeded != 2 {
		t.Fatalf("prepared with %d approvals needed", tx.ApprovalsNeeded)
	}
	if err := l.approveAs(bob, tx.ID); err != nil {
		t.Fatal(err)
	}
	// The owner removing bob, or bob leaving, would leave a quorum of 2
	// with one approver: refused, nothing changes.
	if err := l.svc.RemoveApprover(l.ctx, l.human, l.wallet.ID, bob.p.User.ID, l.code()); countersign.ErrorCode(err) != countersign.Conflict ||
		!strings.Contains(countersign.ErrorDetail(err), "quorum of 2") {
		t.Fatalf("removal under a quorum of 2: %v", err)
	}
	if err := l.svc.RemoveApprover(l.ctx, bob.p, l.wallet.ID, bob.p.User.ID, l.codeOf(bob)); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("self-removal under a quorum of 2: %v", err)
	}
	if ok, _ := l.svc.isApprover(l.ctx, l.wallet, bob.p.User.ID); !ok {
		t.Fatal("bob was removed")
	}
	// Once no policy asks for the quorum the removal goes through, and the
	// request prepared under it still needs two current approvers: bob's
	// approval no longer counts, so the owner alone cannot authorize it.
	l.setWalletPolicy(l.wallet.ID, `{"rules": [], "default": "human"}`)
	if err := l.svc.RemoveApprover(l.ctx, l.human, l.wallet.ID, bob.p.User.ID, l.code()); err != nil {
		t.Fatal(err)
	}
	if _, err := l.decide(tx.ID, Approve, ""); err != nil {
		t.Fatal(err)
	}
	if r := l.row(tx.ID); r.Status != countersign.StatusPending {
		t.Fatalf("a quorum-2 request was authorized by one current approver after a removal: %s", r.Status)
	}
}

func TestSecurity_EventStreamApproverSeesOnlyTheirWallet(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	_, agent2 := l.secondWallet()
	st, err := l.svc.OpenEventStream(l.ctx, bob.p)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	after, err := st.LastID(l.ctx)
	if err != nil {
		t.Fatal(err)
	}
	mine := l.prepare()
	select {
	case <-st.Wake():
	case <-time.After(5 * time.Second):
		t.Fatal("the approver's stream was not woken by the wallet's event")
	}
	other, err := l.svc.Prepare(l.ctx, agent2, &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: "5"}, "")
	if err != nil {
		t.Fatal(err)
	}
	page, next, more, err := st.Next(l.ctx, after)
	if err != nil || more {
		t.Fatal(err, more)
	}
	var types []string
	for _, e := range page {
		if e.Subject == other.ID || e.Subject == agent2.Agent.WalletID || e.Subject == agent2.Agent.ID {
			t.Fatalf("the approver of wallet A sees wallet B's event %s", e.Type)
		}
		if e.Subject == mine.ID {
			types = append(types, e.Type)
		}
	}
	if !slices.Contains(types, "transaction.pending") {
		t.Fatalf("the approver's stream lacks the wallet's transaction.pending: %v", types)
	}
	// The owner's stream is unchanged: every event of the chain.
	own, err := l.svc.OpenEventStream(l.ctx, l.human)
	if err != nil {
		t.Fatal(err)
	}
	defer own.Close()
	ownPage, _, _, err := own.Next(l.ctx, after)
	if err != nil {
		t.Fatal(err)
	}
	chain, err := l.svc.store.EventsAfter(l.ctx, l.user.ID, after, 100)
	if err != nil || len(ownPage) != len(chain) {
		t.Fatalf("the owner's stream has %d events, the chain %d (%v)", len(ownPage), len(chain), err)
	}
	// Removed, bob sees nothing new of the wallet.
	if err := l.svc.RemoveApprover(l.ctx, l.human, l.wallet.ID, bob.p.User.ID, l.code()); err != nil {
		t.Fatal(err)
	}
	later := l.prepare()
	page, _, _, err = st.Next(l.ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range page {
		if e.Subject == later.ID {
			t.Fatalf("a removed approver's stream still carries the wallet's %s", e.Type)
		}
	}
}

// A full page of another wallet's events must move the cursor on, not
// stall the approver's stream on it.
func TestEventStreamSkipsAFullPageOfOtherWallets(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	_, agent2 := l.secondWallet()
	st, err := l.svc.OpenEventStream(l.ctx, bob.p)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	after, _ := st.LastID(l.ctx)
	for range StreamPage + 5 {
		if _, err := l.svc.Prepare(l.ctx, agent2, &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: "5"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	mine := l.prepare()
	seen := false
	for i := 0; i < 10 && !seen; i++ {
		page, next, more, err := st.Next(l.ctx, after)
		if err != nil {
			t.Fatal(err)
		}
		if next <= after && more {
			t.Fatalf("the cursor did not move past a full page: %d", next)
		}
		for _, e := range page {
			seen = seen || e.Subject == mine.ID
		}
		after = next
	}
	if !seen {
		t.Fatal("the wallet's event behind a page of other events never arrived")
	}
}

func TestInvitations_OwnerListsAndRevokes(t *testing.T) {
	l := newLifecycle(t)
	bob, carol := l.newMFAUser("bob"), l.newMFAUser("carol")
	inv, err := l.svc.InviteApprover(l.ctx, l.human, l.wallet.ID, bob.p.User.Username, l.code())
	if err != nil {
		t.Fatal(err)
	}
	sent, err := l.svc.SentInvitations(l.ctx, l.human, l.wallet.ID)
	if err != nil || len(sent) != 1 || sent[0].ID != inv.ID || sent[0].InviteeUsername != bob.p.User.Username {
		t.Fatalf("the owner's sent invitations: %+v %v", sent, err)
	}
	got, err := l.svc.DescribedInvitations(l.ctx, bob.p)
	if err != nil || len(got) != 1 || got[0].WalletName != l.wallet.Name || got[0].WalletAddress != l.wallet.Address || got[0].OwnerUsername != l.user.Username {
		t.Fatalf("the invitee's view: %+v %v", got, err)
	}
	if err := l.svc.RevokeInvitation(l.ctx, carol.p, inv.ID); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("a stranger revoked an invitation: %v", err)
	}
	if err := l.svc.RevokeInvitation(l.ctx, l.human, inv.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.AcceptInvitation(l.ctx, bob.p, inv.ID, l.codeOf(bob)); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("a revoked invitation was accepted: %v", err)
	}
	if ok, _ := l.svc.isApprover(l.ctx, l.wallet, bob.p.User.ID); ok {
		t.Fatal("bob became an approver through a revoked invitation")
	}
	if a, _ := l.trail(l.wallet.ID); !slices.Contains(a, "approver.invitation_revoke") {
		t.Fatalf("revocation not audited: %v", a)
	}
	// An approver reads the approvers but not the owner's invitations.
	l.addApprover(l.wallet.ID, carol)
	if sent, err := l.svc.SentInvitations(l.ctx, carol.p, l.wallet.ID); err != nil || sent != nil {
		t.Fatalf("an approver read the owner's invitations: %+v %v", sent, err)
	}
	// The invitee may decline; an accepted invitation cannot be revoked.
	inv2, err := l.svc.InviteApprover(l.ctx, l.human, l.wallet.ID, bob.p.User.Username, l.code())
	if err != nil {
		t.Fatal(err)
	}
	if err := l.svc.RevokeInvitation(l.ctx, bob.p, inv2.ID); err != nil {
		t.Fatal(err)
	}
	if list, _ := l.svc.Invitations(l.ctx, bob.p); len(list) != 0 {
		t.Fatalf("a declined invitation is still open: %v", list)
	}
}

func TestApprovedWalletsAndWalletBudgets(t *testing.T) {
	l := newLifecycle(t)
	l.fund(l.wallet.Address, eth(1))
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	list, err := l.svc.ApprovedWallets(l.ctx, bob.p)
	if err != nil || len(list) != 1 || list[0].ID != l.wallet.ID || list[0].Owner {
		t.Fatalf("bob's approved wallets: %+v %v", list, err)
	}
	if own, err := l.svc.ApprovedWallets(l.ctx, l.human); err != nil || len(own) != 1 || !own[0].Owner {
		t.Fatalf("the owner's wallets: %+v %v", own, err)
	}
	l.setPolicy(countersign.PolicyWallet, l.wallet.ID, `{"rules": [{"id": "small", "when": {"kind": ["native"]}, "then": "auto", "budget": {"max": "1000", "window": "24h", "scope": "wallet"}}]}`)
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, `{"rules": [{"id": "mine", "when": {"kind": ["native"]}, "then": "auto", "budget": {"max": "5000", "window": "1h"}}]}`)
	if _, err := l.prepareAs(l.agent, l.native("300")); err != nil {
		t.Fatal(err)
	}
	bs, err := l.svc.WalletBudgets(l.ctx, l.human, l.wallet.ID)
	if err != nil || len(bs) != 2 {
		t.Fatalf("the owner's budgets: %+v %v", bs, err)
	}
	for _, b := range bs {
		if b.AgentID != l.agent.Agent.ID || b.Reserved != "300" {
			t.Fatalf("budget %+v", b)
		}
		if (b.RuleID == "small") != b.Shared {
			t.Fatalf("scope: %+v", b)
		}
	}
	if _, err := l.svc.WalletBudgets(l.ctx, bob.p, l.wallet.ID); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("an approver read the owner's budgets: %v", err)
	}
	stranger := l.newMFAUser("eve")
	if _, err := l.svc.WalletBudgets(l.ctx, stranger.p, l.wallet.ID); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("a stranger read the budgets: %v", err)
	}
	if got := l.svc.AssetUnits(l.ctx, big.NewInt(1e15), "native"); got != "0.001 "+NativeSymbol {
		t.Fatalf("native units: %q", got)
	}
	// a token budget in the token's units (TEST: 18 decimals), base units
	// for an address that is no ERC-20
	if got := l.svc.AssetUnits(l.ctx, big.NewInt(25e17), strings.ToLower(l.dev.Token.Hex())); got != "2.5 TEST" {
		t.Fatalf("token units: %q", got)
	}
	if got := l.svc.AssetUnits(l.ctx, big.NewInt(7), "0x00000000000000000000000000000000000000aa"); got != "7 base units of 0x00000000000000000000000000000000000000aa" {
		t.Fatalf("unknown token: %q", got)
	}
}

func TestUserWebhookAuditedAsTheUserAndDeleted(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	hook := &countersign.Webhook{ID: uuid.NewString(), OwnerID: bob.p.User.ID, URL: "https://example.com/h", Events: []string{"transaction.*"}, SecretSealed: []byte{1}, CreatedAt: l.clock.Now()}
	if err := l.svc.store.CreateWebhook(l.ctx, hook); err != nil {
		t.Fatal(err)
	}
	l.prepare()
	if ds, _ := l.svc.store.Deliveries(l.ctx, hook.ID, 10); len(ds) != 1 {
		t.Fatalf("deliveries before the delete: %d", len(ds))
	}
	if err := l.svc.DeleteUserWebhook(l.ctx, l.human, hook.ID); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("the wallet's owner deleted an approver's webhook: %v", err)
	}
	if err := l.svc.DeleteUserWebhook(l.ctx, bob.p, hook.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := l.svc.store.Webhook(l.ctx, hook.ID); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("the webhook is still there: %v", err)
	}
	due, err := l.svc.store.DueDeliveries(l.ctx, l.clock.Now().Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range due {
		if d.WebhookID == hook.ID {
			t.Fatal("a deleted webhook's delivery is still due")
		}
	}
	l.prepare() // queues nothing for it, fails nothing
	entries, err := l.svc.store.AuditEntries(l.ctx, bob.p.User.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(entries, func(e *countersign.AuditEntry) bool {
		return e.Action == "webhook.delete" && e.Actor == "user:"+bob.p.User.ID
	}) {
		t.Fatal("the delete is not audited as the user")
	}
}

// A loosening change proposed when its quorum was reachable is not
// applied once approvers have left so that it no longer is.
func TestSecurity_PendingChangeWithAnUnreachableQuorumDoesNotApply(t *testing.T) {
	l := newLifecycle(t)
	bob, carol := l.newMFAUser("bob"), l.newMFAUser("carol")
	l.addApprover(l.wallet.ID, bob)
	l.addApprover(l.wallet.ID, carol)
	if _, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyWallet, l.wallet.ID, []byte(quorum2), l.code()); err != nil {
		t.Fatal(err)
	}
	loose := `{"rules": [{"id": "sign", "when": {"kind": ["personal_sign"]}, "then": "auto"}, {"id": "three", "when": {}, "then": "quorum", "quorum": 3}]}`
	v, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyWallet, l.wallet.ID, []byte(loose), l.code())
	if err != nil || v.Pending == nil {
		t.Fatalf("the loosening change did not wait for the quorum: %+v %v", v, err)
	}
	if err := l.svc.RemoveApprover(l.ctx, l.human, l.wallet.ID, carol.p.User.ID, l.code()); err != nil {
		t.Fatal(err) // the policy in force asks for 2; two remain
	}
	if _, err := l.svc.DecidePolicyChange(l.ctx, bob.p, v.Pending.ChangeID, l.codeOf(bob), Approve); countersign.ErrorCode(err) != countersign.Conflict ||
		!strings.Contains(countersign.ErrorDetail(err), "rules[1].quorum") {
		t.Fatalf("a change with a quorum of 3 applied with 2 approvers: %v", err)
	}
	cur, err := l.svc.Policy(l.ctx, l.human, countersign.PolicyWallet, l.wallet.ID)
	if err != nil || cur.Document.MaxQuorum() != 2 {
		t.Fatalf("the policy in force changed: %+v %v", cur, err)
	}
}
