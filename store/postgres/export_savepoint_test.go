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
