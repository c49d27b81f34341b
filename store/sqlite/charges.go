package sqlite

import (
	"context"
	"strings"

	"github.com/countersign/countersign"
)

// Charge receipts (countersign.ChargeStore; migration 00016).

var _ countersign.ChargeStore = (*Store)(nil)

const chargeCols = `id, owner_id, agent_id, wallet_id, transaction_id, reason, amount, asset, usd_estimate, tx_hash, rule_id, created_at`

func (s *Store) AddChargeReceipt(ctx context.Context, r *countersign.ChargeReceipt) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO charge_receipts (`+chargeCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)
		ON CONFLICT (transaction_id) DO NOTHING`,
		r.ID, r.OwnerID, r.AgentID, r.WalletID, r.TransactionID, r.Reason, r.Amount, r.Asset, r.USDEstimate, r.TxHash, r.RuleID, ts(r.CreatedAt))
	return err
}

func (s *Store) DeleteChargeReceipt(ctx context.Context, transactionID string) error {
	_, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM charge_receipts WHERE transaction_id = ?`, transactionID)
	return err
}

func (s *Store) ChargeReceipts(ctx context.Context, f countersign.ChargeFilter) ([]*countersign.ChargeReceipt, error) {
	where, args := []string{"owner_id = ?"}, []any{f.OwnerID}
	for _, c := range []struct{ col, v string }{{"agent_id", f.AgentID}, {"wallet_id", f.WalletID}, {"reason", f.Reason}, {"asset", f.Asset}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	if !f.Since.IsZero() {
		where, args = append(where, "created_at >= ?"), append(args, ts(f.Since))
	}
	if !f.Until.IsZero() {
		where, args = append(where, "created_at < ?"), append(args, ts(f.Until))
	}
	limit := f.Limit
	if limit <= 0 || limit > 10000 {
		limit = 10000
	}
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+chargeCols+` FROM charge_receipts WHERE `+strings.Join(where, " AND ")+
		` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, limit)...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.ChargeReceipt, error) {
		var c countersign.ChargeReceipt
		var at int64
		if err := r.Scan(&c.ID, &c.OwnerID, &c.AgentID, &c.WalletID, &c.TransactionID, &c.Reason, &c.Amount, &c.Asset, &c.USDEstimate, &c.TxHash, &c.RuleID, &at); err != nil {
			return nil, err
		}
		c.CreatedAt = fromTS(at)
		return &c, nil
	})
}

func (s *Store) ChargeTotals(ctx context.Context) ([]countersign.ChargeTotal, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT agent_id, wallet_id, asset, COUNT(*), SUM(CAST(amount AS `+chargeSumType+`))
		FROM charge_receipts GROUP BY agent_id, wallet_id, asset ORDER BY agent_id, wallet_id, asset`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []countersign.ChargeTotal
	for rows.Next() {
		var t countersign.ChargeTotal
		if err := rows.Scan(&t.AgentID, &t.WalletID, &t.Asset, &t.Count, &t.Sum); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

const chargeSumType = "REAL" // a float for metrics: SQLite integers stop at 2^63
