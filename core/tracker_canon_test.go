package core

import (
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// countMethods counts the calls of each JSON-RPC method that reach the
// node from now on.
func (e *moneyEnv) countMethods() func(method string) int64 {
	m := map[string]*atomic.Int64{"eth_getBlockByNumber": {}, "eth_getTransactionReceipt": {}}
	e.proxy.setRewrite(func(method string, _ []json.RawMessage, _ json.RawMessage) (json.RawMessage, int, string) {
		if c, ok := m[method]; ok {
			c.Add(1)
		}
		return nil, 0, "" // passed on as it is
	})
	return func(method string) int64 { return m[method].Load() }
}

// confirmedPayment pays a new address from the funded wallet and tracks
// the payment to confirmed.
func (e *moneyEnv) confirmedPayment() *countersign.Transaction {
	e.t.Helper()
	tx := e.pay(randomAddr(), big.NewInt(1000))
	if _, err := e.execute(tx.ID); err != nil {
		e.t.Fatal(err)
	}
	return e.track(tx.ID, countersign.StatusConfirmed)
}

// Passes over an unchanged chain claim no confirmed row and ask the node
// for no receipt (the old tracker read every confirmed row's receipt in
// the reorg window on every pass); a reorg is still seen by the next
// pass, and the row goes back to submitted.
func TestTracker_QuietPassesReadNoReceiptsAndStillSeeAReorg(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	var confirmed []*countersign.Transaction
	for range 3 {
		confirmed = append(confirmed, e.confirmedPayment())
	}
	e.pass() // whatever is left from confirming them
	calls := e.countMethods()
	for range 5 {
		e.pass()
	}
	if n := calls("eth_getTransactionReceipt"); n != 0 {
		t.Fatalf("5 passes over an unchanged chain read %d receipts", n)
	}

	first := confirmed[0]
	if err := e.dev.Reorg(e.ctx, *first.BlockNumber, 4); err != nil {
		t.Fatal(err)
	}
	e.pass()
	for _, c := range confirmed {
		if got := e.row(c.ID); got.Status != countersign.StatusSubmitted || got.BlockNumber != nil {
			t.Fatalf("after a reorg from block %d: %s in block %v is %s (block %v)", *first.BlockNumber, c.ID, *c.BlockNumber, got.Status, got.BlockNumber)
		}
		if len(e.audited(c.ID, "transaction.reorged")) != 1 {
			t.Fatalf("the reorg of %s is not audited", c.ID)
		}
	}
	if e.svc.TrackerReorgs() != uint64(len(confirmed)) {
		t.Fatalf("%d reorgs counted, want %d", e.svc.TrackerReorgs(), len(confirmed))
	}
	for _, c := range confirmed {
		e.track(c.ID, countersign.StatusConfirmed)
	}
}

// A confirmed row whose recorded block is not the canonical one at its
// height, below any block that changed (as when another replica confirmed
// it on a node that saw another branch), is not claimed by the quick
// passes: the full recheck, at the latest fullRecheckEvery passes later,
// finds it and sends it back to submitted.
func TestTracker_FullRecheckFindsARowTheQuickPassesSkip(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	tx := e.confirmedPayment()
	e.pass()
	other := "0x" + "ab"
	for len(other) < 66 {
		other += "ab"
	}
	if err := e.svc.store.SetTrackState(e.ctx, tx.ID, &countersign.TrackState{BlockHash: other}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= fullRecheckEvery; i++ {
		e.pass()
		if e.row(tx.ID).Status == countersign.StatusSubmitted {
			if len(e.audited(tx.ID, "transaction.reorged")) != 1 {
				t.Fatal("the recheck is not audited")
			}
			e.track(tx.ID, countersign.StatusConfirmed)
			if st, _ := e.svc.store.TrackState(e.ctx, tx.ID); st.BlockHash == other {
				t.Fatal("re-confirmed with the wrong block hash")
			}
			return
		}
	}
	t.Fatalf("after %d passes the row recorded in a block that is not on the chain is still %s", fullRecheckEvery+1, e.row(tx.ID).Status)
}

// After the chain moved further than maxCanonWalk blocks, a pass reads at
// most that many headers (it rechecks the window by receipts instead of
// walking all of it), and the passes after it are quick again.
func TestTracker_LongGapWalksAtMostMaxCanonWalkHeaders(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	tx := e.confirmedPayment()
	e.pass()
	for range 3 * maxCanonWalk {
		e.dev.Mine()
	}
	calls := e.countMethods()
	e.pass()
	if n := calls("eth_getBlockByNumber"); n > maxCanonWalk+1 {
		t.Fatalf("a pass after %d new blocks read %d headers, want at most %d", 3*maxCanonWalk, n, maxCanonWalk+1)
	}
	calls = e.countMethods()
	for range 3 {
		e.pass()
	}
	if n := calls("eth_getTransactionReceipt"); n != 0 {
		t.Fatalf("quiet passes after the long gap read %d receipts", n)
	}
	if got := e.row(tx.ID); got.Status != countersign.StatusConfirmed {
		t.Fatalf("the confirmed row is %s", got.Status)
	}
}

// A reorg that removed a confirmed row's block, followed by more blocks
// than a pass walks before the next pass, still sends the row back to
// submitted: the hashes the last pass saw below the walked blocks are not
// taken for this chain's.
func TestTracker_ReorgFollowedByALongGapIsSeen(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	tx := e.confirmedPayment()
	e.pass()
	e.pass() // the canonical hashes around tx's block are what the tracker compares with
	if err := e.dev.Reorg(e.ctx, *tx.BlockNumber, 2); err != nil {
		t.Fatal(err)
	}
	for range maxCanonWalk + 4 {
		e.dev.Mine()
	}
	e.pass()
	e.reorged(tx.ID, fmt.Sprintf("a reorg of its block and %d more blocks", maxCanonWalk+4))
}

// reorged asserts that id went back to submitted after what (its block
// forgotten, its error cleared, the reorg audited) and is then confirmed
// again on the new branch.
func (e *moneyEnv) reorged(id, what string) {
	e.t.Helper()
	got := e.row(id)
	if got.Status != countersign.StatusSubmitted || got.BlockNumber != nil || got.Error != "" {
		e.t.Fatalf("after %s the row is %s (block %v, %q), want submitted", what, got.Status, got.BlockNumber, got.Error)
	}
	if len(e.audited(id, "transaction.reorged")) != 1 {
		e.t.Fatal("the reorg is not audited")
	}
	e.track(id, countersign.StatusConfirmed)
}

// A node that stops answering in the middle of a pass ends the pass after
// the first row that meets it (one row's retries, not every row's); the
// rows not reached are given back and settled by the next pass once the
// node answers again.
func TestTracker_NodeDownMidPassEndsThePass(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	var txs []*countersign.Transaction
	for range 3 {
		tx := e.pay(randomAddr(), big.NewInt(1000))
		if _, err := e.execute(tx.ID); err != nil {
			t.Fatal(err)
		}
		txs = append(txs, tx)
	}
	var receipts atomic.Int64
	e.proxy.setDrop(func(method string) bool {
		if method == "eth_getTransactionReceipt" {
			receipts.Add(1)
			return true
		}
		return false
	})
	_ = e.svc.TrackReceipts(e.ctx)
	if n := receipts.Load(); n == 0 || n > 4 { // DefaultRetry: 4 attempts of one read
		t.Fatalf("a pass against a node down mid-pass asked for %d receipts, want one row's attempts (at most 4)", n)
	}
	e.proxy.setDrop(nil)
	_ = e.svc.TrackReceipts(e.ctx) // at once: the unreached rows hold no claim
	for _, tx := range txs {
		if got := e.row(tx.ID); got.Status != countersign.StatusConfirmed {
			t.Fatalf("%s is %s after the node came back", tx.ID, got.Status)
		}
	}
}

// A row the chain settled otherwise than confirmed — failed by a revert,
// or cancelled by a mined self-transfer — whose block a reorg removes goes
// back to submitted too: on the new branch the transaction it names may
// be mined with another outcome (here, as a plain payment, confirmed).
func TestTracker_ReorgOfARevertedOrCancelledRow(t *testing.T) {
	for _, was := range []countersign.Status{countersign.StatusFailed, countersign.StatusCancelled} {
		t.Run(string(was), func(t *testing.T) {
			e := newMoneyEnv(t, MoneyConfig{})
			e.fund(e.wallet.Address, eth(10))
			tx := e.confirmedPayment()
			r := e.row(tx.ID)
			r.Status, r.Error = was, "settled on chain as "+string(was)
			if err := e.svc.store.UpdateTransaction(e.ctx, r); err != nil {
				t.Fatal(err)
			}
			e.pass()
			if got := e.row(tx.ID); got.Status != was {
				t.Fatalf("a pass over an unchanged chain moved the %s row to %s", was, got.Status)
			}
			if err := e.dev.Reorg(e.ctx, *tx.BlockNumber, 3); err != nil {
				t.Fatal(err)
			}
			e.pass()
			e.reorged(tx.ID, "a reorg of the block of the "+string(was)+" row")
		})
	}
}

// A transaction the chain holds but whose receipt the node never serves
// (its transaction index pruned) cannot settle; the tracker says so in
// its log rather than backing off in silence.
func TestTracker_MinedWithoutAReceiptIsLogged(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	tx := e.pay(randomAddr(), big.NewInt(1000))
	got, err := e.execute(tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	e.proxy.setRewrite(func(method string, _ []json.RawMessage, _ json.RawMessage) (json.RawMessage, int, string) {
		if method == "eth_getTransactionReceipt" {
			return json.RawMessage("null"), 0, "" // not served
		}
		return nil, 0, ""
	})
	e.dev.Mine()
	e.clock.Advance(time.Minute)
	e.pass()
	if r := e.row(tx.ID); r.Status != countersign.StatusSubmitted {
		t.Fatalf("without a receipt the row is %s", r.Status)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "serves no receipt") || !strings.Contains(logs, got.TxHash) {
		t.Fatalf("the unsettled mined transaction is not logged:\n%s", logs)
	}
	e.proxy.setRewrite(nil)
	e.clock.Advance(time.Hour)
	e.track(tx.ID, countersign.StatusConfirmed)
}
