package core

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// The tracker tests run on the embedded dev chain behind the fault proxy
// (money_harness_test.go): poolOnly sends put a transaction in the node's
// pool without mining it (a fee the node will not mine), dropped sends
// answer "taken" and lose it.

func (e *moneyEnv) pass() {
	e.t.Helper()
	if err := e.svc.TrackReceipts(e.ctx); err != nil {
		e.t.Logf("tracker pass: %v", err)
	}
}

func (e *moneyEnv) attempts(id string) []*countersign.TxAttempt {
	e.t.Helper()
	a, err := e.svc.store.Attempts(e.ctx, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return a
}

func (e *moneyEnv) audited(subject, action string) []*countersign.AuditEntry {
	e.t.Helper()
	entries, err := e.svc.store.AuditEntries(e.ctx, e.user.ID, 0, 10000)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*countersign.AuditEntry
	for _, a := range entries {
		if a.Subject == subject && a.Action == action {
			out = append(out, a)
		}
	}
	return out
}

func decodeTx(t *testing.T, raw []byte) *types.Transaction {
	t.Helper()
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	return &tx
}

func wei(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic("not an integer: " + s)
	}
	return v
}

// unmined executes a payment whose first broadcast the node takes into
// its pool but does not mine.
func (e *moneyEnv) unmined() *countersign.Transaction {
	e.t.Helper()
	e.fund(e.wallet.Address, eth(10))
	e.proxy.set(func(n int, _ *types.Transaction) sendFault { return sendFault{poolOnly: true} })
	tx := e.pay(randomAddr(), big.NewInt(1000))
	got, err := e.execute(tx.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return got
}

// A receipt is not final until CONFIRMATIONS blocks hold it: before, the
// row stays submitted with its block number set.
func TestMoney_ConfirmationsWaitForDepth(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{Confirmations: 3})
	e.fund(e.wallet.Address, eth(10))
	tx := e.pay(randomAddr(), big.NewInt(1000))
	if _, err := e.execute(tx.ID); err != nil {
		t.Fatal(err)
	}
	e.pass()
	got := e.row(tx.ID)
	if got.Status != countersign.StatusSubmitted || got.BlockNumber == nil {
		t.Fatalf("after 1 of 3 confirmations: %s, block %v", got.Status, got.BlockNumber)
	}
	e.dev.Mine()
	e.pass()
	if got := e.row(tx.ID); got.Status != countersign.StatusSubmitted {
		t.Fatalf("after 2 of 3 confirmations: %s", got.Status)
	}
	e.dev.Mine()
	e.pass()
	if got := e.row(tx.ID); got.Status != countersign.StatusConfirmed {
		t.Fatalf("after 3 of 3 confirmations: %s", got.Status)
	}
}

// A reorg that removes a confirmed transaction's block sends it back to
// submitted (audited); it is then tracked again and confirmed in its new
// block.
func TestMoney_ReorgSendsConfirmedBackToSubmitted(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	to := randomAddr()
	tx := e.pay(to, big.NewInt(1000))
	if _, err := e.execute(tx.ID); err != nil {
		t.Fatal(err)
	}
	first := e.track(tx.ID, countersign.StatusConfirmed)
	st, _ := e.svc.store.TrackState(e.ctx, tx.ID)
	if st.BlockHash == "" {
		t.Fatal("no block hash recorded")
	}
	if err := e.dev.Reorg(e.ctx, *first.BlockNumber, 2); err != nil {
		t.Fatal(err)
	}
	if b := e.balance(to); b.Sign() != 0 {
		t.Fatalf("the reorg left the payment on chain: %s", b)
	}
	e.pass()
	if got := e.row(tx.ID); got.Status != countersign.StatusSubmitted || got.BlockNumber != nil {
		t.Fatalf("after the reorg: %s, block %v", got.Status, got.BlockNumber)
	}
	if len(e.audited(tx.ID, "transaction.reorged")) != 1 || e.svc.TrackerReorgs() != 1 {
		t.Fatal("the reorg is not audited")
	}
	again := e.track(tx.ID, countersign.StatusConfirmed)
	st2, _ := e.svc.store.TrackState(e.ctx, tx.ID)
	if again.TxHash != first.TxHash || st2.BlockHash == st.BlockHash || e.balance(to).Cmp(big.NewInt(1000)) != 0 {
		t.Fatalf("re-confirmed %s in %s (was %s), recipient %s", again.TxHash, st2.BlockHash, st.BlockHash, e.balance(to))
	}
}

