package sqlite

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// BenchmarkStatusPollReads measures the two reads of an agent's status
// poll (the agent with its owner, then the transaction) with a context
// that can end, as a request's can: QueryRowContext on the read pool runs
// them without one, so neither database/sql nor the driver starts a
// watcher goroutine per read. Run:
//
//	go test ./store/sqlite -run '^$' -bench StatusPollReads -cpu 1,2
func BenchmarkStatusPollReads(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "b.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	h := make([]byte, 32)
	for _, err := range []error{
		s.CreateUser(ctx, &countersign.User{ID: "u1", Username: "owner", PasswordHash: "$argon2id$x", CreatedAt: now}),
		s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: now}),
		s.CreateAgent(ctx, &countersign.Agent{ID: "a1", OwnerID: "u1", Name: "bench", WalletID: "w1", KeyHash: h, KeyPrefix: "csk_", CreatedAt: now}),
		s.CreateTransaction(ctx, &countersign.Transaction{ID: "t1", OwnerID: "u1", AgentID: "a1", WalletID: "w1", ChainID: 1337,
			Type: countersign.TxNative, From: "0xF", To: "0xT", Amount: "1", TxTo: "0xT", TxValue: "1", Digest: []byte{1},
			Status: countersign.StatusPending, ExpiresAt: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}),
	} {
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, _, err := s.AgentWithOwner(ctx, h); err != nil {
				b.Error(err)
				return
			}
			if _, err := s.Transaction(ctx, "t1"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// TestPointReadKeepsItsDeadline: a one-row read on the read pool runs
// without a watcher only when its caller has no deadline. With every read
// connection taken, a read with a deadline gives up at it (it waited until
// a connection came free, seconds later, when the read dropped the whole
// context), and so does a one-row aggregate (QueryRowScan) when its caller
// is cancelled — here on its first use, so preparing its statement waits
// under the caller's context too.
func TestPointReadKeepsItsDeadline(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "d.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Transaction(ctx, "warm"); countersign.ErrorCode(err) != countersign.NotFound { // the statement prepared
		t.Fatal(err)
	}
	var held []interface{ Close() error }
	for range s.r.Stats().MaxOpenConnections {
		rows, err := s.r.QueryContext(ctx, `SELECT 1`)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, rows)
	}
	release := time.AfterFunc(3*time.Second, func() {
		for _, r := range held {
			r.Close()
		}
	})
	defer release.Stop()
	dctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Transaction(dctx, "warm")
	if took := time.Since(start); err == nil || took > time.Second {
		t.Fatalf("a read with a 100 ms deadline and no free connection: %v after %s", err, took)
	}
	cctx, cancel2 := context.WithCancel(ctx)
	time.AfterFunc(100*time.Millisecond, cancel2)
	start = time.Now()
	_, err = s.PaymentHistory(cctx, countersign.PaymentQuery{OwnerID: "u1", Type: countersign.TxNative, To: "0xT"})
	if took := time.Since(start); err == nil || took > time.Second {
		t.Fatalf("a cancelled aggregate with no free connection: %v after %s", err, took)
	}
}
