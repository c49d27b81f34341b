package postgres

import (
	"context"
	"time"

	"github.com/countersign/countersign"
)

// Approvers, invitations, approvals and freezes (countersign.ApprovalStore;
// migration 00013).

var _ countersign.ApprovalStore = (*Store)(nil)

const invitationCols = `id, wallet_id, owner_id, invitee_id, created_at, expires_at, accepted_at`

func scanInvitation(r interface{ Scan(...any) error }) (*countersign.Invitation, error) {
	var inv countersign.Invitation
	var created, expires, accepted int64
	if err := r.Scan(&inv.ID, &inv.WalletID, &inv.OwnerID, &inv.InviteeID, &created, &expires, &accepted); err != nil {
		return nil, err
	}
	inv.CreatedAt, inv.ExpiresAt, inv.AcceptedAt = fromTS(created), fromTS(expires), fromTS(accepted)
	return &inv, nil
}

func (s *Store) CreateInvitation(ctx context.Context, inv *countersign.Invitation) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO approver_invitations (`+invitationCols+`) VALUES (?,?,?,?,?,?,?)`,
		inv.ID, inv.WalletID, inv.OwnerID, inv.InviteeID, ts(inv.CreatedAt), ts(inv.ExpiresAt), ts(inv.AcceptedAt))
	return conflict(err, "invitation exists")
}

func (s *Store) Invitation(ctx context.Context, id string) (*countersign.Invitation, error) {
	inv, err := scanInvitation(s.reader(ctx).QueryRowContext(ctx, `SELECT `+invitationCols+` FROM approver_invitations WHERE id = ?`, id))
	return inv, notFound("invitation", err)
}

func (s *Store) InvitationsFor(ctx context.Context, invitee string) ([]*countersign.Invitation, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+invitationCols+` FROM approver_invitations WHERE invitee_id = ? AND accepted_at = 0 ORDER BY created_at, id COLLATE "C"`, invitee)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanInvitation)
}

func (s *Store) AcceptInvitation(ctx context.Context, id string, at time.Time) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE approver_invitations SET accepted_at = ? WHERE id = ? AND accepted_at = 0`, ts(at), id)
	if err := mustAffect(res, err, "invitation"); err != nil {
		if _, lerr := s.Invitation(ctx, id); lerr == nil {
			return countersign.Errorf(countersign.Conflict, "the invitation was already accepted")
		}
		return err
	}
	return nil
}

func scanApprover(r interface{ Scan(...any) error }) (*countersign.Approver, error) {
	var a countersign.Approver
	var at int64
	if err := r.Scan(&a.WalletID, &a.UserID, &a.AddedBy, &at); err != nil {
		return nil, err
	}
	a.AddedAt = fromTS(at)
	return &a, nil
}

func (s *Store) AddApprover(ctx context.Context, a *countersign.Approver) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO wallet_approvers (wallet_id, user_id, added_by, added_at) VALUES (?,?,?,?)`,
		a.WalletID, a.UserID, a.AddedBy, ts(a.AddedAt))
	return conflict(err, "the user is already an approver of this wallet")
}

func (s *Store) RemoveApprover(ctx context.Context, walletID, userID string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM wallet_approvers WHERE wallet_id = ? AND user_id = ?`, walletID, userID)
	return mustAffect(res, err, "approver")
}

func (s *Store) Approvers(ctx context.Context, walletID string) ([]*countersign.Approver, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT wallet_id, user_id, added_by, added_at FROM wallet_approvers WHERE wallet_id = ? ORDER BY added_at, user_id COLLATE "C"`, walletID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanApprover)
}

func (s *Store) ApproverWallets(ctx context.Context, userID string) ([]string, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT wallet_id FROM wallet_approvers WHERE user_id = ? ORDER BY wallet_id COLLATE "C"`, userID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
}

func (s *Store) AddApproval(ctx context.Context, a *countersign.Approval) error {
	// A withdrawn approval is replaced; an active one is a Conflict (the
	// WHERE of the upsert leaves it untouched, so nothing is affected).
	res, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO tx_approvals (transaction_id, user_id, digest, at, withdrawn_at) VALUES (?,?,?,?,0)
 ON CONFLICT (transaction_id, user_id) DO UPDATE SET digest = excluded.digest, at = excluded.at, withdrawn_at = 0 WHERE tx_approvals.withdrawn_at != 0`,
		a.TransactionID, a.UserID, a.Digest, ts(a.At))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return countersign.Errorf(countersign.Conflict, "you have already approved this transaction")
	}
	return nil
}

func (s *Store) Approvals(ctx context.Context, txID string) ([]*countersign.Approval, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT transaction_id, user_id, digest, at, withdrawn_at FROM tx_approvals WHERE transaction_id = ? AND withdrawn_at = 0 ORDER BY at, user_id COLLATE "C"`, txID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.Approval, error) {
		var a countersign.Approval
		var at, withdrawn int64
		if err := r.Scan(&a.TransactionID, &a.UserID, &a.Digest, &at, &withdrawn); err != nil {
			return nil, err
		}
		a.At, a.WithdrawnAt = fromTS(at), fromTS(withdrawn)
		return &a, nil
	})
}

func (s *Store) WithdrawApproval(ctx context.Context, txID, userID string, at time.Time) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE tx_approvals SET withdrawn_at = ? WHERE transaction_id = ? AND user_id = ? AND withdrawn_at = 0`, ts(at), txID, userID)
	return mustAffect(res, err, "approval")
}

func (s *Store) AddFreeze(ctx context.Context, f *countersign.Freeze) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO freezes (id, owner_id, wallet_id, by_actor, at) VALUES (?,?,?,?,?)`,
		f.ID, f.OwnerID, f.WalletID, f.By, ts(f.At))
	return conflict(err, "already frozen")
}

