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

// testAuthorizedExpired: only authorized rows, unsigned and unbroadcast,
// authorized at or before the cutoff by the decision's time (else the
// later of creation and the delay's end), earliest authorized first, at
// most limit — however many authorized rows were created earlier and
// authorized later.
func testAuthorizedExpired(t *testing.T, s countersign.Store) {
	s.CreateUser(ctx, user("u1"))
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: time.Now()})
	base := time.Unix(1700000000, 0).UTC()
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	for _, c := range []struct {
		id               string
		st               countersign.Status
		created, decided time.Time
		delayEnd         time.Time
		hash             string
		signature        []byte
	}{
		{"decided-early", countersign.StatusAuthorized, at(0), at(2), time.Time{}, "", nil},                 // authorized at 2
		{"created-early-decided-late", countersign.StatusAuthorized, at(-60), at(20), time.Time{}, "", nil}, // at 20: not due
		{"auto", countersign.StatusAuthorized, at(1), time.Time{}, time.Time{}, "", nil},                    // at 1
		{"delay-ended", countersign.StatusAuthorized, at(-5), time.Time{}, at(3), "", nil},                  // at 3
		{"delay-ends-late", countersign.StatusAuthorized, at(-5), time.Time{}, at(30), "", nil},             // at 30: not due
		{"pending", countersign.StatusPending, at(-90), time.Time{}, time.Time{}, "", nil},
		{"broadcast", countersign.StatusAuthorized, at(-90), at(-80), time.Time{}, "0xabc", nil},
		{"signed-message", countersign.StatusAuthorized, at(-90), at(-80), time.Time{}, "", []byte{1, 2}},
	} {
		x := tx(c.id, c.created, c.st)
		x.DecidedAt, x.AuthorizeAt, x.TxHash, x.Signature = c.decided, c.delayEnd, c.hash, c.signature
		if err := s.CreateTransaction(ctx, x); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.AuthorizedExpired(ctx, at(10), 10)
	if err != nil || len(got) != 3 || got[0].ID != "auto" || got[1].ID != "decided-early" || got[2].ID != "delay-ended" {
		t.Fatalf("authorized by +10m: %v %v", ids(got), err)
	}
	if got, _ := s.AuthorizedExpired(ctx, at(10), 2); len(got) != 2 || got[1].ID != "decided-early" {
		t.Fatalf("limit 2: %v", ids(got))
	}
	if got, _ := s.AuthorizedExpired(ctx, at(2), 10); len(got) != 2 || got[1].ID != "decided-early" {
		t.Fatalf("at the cutoff itself: %v", ids(got))
	}
	if got, _ := s.AuthorizedExpired(ctx, at(0), 10); len(got) != 0 {
		t.Fatalf("nothing authorized yet: %v", ids(got))
	}
}
