package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// testChainIdentity: none is recorded at first (NotFound), a record reads
// back exactly and replaces the earlier one, also inside InTx, and
// ResetNonces forgets the counters of one chain only.
func testChainIdentity(t *testing.T, s countersign.Store) {
	if _, err := s.ChainIdentity(ctx); code(err) != countersign.NotFound {
		t.Fatalf("fresh store: %v", err)
	}
	a := &countersign.ChainIdentity{ChainID: 1337, GenesisHash: "0xaa", Embedded: true, RecordedAt: time.Unix(1700000000, 7).UTC()}
	if err := s.SetChainIdentity(ctx, a); err != nil {
		t.Fatal(err)
	}
	got, err := s.ChainIdentity(ctx)
	if err != nil || *got != *a {
		t.Fatalf("read back %+v %v, want %+v", got, err, a)
	}
	b := &countersign.ChainIdentity{ChainID: 8453, GenesisHash: "0xbb", RecordedAt: time.Unix(1700000100, 0).UTC()}
	if err := s.InTx(ctx, func(ctx context.Context) error { return s.SetChainIdentity(ctx, b) }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ChainIdentity(ctx); err != nil || *got != *b {
		t.Fatalf("replaced: %+v %v, want %+v", got, err, b)
	}

	for _, c := range []int64{1, 2} {
		for range 3 {
			if _, err := s.NextNonce(ctx, c, "0xA", 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.NextNonce(ctx, c, "0xB", 0); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.ResetNonces(ctx, 1)
	if err != nil || n != 2 {
		t.Fatalf("ResetNonces: %d %v, want 2 counters", n, err)
	}
	if got, _ := s.NextNonce(ctx, 1, "0xA", 0); got != 0 {
		t.Fatalf("chain 1 after reset: nonce %d, want 0 (the floor)", got)
	}
	if got, _ := s.NextNonce(ctx, 2, "0xA", 0); got != 3 {
		t.Fatalf("chain 2 was reset too: nonce %d, want 3", got)
	}
	if n, err := s.ResetNonces(ctx, 99); err != nil || n != 0 {
		t.Fatalf("ResetNonces of an unknown chain: %d %v", n, err)
	}
}
