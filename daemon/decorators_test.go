package daemon

import (
	"context"
	"math/big"
	"sync"
	"testing"

	"github.com/countersign/countersign"
)

// fakeKeyring signs with fixed bytes and counts calls, or fails with err.
type fakeKeyring struct {
	countersign.HDKeyring
	mu    sync.Mutex
	calls int
	err   error
}

func (f *fakeKeyring) SignMessage(_ context.Context, _ *countersign.DaemonAccount, _ []byte) ([]byte, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, "", f.err
	}
	return []byte{1, 2, 3}, "ed25519", nil
}

func (f *fakeKeyring) SignTx(_ context.Context, _ *countersign.DaemonAccount, _ string, _ []byte, _ *big.Int) (*countersign.HDSignedTx, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return &countersign.HDSignedTx{Signature: []byte{4}, Algo: "secp256k1", Signed: []byte{5}, TxHash: "0xabc"}, nil
}

// fakeRecorder keeps the changes it is given, or fails with err.
type fakeRecorder struct {
	mu      sync.Mutex
	changes []countersign.Change
	err     error
}

func (r *fakeRecorder) Record(_ context.Context, c countersign.Change, apply func(context.Context) error) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if apply != nil {
		panic("a signature's record has nothing to apply")
	}
	if r.err != nil {
		return r.err
	}
	r.changes = append(r.changes, c)
	return nil
}

var testAccount = &countersign.DaemonAccount{ID: "acct-1", WalletID: "w-1", Curve: CurveEd25519, Address: "ait1xyz"}

// Every signature the audit decorator lets through is recorded exactly
// once, with the hash of what was signed and never the bytes; a refused
// signature records nothing.
func TestSecurity_AuditedRecordsEverySignatureOnce(t *testing.T) {
	inner, rec := &fakeKeyring{}, &fakeRecorder{}
	k := Audited(inner, rec)
	ctx := context.Background()
	for range 3 {
		if _, _, err := k.SignMessage(ctx, testAccount, []byte("pay bob")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := k.SignTx(ctx, testAccount, "evm", []byte{0xc0}, big.NewInt(1)); err != nil {
		t.Fatal(err)
	}
	if len(rec.changes) != 4 {
		t.Fatalf("%d records for 4 signatures", len(rec.changes))
	}
	for i, c := range rec.changes {
		wantAction := "daemon.sign.message"
		if i == 3 {
			wantAction = "daemon.sign.tx"
		}
		if c.Owner != Owner || c.Actor != "operator" || c.Action != wantAction || c.Subject != testAccount.ID ||
			len(c.Events) != 1 || c.Events[0].Type != "signed" || c.Events[0].Subject != testAccount.ID {
			t.Fatalf("record %d: %+v", i, c)
		}
		for _, v := range c.Details.(map[string]string) {
			if v == "pay bob" {
				t.Fatalf("record %d holds the message", i)
			}
		}
		p := c.Events[0].Payload.(map[string]string)
		if p["account_id"] != testAccount.ID || p["address"] != testAccount.Address {
			t.Fatalf("record %d payload %v", i, p)
		}
	}
	if d := rec.changes[3].Details.(map[string]string); d["type"] != "evm" || d["tx_hash"] != "0xabc" || d["bytes_hash"] == "" || len(d) != 3 {
		t.Fatalf("tx details %v", d)
	}

	inner.err = countersign.Errorf(countersign.WalletLocked, "locked")
	if _, _, err := k.SignMessage(ctx, testAccount, []byte("m")); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("refused signature: %v", err)
	}
	if _, err := k.SignTx(ctx, testAccount, "evm", []byte{0xc0}, nil); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("refused tx: %v", err)
	}
	if len(rec.changes) != 4 {
		t.Fatalf("a refused signature was recorded (%d records)", len(rec.changes))
	}
}

// A signature whose record fails comes back with the error, so the
// service does not hand out what the audit log does not show.
func TestSecurity_AuditedRecordFailureFailsTheSignature(t *testing.T) {
	inner := &fakeKeyring{}
	rec := &fakeRecorder{err: countersign.Errorf(countersign.Internal, "disk full")}
	d := &Service{store: fixedAccountStore{}, rec: rec, clock: countersign.SystemClock{}, signer: Audited(inner, rec)}
	if _, err := d.SignMessage(context.Background(), testAccount.ID, []byte("m")); countersign.ErrorCode(err) != countersign.Internal {
		t.Fatalf("err = %v, want the record's error", err)
	}
}

type fixedAccountStore struct{ Store }

func (fixedAccountStore) DaemonAccount(context.Context, string) (*countersign.DaemonAccount, error) {
	return testAccount, nil
}

// The rate-limit decorator refuses signatures past the burst with
// RATE_LIMIT and Retry-After, before the keyring is called; other calls
// pass through.
func TestSecurity_RateLimitedRefusesPastBurst(t *testing.T) {
	inner := &fakeKeyring{}
	k := RateLimited(inner, 1e-6, 3) // effectively no refill during the test
	ctx := context.Background()
	for i := range 3 {
		if _, _, err := k.SignMessage(ctx, testAccount, []byte("m")); err != nil {
			t.Fatalf("signature %d within the burst: %v", i, err)
		}
	}
	_, _, err := k.SignMessage(ctx, testAccount, []byte("m"))
	var e *countersign.Error
	if countersign.ErrorCode(err) != countersign.RateLimit || !asError(err, &e) || e.RetryAfter != 1 {
		t.Fatalf("past the burst: %v", err)
	}
	if _, err := k.SignTx(ctx, testAccount, "aitbc_v0", []byte{1}, nil); countersign.ErrorCode(err) != countersign.RateLimit {
		t.Fatalf("a tx past the burst: %v", err)
	}
	if inner.calls != 3 {
		t.Fatalf("the keyring was called %d times, want 3", inner.calls)
	}
}

func asError(err error, target **countersign.Error) bool {
	e, ok := err.(*countersign.Error)
	*target = e
	return ok
}
