package postgres

import (
	"context"
	"database/sql"
	"errors"

	"github.com/countersign/countersign"
)

var _ countersign.Savepointer = (*Store)(nil)

// groupLockWait is how long a statement inside a Savepoint waits for a
// lock before it fails (the transaction-wide lock_timeout is 10 s). A
// group transaction (core/groupcommit.go) holds the row locks of the parts
// it ran before this one; a part that waited on another transaction for
// long could be waiting on one that waits for those locks — a deadlock
// PostgreSQL would break after deadlock_timeout by failing either side,
// perhaps the other, innocent one. Giving up first keeps the failure on the
// group's side, where the part is undone and run again alone.
const groupLockWait = "100ms"

// partKey marks a context inside a Savepoint: there unique needs no
// savepoint of its own (see there).
type partKey struct{}

// Savepoint runs fn under a savepoint of the transaction in ctx, with
// lock waits bounded by groupLockWait: an error from fn, or a statement of
// fn's that failed even though fn went on (PostgreSQL then refuses the
// rest of the savepoint), rolls back to the savepoint, which undoes fn's
// writes and frees the locks fn took, and the transaction goes on.
func (s *Store) Savepoint(ctx context.Context, fn func(ctx context.Context) error) error {
	tx, ok := ctx.Value(txKey{}).(*sql.Tx)
	if !ok {
		return errors.New("postgres: Savepoint outside a transaction")
	}
	// One round trip each way (no arguments: pgx sends them as one simple
	// query). SET LOCAL after SAVEPOINT: rolling back to the savepoint
	// undoes it too.
	if _, err := tx.ExecContext(ctx, `SAVEPOINT countersign_group; SET LOCAL lock_timeout = '`+groupLockWait+`'`); err != nil {
		return err
	}
	err := fn(context.WithValue(ctx, partKey{}, true))
	if err == nil {
		// RELEASE fails when a statement of fn's failed and fn went on
		// (the savepoint is aborted): then fn's writes are not all there.
		// DEFAULT is the session's value (the connection's lock_timeout).
		if _, err = tx.ExecContext(ctx, `RELEASE SAVEPOINT countersign_group; SET LOCAL lock_timeout TO DEFAULT`); err == nil {
			return nil
		}
	}
	if _, rerr := tx.ExecContext(ctx, `ROLLBACK TO SAVEPOINT countersign_group; RELEASE SAVEPOINT countersign_group`); rerr != nil {
		return errors.Join(err, rerr)
	}
	return err
}
