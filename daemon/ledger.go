package daemon

import (
	"bytes"
	"context"
	"math/big"
	"strings"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// The mock ledger of the AITBC wallet-daemon design (stage 1, until a chain
// node is plugged in):
// balances and transfers in the store, in integer units. Amounts at the edge
// are decimal strings with LedgerDecimals places ("123.456").

// LedgerDecimals is the number of decimal places of ledger amounts:
// 1 unit = 10^-6.
const LedgerDecimals = 6

// ParseLedgerAmount parses "123.456" into units (123456000). Positive, at
// most LedgerDecimals decimals, no sign or exponent.
func ParseLedgerAmount(s string) (*big.Int, error) {
	bad := countersign.Errorf(countersign.BadRequest, "amount must be a positive decimal with at most %d decimals, like \"123.456\"", LedgerDecimals)
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 30 || len(frac) > LedgerDecimals || strings.HasSuffix(s, ".") {
		return nil, bad
	}
	for _, r := range whole + frac {
		if r < '0' || r > '9' {
			return nil, bad
		}
	}
	if len(whole) > 1 && whole[0] == '0' {
		return nil, bad
	}
	units, _ := new(big.Int).SetString(whole+frac+strings.Repeat("0", LedgerDecimals-len(frac)), 10)
	if units.Sign() <= 0 {
		return nil, bad
	}
	return units, nil
}

// FormatLedgerAmount renders units as a decimal string.
func FormatLedgerAmount(units *big.Int) string {
	return countersign.FormatUnits(units, LedgerDecimals)
}

// checkAit refuses a field that is not an ait1… address.
func (d *Service) checkAit(field, address string) error {
	if !d.keys.ValidAddress(address) {
		return countersign.Errorf(countersign.BadRequest, "%s is not an ait1… address", field)
	}
	return nil
}

// LedgerBalance returns an address's balance in units.
func (d *Service) LedgerBalance(ctx context.Context, address string) (*big.Int, error) {
	if err := d.checkAit("address", address); err != nil {
		return nil, err
	}
	l, err := d.ledgerOrErr()
	if err != nil {
		return nil, err
	}
	return l.Balance(ctx, address)
}

// ledgerOrErr is the configured ledger, or an error saying there is none.
func (d *Service) ledgerOrErr() (countersign.Ledger, error) {
	if d.cfg.Ledger == nil {
		return nil, countersign.Errorf(countersign.Internal, "no ledger is configured (WALLET_CHAIN)")
	}
	return d.cfg.Ledger, nil
}

// LedgerFaucet credits an address (mock ledger only: there is no chain to
// pay from).
func (d *Service) LedgerFaucet(ctx context.Context, address, amount string) (*big.Int, error) {
	if err := d.checkAit("address", address); err != nil {
		return nil, err
	}
	units, err := ParseLedgerAmount(amount)
	if err != nil {
		return nil, err
	}
	l, err := d.ledgerOrErr()
	if err != nil {
		return nil, err
	}
	err = d.record(ctx, "ledger.faucet", address, map[string]string{"units": units.String()}, func(ctx context.Context) error {
		return l.Credit(ctx, address, units)
	})
	if err != nil {
		return nil, err
	}
	return l.Balance(ctx, address)
}

// LedgerTransfer moves an amount from a local account, which signs the
// transfer (its RFC 8785 canonical JSON), to any ait address.
func (d *Service) LedgerTransfer(ctx context.Context, from, to, amount, memo string) (*countersign.LedgerTx, error) {
	if err := d.checkAit("to", to); err != nil {
		return nil, err
	}
	if err := countersign.CheckText("memo", memo, countersign.MaxMemo, true); err != nil {
		return nil, err
	}
	units, err := ParseLedgerAmount(amount)
	if err != nil {
		return nil, err
	}
	l, err := d.ledgerOrErr()
	if err != nil {
		return nil, err
	}
	acct, err := d.store.DaemonAccountByAddress(ctx, from)
	if err != nil {
		return nil, countersign.Errorf(countersign.NotFound, "from must be a local account of this daemon")
	}
	t := &countersign.LedgerTx{ID: uuid.NewString(), From: from, To: to, Memo: memo, Units: units, CreatedAt: d.clock.Now().UTC()}
	var c bytes.Buffer
	c.WriteString(`{"amount_units":"` + units.String() + `","from":`)
	_ = jcsString(&c, from)
	c.WriteString(`,"id":"` + t.ID + `","memo":`)
	if err := jcsString(&c, memo); err != nil {
		return nil, err
	}
	c.WriteString(`,"to":`)
	_ = jcsString(&c, to)
	c.WriteString(`}`)
	t.Canonical = c.String()
	sm, err := d.SignMessage(ctx, acct.ID, c.Bytes()) // locked wallet → WALLET_LOCKED
	if err != nil {
		return nil, err
	}
	t.Signature, t.PublicKey = sm.Signature, sm.PublicKey
	err = d.record(ctx, "ledger.transfer", t.ID, map[string]string{"from": from, "to": to, "units": units.String()},
		func(ctx context.Context) error { return l.Submit(ctx, t) },
		countersign.ChangeEvent{Type: "transfer", Subject: t.ID, Payload: map[string]string{"txid": t.ID, "from": from, "to": to, "amount": FormatLedgerAmount(units), "memo": memo}})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// LedgerTx returns a transfer.
func (d *Service) LedgerTx(ctx context.Context, id string) (*countersign.LedgerTx, error) {
	l, err := d.ledgerOrErr()
	if err != nil {
		return nil, err
	}
	return l.Tx(ctx, id)
}
