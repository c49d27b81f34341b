package sqlite

import (
	"context"
	"time"

	"github.com/countersign/countersign"
)

// PendingExpired reads only the due rows, through the index of migration
// 00018 (status, expires_at).
func (s *Store) PendingExpired(ctx context.Context, now time.Time, limit int) ([]*countersign.Transaction, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+txCols+` FROM transactions WHERE status = ? AND expires_at <= ? ORDER BY expires_at LIMIT ?`,
		countersign.StatusPending, ts(now), limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTx)
}

// authorizedAtSQL is core's authorizedAt in SQL, when a request was
// authorized: the expression the index of migration 00023 holds, written
// the same way so the planner matches it.
const authorizedAtSQL = `(CASE WHEN decided_at <> 0 THEN decided_at WHEN authorize_at > created_at THEN authorize_at ELSE created_at END)`

// authorizedExpiredFrom reads the due rows alone, through that partial
// index (status is written out: a bound parameter would not match the
// index's WHERE).
const authorizedExpiredFrom = ` FROM transactions INDEXED BY transactions_authorized_at WHERE status = 'authorized' AND ` + authorizedAtSQL + ` <= ?
 AND tx_hash = '' AND COALESCE(length(signature), 0) = 0 ORDER BY ` + authorizedAtSQL + ` LIMIT ?`

func (s *Store) AuthorizedExpired(ctx context.Context, cutoff time.Time, limit int) ([]*countersign.Transaction, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+txCols+authorizedExpiredFrom, ts(cutoff), limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTx)
}
