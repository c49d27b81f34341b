package postgres

import (
	"context"
	"time"

	"github.com/countersign/countersign"
)

// Credit top-ups (countersign.TopupStore; migration 00019).

var _ countersign.TopupStore = (*Store)(nil)

const topupCols = `id, owner_id, agent_id, wallet_id, provider, amount_cents, automatic, status, charge_id, charge, charge_expires_at,
 approval_transaction_id, transaction_id, tx_hash, error, attempts, claimed_by, claimed_until, created_at, updated_at`

func scanTopup(r interface{ Scan(...any) error }) (*countersign.Topup, error) {
	var t countersign.Topup
	var exp, until, created, updated int64
	if err := r.Scan(&t.ID, &t.OwnerID, &t.AgentID, &t.WalletID, &t.Provider, &t.AmountCents, &t.Automatic, &t.Status, &t.ChargeID, &t.Charge, &exp,
		&t.ApprovalTxID, &t.TransactionID, &t.TxHash, &t.Error, &t.Attempts, &t.ClaimedBy, &until, &created, &updated); err != nil {
		return nil, err
	}
	t.ChargeExpiresAt, t.ClaimedUntil, t.CreatedAt, t.UpdatedAt = fromTS(exp), fromTS(until), fromTS(created), fromTS(updated)
	return &t, nil
}

func (s *Store) CreateTopup(ctx context.Context, t *countersign.Topup) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO topups (`+topupCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		t.ID, t.OwnerID, t.AgentID, t.WalletID, t.Provider, t.AmountCents, t.Automatic, t.Status, t.ChargeID, t.Charge, ts(t.ChargeExpiresAt),
		t.ApprovalTxID, t.TransactionID, t.TxHash, t.Error, t.Attempts, t.ClaimedBy, ts(t.ClaimedUntil), ts(t.CreatedAt), ts(t.UpdatedAt))
	return conflict(err, "a top-up with this id, or an open automatic top-up for this wallet and provider, exists already")
}

func (s *Store) Topup(ctx context.Context, id string) (*countersign.Topup, error) {
	t, err := scanTopup(s.reader(ctx).QueryRowContext(ctx, `SELECT `+topupCols+` FROM topups WHERE id = ?`, id))
	return t, notFound("top-up", err)
}

func (s *Store) TopupByTransaction(ctx context.Context, txID string) (*countersign.Topup, error) {
	if txID == "" {
		return nil, countersign.Errorf(countersign.NotFound, "top-up not found")
	}
	t, err := scanTopup(s.reader(ctx).QueryRowContext(ctx, `SELECT `+topupCols+` FROM topups WHERE transaction_id = ? OR approval_transaction_id = ? LIMIT 1`, txID, txID))
	return t, notFound("top-up", err)
}

func (s *Store) Topups(ctx context.Context, f countersign.TopupFilter) ([]*countersign.Topup, error) {
	q, args := `SELECT `+topupCols+` FROM topups WHERE owner_id = ?`, []any{f.OwnerID}
	if f.AgentID != "" {
		q, args = q+` AND agent_id = ?`, append(args, f.AgentID)
	}
	if f.Status != "" {
		q, args = q+` AND status = ?`, append(args, f.Status)
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.reader(ctx).QueryContext(ctx, q+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTopup)
}

func (s *Store) OpenTopups(ctx context.Context, limit int) ([]*countersign.Topup, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+topupCols+` FROM topups WHERE status NOT IN ('confirmed', 'failed') ORDER BY created_at, id LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTopup)
}

func (s *Store) ClaimTopup(ctx context.Context, id, holder string, now time.Time, lease time.Duration) (bool, error) {
	if holder == "" || lease <= 0 {
		return false, countersign.Errorf(countersign.BadRequest, "a claim needs a holder and a positive lease")
	}
	// One statement: of two replicas claiming at once, the second finds
	// the row no longer free and changes nothing.
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE topups SET claimed_by = ?, claimed_until = ?
 WHERE id = ? AND status NOT IN ('confirmed', 'failed') AND (claimed_by = '' OR claimed_by = ? OR claimed_until <= ?)`,
		holder, ts(now.Add(lease)), id, holder, ts(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (s *Store) ReleaseTopup(ctx context.Context, id, holder string) error {
	_, err := s.writer(ctx).ExecContext(ctx, `UPDATE topups SET claimed_by = '', claimed_until = 0 WHERE id = ? AND claimed_by = ?`, id, holder)
	return err
}

func (s *Store) UpdateTopup(ctx context.Context, t *countersign.Topup, from countersign.TopupStatus, holder string) error {
	res, err := s.unique(ctx).ExecContext(ctx, `UPDATE topups SET status = ?, charge_id = ?, charge = ?, charge_expires_at = ?, approval_transaction_id = ?,
 transaction_id = ?, tx_hash = ?, error = ?, attempts = ?, updated_at = ? WHERE id = ? AND status = ? AND claimed_by = ?`,
		t.Status, t.ChargeID, t.Charge, ts(t.ChargeExpiresAt), t.ApprovalTxID, t.TransactionID, t.TxHash, t.Error, t.Attempts, ts(t.UpdatedAt),
		t.ID, from, holder)
	if err != nil {
		return conflict(err, "this charge is already another top-up's")
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n != 1 {
		return countersign.Errorf(countersign.Conflict, "top-up %s is no longer %s or no longer held by this worker", t.ID, from)
	}
	return nil
}
