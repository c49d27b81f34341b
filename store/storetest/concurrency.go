package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/big"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// Concurrency: what SQLite's single writer gave for free and a store with
// concurrent transactions (PostgreSQL) must prove. Each case runs the same
// read-then-write inside InTx from many goroutines, as core does from many
// requests (or replicas), and asserts what a missing lock would break.

const workers = 20

func runConcurrency(t *testing.T, open func(t *testing.T) countersign.Store) {
	for name, fn := range map[string]func(*testing.T, countersign.Store){
		"TestMoney_ConcurrentNonces":            testConcurrentNonces,
		"TestSecurity_ConcurrentAuditChain":     testConcurrentAudit,
		"TestMoney_ConcurrentExecuteOnce":       testConcurrentExecuteOnce,
		"TestSecurity_ConcurrentTOTPStep":       testConcurrentTOTPStep,
		"TestMoney_ConcurrentLedgerMoves":       testConcurrentLedger,
		"TestSecurity_ConcurrentEventsInOrder":  testConcurrentEvents,
		"TestSecurity_ConcurrentSIWERequestUse": testConcurrentSIWE,
		"TestMoney_ConcurrentSettleOnce":        testConcurrentSettle,
		"TestSecurity_ConcurrentFreezeLifts":    testConcurrentFreezeLifts,
		"TestMoney_ConcurrentTrackerClaims":     testConcurrentTrackerClaims, // tracking.go
	} {
		t.Run("concurrency/"+name, func(t *testing.T) { fn(t, open(t)) })
	}
}

// many runs fn from workers goroutines at once and waits for them.
func many(fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			fn(i)
		}()
	}
	close(start)
	wg.Wait()
}

// testConcurrentNonces: allocations for one (chain, address) inside
// transactions, as execute makes them, are gapless and never repeat.
func testConcurrentNonces(t *testing.T, s countersign.Store) {
	got := make([]uint64, workers)
	errs := make([]error, workers)
	many(func(i int) {
		errs[i] = s.InTx(ctx, func(ctx context.Context) error {
			n, err := s.NextNonce(ctx, 1337, "0xSAME", 3) // the node's pending count
			got[i] = n
			time.Sleep(time.Millisecond) // hold the transaction open a moment
			return err
		})
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("worker %d: %v", i, err)
		}
	}
	sort.Slice(got, func(a, b int) bool { return got[a] < got[b] })
	for i, n := range got {
		if n != uint64(3+i) {
			t.Fatalf("nonces not gapless from 3 without repeats: %v", got)
		}
	}
	if c, _ := s.NonceCounter(ctx, 1337, "0xSAME"); c != 3+workers {
		t.Fatalf("counter %d after %d allocations from 3", c, workers)
	}
}

