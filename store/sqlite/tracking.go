package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/countersign/countersign"
)

// The receipt tracker's tables (migration 00015): attempts, claims and the
// tracker's record of a transaction.

var _ countersign.TrackingStore = (*Store)(nil)

func (s *Store) AddAttempt(ctx context.Context, a *countersign.TxAttempt) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO transaction_attempts (transaction_id, n, tx_hash, raw_tx, tip, fee_cap, kind, created_at)
 VALUES (?,?,?,?,?,?,?,?)`, a.TransactionID, a.N, a.TxHash, a.RawTx, a.Tip, a.FeeCap, a.Kind, ts(a.CreatedAt))
	return conflict(err, "this attempt of the transaction is already recorded")
}

func (s *Store) Attempts(ctx context.Context, id string) ([]*countersign.TxAttempt, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT transaction_id, n, tx_hash, raw_tx, tip, fee_cap, kind, created_at
 FROM transaction_attempts WHERE transaction_id = ? ORDER BY n`, id)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.TxAttempt, error) {
		var a countersign.TxAttempt
		var created int64
		if err := r.Scan(&a.TransactionID, &a.N, &a.TxHash, &a.RawTx, &a.Tip, &a.FeeCap, &a.Kind, &created); err != nil {
			return nil, err
		}
		a.CreatedAt = fromTS(created)
		return &a, nil
	})
}

// claimTrackedFrom is ClaimTracked's query after its columns: submitted
// rows, and those the chain settled (confirmed, failed by a revert,
// cancelled on chain) from a block on, each found through the index on
// (status, block_number), not by reading every settled row.
const claimTrackedFrom = ` FROM transactions
 WHERE (status = ? OR (status IN (?, ?, ?) AND block_number >= ? AND updated_at > ?)) AND claimed_until <= ?
 ORDER BY checked_at, created_at, id LIMIT ?`

// ClaimTracked selects and claims in one immediate transaction: it holds
// SQLite's write lock, so no other pass can select the same rows before
// this one has marked them claimed.
func (s *Store) ClaimTracked(ctx context.Context, q countersign.ClaimQuery) ([]*countersign.Transaction, error) {
	var out []*countersign.Transaction
	err := s.InTx(ctx, func(ctx context.Context) error {
		rows, err := s.writer(ctx).QueryContext(ctx, `SELECT `+txCols+claimTrackedFrom,
			countersign.StatusSubmitted, countersign.StatusConfirmed, countersign.StatusFailed, countersign.StatusCancelled,
			int64(q.MinBlock), ts(q.ConfirmedSince), ts(q.Now), q.Limit)
		if err != nil {
			return err
		}
		if out, err = collect(rows, scanTx); err != nil || len(out) == 0 {
			return err
		}
		args := []any{ts(q.Now.Add(q.Lease))}
		for _, t := range out {
			args = append(args, t.ID)
		}
		_, err = s.writer(ctx).ExecContext(ctx, `UPDATE transactions SET claimed_until = ? WHERE id IN (?`+strings.Repeat(",?", len(out)-1)+`)`, args...)
		return err
	})
	return out, err
}

func (s *Store) ReleaseClaims(ctx context.Context, until, at time.Time, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		for start := 0; start < len(ids); start += maxRowsPerInsert {
			chunk := ids[start:min(start+maxRowsPerInsert, len(ids))]
			args := []any{ts(at), ts(until)}
			for _, id := range chunk {
				args = append(args, id)
			}
			q := `UPDATE transactions SET checked_at = ?, claimed_until = 0 WHERE claimed_until = ? AND id IN (?` + strings.Repeat(",?", len(chunk)-1) + `)`
			if _, err := s.writer(ctx).ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) TrackState(ctx context.Context, id string) (*countersign.TrackState, error) {
	var st countersign.TrackState
	var stuck int64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT block_hash, stuck_at FROM transactions WHERE id = ?`, id).Scan(&st.BlockHash, &stuck)
	if errors.Is(err, sql.ErrNoRows) {
		return &countersign.TrackState{}, nil
	}
	st.StuckAt = fromTS(stuck)
	return &st, err
}

func (s *Store) SetTrackState(ctx context.Context, id string, st *countersign.TrackState) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE transactions SET block_hash = ?, stuck_at = ? WHERE id = ?`, st.BlockHash, ts(st.StuckAt), id)
	return mustAffect(res, err, "transaction")
}