// A transaction the node does not mine is replaced after REPLACE_AFTER
// with bumped fees (same nonce and gas limit, fee cap within the
// approval), recorded as an attempt and audited; the replacement is mined.
func TestMoney_UnminedTransactionIsReplaced(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: time.Minute, RebroadcastAfter: time.Hour, RebroadcastMax: time.Hour})
	tx := e.unmined()
	first := decodeTx(t, tx.RawTx)
	e.proxy.set(nil) // the node mines what it gets from now on
	e.pass()
	if got := e.row(tx.ID); got.TxHash != tx.TxHash || len(e.attempts(tx.ID)) != 1 {
		t.Fatalf("replaced before REPLACE_AFTER: %s, %d attempts", got.TxHash, len(e.attempts(tx.ID)))
	}
	e.clock.Advance(time.Minute)
	e.pass()
	got := e.row(tx.ID)
	atts := e.attempts(tx.ID)
	if got.TxHash == tx.TxHash || len(atts) != 2 || atts[1].Kind != countersign.AttemptReplace || atts[1].TxHash != got.TxHash || atts[0].TxHash != tx.TxHash {
		t.Fatalf("not replaced: %s, attempts %+v", got.TxHash, atts)
	}
	repl := decodeTx(t, got.RawTx)
	if repl.Nonce() != first.Nonce() || repl.Gas() != tx.GasLimit || repl.GasFeeCap().Cmp(wei(tx.MaxFeePerGas)) > 0 ||
		repl.GasFeeCap().Cmp(bumpFee(first.GasFeeCap())) < 0 || repl.GasTipCap().Cmp(bumpFee(first.GasTipCap())) < 0 {
		t.Fatalf("replacement nonce %d gas %d cap %s tip %s; first cap %s tip %s, bound %s", repl.Nonce(), repl.Gas(), repl.GasFeeCap(), repl.GasTipCap(),
			first.GasFeeCap(), first.GasTipCap(), tx.MaxFeePerGas)
	}
	if a := e.audited(tx.ID, "transaction.replace"); len(a) != 1 || !strings.Contains(a[0].Details, tx.TxHash) || !strings.Contains(a[0].Details, got.TxHash) {
		t.Fatalf("replacement audit: %v", a)
	}
	done := e.track(tx.ID, countersign.StatusConfirmed)
	if done.TxHash != got.TxHash || e.minedNonce() != first.Nonce()+1 {
		t.Fatalf("confirmed %s, want the replacement %s", done.TxHash, got.TxHash)
	}
}

// The tracker looks for a receipt of every attempt: when the original is
// mined after a replacement was signed, it settles the transaction, and
// the row names the hash the chain holds.
func TestMoney_OlderAttemptMinedAfterReplacementSettles(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: time.Minute, RebroadcastAfter: time.Hour, RebroadcastMax: time.Hour})
	tx := e.unmined()
	e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{} }) // the replacement is lost
	e.clock.Advance(time.Minute)
	e.pass()
	if got := e.row(tx.ID); got.TxHash == tx.TxHash {
		t.Fatal("not replaced")
	}
	e.dev.Mine() // the original, still in the pool, is mined
	e.proxy.set(nil)
	done := e.track(tx.ID, countersign.StatusConfirmed)
	if done.TxHash != tx.TxHash || done.BlockNumber == nil {
		t.Fatalf("settled as %s, want the mined original %s", done.TxHash, tx.TxHash)
	}
	if a := e.audited(tx.ID, "transaction.confirmed"); len(a) != 1 || !strings.Contains(a[0].Details, `"replaces"`) {
		t.Fatalf("the switch back to the mined attempt is not audited: %v", a)
	}
}

