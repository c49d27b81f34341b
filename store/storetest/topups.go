package storetest

import (
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testTopups: the top-up state machine's rows — created, listed, leased to
// one holder at a time, updated only from the status the caller read and
// only by the holder, one charge per top-up, and never two open automatic
// top-ups for one wallet and provider.
func testTopups(t *testing.T, s countersign.Store) {
	s.CreateUser(ctx, user("u1"))
	if err := s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xTopup", KeySealed: []byte{1}, CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1800000000, 0).UTC()
	mk := func(id string, auto bool, at time.Time) *countersign.Topup {
		return &countersign.Topup{ID: id, OwnerID: "u1", AgentID: "a1", WalletID: "w1", Provider: "openrouter", AmountCents: 1050,
			Automatic: auto, Status: countersign.TopupPending, CreatedAt: at, UpdatedAt: at}
	}
	if err := s.CreateTopup(ctx, mk("t1", false, now)); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopup(ctx, mk("t1", false, now)); code(err) != countersign.Conflict {
		t.Fatalf("duplicate id: %v", err)
	}
	got, err := s.Topup(ctx, "t1")
	if err != nil || got.AmountCents != 1050 || got.Status != countersign.TopupPending || got.Automatic || !got.CreatedAt.Equal(now) {
		t.Fatalf("Topup: %+v %v", got, err)
	}
	if _, err := s.Topup(ctx, "nope"); code(err) != countersign.NotFound {
		t.Fatalf("missing top-up: %v", err)
	}

	// one open automatic top-up per wallet and provider
	if err := s.CreateTopup(ctx, mk("auto1", true, now.Add(time.Second))); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateTopup(ctx, mk("auto2", true, now.Add(2*time.Second))); code(err) != countersign.Conflict {
		t.Fatalf("second open automatic top-up: %v", err)
	}
	other := mk("auto-other", true, now.Add(2*time.Second))
	other.Provider = "other"
	if err := s.CreateTopup(ctx, other); err != nil {
		t.Fatalf("an automatic top-up at another provider: %v", err)
	}

	// claims: one holder at a time, until the lease passes
	if ok, err := s.ClaimTopup(ctx, "t1", "r1", now, time.Minute); err != nil || !ok {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if ok, _ := s.ClaimTopup(ctx, "t1", "r2", now.Add(30*time.Second), time.Minute); ok {
		t.Fatal("a second replica claimed a leased top-up")
	}
	if ok, _ := s.ClaimTopup(ctx, "t1", "r1", now.Add(30*time.Second), time.Minute); !ok {
		t.Fatal("the holder could not renew its lease")
	}

	// updates: from the status read, by the holder only
	got, _ = s.Topup(ctx, "t1")
	if got.ClaimedBy != "r1" {
		t.Fatalf("claimed by %q", got.ClaimedBy)
	}
	got.Status, got.ChargeID, got.Charge, got.ChargeExpiresAt, got.UpdatedAt = countersign.TopupChargeCreated, "charge-1", `{"id":"charge-1"}`, now.Add(time.Hour), now.Add(time.Second)
	got.TransactionID, got.ApprovalTxID, got.Attempts = "tx-1", "ap-1", 2
	if err := s.UpdateTopup(ctx, got, countersign.TopupPending, "r2"); code(err) != countersign.Conflict {
		t.Fatalf("update by a non-holder: %v", err)
	}
	if err := s.UpdateTopup(ctx, got, countersign.TopupPending, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateTopup(ctx, got, countersign.TopupPending, "r1"); code(err) != countersign.Conflict {
		t.Fatalf("a second update from a status the row left: %v", err)
	}
	again, _ := s.Topup(ctx, "t1")
	if again.Status != countersign.TopupChargeCreated || again.ChargeID != "charge-1" || again.Charge != `{"id":"charge-1"}` || !again.ChargeExpiresAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("after the update: %+v", again)
	}
	for _, id := range []string{"tx-1", "ap-1"} {
		if byTx, err := s.TopupByTransaction(ctx, id); err != nil || byTx.ID != "t1" || byTx.Attempts != 2 {
			t.Fatalf("TopupByTransaction(%s): %+v %v", id, byTx, err)
		}
	}
	if _, err := s.TopupByTransaction(ctx, ""); code(err) != countersign.NotFound {
		t.Fatalf("TopupByTransaction(\"\"): %v", err)
	}
	if _, err := s.TopupByTransaction(ctx, "tx-none"); code(err) != countersign.NotFound {
		t.Fatalf("TopupByTransaction(unknown): %v", err)
	}

	// one charge, one top-up
	t2 := mk("t2", false, now.Add(3*time.Second))
	if err := s.CreateTopup(ctx, t2); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.ClaimTopup(ctx, "t2", "r1", now, time.Minute); !ok {
		t.Fatal("claim t2")
	}
	t2.Status, t2.ChargeID = countersign.TopupChargeCreated, "charge-1"
	if err := s.UpdateTopup(ctx, t2, countersign.TopupPending, "r1"); code(err) != countersign.Conflict {
		t.Fatalf("a second top-up took the same charge: %v", err)
	}
	if cur, _ := s.Topup(ctx, "t2"); cur.Status != countersign.TopupPending || cur.ChargeID != "" {
		t.Fatalf("the refused update changed the row: %+v", cur)
	}

	// release, and a lease that passed
	if err := s.ReleaseTopup(ctx, "t1", "r2"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.Topup(ctx, "t1"); cur.ClaimedBy != "r1" {
		t.Fatal("a non-holder released the lease")
	}
	if ok, _ := s.ClaimTopup(ctx, "t1", "r2", now.Add(2*time.Minute), time.Minute); !ok {
		t.Fatal("a passed lease could not be taken over")
	}
	if err := s.ReleaseTopup(ctx, "t1", "r2"); err != nil {
		t.Fatal(err)
	}
	if cur, _ := s.Topup(ctx, "t1"); cur.ClaimedBy != "" || !cur.ClaimedUntil.IsZero() {
		t.Fatalf("after release: %+v", cur)
	}

	// ended top-ups are neither open nor claimable, and free the automatic slot
	if ok, _ := s.ClaimTopup(ctx, "auto1", "r1", now, time.Minute); !ok {
		t.Fatal("claim auto1")
	}
	a1, _ := s.Topup(ctx, "auto1")
	a1.Status, a1.Error = countersign.TopupFailed, "gone"
	if err := s.UpdateTopup(ctx, a1, countersign.TopupPending, "r1"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.ClaimTopup(ctx, "auto1", "r2", now.Add(time.Hour), time.Minute); ok {
		t.Fatal("a failed top-up was claimed")
	}
	if err := s.CreateTopup(ctx, mk("auto2", true, now.Add(4*time.Second))); err != nil {
		t.Fatalf("a new automatic top-up after the last one failed: %v", err)
	}
	open, err := s.OpenTopups(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range open {
		ids = append(ids, o.ID)
	}
	if want := []string{"t1", "auto-other", "t2", "auto2"}; len(ids) != len(want) || ids[0] != "t1" || ids[3] != "auto2" {
		t.Fatalf("OpenTopups (oldest first, open only) = %v, want %v", ids, want)
	}
	list, err := s.Topups(ctx, countersign.TopupFilter{OwnerID: "u1", Status: countersign.TopupFailed})
	if err != nil || len(list) != 1 || list[0].ID != "auto1" || list[0].Error != "gone" {
		t.Fatalf("Topups(failed): %v %v", list, err)
	}
	if list, _ := s.Topups(ctx, countersign.TopupFilter{OwnerID: "u1"}); len(list) != 5 || list[0].ID != "auto2" {
		t.Fatalf("Topups newest first: %d", len(list))
	}
	if list, _ := s.Topups(ctx, countersign.TopupFilter{OwnerID: "u2"}); len(list) != 0 {
		t.Fatal("another owner's top-ups listed")
	}
}
