// Package mock is the wallet daemon's stage-1 ledger (the AITBC wallet-daemon design):
// balances and signed transfers kept in the store, in integer units, until
// the AITBC chain has a node to talk to. It implements countersign.Ledger.
package mock

import (
	"context"
	"math/big"
	"strings"

	"github.com/countersign/countersign"
)

// key is the balance key of an address. Bech32 is case-insensitive
// (BIP-173: "AIT1…" and "ait1…" are one address), so balances are keyed by
// the lower-case form; otherwise a transfer to the upper-case spelling
// would credit a second balance that no key can ever spend.
func key(address string) string { return strings.ToLower(address) }

// Ledger keeps balances and transfers in the store.
type Ledger struct {
	Store countersign.Store
}

var _ countersign.Ledger = Ledger{}

// Name is "mock" (WALLET_CHAIN=mock).
func (Ledger) Name() string { return "mock" }

// Balance returns an address's balance in units (zero if it has none).
func (l Ledger) Balance(ctx context.Context, address string) (*big.Int, error) {
	return l.Store.LedgerBalance(ctx, key(address))
}

// Submit moves the units and records the signed transfer, in the caller's
// transaction; InsufficientFunds if the sender cannot pay.
func (l Ledger) Submit(ctx context.Context, t *countersign.LedgerTx) error {
	if err := l.Store.LedgerMove(ctx, key(t.From), key(t.To), t.Units); err != nil {
		return err
	}
	return l.Store.AddLedgerTx(ctx, t)
}

// Tx returns a recorded transfer.
func (l Ledger) Tx(ctx context.Context, id string) (*countersign.LedgerTx, error) {
	return l.Store.LedgerTxByID(ctx, id)
}

// Credit creates units at address (the faucet of a play-money ledger).
func (l Ledger) Credit(ctx context.Context, address string, units *big.Int) error {
	return l.Store.LedgerMove(ctx, "", key(address), units)
}