// Replacements never pay more than the human approved: each fee cap is
// within the approval's max fee per gas (and MAX_FEE_PER_GAS), the gas
// limit is the approved one; when the room is used up the transaction is
// reported stuck once, and nothing more is signed.
func TestMoney_ReplacementFeesStayWithinTheApproval(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: time.Minute, RebroadcastAfter: time.Hour, RebroadcastMax: time.Hour})
	tx := e.unmined()
	e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{poolOnly: true} }) // never mined
	bound := wei(tx.MaxFeePerGas)
	for range 20 {
		e.clock.Advance(time.Minute)
		e.pass()
	}
	atts := e.attempts(tx.ID)
	if len(atts) < 3 {
		t.Fatalf("only %d attempts: the approval's headroom allows several bumps", len(atts))
	}
	prev := decodeTx(t, atts[0].RawTx)
	for _, a := range atts[1:] {
		r := decodeTx(t, a.RawTx)
		if r.GasFeeCap().Cmp(bound) > 0 || r.Gas() != tx.GasLimit || r.Value().Cmp(big.NewInt(1000)) != 0 || r.Nonce() != *tx.Nonce {
			t.Fatalf("attempt %d: cap %s (bound %s), gas %d, value %s", a.N, r.GasFeeCap(), bound, r.Gas(), r.Value())
		}
		if r.GasFeeCap().Cmp(bumpFee(prev.GasFeeCap())) < 0 || r.GasTipCap().Cmp(bumpFee(prev.GasTipCap())) < 0 {
			t.Fatalf("attempt %d bumps %s/%s to %s/%s: below the node's replacement minimum", a.N, prev.GasFeeCap(), prev.GasTipCap(), r.GasFeeCap(), r.GasTipCap())
		}
		prev = r
	}
	if n := len(e.audited(tx.ID, "transaction.stuck")); n != 1 || e.svc.TrackerStuck() != 1 {
		t.Fatalf("stuck reported %d times (counter %d), want once", n, e.svc.TrackerStuck())
	}
	if n := len(e.audited(tx.ID, "transaction.replace")); n != len(atts)-1 {
		t.Fatalf("%d replacements audited, %d signed", n, len(atts)-1)
	}
	t.Run("MAX_FEE_PER_GAS caps below the approval", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: time.Minute, RebroadcastAfter: time.Hour, RebroadcastMax: time.Hour})
		tx := e.unmined()
		e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{poolOnly: true} })
		first := decodeTx(t, tx.RawTx)
		e.svc.cfg.Money.MaxFeePerGas = bumpFee(first.GasFeeCap()) // room for exactly one bump
		for range 5 {
			e.clock.Advance(time.Minute)
			e.pass()
		}
		atts := e.attempts(tx.ID)
		if len(atts) != 2 || decodeTx(t, atts[1].RawTx).GasFeeCap().Cmp(e.svc.cfg.Money.MaxFeePerGas) > 0 {
			t.Fatalf("%d attempts under a MAX_FEE_PER_GAS of %s", len(atts), e.svc.cfg.Money.MaxFeePerGas)
		}
	})
}

// enableMFA turns MFA on for the env's user and returns a code source.
func (e *moneyEnv) enableMFA() func() string {
	e.t.Helper()
	secret, err := auth.NewTOTPSecret()
	if err != nil {
		e.t.Fatal(err)
	}
	u := e.user
	if u.MFASealed, err = e.svc.sealer.Seal("mfa:"+u.ID, secret); err != nil {
		e.t.Fatal(err)
	}
	u.MFAEnabled = true
	if err := e.svc.store.UpdateUserMFA(e.ctx, u); err != nil {
		e.t.Fatal(err)
	}
	return func() string {
		e.clock.Advance(auth.TOTPPeriod * time.Second)
		return auth.TOTPCode(secret, e.clock.Now())
	}
}

