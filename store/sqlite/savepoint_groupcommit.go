package sqlite

import (
	"context"
	"database/sql"
	"errors"

	"github.com/countersign/countersign"
)

var _ countersign.Savepointer = (*Store)(nil)

// Savepoint runs fn under a savepoint of the transaction in ctx: an error
// from fn rolls back to it, undoing fn's writes, and the transaction goes
// on. No lock wait to bound: the transaction holds the only writer.
func (s *Store) Savepoint(ctx context.Context, fn func(ctx context.Context) error) error {
	tx, ok := ctx.Value(txKey{}).(*sql.Tx)
	if !ok {
		return errors.New("sqlite: Savepoint outside a transaction")
	}
	if _, err := tx.ExecContext(ctx, `SAVEPOINT countersign_group`); err != nil {
		return err
	}
	err := fn(ctx)
	if err == nil {
		if _, err = tx.ExecContext(ctx, `RELEASE SAVEPOINT countersign_group`); err == nil {
			return nil
		}
	}
	// ROLLBACK TO keeps the savepoint open; RELEASE closes it.
	if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT countersign_group`); rerr != nil {
		return errors.Join(err, rerr)
	}
	if _, rerr := tx.ExecContext(ctx, `RELEASE SAVEPOINT countersign_group`); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}
