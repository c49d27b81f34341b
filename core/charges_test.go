package core

import (
	"context"
	"errors"
	"math/big"
	"sync/atomic"
	"testing"

	"github.com/countersign/countersign"
)

// failingCharges is the store with a receipt write that can be made to fail.
type failingCharges struct {
	countersign.Store
	fail atomic.Bool
}

func (f *failingCharges) AddChargeReceipt(ctx context.Context, r *countersign.ChargeReceipt) error {
	if f.fail.Load() {
		return errors.New("injected: the receipt write fails")
	}
	return f.Store.AddChargeReceipt(ctx, r)
}

// TestMoney_ChargeReceiptCommitsWithConfirmation: when the receipt cannot
// be written the confirmation is not either — the transaction stays
// submitted and the next tracker pass confirms it with its receipt; a
// confirmed spend without a receipt (or a receipt without a confirmation)
// cannot exist, and passes over a confirmed spend never add a second one.
func TestMoney_ChargeReceiptCommitsWithConfirmation(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	fc := &failingCharges{Store: e.svc.store}
	e.svc.store = fc
	e.fund(e.wallet.Address, eth(1))
	tx := e.pay(randomAddr(), big.NewInt(777))
	if _, err := e.execute(tx.ID); err != nil {
		t.Fatal(err)
	}
	fc.fail.Store(true)
	for range 3 {
		_ = e.svc.TrackReceipts(e.ctx)
	}
	if st := e.row(tx.ID).Status; st != countersign.StatusSubmitted {
		t.Fatalf("confirmed (%s) although its receipt could not be written", st)
	}
	list, err := fc.Store.ChargeReceipts(e.ctx, countersign.ChargeFilter{OwnerID: e.user.ID})
	if err != nil || len(list) != 0 {
		t.Fatalf("receipts before confirmation: %v %v", list, err)
	}
	fc.fail.Store(false)
	e.track(tx.ID, countersign.StatusConfirmed)
	for range 3 {
		_ = e.svc.TrackReceipts(e.ctx)
	}
	list, err = fc.Store.ChargeReceipts(e.ctx, countersign.ChargeFilter{OwnerID: e.user.ID})
	if err != nil || len(list) != 1 || list[0].TransactionID != tx.ID || list[0].Amount != "777" || list[0].TxHash != e.row(tx.ID).TxHash || list[0].AgentID != e.agent.Agent.ID {
		t.Fatalf("receipts after confirmation: %+v %v", list, err)
	}
}