// The escape hatch: an approver with MFA replaces a stuck transaction with
// a zero-value self-transfer at the same nonce; once mined the
// transaction is cancelled (value never paid) and the wallet's next
// transaction is mined.
func TestMoney_CancelOnchainFreesAStuckNonce(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: -1, RebroadcastAfter: time.Hour, RebroadcastMax: time.Hour})
	code := e.enableMFA()
	to := common.HexToAddress(randomAddr())
	e.fund(e.wallet.Address, eth(10))
	e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{poolOnly: true} })
	tx := e.pay(to.Hex(), big.NewInt(1000))
	tx, err := e.execute(tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	human := &Principal{User: e.user}
	if _, err := e.svc.CancelOnchain(e.ctx, e.agent, tx.ID, code()); countersign.ErrorCode(err) != countersign.Forbidden {
		t.Fatalf("an agent cancelled on chain: %v", err)
	}
	if _, err := e.svc.CancelOnchain(e.ctx, human, tx.ID, "000000"); countersign.ErrorCode(err) != countersign.MFAInvalid {
		t.Fatalf("a wrong code: %v", err)
	}
	if got := e.row(tx.ID); got.TxHash != tx.TxHash || len(e.attempts(tx.ID)) != 1 {
		t.Fatal("a refused cancel changed the transaction")
	}
	e.proxy.set(nil)
	res, err := e.svc.CancelOnchain(e.ctx, human, tx.ID, code())
	if err != nil {
		t.Fatal(err)
	}
	c := decodeTx(t, res.Transaction.RawTx)
	if c.Nonce() != *tx.Nonce || c.Value().Sign() != 0 || c.To() == nil || *c.To() != common.HexToAddress(e.wallet.Address) ||
		c.GasFeeCap().Cmp(bumpFee(decodeTx(t, tx.RawTx).GasFeeCap())) < 0 || res.MaxFee.Cmp(new(big.Int).Mul(c.GasFeeCap(), big.NewInt(int64(c.Gas())))) != 0 {
		t.Fatalf("cancel: nonce %d value %s to %v cap %s, max fee %s", c.Nonce(), c.Value(), c.To(), c.GasFeeCap(), res.MaxFee)
	}
	if len(e.audited(tx.ID, "transaction.cancel_onchain")) != 1 {
		t.Fatal("the cancel is not audited")
	}
	// the agent calling execute again (or polling) is told its payment is being cancelled, not sent
	again, err := e.execute(tx.ID)
	if err != nil || again.TxHash != res.CancelHash || !strings.Contains(again.Error, "being cancelled on chain") || !strings.Contains(again.Error, tx.TxHash) {
		t.Fatalf("execute after the cancel: %+v %v", again, err)
	}
	done := e.track(tx.ID, countersign.StatusCancelled)
	if !strings.Contains(done.Error, "cancelled on chain: nonce") || done.TxHash != res.CancelHash || e.balance(to.Hex()).Sign() != 0 {
		t.Fatalf("cancelled with %q, hash %s; recipient %s", done.Error, done.TxHash, e.balance(to.Hex()))
	}
	// a reorg that undoes the mined cancel: the row is being cancelled again, and says so
	if err := e.dev.Reorg(e.ctx, *done.BlockNumber, 2); err != nil {
		t.Fatal(err)
	}
	e.pass()
	if r := e.row(tx.ID); r.Status != countersign.StatusSubmitted || !strings.Contains(r.Error, "being cancelled on chain") || !strings.Contains(r.Error, res.CancelHash) {
		t.Fatalf("after a reorg of the cancel: %s %q", r.Status, r.Error)
	}
	e.clock.Advance(time.Hour) // its rebroadcast is due
	if again := e.track(tx.ID, countersign.StatusCancelled); again.TxHash != res.CancelHash {
		t.Fatalf("cancelled again as %s", again.TxHash)
	}
	next := e.pay(randomAddr(), big.NewInt(1))
	if next, err = e.execute(next.ID); err != nil {
		t.Fatal(err)
	}
	if *next.Nonce != *tx.Nonce+1 {
		t.Fatalf("next nonce %d", *next.Nonce)
	}
	e.track(next.ID, countersign.StatusConfirmed)
	if _, err := e.svc.CancelOnchain(e.ctx, human, next.ID, code()); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("cancel of a confirmed transaction: %v", err)
	}
}