func (s *Store) Freezes(ctx context.Context, ownerID string) ([]*countersign.Freeze, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT id, owner_id, wallet_id, by_actor, at FROM freezes WHERE owner_id = ? ORDER BY at, id COLLATE "C"`, ownerID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.Freeze, error) {
		var f countersign.Freeze
		var at int64
		if err := r.Scan(&f.ID, &f.OwnerID, &f.WalletID, &f.By, &at); err != nil {
			return nil, err
		}
		f.At = fromTS(at)
		return &f, nil
	})
}

func (s *Store) DeleteFreeze(ctx context.Context, id string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM freezes WHERE id = ?`, id)
	if err := mustAffect(res, err, "freeze"); err != nil {
		return err
	}
	_, err = s.writer(ctx).ExecContext(ctx, `DELETE FROM freeze_lifts WHERE freeze_id = ?`, id)
	return err
}

// AddFreezeLift first locks the freeze's row (inside a transaction): the
// caller then counts the lifts, and two approvers lifting at once must not
// each count only their own and leave a quorum's freeze on for good.
func (s *Store) AddFreezeLift(ctx context.Context, l *countersign.FreezeLift) error {
	if inTx(ctx) {
		if _, err := s.writer(ctx).ExecContext(ctx, `SELECT 1 FROM freezes WHERE id = ? FOR UPDATE`, l.FreezeID); err != nil {
			return err
		}
	}
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO freeze_lifts (freeze_id, user_id, at) VALUES (?,?,?)`, l.FreezeID, l.UserID, ts(l.At))
	return conflict(err, "you have already agreed to lift this freeze")
}

func (s *Store) FreezeLifts(ctx context.Context, freezeID string) ([]*countersign.FreezeLift, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT freeze_id, user_id, at FROM freeze_lifts WHERE freeze_id = ? ORDER BY at, user_id COLLATE "C"`, freezeID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.FreezeLift, error) {
		var l countersign.FreezeLift
		var at int64
		if err := r.Scan(&l.FreezeID, &l.UserID, &at); err != nil {
			return nil, err
		}
		l.At = fromTS(at)
		return &l, nil
	})
}

func (s *Store) WebhooksOf(ctx context.Context, userID string) ([]*countersign.Webhook, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT id, owner_id, url, events, secret_sealed, created_at FROM webhooks WHERE owner_id = ? ORDER BY created_at`, userID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanWebhook)
}

const policyChangeCols = `id, owner_id, wallet_id, level, subject_id, document, hash, base_hash, proposed_by, needed, status, created_at, expires_at, decided_at`

func scanPolicyChange(r interface{ Scan(...any) error }) (*countersign.PolicyChange, error) {
	var c countersign.PolicyChange
	var created, expires, decided int64
	if err := r.Scan(&c.ID, &c.OwnerID, &c.WalletID, &c.Level, &c.SubjectID, &c.Document, &c.Hash, &c.BaseHash, &c.ProposedBy, &c.Needed, &c.Status,
		&created, &expires, &decided); err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt, c.DecidedAt = fromTS(created), fromTS(expires), fromTS(decided)
	return &c, nil
}

func (s *Store) CreatePolicyChange(ctx context.Context, c *countersign.PolicyChange) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO policy_changes (`+policyChangeCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		c.ID, c.OwnerID, c.WalletID, c.Level, c.SubjectID, c.Document, c.Hash, c.BaseHash, c.ProposedBy, c.Needed, c.Status,
		ts(c.CreatedAt), ts(c.ExpiresAt), ts(c.DecidedAt))
	return conflict(err, "policy change exists")
}

// PolicyChange locks the row inside a transaction (FOR UPDATE): approvals
// are counted against it and the change applied once.
func (s *Store) PolicyChange(ctx context.Context, id string) (*countersign.PolicyChange, error) {
	c, err := scanPolicyChange(s.reader(ctx).QueryRowContext(ctx, `SELECT `+policyChangeCols+` FROM policy_changes WHERE id = ?`+forUpdate(ctx), id))
	return c, notFound("policy change", err)
}

func (s *Store) PolicyChangesOf(ctx context.Context, walletID, status string) ([]*countersign.PolicyChange, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+policyChangeCols+` FROM policy_changes WHERE wallet_id = ? AND status = ? ORDER BY created_at, id COLLATE "C"`, walletID, status)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanPolicyChange)
}

func (s *Store) SetPolicyChangeStatus(ctx context.Context, id, status string, at time.Time) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE policy_changes SET status = ?, decided_at = ? WHERE id = ? AND status = ?`, status, ts(at), id, countersign.PolicyChangePending)
	if err := mustAffect(res, err, "policy change"); err != nil {
		if _, lerr := s.PolicyChange(ctx, id); lerr == nil {
			return countersign.Errorf(countersign.Conflict, "the policy change is no longer pending")
		}
		return err
	}
	return nil
}

func (s *Store) AddPolicyChangeApproval(ctx context.Context, a *countersign.PolicyChangeApproval) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO policy_change_approvals (change_id, user_id, at) VALUES (?,?,?)`, a.ChangeID, a.UserID, ts(a.At))
	return conflict(err, "you have already approved this policy change")
}

func (s *Store) PolicyChangeApprovals(ctx context.Context, changeID string) ([]*countersign.PolicyChangeApproval, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT change_id, user_id, at FROM policy_change_approvals WHERE change_id = ? ORDER BY at, user_id COLLATE "C"`, changeID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.PolicyChangeApproval, error) {
		var a countersign.PolicyChangeApproval
		var at int64
		if err := r.Scan(&a.ChangeID, &a.UserID, &at); err != nil {
			return nil, err
		}
		a.At = fromTS(at)
		return &a, nil
	})
}
