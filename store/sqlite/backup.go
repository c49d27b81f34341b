package sqlite

import (
	"context"
	"fmt"
	"os"

	"github.com/countersign/countersign"
)

var (
	_ countersign.Backupper = (*Store)(nil)
	_ countersign.Resealer  = (*Store)(nil)
)

// BackupTo writes the database to path with VACUUM INTO: SQLite copies one
// read transaction's view into a new, compacted file, while writers go on
// (WAL mode: the reader does not block them). The result is a complete
// database with no WAL beside it. modernc.org/sqlite has no binding for
// SQLite's backup API on database/sql connections; VACUUM INTO is plain
// SQL. It runs on the checkpoint connection: the readers are query_only,
// which refuses VACUUM INTO ("attempt to write a readonly database"), and
// the writer's one connection must stay free for commits. Checkpoints wait
// for the copy (the WAL could not be reset under its read transaction
// anyway). The file is created here first with mode 0600 (VACUUM INTO
// would create it under the umask) and must not already exist.
func (s *Store) BackupTo(ctx context.Context, path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	// VACUUM INTO wants a new or empty file: an empty one is fine.
	if _, err := s.ck.ExecContext(ctx, `VACUUM INTO ?`, path); err != nil {
		os.Remove(path)
		return fmt.Errorf("sqlite backup: %w", err)
	}
	return os.Chmod(path, 0o600)
}

// sealedColumns maps each sealed kind to its table, key column and sealed
// column. Only these constant names reach the SQL.
var sealedColumns = map[string][3]string{
	countersign.SealedWallet:     {"wallets", "id", "key_sealed"},
	countersign.SealedMFA:        {"users", "id", "mfa_sealed"},
	countersign.SealedMFAPending: {"users", "id", "mfa_pending"},
	countersign.SealedSigningKey: {"signing_keys", "kid", "sealed"},
	countersign.SealedWebhook:    {"webhooks", "id", "secret_sealed"},
}

// SealedValues lists one kind's sealed values after afterID, in id order.
func (s *Store) SealedValues(ctx context.Context, kind, afterID string, limit int) ([]*countersign.SealedValue, error) {
	c, ok := sealedColumns[kind]
	if !ok {
		return nil, countersign.Errorf(countersign.BadRequest, "unknown sealed kind %q", kind)
	}
	format := "''"
	if kind == countersign.SealedWallet {
		format = "key_format"
	}
	q := fmt.Sprintf(`SELECT %[2]s, %[4]s, %[3]s FROM %[1]s WHERE %[2]s > ? AND %[3]s IS NOT NULL AND length(%[3]s) > 0 ORDER BY %[2]s LIMIT ?`, c[0], c[1], c[2], format)
	rows, err := s.reader(ctx).QueryContext(ctx, q, afterID, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.SealedValue, error) {
		v := &countersign.SealedValue{Kind: kind}
		err := r.Scan(&v.ID, &v.Format, &v.Sealed)
		return v, err
	})
}

// ReplaceSealed swaps v's sealed value for sealed if the row still holds
// v.Sealed (compare and swap: the server may have replaced it meanwhile).
func (s *Store) ReplaceSealed(ctx context.Context, v *countersign.SealedValue, sealed []byte) (bool, error) {
	c, ok := sealedColumns[v.Kind]
	if !ok {
		return false, countersign.Errorf(countersign.BadRequest, "unknown sealed kind %q", v.Kind)
	}
	q := fmt.Sprintf(`UPDATE %[1]s SET %[3]s = ? WHERE %[2]s = ? AND %[3]s = ?`, c[0], c[1], c[2])
	res, err := s.writer(ctx).ExecContext(ctx, q, sealed, v.ID, v.Sealed)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
