package postgres

import (
	"context"
	"database/sql"
)

// QueryRowForTest runs q in the transaction in ctx (or the pool), for the
// external tests' checks of session settings.
func (s *Store) QueryRowForTest(ctx context.Context, q string, args ...any) *sql.Row {
	return s.reader(ctx).QueryRowContext(ctx, q, args...)
}

// AuthorizedExpiredPlanForTest is PostgreSQL's plan (EXPLAIN, JSON) of the
// AUTHORIZED_TTL sweeper's query with sequential scans off, so a small test
// table shows which index the planner can use.
func (s *Store) AuthorizedExpiredPlanForTest(ctx context.Context) (string, error) {
	var plan string
	err := s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.writer(ctx).ExecContext(ctx, `SET LOCAL enable_seqscan = off`); err != nil {
			return err
		}
		return s.writer(ctx).QueryRowContext(ctx, `EXPLAIN (FORMAT JSON) SELECT id`+authorizedExpiredFrom, int64(1), 10).Scan(&plan)
	})
	return plan, err
}
