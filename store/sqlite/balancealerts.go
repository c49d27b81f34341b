package sqlite

import (
	"context"
	"time"

	"github.com/countersign/countersign"
)

// Low-balance thresholds (countersign.BalanceAlertStore; migration 00017).

var _ countersign.BalanceAlertStore = (*Store)(nil)

func (s *Store) PutBalanceAlert(ctx context.Context, a *countersign.BalanceAlert) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO balance_alerts (wallet_id, owner_id, asset, below, low, last_balance, checked_at) VALUES (?,?,?,?,?,'',0)
		ON CONFLICT (wallet_id, asset) DO UPDATE SET below = excluded.below, owner_id = excluded.owner_id, low = excluded.low, last_balance = '', checked_at = 0`,
		a.WalletID, a.OwnerID, a.Asset, a.Below, a.Low)
	return err
}

func (s *Store) DeleteBalanceAlert(ctx context.Context, walletID, asset string) error {
	_, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM balance_alerts WHERE wallet_id = ? AND asset = ?`, walletID, asset)
	return err
}

func (s *Store) BalanceAlerts(ctx context.Context, walletID string) ([]*countersign.BalanceAlert, error) {
	q, args := `SELECT wallet_id, owner_id, asset, below, low, last_balance, checked_at FROM balance_alerts`, []any{}
	if walletID != "" {
		q, args = q+` WHERE wallet_id = ?`, append(args, walletID)
	}
	rows, err := s.reader(ctx).QueryContext(ctx, q+` ORDER BY wallet_id, asset LIMIT 10000`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.BalanceAlert, error) {
		var a countersign.BalanceAlert
		var at int64
		if err := r.Scan(&a.WalletID, &a.OwnerID, &a.Asset, &a.Below, &a.Low, &a.LastBalance, &at); err != nil {
			return nil, err
		}
		a.CheckedAt = fromTS(at)
		return &a, nil
	})
}

func (s *Store) SetBalanceAlertState(ctx context.Context, walletID, asset string, wasLow, low bool, balance string, at time.Time) (bool, error) {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE balance_alerts SET low = ?, last_balance = ?, checked_at = ? WHERE wallet_id = ? AND asset = ? AND low = ?`,
		low, balance, ts(at), walletID, asset, wasLow)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1 && wasLow != low, err
}
