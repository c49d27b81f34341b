package sqlite

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// scanTx converts every column of txCols into its field, with the same
// results database/sql's own conversion gave: each field set, read back
// equal; NULL and empty blobs and absent numbers as before.
func TestScanTx_EveryField(t *testing.T) {
	if n := len(strings.Split(txCols, ",")); n != txColN {
		t.Fatalf("txCols has %d columns, txColN says %d", n, txColN)
	}
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := func(sec int64) time.Time { return time.Unix(1_800_000_000+sec, 123456789).UTC() }
	if err := s.CreateUser(ctx, &countersign.User{ID: "u1", Username: "u", CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: at(0)}); err != nil {
		t.Fatal(err)
	}
	nonce, block := uint64(1<<40), uint64(77)
	full := &countersign.Transaction{ID: "t1", OwnerID: "u1", AgentID: "a1", WalletID: "w1", ChainID: 1 << 40, Type: countersign.TxContractCall,
		From: "0xF", To: "0xT", Amount: "123456789012345678901234567890", TokenAddress: "0xTok", ContractAddress: "0xC",
		ContractABI: `[{"type":"function"}]`, FunctionName: "f", FunctionArgs: `["1"]`, Value: "5", Memo: "memo ✓", Message: "0x01",
		TxTo: "0xC", TxValue: "5", TxData: []byte{0, 1, 2}, GasLimit: 1 << 33, MaxFeePerGas: "99",
		Digest: []byte{9, 9}, ApprovedDigest: []byte{9, 9}, DecidedBy: "u1", DecidedAt: at(1), Reason: "because",
		Status: countersign.StatusSubmitted, Nonce: &nonce, RawTx: []byte{0xf8}, TxHash: "0xh", BlockNumber: &block,
		Signature: []byte{1, 2, 3}, Error: "e", CheckedAt: at(2), Broadcasts: 3, NextBroadcastAt: at(3),
		IdempotencyKey: "k", RequestHash: []byte{4}, Decision: "auto", RuleID: "r", PolicyWarnings: []string{"w1", "w2"},
		AuthorizeAt: at(4), ApprovalsNeeded: 2, ExpiresAt: at(5), CreatedAt: at(6), UpdatedAt: at(7)}
	bare := &countersign.Transaction{ID: "t2", OwnerID: "u1", WalletID: "w1", ChainID: 1337, Type: countersign.TxNative,
		From: "0xF", To: "0xT", Amount: "1", TxTo: "0xT", TxValue: "1", Digest: []byte{1}, Status: countersign.StatusPending,
		ExpiresAt: at(5), CreatedAt: at(6), UpdatedAt: at(6)}
	for _, want := range []*countersign.Transaction{full, bare} {
		if err := s.CreateTransaction(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.Transaction(ctx, want.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("read back\n got %+v\nwant %+v", got, want)
		}
	}
	if got, _ := s.Transaction(ctx, "t2"); got.Nonce != nil || got.BlockNumber != nil || got.ApprovedDigest != nil || got.Signature != nil || len(got.RawTx) != 0 {
		t.Fatalf("absent values: %+v", got)
	}
	// A column the row cannot hold is an error, not a zero value.
	if _, err := s.w.ExecContext(ctx, `UPDATE transactions SET chain_id = 'x' WHERE id = 't2'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transaction(ctx, "t2"); err == nil || !strings.Contains(err.Error(), "column index 4") {
		t.Fatalf("a text chain id read as %v", err)
	}
}
