package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testX402: a payment round-trips, its nonce and its transaction are each
// unique (a second payment with either is a Conflict, and inside a
// transaction the Conflict leaves the transaction usable), and an update
// keeps the settlement.
func testX402(t *testing.T, s countersign.Store) {
	at := time.Unix(1700000000, 0).UTC()
	p := &countersign.X402Payment{TransactionID: "tx-1", OwnerID: "u1", AgentID: "a1", WalletID: "w1",
		Nonce: "0xab" + "00000000000000000000000000000000000000000000000000000000000000cd", Resource: "https://api.example/paid",
		Method: "GET", Version: 2, Requirement: `{"scheme":"exact"}`, ResourceInfo: `{"url":"https://api.example/paid"}`, Quote: "10000",
		Amount: "10000", Asset: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", PayTo: "0x209693Bc6afc0C5328bA36FaF03C514EF312287C",
		Network: "eip155:84532", ValidBefore: at.Add(10 * time.Minute), Status: countersign.X402Prepared, CreatedAt: at, UpdatedAt: at}
	if used, err := s.X402NonceUsed(ctx, p.Nonce); err != nil || used {
		t.Fatalf("nonce used before any payment: %v %v", used, err)
	}
	if err := s.AddX402Payment(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := s.X402Payment(ctx, "tx-1")
	if err != nil {
		t.Fatal(err)
	}
	if *got != *p {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, p)
	}
	if used, err := s.X402NonceUsed(ctx, p.Nonce); err != nil || !used {
		t.Fatalf("nonce not reported used: %v %v", used, err)
	}
	// the same nonce for another transaction: refused, inside a transaction
	// too, and the transaction goes on
	again := *p
	again.TransactionID = "tx-2"
	err = s.InTx(ctx, func(ctx2 context.Context) error {
		if err := s.AddX402Payment(ctx2, &again); code(err) != countersign.Conflict {
			t.Errorf("a reused nonce: %v, want CONFLICT", err)
		}
		other := *p
		other.TransactionID, other.Nonce = "tx-3", "0x"+"11"+p.Nonce[4:]
		return s.AddX402Payment(ctx2, &other)
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.X402Payment(ctx, "tx-3"); err != nil {
		t.Fatalf("the payment after a refused one in the same transaction: %v", err)
	}
	// the same transaction with another nonce: refused
	dup := *p
	dup.Nonce = "0x" + "22" + p.Nonce[4:]
	if err := s.AddX402Payment(ctx, &dup); code(err) != countersign.Conflict {
		t.Fatalf("a second payment for one transaction: %v, want CONFLICT", err)
	}
	p.Status, p.SettlementTx, p.Settlement, p.UpdatedAt = countersign.X402Settled, "0xfeed", `{"success":true}`, at.Add(time.Minute)
	if err := s.UpdateX402Payment(ctx, p); err != nil {
		t.Fatal(err)
	}
	if got, _ = s.X402Payment(ctx, "tx-1"); got.Status != countersign.X402Settled || got.SettlementTx != "0xfeed" || !got.UpdatedAt.Equal(p.UpdatedAt) {
		t.Fatalf("after update: %+v", got)
	}
	if _, err := s.X402Payment(ctx, "nope"); code(err) != countersign.NotFound {
		t.Fatalf("missing payment: %v", err)
	}
	missing := *p
	missing.TransactionID = "nope"
	if err := s.UpdateX402Payment(ctx, &missing); code(err) != countersign.NotFound {
		t.Fatalf("update of a missing payment: %v", err)
	}
}