// If the original is mined before the cancel, the transaction ends
// confirmed and the cancel is refused as such.
func TestMoney_CancelOnchainAfterTheOriginalIsMined(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{Confirmations: 2, ReplaceAfter: -1})
	code := e.enableMFA()
	e.fund(e.wallet.Address, eth(10))
	tx := e.pay(randomAddr(), big.NewInt(1000))
	tx, err := e.execute(tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.CancelOnchain(e.ctx, &Principal{User: e.user}, tx.ID, code())
	if countersign.ErrorCode(err) != countersign.Conflict || !strings.Contains(err.Error(), "already mined") {
		t.Fatalf("cancel of a mined transaction: %v", err)
	}
	e.dev.Mine()
	if got := e.track(tx.ID, countersign.StatusConfirmed); got.TxHash != tx.TxHash {
		t.Fatal("the hash changed")
	}
}

// A cancel signed while the original is still in the pool: if the
// original is mined first the transaction ends confirmed, and the cancel's
// note ("being cancelled") is gone from the row.
func TestMoney_CancelOnchainLosesToTheOriginal(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: -1, RebroadcastAfter: time.Hour, RebroadcastMax: time.Hour})
	code := e.enableMFA()
	tx := e.unmined()
	e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{} }) // the cancel is lost
	if _, err := e.svc.CancelOnchain(e.ctx, &Principal{User: e.user}, tx.ID, code()); err != nil {
		t.Fatal(err)
	}
	if r := e.row(tx.ID); !strings.Contains(r.Error, "being cancelled on chain") {
		t.Fatalf("no cancel note: %q", r.Error)
	}
	e.dev.Mine() // the original, still in the pool
	e.proxy.set(nil)
	done := e.track(tx.ID, countersign.StatusConfirmed)
	if done.TxHash != tx.TxHash || done.Error != "" {
		t.Fatalf("confirmed as %s with error %q, want the original %s and no error", done.TxHash, done.Error, tx.TxHash)
	}
}

// Two trackers (two replicas on one database) never work on one
// transaction at once: while one pass is rebroadcasting a row, the other
// pass does not claim it, so each due rebroadcast is sent once.
func TestMoney_TwoTrackersNeverWorkOnOneTransaction(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: -1, RebroadcastAfter: time.Minute, RebroadcastMax: time.Minute})
	other, err := New(e.ctx, e.svc.store, e.svc.chain, e.svc.signer, e.svc.sealer, e.clock, e.svc.log, e.svc.cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.fund(e.wallet.Address, eth(10))
	e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{} }) // answered, lost
	tx := e.pay(randomAddr(), big.NewInt(1000))
	tx, err = e.execute(tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	// every rebroadcast is held long enough for the other pass to run
	// meanwhile
	e.proxy.set(func(int, *types.Transaction) sendFault {
		hold := make(chan struct{})
		time.AfterFunc(300*time.Millisecond, func() { close(hold) })
		return sendFault{hold: hold}
	})
	for round := range 3 {
		e.clock.Advance(time.Minute)
		before := e.proxy.sendsOf(tx.TxHash)
		done := make(chan struct{})
		go func() { defer close(done); _ = other.TrackReceipts(e.ctx) }()
		time.Sleep(50 * time.Millisecond)
		_ = e.svc.TrackReceipts(e.ctx)
		<-done
		if n := e.proxy.sendsOf(tx.TxHash) - before; n != 1 {
			t.Fatalf("round %d: %d rebroadcasts of one due transaction by two trackers, want 1", round, n)
		}
	}
}

// downSigner is a wallet signer that stops answering when down is set, as
// a remote signer does when its process or network is away.
type downSigner struct {
	countersign.Signer
	down  atomic.Bool
	asked atomic.Int64 // SignTx calls while down
}

