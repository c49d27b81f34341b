package mock_test

import (
	"context"
	"math/big"
	"path/filepath"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ledger/mock"
	"github.com/countersign/countersign/store/sqlite"
)

func TestMockLedger(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t)
	if l.Name() != "mock" {
		t.Fatal(l.Name())
	}
	if err := l.Credit(ctx, "ait1a", big.NewInt(100)); err != nil {
		t.Fatal(err)
	}
	tx := &countersign.LedgerTx{ID: "t1", From: "ait1a", To: "ait1b", Units: big.NewInt(60), Memo: "m", Canonical: "{}", Signature: []byte{1}, PublicKey: []byte{2}, CreatedAt: time.Now().UTC()}
	if err := l.Submit(ctx, tx); err != nil {
		t.Fatal(err)
	}
	// a transfer it cannot pay records nothing, inside the caller's transaction too
	over := &countersign.LedgerTx{ID: "t2", From: "ait1a", To: "ait1b", Units: big.NewInt(41), Canonical: "{}", Signature: []byte{1}, PublicKey: []byte{2}, CreatedAt: time.Now().UTC()}
	err := l.Store.InTx(ctx, func(ctx context.Context) error { return l.Submit(ctx, over) })
	if countersign.ErrorCode(err) != countersign.InsufficientFunds {
		t.Fatalf("overdraft: %v", err)
	}
	if _, err := l.Tx(ctx, "t2"); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("a refused transfer was recorded: %v", err)
	}
	a, _ := l.Balance(ctx, "ait1a")
	b, _ := l.Balance(ctx, "ait1b")
	if a.Int64() != 40 || b.Int64() != 60 {
		t.Fatalf("balances %v %v", a, b)
	}
	got, err := l.Tx(ctx, "t1")
	if err != nil || got.Units.Int64() != 60 || got.Memo != "m" {
		t.Fatalf("tx: %+v %v", got, err)
	}
	if z, _ := l.Balance(ctx, "ait1nobody"); z.Sign() != 0 {
		t.Fatalf("unknown address balance %v", z)
	}
}

// newLedger opens a mock ledger on a fresh SQLite store.
func newLedger(t *testing.T) mock.Ledger {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return mock.Ledger{Store: st}
}
