package storetest

import (
	"context"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testPolicies: policy documents, the new transaction columns, budget
// counters, reservations (reserve → spent / released, exactly once), the
// rolling window's exclusive edge, concurrent reservations under the
// counter lock, PaidBefore and DueDelayed.
func testPolicies(t *testing.T, s countersign.Store) {
	s.CreateUser(ctx, user("u1"))
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: time.Now()})
	base := time.Unix(1700000000, 0).UTC()

	// documents
	if _, err := s.Policy(ctx, countersign.PolicyAgent, "a1"); code(err) != countersign.NotFound {
		t.Fatalf("no policy yet: %v", err)
	}
	r := &countersign.PolicyRecord{Level: countersign.PolicyAgent, SubjectID: "a1", OwnerID: "u1", Document: `{"rules":[]}`, Hash: "h1", UpdatedBy: "user:u1", UpdatedAt: base}
	if err := s.PutPolicy(ctx, r); err != nil {
		t.Fatal(err)
	}
	r2 := *r
	r2.Document, r2.Hash, r2.UpdatedAt = `{"rules":[],"default":"deny"}`, "h2", base.Add(time.Second)
	if err := s.PutPolicy(ctx, &r2); err != nil {
		t.Fatal(err)
	}
	got, err := s.Policy(ctx, countersign.PolicyAgent, "a1")
	if err != nil || got.Document != r2.Document || got.Hash != "h2" || !got.UpdatedAt.Equal(r2.UpdatedAt) || got.OwnerID != "u1" {
		t.Fatalf("Policy: %+v %v", got, err)
	}
	if _, err := s.Policy(ctx, countersign.PolicyWallet, "a1"); code(err) != countersign.NotFound {
		t.Fatalf("levels are separate: %v", err)
	}

	// transaction columns
	t1 := tx("p1", base, countersign.StatusPending)
	t1.Decision, t1.RuleID, t1.PolicyWarnings, t1.AuthorizeAt, t1.ApprovalsNeeded = "delay", "new-payee", []string{"w1", "w2"}, base.Add(15*time.Minute), 2
	if err := s.CreateTransaction(ctx, t1); err != nil {
		t.Fatal(err)
	}
	back, err := s.Transaction(ctx, "p1")
	if err != nil || back.Decision != "delay" || back.RuleID != "new-payee" || len(back.PolicyWarnings) != 2 || !back.AuthorizeAt.Equal(t1.AuthorizeAt) || back.ApprovalsNeeded != 2 {
		t.Fatalf("policy columns: %+v %v", back, err)
	}
	if due, err := s.DueDelayed(ctx, base.Add(14*time.Minute), 10); err != nil || len(due) != 0 {
		t.Fatalf("not due yet: %d %v", len(due), err)
	}
	if due, err := s.DueDelayed(ctx, base.Add(15*time.Minute), 10); err != nil || len(due) != 1 || due[0].ID != "p1" {
		t.Fatalf("due at its time: %v", err)
	}

	// reservations
	k := countersign.BudgetKey{Level: countersign.PolicyWallet, Subject: "wallet:w1", RuleID: "inference", Asset: "native"}
	used := func(since time.Time) (string, string) {
		sp, rs, err := s.BudgetUsed(ctx, k, since)
		if err != nil {
			t.Fatal(err)
		}
		return sp.String(), rs.String()
	}
	if sp, rs := used(base); sp != "0" || rs != "0" {
		t.Fatalf("empty budget: %s %s", sp, rs)
	}
	huge, _ := new(big.Int).SetString("115792089237316195423570985008687907853269984665640564039457584007913129639935", 10) // 2^256-1
	for i, amt := range []*big.Int{big.NewInt(5), big.NewInt(7), huge} {
		err := s.InTx(ctx, func(ctx context.Context) error {
			if err := s.LockBudget(ctx, k); err != nil {
				return err
			}
			return s.AddReservation(ctx, &countersign.BudgetReservation{TransactionID: fmt.Sprintf("r%d", i), OwnerID: "u1", Key: k, Amount: amt,
				State: countersign.ReservationReserved, ReservedAt: base})
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddReservation(ctx, &countersign.BudgetReservation{TransactionID: "r0", OwnerID: "u1", Key: k, Amount: big.NewInt(1), ReservedAt: base}); code(err) != countersign.Conflict {
		t.Fatalf("a transaction reserves a key once: %v", err)
	}
	want := new(big.Int).Add(huge, big.NewInt(12)).String()
	if sp, rs := used(base); sp != "0" || rs != want {
		t.Fatalf("reserved: %s %s", sp, rs)
	}
	if n, err := s.SettleReservations(ctx, "r2", countersign.ReservationReleased, base.Add(time.Second)); err != nil || n != 1 {
		t.Fatalf("release: %d %v", n, err)
	}
	if n, err := s.SettleReservations(ctx, "r2", countersign.ReservationReleased, base.Add(time.Second)); err != nil || n != 0 {
		t.Fatalf("a release happens once: %d %v", n, err)
	}
	spentAt := base.Add(time.Hour)
	if n, err := s.SettleReservations(ctx, "r1", countersign.ReservationSpent, spentAt); err != nil || n != 1 {
		t.Fatalf("spend: %d %v", n, err)
	}
	if n, _ := s.SettleReservations(ctx, "r1", countersign.ReservationSpent, spentAt); n != 0 {
		t.Fatalf("spent twice")
	}
	if sp, rs := used(spentAt.Add(-time.Nanosecond)); sp != "7" || rs != "5" {
		t.Fatalf("after settling: spent %s reserved %s", sp, rs)
	}
	if sp, _ := used(spentAt); sp != "0" {
		t.Fatalf("an entry exactly one window old no longer counts: %s", sp)
	}
	// a refused broadcast gives a spent reservation back
	if n, err := s.SettleReservations(ctx, "r1", countersign.ReservationReleased, spentAt); err != nil || n != 1 {
		t.Fatalf("release of a spent reservation: %d %v", n, err)
	}
	if sp, rs := used(base); sp != "0" || rs != "5" {
		t.Fatalf("after refusal: spent %s reserved %s", sp, rs)
	}
	// LockBudgetUsed reads what BudgetUsed reads, and creates the counter
	// of a key never used
	for _, key := range []countersign.BudgetKey{k, {Level: countersign.PolicyWallet, Subject: "wallet:w1", RuleID: "fresh", Asset: "native"}} {
		err := s.InTx(ctx, func(ctx context.Context) error {
			sp, rs, err := s.LockBudgetUsed(ctx, key, base)
			if err != nil {
				return err
			}
			wsp, wrs, err := s.BudgetUsed(ctx, key, base)
			if err != nil {
				return err
			}
			if sp.Cmp(wsp) != 0 || rs.Cmp(wrs) != 0 {
				t.Errorf("%s: LockBudgetUsed %s/%s, BudgetUsed %s/%s", key.RuleID, sp, rs, wsp, wrs)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.SettleReservations(ctx, "r0", "bogus", base); err == nil {
		t.Fatal("unknown state accepted")
	}
	list, err := s.Reservations(ctx, "r0")
	if err != nil || len(list) != 1 || list[0].Amount.Int64() != 5 || list[0].State != countersign.ReservationReserved || list[0].Key != k {
		t.Fatalf("Reservations: %+v %v", list, err)
	}

	// concurrent reservations under the counter lock never pass a cap
	k2 := countersign.BudgetKey{Level: countersign.PolicyAgent, Subject: "agent:a1", RuleID: "cap", Asset: "native"}
	capMax := big.NewInt(10)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.InTx(ctx, func(ctx context.Context) error {
				var sp, rs *big.Int
				var err error
				if i%2 == 0 { // the two ways a prepare locks and reads a budget
					if err := s.LockBudget(ctx, k2); err != nil {
						return err
					}
					sp, rs, err = s.BudgetUsed(ctx, k2, base)
				} else {
					sp, rs, err = s.LockBudgetUsed(ctx, k2, base)
				}
				if err != nil {
					return err
				}
				if new(big.Int).Add(sp, rs).Cmp(capMax) >= 0 {
					return nil // full
				}
				mu.Lock()
				won++
				mu.Unlock()
				return s.AddReservation(ctx, &countersign.BudgetReservation{TransactionID: fmt.Sprintf("c%d", i), OwnerID: "u1", Key: k2, Amount: big.NewInt(1), ReservedAt: base})
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if _, rs, _ := s.BudgetUsed(ctx, k2, base); rs.Cmp(capMax) != 0 || won != 10 {
		t.Fatalf("concurrent reservations: reserved %s, %d won (cap %s)", rs, won, capMax)
	}

	// PaidBefore: only signed transactions count, any case
	paid := tx("p2", base, countersign.StatusSubmitted)
	paid.To = "0xAbCdEf"
	if err := s.CreateTransaction(ctx, paid); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.PaidBefore(ctx, "w1", "0xabcdef"); err != nil || !ok {
		t.Fatalf("PaidBefore: %v %v", ok, err)
	}
	if ok, _ := s.PaidBefore(ctx, "w1", "0xT"); ok {
		t.Fatal("a pending request is no payment")
	}
	if ok, _ := s.PaidBefore(ctx, "w2", "0xabcdef"); ok {
		t.Fatal("another wallet's payment counted")
	}
}
