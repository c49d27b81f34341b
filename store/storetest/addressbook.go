package storetest

import (
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testAddressBook: labels are set, replaced (one per owner and address),
// listed per owner only, and removed; removing a missing one is NotFound.
func testAddressBook(t *testing.T, s countersign.Store) {
	for _, id := range []string{"ua", "ux"} {
		if err := s.CreateUser(ctx, user(id)); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Unix(1700000000, 0).UTC()
	put := func(owner, addr, label string) {
		t.Helper()
		if err := s.PutAddressLabel(ctx, &countersign.AddressLabel{OwnerID: owner, Address: addr, Label: label, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	put("ua", "0xB0B", "bob")
	put("ua", "0xA11CE", "alice")
	put("ua", "0xB0B", "bob (payroll)")
	put("ux", "0xB0B", "someone else's bob")
	list, err := s.AddressLabels(ctx, "ua")
	if err != nil || len(list) != 2 || list[0].Address != "0xA11CE" || list[1].Label != "bob (payroll)" || !list[1].CreatedAt.Equal(at) {
		t.Fatalf("labels of ua: %+v %v", list, err)
	}
	if err := s.DeleteAddressLabel(ctx, "ua", "0xB0B"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAddressLabel(ctx, "ua", "0xB0B"); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("deleting a missing label: %v", err)
	}
	if list, _ := s.AddressLabels(ctx, "ua"); len(list) != 1 {
		t.Fatalf("after delete: %+v", list)
	}
	if list, _ := s.AddressLabels(ctx, "ux"); len(list) != 1 || list[0].Label != "someone else's bob" {
		t.Fatalf("another owner's book changed: %+v", list)
	}
	t.Run("passkeys", func(t *testing.T) { testPasskeys(t, s) })
}

// testPasskeys (run from testAddressBook, the approver's half's one entry
// in the suite): credentials are stored once per id, listed per user,
// updated and removed; a challenge is taken once and never after expiry.
func testPasskeys(t *testing.T, s countersign.Store) {
	at := time.Unix(1700000000, 0).UTC()
	k := &countersign.Passkey{ID: "cred-1", UserID: "ua", Name: "phone", Credential: []byte(`{"a":1}`), CreatedAt: at}
	if err := s.CreatePasskey(ctx, k); err != nil {
		t.Fatal(err)
	}
	if err := s.CreatePasskey(ctx, &countersign.Passkey{ID: "cred-1", UserID: "ux", Name: "stolen id", Credential: []byte(`{}`), CreatedAt: at}); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("a second credential with the same id: %v", err)
	}
	if err := s.UpdatePasskey(ctx, "cred-1", []byte(`{"a":2}`), at.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	list, err := s.Passkeys(ctx, "ua")
	if err != nil || len(list) != 1 || string(list[0].Credential) != `{"a":2}` || !list[0].LastUsedAt.Equal(at.Add(time.Hour)) || list[0].Name != "phone" {
		t.Fatalf("passkeys: %+v %v", list, err)
	}
	if list, _ := s.Passkeys(ctx, "ux"); len(list) != 0 {
		t.Fatalf("another user's passkeys: %+v", list)
	}
	if err := s.DeletePasskey(ctx, "ux", "cred-1"); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("another user deleted a passkey: %v", err)
	}
	if err := s.DeletePasskey(ctx, "ua", "cred-1"); err != nil {
		t.Fatal(err)
	}
	c := &countersign.PasskeyChallenge{ID: "ch-1", UserID: "ua", Purpose: "approve", TxID: "tx", Digest: []byte{1, 2}, Nonce: []byte{3}, Session: []byte(`{}`), ExpiresAt: at.Add(5 * time.Minute)}
	if err := s.PutPasskeyChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	got, err := s.TakePasskeyChallenge(ctx, "ch-1", at)
	if err != nil || got.TxID != "tx" || string(got.Digest) != "\x01\x02" || got.Purpose != "approve" || !got.ExpiresAt.Equal(c.ExpiresAt) {
		t.Fatalf("take: %+v %v", got, err)
	}
	if _, err := s.TakePasskeyChallenge(ctx, "ch-1", at); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("a challenge taken twice: %v", err)
	}
	c.ID = "ch-2"
	if err := s.PutPasskeyChallenge(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TakePasskeyChallenge(ctx, "ch-2", at.Add(5*time.Minute)); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("an expired challenge was taken: %v", err)
	}
}
