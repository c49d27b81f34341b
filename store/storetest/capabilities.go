package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// The optional store capabilities (not part of Store; a store that has one
// must behave alike): the owners' invitation and webhook management, and
// the master key rotation's sealed-value access.

func runCapabilities(t *testing.T, open func(t *testing.T) countersign.Store) {
	t.Run("capabilities/approver admin", func(t *testing.T) {
		s := open(t)
		testApproverAdmin(t, s, s)
	})
	t.Run("capabilities/resealer", func(t *testing.T) {
		s := open(t)
		r, ok := s.(countersign.Resealer)
		if !ok {
			t.Fatal("every store must implement countersign.Resealer (rotate-master-key walks it)")
		}
		testResealer(t, s, r)
	})
}

func testApproverAdmin(t *testing.T, s countersign.Store, a countersign.ApproverAdminStore) {
	s.CreateUser(ctx, user("u1"))
	s.CreateUser(ctx, user("u2"))
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: time.Now()})
	base := time.Unix(1700000000, 0).UTC()
	for i, id := range []string{"i2", "i1"} {
		if err := s.CreateInvitation(ctx, &countersign.Invitation{ID: id, WalletID: "w1", OwnerID: "u1", InviteeID: "u2", CreatedAt: base.Add(time.Duration(i) * time.Second), ExpiresAt: base.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if l, err := a.InvitationsOfWallet(ctx, "w1"); err != nil || len(l) != 2 || l[0].ID != "i2" {
		t.Fatalf("open invitations, oldest first: %v %v", l, err)
	}
	if err := s.AcceptInvitation(ctx, "i2", base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteInvitation(ctx, "i2"); code(err) != countersign.NotFound {
		t.Fatalf("deleting an accepted invitation: %v", err)
	}
	if err := a.DeleteInvitation(ctx, "i1"); err != nil {
		t.Fatal(err)
	}
	if l, _ := a.InvitationsOfWallet(ctx, "w1"); len(l) != 0 {
		t.Fatalf("after delete and accept: %d open", len(l))
	}
	if err := s.CreateWebhook(ctx, &countersign.Webhook{ID: "h1", OwnerID: "u1", URL: "https://x.example", Events: []string{"*"}, SecretSealed: []byte{1}, CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDelivery(ctx, &countersign.Delivery{ID: "d1", WebhookID: "h1", EventID: 1, EventType: "t", Payload: "{}", Status: "pending", NextAttemptAt: base, CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteWebhook(ctx, "h1"); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.DueDeliveries(ctx, base.Add(time.Hour), 10); len(d) != 0 {
		t.Fatalf("%d deliveries of a deleted webhook are still due", len(d))
	}
	if err := a.DeleteWebhook(ctx, "h1"); code(err) != countersign.NotFound {
		t.Fatalf("deleting a missing webhook: %v", err)
	}
}

func testResealer(t *testing.T, s countersign.Store, r countersign.Resealer) {
	// ids whose byte order and a locale's order differ ("B" < "a" in bytes)
	ids := []string{"a", "B", "c", "D", "_e"}
	for _, id := range ids {
		u := user(id)
		u.MFASealed = []byte("sealed-" + id)
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	nomfa := user("z-no-mfa")
	if err := s.CreateUser(ctx, nomfa); err != nil {
		t.Fatal(err)
	}
	var got []string
	after := ""
	for {
		page, err := r.SealedValues(ctx, countersign.SealedMFA, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, v := range page {
			got = append(got, v.ID)
			after = v.ID
		}
	}
	if fmt.Sprint(got) != "[B D _e a c]" {
		t.Fatalf("paged in byte order, without the user without MFA: %v", got)
	}
	v := &countersign.SealedValue{Kind: countersign.SealedMFA, ID: "a", Sealed: []byte("sealed-a")}
	if ok, err := r.ReplaceSealed(ctx, v, []byte("new")); err != nil || !ok {
		t.Fatalf("replace: %v %v", ok, err)
	}
	if ok, err := r.ReplaceSealed(ctx, v, []byte("newer")); err != nil || ok {
		t.Fatalf("replace of a value that changed meanwhile: %v %v", ok, err)
	}
	if u, _ := s.UserByID(ctx, "a"); !bytes.Equal(u.MFASealed, []byte("new")) {
		t.Fatalf("after replace: %q", u.MFASealed)
	}
	if _, err := r.SealedValues(ctx, "nope", "", 1); code(err) != countersign.BadRequest {
		t.Fatalf("unknown kind: %v", err)
	}
}