func (d *downSigner) SignTx(ctx context.Context, w *countersign.Wallet, tx *countersign.UnsignedTx) ([]byte, string, error) {
	if d.down.Load() {
		d.asked.Add(1)
		return nil, "", countersign.Wrap(countersign.Internal, fmt.Errorf("%w: connection refused", countersign.ErrUnavailable), "the signer is unreachable")
	}
	return d.Signer.SignTx(ctx, w, tx)
}

// A fee bump its wallet's signer cannot sign does not end the pass, as
// the node's silence does: the other wallets' transactions are still
// settled in it, the stuck one keeps the bytes signed before and is
// bumped once the signer is back. (The pass ended at the first such transaction,
// and every pass again: one signer away stopped every later wallet's
// confirmations.)
func TestMoney_SignerAwayDoesNotStopTheTracker(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: time.Minute, RebroadcastAfter: time.Hour, RebroadcastMax: time.Hour})
	sg := &downSigner{Signer: e.svc.signer}
	e.svc.signer = sg
	// a second wallet and agent of the same owner
	w2 := &countersign.Wallet{ID: uuid.NewString(), OwnerID: e.user.ID, Name: "w2", CreatedAt: e.clock.Now()}
	var err error
	if w2.Address, w2.KeyFormat, w2.KeySealed, err = e.svc.signer.NewKey(e.ctx, w2.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.store.CreateWallet(e.ctx, w2); err != nil {
		t.Fatal(err)
	}
	a2 := &countersign.Agent{ID: uuid.NewString(), OwnerID: e.user.ID, Name: "agent2", WalletID: w2.ID, KeyHash: []byte(uuid.NewString()), KeyPrefix: "cs_", CreatedAt: e.clock.Now()}
	if err := e.svc.store.CreateAgent(e.ctx, a2); err != nil {
		t.Fatal(err)
	}
	second := &Principal{User: e.user, Agent: a2}
	e.fund(w2.Address, eth(10))
	e.fund(e.wallet.Address, eth(10))
	// The stuck payment is the sender a pass reaches first (passes walk
	// senders in address order).
	first := e.agent
	if strings.Compare(w2.Address, e.wallet.Address) < 0 {
		first, second = second, first
	}
	e.agent = second
	mined := e.pay(randomAddr(), big.NewInt(1000))
	if mined, err = e.execute(mined.ID); err != nil { // mined at once
		t.Fatal(err)
	}
	e.agent = first
	stuck := e.unmined() // and the node mines nothing more until the signer is back
	stuck2, err := e.execute(e.pay(randomAddr(), big.NewInt(1000)).ID)
	if err != nil {
		t.Fatal(err)
	}

	e.clock.Advance(time.Minute) // the stuck ones are due for a bump
	sg.down.Store(true)
	e.pass()
	if got := e.row(mined.ID); got.Status != countersign.StatusConfirmed {
		t.Fatalf("the other wallet's mined payment is %s after a pass with the signer away, want confirmed", got.Status)
	}
	for _, st := range []*countersign.Transaction{stuck, stuck2} {
		got := e.row(st.ID)
		if got.Status != countersign.StatusSubmitted || got.TxHash != st.TxHash || len(e.attempts(st.ID)) > 1 {
			t.Fatalf("stuck payment %s %s, %d attempts", got.Status, got.TxHash, len(e.attempts(st.ID)))
		}
	}
	if n := sg.asked.Load(); n != 1 {
		t.Fatalf("the signer away was asked %d times in one pass, want once (each ask holds the write transaction)", n)
	}
	if !strings.Contains(e.logs.String(), "the signer is unavailable") {
		t.Fatalf("no warning names the signer: %s", e.logs.String())
	}

	sg.down.Store(false) // back: the bump is signed on the next pass due
	e.proxy.set(nil)
	e.clock.Advance(time.Minute)
	e.pass()
	if got := e.row(stuck.ID); got.TxHash == stuck.TxHash {
		t.Fatal("not bumped once the signer was back")
	}
	e.track(stuck.ID, countersign.StatusConfirmed)
	e.track(stuck2.ID, countersign.StatusConfirmed) // bumped too, or mined behind the first's bump with the bytes it had
}
