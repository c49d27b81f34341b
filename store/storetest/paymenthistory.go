package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testPaymentHistory: PaymentHistory counts only the owner's confirmed
// payments of the asked kind, compares addresses without case, orders
// amounts as numbers (not as strings) and has no per-agent figures for "".
func testPaymentHistory(t *testing.T, s countersign.Store) {
	s.CreateUser(ctx, user("u1"))
	s.CreateUser(ctx, user("u2"))
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: time.Now()})
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w2", OwnerID: "u2", Address: "0xE", KeySealed: []byte{1}, CreatedAt: time.Now()})
	base := time.Unix(1700000000, 0).UTC()
	n := 0
	add := func(owner, agent string, typ countersign.TxType, to, token, amount string, st countersign.Status) {
		t1 := tx(fmt.Sprintf("ph%d", n), base.Add(time.Duration(n)*time.Second), st)
		n++
		t1.OwnerID, t1.AgentID, t1.Type, t1.To, t1.TokenAddress, t1.Amount = owner, agent, typ, to, token, amount
		if owner == "u2" {
			t1.WalletID = "w2"
		}
		if err := s.CreateTransaction(ctx, t1); err != nil {
			t.Fatal(err)
		}
	}
	const tok = "0xAbCdEf0000000000000000000000000000000001"
	add("u1", "a1", countersign.TxNative, "0xAAAA", "", "9", countersign.StatusConfirmed)
	add("u1", "a1", countersign.TxNative, "0xBBBB", "", "10", countersign.StatusConfirmed) // 10 > 9 as numbers, < as strings
	add("u1", "a1", countersign.TxNative, "0xCCCC", "", "1000", countersign.StatusPending) // not confirmed: not counted
	add("u1", "a2", countersign.TxNative, "0xDDDD", "", "5000", countersign.StatusConfirmed)
	add("u1", "a1", countersign.TxERC20, "0xEEEE", tok, "7", countersign.StatusConfirmed)
	add("u2", "a1", countersign.TxNative, "0xFFFF", "", "99999", countersign.StatusConfirmed) // another owner

	got, err := s.PaymentHistory(ctx, countersign.PaymentQuery{OwnerID: "u1", Type: countersign.TxNative, To: "0xbbbb", AgentID: "a1"})
	if err != nil {
		t.Fatal(err)
	}
	if !got.Paid || got.Previous != 2 || got.Largest == nil || got.Largest.String() != "10" {
		t.Fatalf("native history of a1: %+v (want paid, 2 previous, largest 10)", got)
	}
	for _, q := range []countersign.PaymentQuery{
		{OwnerID: "u1", Type: countersign.TxNative, To: "0xCCCC", AgentID: "a1"}, // only a pending payment there
		{OwnerID: "u1", Type: countersign.TxNative, To: "0xFFFF", AgentID: "a1"}, // another owner paid it
		{OwnerID: "u1", Type: countersign.TxERC20, To: "0xAAAA", AgentID: "a1"},  // paid, but natively
	} {
		if got, err := s.PaymentHistory(ctx, q); err != nil || got.Paid {
			t.Fatalf("%+v: %+v %v (want not paid)", q, got, err)
		}
	}
	got, _ = s.PaymentHistory(ctx, countersign.PaymentQuery{OwnerID: "u1", Type: countersign.TxERC20, To: "0xeeee", AgentID: "a1", Token: "0xabcdef0000000000000000000000000000000001"})
	if !got.Paid || got.Previous != 1 || got.Largest.String() != "7" {
		t.Fatalf("token history: %+v", got)
	}
	got, _ = s.PaymentHistory(ctx, countersign.PaymentQuery{OwnerID: "u1", Type: countersign.TxNative, To: "0xAAAA", AgentID: ""})
	if !got.Paid || got.Previous != 0 || got.Largest != nil {
		t.Fatalf("a user's own payment has no per-agent figures: %+v", got)
	}
	got, _ = s.PaymentHistory(ctx, countersign.PaymentQuery{OwnerID: "u1", Type: countersign.TxNative, To: "0x1234", AgentID: "a9"})
	if got.Paid || got.Previous != 0 || got.Largest != nil {
		t.Fatalf("no history: %+v", got)
	}
}
