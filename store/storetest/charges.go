package storetest

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testCharges: receipts are kept once per transaction, filtered, newest
// first, removed with their transaction's confirmation, written and rolled
// back with the transaction around them, and summed for metrics.
func testCharges(t *testing.T, s countersign.Store) {
	at := time.Unix(1700000000, 0).UTC()
	big1 := new(big.Int).Lsh(big.NewInt(1), 200).String() // beyond 64 bits
	rs := []*countersign.ChargeReceipt{
		{ID: "c1", OwnerID: "u1", AgentID: "a1", WalletID: "w1", TransactionID: "t1", Reason: "transfer", Amount: "100", Asset: "native", TxHash: "0x01", RuleID: "r1", CreatedAt: at},
		{ID: "c2", OwnerID: "u1", AgentID: "a2", WalletID: "w1", TransactionID: "t2", Reason: "openrouter_topup", Amount: big1, Asset: "0xtoken", USDEstimate: "12.50", TxHash: "0x02", CreatedAt: at.Add(time.Minute)},
		{ID: "c3", OwnerID: "u1", AgentID: "a1", WalletID: "w2", TransactionID: "t3", Reason: "transfer", Amount: "5", Asset: "native", CreatedAt: at.Add(2 * time.Minute)},
		{ID: "c4", OwnerID: "u2", AgentID: "a9", WalletID: "w9", TransactionID: "t4", Reason: "transfer", Amount: "7", Asset: "native", CreatedAt: at},
	}
	for _, r := range rs {
		if err := s.AddChargeReceipt(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	// a second receipt for one transaction is ignored
	dup := *rs[0]
	dup.ID, dup.Amount = "c1-again", "999"
	if err := s.AddChargeReceipt(ctx, &dup); err != nil {
		t.Fatalf("duplicate receipt: %v", err)
	}
	list, err := s.ChargeReceipts(ctx, countersign.ChargeFilter{OwnerID: "u1"})
	if err != nil || len(list) != 3 || list[0].ID != "c3" || list[2].ID != "c1" || list[2].Amount != "100" {
		t.Fatalf("owner u1: %+v %v", list, err)
	}
	if list[1].Amount != big1 || list[1].USDEstimate != "12.50" || !list[1].CreatedAt.Equal(at.Add(time.Minute)) {
		t.Fatalf("round trip: %+v", list[1])
	}
	for name, c := range map[string]struct {
		f    countersign.ChargeFilter
		want []string
	}{
		"agent":  {countersign.ChargeFilter{OwnerID: "u1", AgentID: "a1"}, []string{"c3", "c1"}},
		"wallet": {countersign.ChargeFilter{OwnerID: "u1", WalletID: "w1"}, []string{"c2", "c1"}},
		"reason": {countersign.ChargeFilter{OwnerID: "u1", Reason: "openrouter_topup"}, []string{"c2"}},
		"asset":  {countersign.ChargeFilter{OwnerID: "u1", Asset: "native"}, []string{"c3", "c1"}},
		"since":  {countersign.ChargeFilter{OwnerID: "u1", Since: at.Add(time.Minute)}, []string{"c3", "c2"}},
		"until":  {countersign.ChargeFilter{OwnerID: "u1", Until: at.Add(time.Minute)}, []string{"c1"}},
		"limit":  {countersign.ChargeFilter{OwnerID: "u1", Limit: 1}, []string{"c3"}},
		"owner":  {countersign.ChargeFilter{OwnerID: "u2", AgentID: "a1"}, nil},
	} {
		got, err := s.ChargeReceipts(ctx, c.f)
		if err != nil || len(got) != len(c.want) {
			t.Errorf("%s: %d receipts (%v), want %v", name, len(got), err, c.want)
			continue
		}
		for i := range got {
			if got[i].ID != c.want[i] {
				t.Errorf("%s: [%d] %s, want %s", name, i, got[i].ID, c.want[i])
			}
		}
	}
	totals, err := s.ChargeTotals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sums := map[string]countersign.ChargeTotal{}
	for _, tt := range totals {
		sums[tt.AgentID+"/"+tt.WalletID+"/"+tt.Asset] = tt
	}
	if a := sums["a1/w1/native"]; a.Count != 1 || a.Sum != 100 {
		t.Errorf("totals a1/w1: %+v", a)
	}
	if b := sums["a2/w1/0xtoken"]; b.Count != 1 || b.Sum < 1.6e60 || b.Sum > 1.61e60 {
		t.Errorf("totals of a 2^200 amount: %+v", b)
	}
	if err := s.DeleteChargeReceipt(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteChargeReceipt(ctx, "no such"); err != nil {
		t.Fatalf("deleting nothing: %v", err)
	}
	// rolled back with the transaction around it
	boom := errors.New("boom")
	err = s.InTx(ctx, func(ctx context.Context) error {
		if err := s.AddChargeReceipt(ctx, &countersign.ChargeReceipt{ID: "c5", OwnerID: "u1", WalletID: "w1", TransactionID: "t5", Reason: "transfer", Amount: "1", Asset: "native", CreatedAt: at}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if got, _ := s.ChargeReceipts(ctx, countersign.ChargeFilter{OwnerID: "u1", WalletID: "w1"}); len(got) != 1 || got[0].ID != "c2" {
		t.Fatalf("after delete and rollback: %+v", got)
	}
}
