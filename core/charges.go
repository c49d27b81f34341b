package core

import (
	"context"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/policy"
)

// Charge receipts: the off-chain record of every spend that left a wallet
// (the operator wallet design's budget tracking). setStatus writes one in
// the database transaction that confirms an on-chain spend and removes it
// in the one that takes a confirmation back (a reorg), so the receipts are
// exactly the confirmed spends: neither can exist without the other.

// ChargeReceiptView is the public shape of a receipt.
type ChargeReceiptView struct {
	ID            string    `json:"id"`
	AgentID       string    `json:"agent_id"`
	WalletID      string    `json:"wallet_id"`
	TransactionID string    `json:"transaction_id"`
	Reason        string    `json:"reason"`
	Amount        string    `json:"amount"` // base units of asset
	Asset         string    `json:"asset"`  // native, or the token's address
	USDEstimate   *string   `json:"usd_estimate"`
	TxHash        string    `json:"tx_hash"`
	RuleID        string    `json:"rule_id"`
	CreatedAt     time.Time `json:"created_at"`
}

// ChargeView renders r for clients.
func ChargeView(r *countersign.ChargeReceipt) ChargeReceiptView {
	v := ChargeReceiptView{ID: r.ID, AgentID: r.AgentID, WalletID: r.WalletID, TransactionID: r.TransactionID, Reason: r.Reason,
		Amount: r.Amount, Asset: r.Asset, TxHash: r.TxHash, RuleID: r.RuleID, CreatedAt: r.CreatedAt}
	if r.USDEstimate != "" {
		u := r.USDEstimate
		v.USDEstimate = &u
	}
	return v
}

// chargeOf is the receipt a confirmed t writes; nil for what moves no
// value off chain (message signatures).
func chargeOf(t *countersign.Transaction, at time.Time) *countersign.ChargeReceipt {
	r := &countersign.ChargeReceipt{ID: uuid.NewString(), OwnerID: t.OwnerID, AgentID: t.AgentID, WalletID: t.WalletID, TransactionID: t.ID,
		TxHash: t.TxHash, RuleID: t.RuleID, CreatedAt: at, Asset: policy.AssetNative, Amount: t.TxValue}
	switch t.Type {
	case countersign.TxNative:
		r.Reason = "transfer"
	case countersign.TxERC20:
		r.Reason, r.Asset, r.Amount = "transfer", strings.ToLower(t.TokenAddress), t.Amount
	case countersign.TxContractCall:
		r.Reason = "contract_call"
	case countersign.TxNonceFill:
		r.Reason = "network_fee"
	default:
		return nil
	}
	if r.Amount == "" {
		r.Amount = "0"
	}
	return r
}

// settleCharge keeps the receipts in step with a status change from →
// to, inside its transaction.
func (s *Service) settleCharge(ctx context.Context, t *countersign.Transaction, from, to countersign.Status) error {
	switch {
	case to == countersign.StatusConfirmed:
		if r := chargeOf(t, t.UpdatedAt); r != nil {
			if err := s.topupReceipt(ctx, t, r); err != nil { // topups.go: a top-up's payment is <provider>_topup
				return err
			}
			return s.store.AddChargeReceipt(ctx, r)
		}
	case from == countersign.StatusConfirmed:
		return s.store.DeleteChargeReceipt(ctx, t.ID)
	}
	return nil
}

// ChargeReceipts lists the receipts p may see: a user's for all their
// wallets, an agent's for its own spends. Newest first.
func (s *Service) ChargeReceipts(ctx context.Context, p *Principal, f countersign.ChargeFilter) ([]ChargeReceiptView, error) {
	f.OwnerID = p.User.ID
	if p.IsAgent() {
		f.AgentID = p.Agent.ID
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && !f.Since.Before(f.Until) {
		return nil, countersign.Errorf(countersign.BadRequest, "since must be before until")
	}
	if f.Asset != "" && f.Asset != policy.AssetNative {
		f.Asset = strings.ToLower(f.Asset)
	}
	list, err := s.store.ChargeReceipts(ctx, f)
	if err != nil {
		return nil, err
	}
	out := make([]ChargeReceiptView, len(list))
	for i, r := range list {
		out[i] = ChargeView(r)
	}
	return out, nil
}

// ChargeTotals sums every receipt per agent, wallet and asset (metrics).
func (s *Service) ChargeTotals(ctx context.Context) ([]countersign.ChargeTotal, error) {
	return s.store.ChargeTotals(ctx)
}
