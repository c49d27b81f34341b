package storetest

import (
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testPendingExpired: only pending rows whose window has ended, the
// earliest first, at most limit.
func testPendingExpired(t *testing.T, s countersign.Store) {
	s.CreateUser(ctx, user("u1"))
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: time.Now()})
	base := time.Unix(1700000000, 0).UTC()
	for i, c := range []struct {
		id  string
		st  countersign.Status
		due time.Duration // expires this long after base
	}{{"e3", countersign.StatusPending, 3 * time.Minute}, {"e1", countersign.StatusPending, time.Minute}, {"e2", countersign.StatusPending, 2 * time.Minute},
		{"later", countersign.StatusPending, time.Hour}, {"authd", countersign.StatusAuthorized, time.Minute}} {
		x := tx(c.id, base.Add(time.Duration(i)*time.Second), c.st)
		x.ExpiresAt = base.Add(c.due)
		if err := s.CreateTransaction(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.PendingExpired(ctx, base.Add(3*time.Minute), 10)
	if err != nil || len(got) != 3 || got[0].ID != "e1" || got[1].ID != "e2" || got[2].ID != "e3" {
		t.Fatalf("due at +3m: %v %v", ids(got), err)
	}
	if got, _ := s.PendingExpired(ctx, base.Add(3*time.Minute), 2); len(got) != 2 || got[1].ID != "e2" {
		t.Fatalf("limit 2: %v", ids(got))
	}
	if got, _ := s.PendingExpired(ctx, base, 10); len(got) != 0 {
		t.Fatalf("nothing due yet: %v", ids(got))
	}
}
