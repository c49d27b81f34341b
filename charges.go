package countersign

import (
	"context"
	"time"
)

// ChargeReceipt records one spend that left a wallet: the operator
// wallet design's off-chain budget tracking, one row per confirmed spend,
// written in the database transaction that confirms it (so a confirmed
// spend without its receipt cannot exist), and removed in the one that
// takes the confirmation back (a reorg).
type ChargeReceipt struct {
	ID            string
	OwnerID       string
	AgentID       string // "" for a spend the user started
	WalletID      string
	TransactionID string // unique: one receipt per transaction
	Reason        string // transfer, contract_call, network_fee, openrouter_topup, x402, …
	Amount        string // base units of Asset
	Asset         string // "native", or the token contract's address
	USDEstimate   string // optional decimal, "" when unknown
	TxHash        string // or a payment id for off-chain payments
	RuleID        string // the policy rule that decided the spend
	CreatedAt     time.Time
}

// ChargeFilter selects receipts; zero fields do not filter.
type ChargeFilter struct {
	OwnerID  string // required
	AgentID  string
	WalletID string
	Reason   string
	Asset    string
	Since    time.Time // created at or after
	Until    time.Time // created before
	Limit    int
}

// ChargeTotal sums one (agent, wallet, asset)'s receipts, for metrics.
type ChargeTotal struct {
	AgentID, WalletID, Asset string
	Count                    int64
	Sum                      float64 // base units; a float for metrics only, never for money decisions
}

// ChargeStore keeps the charge receipts.
type ChargeStore interface {
	// AddChargeReceipt stores r; a second receipt for the same transaction
	// is ignored (nil error), so replays cannot count a spend twice.
	AddChargeReceipt(ctx context.Context, r *ChargeReceipt) error
	// DeleteChargeReceipt removes the receipt of transactionID, if any.
	DeleteChargeReceipt(ctx context.Context, transactionID string) error
	// ChargeReceipts lists receipts newest first.
	ChargeReceipts(ctx context.Context, f ChargeFilter) ([]*ChargeReceipt, error)
	// ChargeTotals sums every owner's receipts per agent, wallet and asset.
	ChargeTotals(ctx context.Context) ([]ChargeTotal, error)
}
