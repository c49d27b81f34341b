package storetest

import (
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testRecoveryCodes: a code works once; a used or replaced code is told
// apart (Conflict) from one that never existed (NotFound), so a replay is
// not counted as a guess.
func testRecoveryCodes(t *testing.T, s countersign.Store) {
	if err := s.CreateUser(ctx, user("rc1")); err != nil {
		t.Fatal(err)
	}
	a, b, c, d := []byte("code-a"), []byte("code-b"), []byte("code-c"), []byte("code-d")
	if err := s.SetRecoveryCodes(ctx, "rc1", [][]byte{a, b}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := s.UseRecoveryCode(ctx, "rc1", a, now); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if err := s.UseRecoveryCode(ctx, "rc1", a, now); code(err) != countersign.Conflict {
		t.Fatalf("second use: %v, want CONFLICT", err)
	}
	if err := s.UseRecoveryCode(ctx, "rc1", c, now); code(err) != countersign.NotFound {
		t.Fatalf("unknown code: %v, want NOT_FOUND", err)
	}
	if err := s.SetRecoveryCodes(ctx, "rc1", [][]byte{d}); err != nil {
		t.Fatal(err)
	}
	if err := s.UseRecoveryCode(ctx, "rc1", b, now); code(err) != countersign.Conflict {
		t.Fatalf("replaced code: %v, want CONFLICT", err)
	}
	if err := s.UseRecoveryCode(ctx, "rc1", d, now); err != nil {
		t.Fatalf("new code: %v", err)
	}
	if err := s.UseRecoveryCode(ctx, "other-user", d, now); code(err) != countersign.NotFound {
		t.Fatalf("another user's code: %v, want NOT_FOUND", err)
	}
}
