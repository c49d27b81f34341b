package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// The receipt tracker's part of the store (countersign.TrackingStore):
// attempts, claims and the tracker's record of a transaction.

func trackingFixture(t *testing.T, s countersign.Store, n int) time.Time {
	t.Helper()
	s.CreateUser(ctx, user("u1"))
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: time.Now()})
	base := time.Unix(1700000000, 0).UTC()
	for i := range n {
		r := tx(fmt.Sprintf("k%02d", i), base.Add(time.Duration(i)*time.Second), countersign.StatusSubmitted)
		if err := s.CreateTransaction(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

// testTracking: attempts round-trip in order and a taken number is a
// Conflict; a claim takes submitted rows and confirmed ones from minBlock
// on, least recently checked first, and keeps them from other claims
// until its lease ends or it is released; the tracker's record
// round-trips and is not touched by UpdateTransaction.
func testTracking(t *testing.T, s countersign.Store) {
	base := trackingFixture(t, s, 4)
	for i, kind := range []string{countersign.AttemptExecute, countersign.AttemptReplace, countersign.AttemptCancel} {
		a := &countersign.TxAttempt{TransactionID: "k00", N: i, TxHash: fmt.Sprintf("0x%d", i), RawTx: []byte{byte(i), 1}, Tip: "1", FeeCap: "123456789012345678901234567890",
			Kind: kind, CreatedAt: base.Add(time.Duration(i) * time.Minute)}
		if err := s.AddAttempt(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddAttempt(ctx, &countersign.TxAttempt{TransactionID: "k00", N: 1, TxHash: "0xdup", RawTx: []byte{1}, Kind: countersign.AttemptReplace, CreatedAt: base}); code(err) != countersign.Conflict {
		t.Fatalf("a taken attempt number: %v", err)
	}
	atts, err := s.Attempts(ctx, "k00")
	if err != nil || len(atts) != 3 || atts[0].N != 0 || atts[2].Kind != countersign.AttemptCancel || atts[1].TxHash != "0x1" ||
		!bytes.Equal(atts[2].RawTx, []byte{2, 1}) || atts[2].FeeCap != "123456789012345678901234567890" || !atts[1].CreatedAt.Equal(base.Add(time.Minute)) {
		t.Fatalf("attempts round trip: %+v %v", atts, err)
	}
	if atts, err := s.Attempts(ctx, "k01"); err != nil || len(atts) != 0 {
		t.Fatalf("no attempts: %v %v", atts, err)
	}

	// k03 confirmed in block 10, k02 in block 3: only k03 is in the window
	for id, block := range map[string]uint64{"k02": 3, "k03": 10} {
		r, _ := s.Transaction(ctx, id)
		b := block
		r.Status, r.BlockNumber = countersign.StatusConfirmed, &b
		if err := s.UpdateTransaction(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	now := base.Add(time.Hour)
	got, err := s.ClaimTracked(ctx, countersign.ClaimQuery{Now: now, Lease: time.Minute, MinBlock: 5, Limit: 10})
	if err != nil || len(got) != 3 {
		t.Fatalf("claim: %v %v", ids(got), err)
	}
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.ID] = true
	}
	if !seen["k00"] || !seen["k01"] || !seen["k03"] || seen["k02"] {
		t.Fatalf("claimed %v: want the submitted rows and the confirmed one in the window", ids(got))
	}
	if again, _ := s.ClaimTracked(ctx, countersign.ClaimQuery{Now: now.Add(30 * time.Second), Lease: time.Minute, MinBlock: 5, Limit: 10}); len(again) != 0 {
		t.Fatalf("claimed rows another pass holds: %v", ids(again))
	}
	if again, _ := s.ClaimTracked(ctx, countersign.ClaimQuery{Now: now.Add(2 * time.Minute), Lease: 10 * time.Minute, MinBlock: 5, Limit: 10}); len(again) != 3 {
		t.Fatalf("an expired lease does not free the rows: %v", ids(again))
	}
	// the first pass, its lease long over, releases what the second holds: nothing changes
	if err := s.ReleaseClaims(ctx, now.Add(time.Minute), now.Add(3*time.Minute), "k00", "k01", "k03"); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.ClaimTracked(ctx, countersign.ClaimQuery{Now: now.Add(3 * time.Minute), Lease: time.Minute, MinBlock: 5, Limit: 10}); len(again) != 0 {
		t.Fatalf("a release by a pass whose lease ended cleared another pass's claim: %v", ids(again))
	}
	if err := s.ReleaseClaims(ctx, now.Add(12*time.Minute), now.Add(3*time.Minute), "k00", "k03"); err != nil {
		t.Fatal(err)
	}
	// k01's claim (taken at +2m for 10m) still holds; k00 and k03 are free, oldest check first
	again, _ := s.ClaimTracked(ctx, countersign.ClaimQuery{Now: now.Add(3 * time.Minute), Lease: time.Minute, MinBlock: 5, Limit: 1})
	if len(again) != 1 || (again[0].ID != "k00" && again[0].ID != "k03") || !again[0].CheckedAt.Equal(now.Add(3*time.Minute)) {
		t.Fatalf("after release: %v", ids(again))
	}
	held, free := again[0].ID, map[string]string{"k00": "k03", "k03": "k00"}[again[0].ID]
	// k01 by its claim (until +12m), held by its own (until +4m); free, checked at +3m, stays least recently checked
	if err := s.ReleaseClaims(ctx, now.Add(12*time.Minute), now.Add(4*time.Minute), "k01"); err != nil {
		t.Fatal(err)
	}
	if err := s.ReleaseClaims(ctx, now.Add(4*time.Minute), now.Add(4*time.Minute), held); err != nil {
		t.Fatal(err)
	}
	if first, _ := s.ClaimTracked(ctx, countersign.ClaimQuery{Now: now.Add(4 * time.Minute), Lease: time.Minute, MinBlock: 5, Limit: 1}); len(first) != 1 || first[0].ID != free {
		t.Fatalf("least recently checked first: %v, want %s", ids(first), free)
	}
	// k01 and held both checked at +4m: ties go by age
	older := "k01"
	if held == "k00" {
		older = "k00"
	}
	if next, _ := s.ClaimTracked(ctx, countersign.ClaimQuery{Now: now.Add(4 * time.Minute), Lease: time.Minute, MinBlock: 5, Limit: 1}); len(next) != 1 || next[0].ID != older {
		t.Fatalf("checked at the same time, oldest first: %v, want %s", ids(next), older)
	}
	// a confirmed row last updated before ConfirmedSince (an earlier chain's) is not rechecked
	if got, _ := s.ClaimTracked(ctx, countersign.ClaimQuery{Now: now.Add(5 * time.Minute), Lease: time.Minute, MinBlock: 5, ConfirmedSince: base.Add(time.Hour), Limit: 10}); len(got) != 2 ||
		got[0].Status != countersign.StatusSubmitted || got[1].Status != countersign.StatusSubmitted {
		t.Fatalf("claimed with ConfirmedSince after the confirmation: %v", ids(got))
	}

	if st, err := s.TrackState(ctx, "k00"); err != nil || st.BlockHash != "" || !st.StuckAt.IsZero() {
		t.Fatalf("empty track state: %+v %v", st, err)
	}
	stuck := base.Add(5 * time.Minute)
	if err := s.SetTrackState(ctx, "k00", &countersign.TrackState{BlockHash: "0xbb", StuckAt: stuck}); err != nil {
		t.Fatal(err)
	}
	r, _ := s.Transaction(ctx, "k00")
	r.Error = "x"
	if err := s.UpdateTransaction(ctx, r); err != nil {
		t.Fatal(err)
	}
	if st, err := s.TrackState(ctx, "k00"); err != nil || st.BlockHash != "0xbb" || !st.StuckAt.Equal(stuck) {
		t.Fatalf("track state round trip (after an update): %+v %v", st, err)
	}
	if err := s.SetTrackState(ctx, "nope", &countersign.TrackState{}); code(err) != countersign.NotFound {
		t.Fatalf("track state of a missing transaction: %v", err)
	}

	// rows the chain settled otherwise are rechecked too: a revert (failed
	// in a block) and a mined on-chain cancel; a failure with no block (a
	// refused broadcast) is not
	for id, st := range map[string]countersign.Status{"k00": countersign.StatusCancelled, "k01": countersign.StatusFailed, "k02": countersign.StatusFailed} {
		r, _ := s.Transaction(ctx, id)
		r.Status, r.BlockNumber = st, nil
		if id != "k01" {
			b := uint64(12)
			r.BlockNumber = &b
		}
		if err := s.UpdateTransaction(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(time.Hour)
	got, err = s.ClaimTracked(ctx, countersign.ClaimQuery{Now: later, Lease: time.Minute, MinBlock: 5, Limit: 10})
	seen = map[string]bool{}
	for _, r := range got {
		seen[r.ID] = true
	}
	if err != nil || len(got) != 3 || !seen["k00"] || !seen["k02"] || !seen["k03"] {
		t.Fatalf("claimed %v (%v): want the cancelled and the failed row in a block, and the confirmed one", ids(got), err)
	}
}

// testConcurrentTrackerClaims: trackers claiming at once (replicas on one
// database) never get the same transaction.
func testConcurrentTrackerClaims(t *testing.T, s countersign.Store) {
	const rows = 40
	base := trackingFixture(t, s, rows)
	now := base.Add(time.Hour)
	var mu sync.Mutex
	owner := map[string]int{}
	var errs []error
	many(func(i int) {
		got, err := s.ClaimTracked(ctx, countersign.ClaimQuery{Now: now, Lease: time.Minute, MinBlock: 0, Limit: 5})
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, r := range got {
			if prev, ok := owner[r.ID]; ok {
				errs = append(errs, fmt.Errorf("transaction %s claimed by workers %d and %d", r.ID, prev, i))
			}
			owner[r.ID] = i
		}
	})
	for _, err := range errs {
		t.Error(err)
	}
	if want := min(rows, 5*workers); len(owner) != want {
		t.Fatalf("%d rows claimed, want %d", len(owner), want)
	}
}
