package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testApprovers: invitations, approvers, approvals (one per person, a
// withdrawn one replaced), freezes and their lifts, and the inbox filter
// that adds the wallets a user approves.
func testApprovers(t *testing.T, s countersign.Store) {
	for _, id := range []string{"u1", "u2", "u3"} {
		if err := s.CreateUser(ctx, user(id)); err != nil {
			t.Fatal(err)
		}
	}
	for _, w := range []*countersign.Wallet{{ID: "wa", OwnerID: "u1", Address: "0xA1", KeySealed: []byte{1}}, {ID: "wb", OwnerID: "u1", Address: "0xB1", KeySealed: []byte{1}}, {ID: "wc", OwnerID: "u3", Address: "0xC1", KeySealed: []byte{1}}} {
		w.CreatedAt = time.Unix(1700000000, 0).UTC()
		if err := s.CreateWallet(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Unix(1700000100, 0).UTC()

	// invitations
	inv := &countersign.Invitation{ID: "i1", WalletID: "wa", OwnerID: "u1", InviteeID: "u2", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := s.CreateInvitation(ctx, inv); err != nil {
		t.Fatal(err)
	}
	if open, err := s.InvitationsFor(ctx, "u2"); err != nil || len(open) != 1 || open[0].ID != "i1" || !open[0].ExpiresAt.Equal(inv.ExpiresAt) {
		t.Fatalf("InvitationsFor: %+v %v", open, err)
	}
	if err := s.AcceptInvitation(ctx, "i1", at); err != nil {
		t.Fatal(err)
	}
	if err := s.AcceptInvitation(ctx, "i1", at); code(err) != countersign.Conflict {
		t.Fatalf("accepted twice: %v", err)
	}
	if err := s.AcceptInvitation(ctx, "nope", at); code(err) != countersign.NotFound {
		t.Fatalf("unknown invitation: %v", err)
	}
	if got, err := s.Invitation(ctx, "i1"); err != nil || !got.AcceptedAt.Equal(at) {
		t.Fatalf("Invitation: %+v %v", got, err)
	}
	if open, _ := s.InvitationsFor(ctx, "u2"); len(open) != 0 {
		t.Fatalf("an accepted invitation is still open: %+v", open)
	}

	// approvers
	if err := s.AddApprover(ctx, &countersign.Approver{WalletID: "wa", UserID: "u2", AddedBy: "u1", AddedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddApprover(ctx, &countersign.Approver{WalletID: "wa", UserID: "u2", AddedBy: "u1", AddedAt: at}); code(err) != countersign.Conflict {
		t.Fatalf("approver added twice: %v", err)
	}
	if list, err := s.Approvers(ctx, "wa"); err != nil || len(list) != 1 || list[0].UserID != "u2" || !list[0].AddedAt.Equal(at) {
		t.Fatalf("Approvers: %+v %v", list, err)
	}
	if ws, err := s.ApproverWallets(ctx, "u2"); err != nil || len(ws) != 1 || ws[0] != "wa" {
		t.Fatalf("ApproverWallets: %v %v", ws, err)
	}

	// the inbox: u2 sees wa's transactions, not wb's (same owner) nor wc's
	for _, tx := range []*countersign.Transaction{tx("ta", at, countersign.StatusPending), tx("tb", at, countersign.StatusPending), tx("tc", at, countersign.StatusPending)} {
		tx.WalletID = "w" + tx.ID[1:]
		if tx.ID == "tc" {
			tx.OwnerID = "u3"
		}
		if err := s.CreateTransaction(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	if list, err := s.Transactions(ctx, countersign.TxFilter{OwnerID: "u2", ApproverOf: []string{"wa"}}); err != nil || len(list) != 1 || list[0].ID != "ta" {
		t.Fatalf("approver's inbox: %v %v", ids(list), err)
	}
	if list, err := s.Transactions(ctx, countersign.TxFilter{OwnerID: "u2"}); err != nil || len(list) != 0 {
		t.Fatalf("inbox without ApproverOf: %v %v", ids(list), err)
	}

	// approvals: one per person
	ap := &countersign.Approval{TransactionID: "ta", UserID: "u2", Digest: []byte{7}, At: at}
	if err := s.AddApproval(ctx, ap); err != nil {
		t.Fatal(err)
	}
	if err := s.AddApproval(ctx, &countersign.Approval{TransactionID: "ta", UserID: "u2", Digest: []byte{7}, At: at.Add(time.Second)}); code(err) != countersign.Conflict {
		t.Fatalf("the same person approved twice: %v", err)
	}
	if err := s.AddApproval(ctx, &countersign.Approval{TransactionID: "ta", UserID: "u1", Digest: []byte{7}, At: at.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	list, err := s.Approvals(ctx, "ta")
	if err != nil || len(list) != 2 || list[0].UserID != "u2" || list[1].UserID != "u1" || !bytes.Equal(list[0].Digest, []byte{7}) || !list[0].At.Equal(at) {
		t.Fatalf("Approvals: %+v %v", list, err)
	}
	if err := s.WithdrawApproval(ctx, "ta", "u2", at.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.WithdrawApproval(ctx, "ta", "u2", at.Add(2*time.Second)); code(err) != countersign.NotFound {
		t.Fatalf("withdrawn twice: %v", err)
	}
	if list, _ := s.Approvals(ctx, "ta"); len(list) != 1 || list[0].UserID != "u1" {
		t.Fatalf("a withdrawn approval still counts: %+v", list)
	}
	if err := s.AddApproval(ctx, &countersign.Approval{TransactionID: "ta", UserID: "u2", Digest: []byte{7}, At: at.Add(3 * time.Second)}); err != nil {
		t.Fatalf("approve again after withdrawing: %v", err)
	}
	if list, _ := s.Approvals(ctx, "ta"); len(list) != 2 {
		t.Fatalf("re-approval: %+v", list)
	}

	// approver removal
	if err := s.RemoveApprover(ctx, "wa", "u2"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveApprover(ctx, "wa", "u2"); code(err) != countersign.NotFound {
		t.Fatalf("removed twice: %v", err)
	}
	if ws, _ := s.ApproverWallets(ctx, "u2"); len(ws) != 0 {
		t.Fatalf("removed approver still approves %v", ws)
	}

	// freezes
	f := &countersign.Freeze{ID: "f1", OwnerID: "u1", WalletID: "wa", By: "user:u2", At: at}
	if err := s.AddFreeze(ctx, f); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFreeze(ctx, &countersign.Freeze{ID: "f2", OwnerID: "u1", WalletID: "wa", By: "user:u1", At: at}); code(err) != countersign.Conflict {
		t.Fatalf("frozen twice: %v", err)
	}
	if err := s.AddFreeze(ctx, &countersign.Freeze{ID: "f3", OwnerID: "u1", By: "user:u1", At: at.Add(time.Second)}); err != nil {
		t.Fatalf("owner-wide freeze beside a wallet's: %v", err)
	}
	if fs, err := s.Freezes(ctx, "u1"); err != nil || len(fs) != 2 || fs[0].ID != "f1" || fs[0].WalletID != "wa" || fs[0].By != "user:u2" || fs[1].WalletID != "" {
		t.Fatalf("Freezes: %+v %v", fs, err)
	}
	if fs, _ := s.Freezes(ctx, "u3"); len(fs) != 0 {
		t.Fatalf("another owner's freezes: %+v", fs)
	}
	if err := s.AddFreezeLift(ctx, &countersign.FreezeLift{FreezeID: "f1", UserID: "u1", At: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddFreezeLift(ctx, &countersign.FreezeLift{FreezeID: "f1", UserID: "u1", At: at}); code(err) != countersign.Conflict {
		t.Fatalf("lift counted twice: %v", err)
	}
	if ls, err := s.FreezeLifts(ctx, "f1"); err != nil || len(ls) != 1 || ls[0].UserID != "u1" {
		t.Fatalf("FreezeLifts: %+v %v", ls, err)
	}
	if err := s.DeleteFreeze(ctx, "f1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFreeze(ctx, "f1"); code(err) != countersign.NotFound {
		t.Fatalf("lifted twice: %v", err)
	}
	if ls, _ := s.FreezeLifts(ctx, "f1"); len(ls) != 0 {
		t.Fatalf("lifts outlive their freeze: %+v", ls)
	}

	// user webhooks: WebhooksOf is the user's own only
	if err := s.CreateWebhook(ctx, &countersign.Webhook{ID: "h1", OwnerID: "u2", URL: "https://example.com/h", Events: []string{"*"}, SecretSealed: []byte{1}, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWebhook(ctx, &countersign.Webhook{ID: "h2", OwnerID: "daemon", URL: "https://example.com/d", Events: []string{"*"}, SecretSealed: []byte{1}, CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	if hs, err := s.WebhooksOf(ctx, "u2"); err != nil || len(hs) != 1 || hs[0].ID != "h1" {
		t.Fatalf("WebhooksOf: %+v %v", hs, err)
	}

	// pending policy changes
	pc := &countersign.PolicyChange{ID: "pc1", OwnerID: "u1", WalletID: "wa", Level: countersign.PolicyWallet, SubjectID: "wa", Document: `{"rules":[]}`,
		Hash: "h", BaseHash: "b", ProposedBy: "user:u1", Needed: 2, Status: countersign.PolicyChangePending, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := s.CreatePolicyChange(ctx, pc); err != nil {
		t.Fatal(err)
	}
	if got, err := s.PolicyChange(ctx, "pc1"); err != nil || got.Document != pc.Document || got.Needed != 2 || got.BaseHash != "b" || !got.ExpiresAt.Equal(pc.ExpiresAt) || got.Level != countersign.PolicyWallet {
		t.Fatalf("PolicyChange: %+v %v", got, err)
	}
	if _, err := s.PolicyChange(ctx, "nope"); code(err) != countersign.NotFound {
		t.Fatalf("unknown change: %v", err)
	}
	if list, err := s.PolicyChangesOf(ctx, "wa", countersign.PolicyChangePending); err != nil || len(list) != 1 {
		t.Fatalf("PolicyChangesOf: %+v %v", list, err)
	}
	if err := s.AddPolicyChangeApproval(ctx, &countersign.PolicyChangeApproval{ChangeID: "pc1", UserID: "u1", At: at}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPolicyChangeApproval(ctx, &countersign.PolicyChangeApproval{ChangeID: "pc1", UserID: "u1", At: at}); code(err) != countersign.Conflict {
		t.Fatalf("change approved twice by one person: %v", err)
	}
	if list, err := s.PolicyChangeApprovals(ctx, "pc1"); err != nil || len(list) != 1 || list[0].UserID != "u1" {
		t.Fatalf("PolicyChangeApprovals: %+v %v", list, err)
	}
	if err := s.SetPolicyChangeStatus(ctx, "pc1", countersign.PolicyChangeApplied, at); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPolicyChangeStatus(ctx, "pc1", countersign.PolicyChangeRejected, at); code(err) != countersign.Conflict {
		t.Fatalf("a decided change changed again: %v", err)
	}
	if list, _ := s.PolicyChangesOf(ctx, "wa", countersign.PolicyChangePending); len(list) != 0 {
		t.Fatalf("an applied change is still pending: %+v", list)
	}
}
