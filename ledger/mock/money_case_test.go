package mock_test

import (
	"bytes"
	"context"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/keys/hd"
)

// TestMoney_LedgerAddressCaseIsOneAccount: BIP-173 makes "AIT1…" the same
// address as "ait1…", and the daemon accepts both. Before the fix the
// ledger keyed balances by the spelling given, so a faucet credit or a
// transfer to the upper-case spelling landed in a second balance that the
// address's key (whose account is stored in lower case) could never spend,
// and the balance of the address read as zero.
func TestMoney_LedgerAddressCaseIsOneAccount(t *testing.T) {
	ctx := context.Background()
	l := newLedger(t)
	a, _ := hd.Address(bytes.Repeat([]byte{1}, 32))
	b, _ := hd.Address(bytes.Repeat([]byte{2}, 32))
	if _, err := hd.ParseAddress(strings.ToUpper(b)); err != nil {
		t.Fatalf("precondition: the upper-case spelling is a valid address: %v", err)
	}
	if err := l.Credit(ctx, strings.ToUpper(a), big.NewInt(100)); err != nil {
		t.Fatal(err)
	}
	if bal, _ := l.Balance(ctx, a); bal.Int64() != 100 {
		t.Fatalf("credit to %s: balance of %s is %v, want 100", strings.ToUpper(a), a, bal)
	}
	tx := &countersign.LedgerTx{ID: "t1", From: a, To: strings.ToUpper(b), Units: big.NewInt(60), Canonical: "{}", Signature: []byte{1}, PublicKey: []byte{2}, CreatedAt: time.Now().UTC()}
	if err := l.Submit(ctx, tx); err != nil {
		t.Fatal(err)
	}
	bb, _ := l.Balance(ctx, b)
	bu, _ := l.Balance(ctx, strings.ToUpper(b))
	ba, _ := l.Balance(ctx, a)
	if bb.Int64() != 60 || bu.Int64() != 60 || ba.Int64() != 40 {
		t.Fatalf("after a transfer to the upper-case spelling: %s=%v %s=%v %s=%v", b, bb, strings.ToUpper(b), bu, a, ba)
	}
	// b can spend what it received under either spelling
	back := &countersign.LedgerTx{ID: "t2", From: b, To: a, Units: big.NewInt(60), Canonical: "{}", Signature: []byte{1}, PublicKey: []byte{2}, CreatedAt: time.Now().UTC()}
	if err := l.Submit(ctx, back); err != nil {
		t.Fatalf("%s cannot spend units sent to %s: %v", b, strings.ToUpper(b), err)
	}
}
