package postgres

import (
	"context"

	"github.com/countersign/countersign"
)

// x402 payments (countersign.X402Store; migration 00020).

var _ countersign.X402Store = (*Store)(nil)

const x402Cols = `transaction_id, owner_id, agent_id, wallet_id, nonce, resource, method, version, requirement, resource_info, quote,
	amount, asset, pay_to, network, valid_before, status, settlement_tx, settlement, created_at, updated_at`

func (s *Store) AddX402Payment(ctx context.Context, p *countersign.X402Payment) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO x402_payments (`+x402Cols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		p.TransactionID, p.OwnerID, p.AgentID, p.WalletID, p.Nonce, p.Resource, p.Method, p.Version, p.Requirement, p.ResourceInfo, p.Quote,
		p.Amount, p.Asset, p.PayTo, p.Network, ts(p.ValidBefore), p.Status, p.SettlementTx, p.Settlement, ts(p.CreatedAt), ts(p.UpdatedAt))
	return conflict(err, "an x402 payment with this nonce or transaction already exists")
}

func (s *Store) X402Payment(ctx context.Context, transactionID string) (*countersign.X402Payment, error) {
	var p countersign.X402Payment
	var vb, ca, ua int64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT `+x402Cols+` FROM x402_payments WHERE transaction_id = ?`, transactionID).Scan(
		&p.TransactionID, &p.OwnerID, &p.AgentID, &p.WalletID, &p.Nonce, &p.Resource, &p.Method, &p.Version, &p.Requirement, &p.ResourceInfo, &p.Quote,
		&p.Amount, &p.Asset, &p.PayTo, &p.Network, &vb, &p.Status, &p.SettlementTx, &p.Settlement, &ca, &ua)
	if err != nil {
		return nil, notFound("x402 payment", err)
	}
	p.ValidBefore, p.CreatedAt, p.UpdatedAt = fromTS(vb), fromTS(ca), fromTS(ua)
	return &p, nil
}

func (s *Store) X402NonceUsed(ctx context.Context, nonce string) (bool, error) {
	var n int
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT COUNT(*) FROM x402_payments WHERE nonce = ?`, nonce).Scan(&n)
	return n > 0, err
}

func (s *Store) UpdateX402Payment(ctx context.Context, p *countersign.X402Payment) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE x402_payments SET status = ?, settlement_tx = ?, settlement = ?, updated_at = ? WHERE transaction_id = ?`,
		p.Status, p.SettlementTx, p.Settlement, ts(p.UpdatedAt), p.TransactionID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return countersign.Errorf(countersign.NotFound, "x402 payment not found")
	}
	return nil
}
