package postgres

import (
	"context"
	"fmt"

	"github.com/countersign/countersign"
)

// The owners' management of invitations and their own webhooks
// (countersign.ApproverAdminStore) and the master key rotation's access to
// sealed values (countersign.Resealer), as in the SQLite store. There is no
// Backupper: a PostgreSQL database is backed up with pg_dump
// (docs/OPERATIONS.md).

var (
	_ countersign.ApproverAdminStore = (*Store)(nil)
	_ countersign.Resealer           = (*Store)(nil)
)

func (s *Store) InvitationsOfWallet(ctx context.Context, walletID string) ([]*countersign.Invitation, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+invitationCols+` FROM approver_invitations WHERE wallet_id = ? AND accepted_at = 0 ORDER BY created_at, id COLLATE "C"`, walletID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanInvitation)
}

// DeleteInvitation is one conditional DELETE: an invitation accepted
// meanwhile is not deleted (NotFound), whichever commits first.
func (s *Store) DeleteInvitation(ctx context.Context, id string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM approver_invitations WHERE id = ? AND accepted_at = 0`, id)
	return mustAffect(res, err, "invitation")
}

// DeleteWebhook deletes the deliveries first: they reference the webhook,
// and a pending one left behind would be sent to a URL its owner removed.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		// lock the webhook first: a delivery enqueued meanwhile by another
		// transaction waits, then fails on the missing webhook (foreign key)
		if _, err := s.writer(ctx).ExecContext(ctx, `SELECT 1 FROM webhooks WHERE id = ? FOR UPDATE`, id); err != nil {
			return err
		}
		if _, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`, id); err != nil {
			return err
		}
		res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
		return mustAffect(res, err, "webhook")
	})
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
// The comparison and the order use the same collation ("C", byte order, as
// SQLite's), so paging neither skips nor repeats a row.
func (s *Store) SealedValues(ctx context.Context, kind, afterID string, limit int) ([]*countersign.SealedValue, error) {
	c, ok := sealedColumns[kind]
	if !ok {
		return nil, countersign.Errorf(countersign.BadRequest, "unknown sealed kind %q", kind)
	}
	format := "''"
	if kind == countersign.SealedWallet {
		format = "key_format"
	}
	q := fmt.Sprintf(`SELECT %[2]s, %[4]s, %[3]s FROM %[1]s WHERE %[2]s COLLATE "C" > ? AND %[3]s IS NOT NULL AND length(%[3]s) > 0 ORDER BY %[2]s COLLATE "C" LIMIT ?`, c[0], c[1], c[2], format)
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
// v.Sealed: one conditional UPDATE (compare and swap), so a value another
// replica replaced meanwhile is left alone.
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
