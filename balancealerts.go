package countersign

import (
	"context"
	"time"
)

// BalanceAlert is a low-balance threshold on one asset of one wallet: when
// the balance falls below Below an event (wallet.low_balance, and its
// webhooks) fires once; when it is back at or above, wallet.balance_restored.
type BalanceAlert struct {
	WalletID    string
	OwnerID     string
	Asset       string // "native" or a token address (lower case)
	Below       string // base units
	Low         bool   // the last check found the balance below
	LastBalance string // base units, "" before the first check
	CheckedAt   time.Time
}

// BalanceAlertStore keeps the thresholds and their last state.
type BalanceAlertStore interface {
	// PutBalanceAlert sets (or replaces) the threshold of (wallet, asset);
	// a replaced one starts again unchecked.
	PutBalanceAlert(ctx context.Context, a *BalanceAlert) error
	DeleteBalanceAlert(ctx context.Context, walletID, asset string) error
	// BalanceAlerts lists a wallet's thresholds, or every wallet's with "".
	BalanceAlerts(ctx context.Context, walletID string) ([]*BalanceAlert, error)
	// SetBalanceAlertState records a check. It changes the low flag only if
	// it is still wasLow and reports whether it did: of several replicas
	// checking at once, one sees the transition.
	SetBalanceAlertState(ctx context.Context, walletID, asset string, wasLow, low bool, balance string, at time.Time) (changed bool, err error)
}
