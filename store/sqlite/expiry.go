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