// testConcurrentAudit: appenders read the chain head and append after it,
// as core's recorder does, all at once: the chain never forks (one entry per
// seq, each linking the one before). A Conflict is allowed and retried
// (what core's caller would do); losing an entry is not.
func testConcurrentAudit(t *testing.T, s countersign.Store) {
	var conflicts atomic.Int64
	errs := make([]error, workers)
	many(func(i int) {
		for attempt := 0; attempt < 50; attempt++ {
			err := s.InTx(ctx, func(ctx context.Context) error {
				head, err := s.AuditEntries(ctx, "chain", -1, 1)
				if err != nil {
					return err
				}
				e := &countersign.AuditEntry{OwnerID: "chain", Seq: 1, At: time.Now().UTC(), Actor: "a", Action: "x",
					Subject: fmt.Sprint(i), Details: "{}", PrevHash: make([]byte, sha256.Size)}
				if len(head) == 1 {
					e.Seq, e.PrevHash = head[0].Seq+1, head[0].Hash
				}
				h := sha256.Sum256(append(append([]byte{}, e.PrevHash...), e.Subject...))
				e.Hash = h[:]
				time.Sleep(time.Millisecond) // widen the window between read and append
				return s.AppendAudit(ctx, e)
			})
			if code(err) == countersign.Conflict {
				conflicts.Add(1)
				continue
			}
			errs[i] = err
			return
		}
		errs[i] = fmt.Errorf("worker %d: still Conflict after 50 attempts", i)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	l, err := s.AuditEntries(ctx, "chain", 0, 1000)
	if err != nil || len(l) != workers {
		t.Fatalf("%d entries for %d appends (%v)", len(l), workers, err)
	}
	subjects := map[string]bool{}
	for i, e := range l {
		if e.Seq != int64(i+1) {
			t.Fatalf("entry %d has seq %d", i, e.Seq)
		}
		if i > 0 && !bytes.Equal(e.PrevHash, l[i-1].Hash) {
			t.Fatalf("fork at seq %d: prev_hash is not seq %d's hash", e.Seq, l[i-1].Seq)
		}
		subjects[e.Subject] = true
	}
	if len(subjects) != workers {
		t.Fatalf("%d distinct appenders in the chain, want %d", len(subjects), workers)
	}
	t.Logf("%d conflicts retried", conflicts.Load())
}

// testConcurrentExecuteOnce: Transaction inside InTx locks the row, so of
// many executes of one authorized transaction exactly one moves it on (the
// others see it submitted): one approval is signed once.
func testConcurrentExecuteOnce(t *testing.T, s countersign.Store) {
	s.CreateUser(ctx, user("u1"))
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: time.Now()})
	if err := s.CreateTransaction(ctx, tx("once", time.Now().UTC(), countersign.StatusAuthorized)); err != nil {
		t.Fatal(err)
	}
	var signed atomic.Int64
	errs := make([]error, workers)
	many(func(i int) {
		errs[i] = s.InTx(ctx, func(ctx context.Context) error {
			got, err := s.Transaction(ctx, "once")
			if err != nil {
				return err
			}
			if got.Status != countersign.StatusAuthorized {
				return nil // already executed by someone else
			}
			n, err := s.NextNonce(ctx, got.ChainID, got.From, 0)
			if err != nil {
				return err
			}
			time.Sleep(2 * time.Millisecond) // the signing
			signed.Add(1)
			got.Status, got.Nonce, got.TxHash, got.UpdatedAt = countersign.StatusSubmitted, &n, fmt.Sprintf("0x%d", i), time.Now().UTC()
			return s.UpdateTransaction(ctx, got)
		})
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := signed.Load(); n != 1 {
		t.Fatalf("one authorized transaction signed %d times", n)
	}
	if c, _ := s.NonceCounter(ctx, 1337, "0xF"); c != 1 {
		t.Fatalf("%d nonces used for one transaction", c)
	}
}

// testConcurrentTOTPStep: a TOTP code's step is read, checked and written
// back inside one transaction: the same code sent many times at once is
// accepted once.
func testConcurrentTOTPStep(t *testing.T, s countersign.Store) {
	u := user("totp")
	u.MFAEnabled, u.MFALastStep = true, 41
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	var accepted atomic.Int64
	errs := make([]error, workers)
	many(func(i int) {
		errs[i] = s.InTx(ctx, func(ctx context.Context) error {
			got, err := s.UserByID(ctx, "totp")
			if err != nil {
				return err
			}
			const step = 42
			if got.MFALastStep >= step {
				return nil // replay: refused
			}
			time.Sleep(time.Millisecond)
			accepted.Add(1)
			got.MFALastStep = step
			return s.UpdateUserMFA(ctx, got)
		})
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("one TOTP code accepted %d times", n)
	}
}

// testConcurrentLedger: the mock ledger's balance check and debit are one
// step: 20 concurrent moves of 1 from a balance of 10 leave exactly 10
// refused and a balance of 0, never below.
func testConcurrentLedger(t *testing.T, s countersign.Store) {
	if err := s.LedgerMove(ctx, "", "ait1from", big.NewInt(10)); err != nil {
		t.Fatal(err)
	}
	var ok, poor atomic.Int64
	errs := make([]error, workers)
	many(func(i int) {
		err := s.LedgerMove(ctx, "ait1from", fmt.Sprintf("ait1to%d", i%3), big.NewInt(1))
		switch code(err) {
		case "":
			ok.Add(1)
		case countersign.InsufficientFunds:
			poor.Add(1)
		default:
			errs[i] = err
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	bal, _ := s.LedgerBalance(ctx, "ait1from")
	total := new(big.Int)
	for i := range 3 {
		b, _ := s.LedgerBalance(ctx, fmt.Sprintf("ait1to%d", i))
		total.Add(total, b)
	}
	if ok.Load() != 10 || poor.Load() != 10 || bal.Sign() != 0 || total.Int64() != 10 {
		t.Fatalf("%d moved, %d refused, balance %s, received %s", ok.Load(), poor.Load(), bal, total)
	}
}

// testConcurrentEvents: events committed by concurrent transactions reach a
// reader that follows them by id (EventsAfter, as the live stream does)
// without any being skipped: ids become visible in order.
func testConcurrentEvents(t *testing.T, s countersign.Store) {
	done := make(chan struct{})
	seen := map[int64]bool{}
	var readErr error
	var reader sync.WaitGroup
	reader.Add(1)
	go func() {
		defer reader.Done()
		var cursor int64
		for final := false; ; {
			select {
			case <-done:
				final = true
			default:
			}
			l, err := s.EventsAfter(ctx, "stream", cursor, 1000)
			if err != nil {
				readErr = err
				return
			}
			for _, e := range l {
				seen[e.ID] = true
				cursor = e.ID
			}
			if final && len(l) == 0 {
				return
			}
		}
	}()
	errs := make([]error, workers)
	var mu sync.Mutex
	var all []int64
	many(func(i int) {
		for j := range 5 {
			errs[i] = s.InTx(ctx, func(ctx context.Context) error {
				e := &countersign.Event{OwnerID: "stream", Type: "t", Subject: fmt.Sprint(i, j), Payload: "{}", CreatedAt: time.Now()}
				if err := s.AddEvent(ctx, e); err != nil {
					return err
				}
				mu.Lock()
				all = append(all, e.ID)
				mu.Unlock()
				time.Sleep(time.Duration(i%4) * time.Millisecond) // commit late
				return nil
			})
			if errs[i] != nil {
				return
			}
		}
	})
	close(done)
	reader.Wait()
	for _, err := range append(errs, readErr) {
		if err != nil {
			t.Fatal(err)
		}
	}
	missed := 0
	for _, id := range all {
		if !seen[id] {
			missed++
		}
	}
	if missed > 0 || len(all) != workers*5 {
		t.Fatalf("a reader following ids skipped %d of %d events", missed, len(all))
	}
}

// testConcurrentSIWERequestUse: a sign-in request is taken once.
func testConcurrentSIWE(t *testing.T, s countersign.Store) {
	if err := s.CreateSIWERequest(ctx, &countersign.SIWERequest{ID: "r1", Address: "0xA", Message: "m", Nonce: "n", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var taken atomic.Int64
	errs := make([]error, workers)
	many(func(i int) {
		_, err := s.TakeSIWERequest(ctx, "r1", time.Now())
		switch code(err) {
		case "":
			taken.Add(1)
		case countersign.NotFound:
		default:
			errs[i] = err
		}
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := taken.Load(); n != 1 {
		t.Fatalf("one sign-in request taken %d times", n)
	}
}

// testConcurrentSettle: settling one request's reservations from many
// goroutines at once releases them once: the budget's open total drops by
// the amount once, never below zero.
func testConcurrentSettle(t *testing.T, s countersign.Store) {
	k := countersign.BudgetKey{Level: countersign.PolicyAgent, Subject: "agent:a1", RuleID: "r", Asset: "native"}
	for _, id := range []string{"tx1", "tx2"} {
		if err := s.AddReservation(ctx, &countersign.BudgetReservation{TransactionID: id, OwnerID: "u1", Key: k, Amount: big.NewInt(5), ReservedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	var settled atomic.Int64
	errs := make([]error, workers)
	many(func(i int) {
		n, err := s.SettleReservations(ctx, "tx1", countersign.ReservationReleased, time.Now())
		settled.Add(int64(n))
		errs[i] = err
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	_, reserved, err := s.BudgetUsed(ctx, k, time.Time{})
	if err != nil || settled.Load() != 1 || reserved.Int64() != 5 {
		t.Fatalf("%d settlements of one reservation, %v still reserved (want 5: tx2's) %v", settled.Load(), reserved, err)
	}
}

// testConcurrentFreezeLifts: two approvers agree to lift a freeze at once,
// each adding a lift and counting the lifts in one transaction, as the
// service does: one of them counts both (and lifts the freeze). Counting
// only its own each would leave a two-person freeze on for good.
func testConcurrentFreezeLifts(t *testing.T, s countersign.Store) {
	if err := s.AddFreeze(ctx, &countersign.Freeze{ID: "f1", OwnerID: "u1", By: "user:u1", At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	counts := make([]int, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = s.InTx(ctx, func(ctx context.Context) error {
				if err := s.AddFreezeLift(ctx, &countersign.FreezeLift{FreezeID: "f1", UserID: fmt.Sprint("approver", i), At: time.Now()}); err != nil {
					return err
				}
				time.Sleep(5 * time.Millisecond)
				l, err := s.FreezeLifts(ctx, "f1")
				counts[i] = len(l)
				return err
			})
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if max(counts[0], counts[1]) != 2 {
		t.Fatalf("each approver counted only %v lifts: the quorum is never seen", counts)
	}
}
