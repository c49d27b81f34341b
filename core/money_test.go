package core

import (
	"encoding/json"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/contracts"
)

func hashOf(t *countersign.Transaction) string {
	if t == nil {
		return "none"
	}
	return t.TxHash
}

func code(err error) countersign.Code {
	if err == nil {
		return ""
	}
	return countersign.ErrorCode(err)
}

// Finding 1: a JSON-RPC error from eth_sendRawTransaction is not a
// refusal unless it is one of the node's known rejection reasons. A node
// that answers -32002 after taking the transaction (geth's request
// timeout) must not get the transaction marked failed and its nonce handed
// back: that is how a re-approval paid twice.
func TestMoney_BroadcastErrorsAreClassified(t *testing.T) {
	tests := map[string]struct {
		fault       sendFault
		wantErr     countersign.Code
		wantStatus  countersign.Status // right after execute
		final       countersign.Status // after the tracker
		nonceReused bool               // the next payment takes the same nonce
	}{
		"ok/timeout after the node took it (-32002)": {fault: sendFault{forward: true, code: -32002, msg: "request timed out"},
			wantStatus: countersign.StatusSubmitted, final: countersign.StatusConfirmed},
		"ok/provider error after forwarding (-32603)": {fault: sendFault{forward: true, code: -32603, msg: "upstream error"},
			wantStatus: countersign.StatusSubmitted, final: countersign.StatusConfirmed},
		"ok/already known": {fault: sendFault{forward: true, code: -32000, msg: "already known"},
			wantStatus: countersign.StatusSubmitted, final: countersign.StatusConfirmed},
		"ok/nonce too low with our hash on chain": {fault: sendFault{forward: true, code: -32000, msg: "nonce too low: next nonce 1, tx nonce 0"},
			wantStatus: countersign.StatusSubmitted, final: countersign.StatusConfirmed},
		"ok/unknown error, not taken: the tracker rebroadcasts": {fault: sendFault{code: -32603, msg: "internal error"},
			wantStatus: countersign.StatusSubmitted, final: countersign.StatusConfirmed},
		"ok/replacement underpriced is not a refusal": {fault: sendFault{code: -32000, msg: "replacement transaction underpriced"},
			wantStatus: countersign.StatusSubmitted, final: countersign.StatusConfirmed},
		"fail/insufficient funds is a refusal": {fault: sendFault{code: -32000, msg: "insufficient funds for gas * price + value: balance 0, tx cost 1"},
			wantErr: countersign.InsufficientFunds, wantStatus: countersign.StatusFailed, nonceReused: true},
		"fail/intrinsic gas too low is a refusal": {fault: sendFault{code: -32000, msg: "intrinsic gas too low"},
			wantErr: countersign.ChainError, wantStatus: countersign.StatusFailed, nonceReused: true},
		"fail/fee cap below base fee is a refusal": {fault: sendFault{code: -32000, msg: "max fee per gas less than block base fee: address 0x1, maxFeePerGas: 1, baseFee: 2"},
			wantErr: countersign.ChainError, wantStatus: countersign.StatusFailed, nonceReused: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			e := newMoneyEnv(t, MoneyConfig{})
			e.fund(e.wallet.Address, eth(10))
			to := randomAddr()
			tx := e.pay(to, eth(1))
			e.proxy.set(func(n int, _ *types.Transaction) sendFault {
				if n == 1 {
					return tt.fault
				}
				return sendFault{forward: true}
			})
			_, err := e.execute(tx.ID)
			if code(err) != tt.wantErr {
				t.Fatalf("execute: %v, want code %q", err, tt.wantErr)
			}
			row := e.row(tx.ID)
			if row.Status != tt.wantStatus || row.Nonce == nil || *row.Nonce != 0 {
				t.Fatalf("after execute: %s nonce %v (%s), want %s", row.Status, row.Nonce, row.Error, tt.wantStatus)
			}
			paid := new(big.Int)
			if tt.final != "" {
				e.clock.Advance(time.Minute) // due for a rebroadcast
				e.track(tx.ID, tt.final)
				paid = eth(1)
			}
			if got := e.balance(to); got.Cmp(paid) != 0 {
				t.Fatalf("recipient holds %s, want %s", got, paid)
			}
			// The nonce is handed back only when nothing was sent.
			next := e.pay(randomAddr(), eth(1))
			got, err := e.execute(next.ID)
			if err != nil {
				t.Fatal(err)
			}
			want := uint64(1)
			if tt.nonceReused {
				want = 0
			}
			if *got.Nonce != want {
				t.Fatalf("next payment took nonce %d, want %d", *got.Nonce, want)
			}
			e.track(next.ID, countersign.StatusConfirmed)
		})
	}
}

// loseCommit puts a row back as it was before execute's commit, as a power
// cut with synchronous=NORMAL can after the broadcast went out: authorized,
// no nonce, no signed bytes, the nonce counter back.
func (e *moneyEnv) loseCommit(id string) {
	e.t.Helper()
	r := e.row(id)
	nonce := *r.Nonce
	r.Status, r.Nonce, r.RawTx, r.TxHash, r.BlockNumber = countersign.StatusAuthorized, nil, nil, "", nil
	if err := e.svc.store.UpdateTransaction(e.ctx, r); err != nil {
		e.t.Fatal(err)
	}
	if err := e.svc.store.ReleaseNonce(e.ctx, r.ChainID, r.From, nonce); err != nil {
		e.t.Fatal(err)
	}
	if c, _ := e.svc.store.NonceCounter(e.ctx, r.ChainID, r.From); c != nonce {
		e.t.Fatalf("counter %d after the lost commit, want %d", c, nonce)
	}
}

// Finding 2: when the commit that recorded a broadcast transaction is
// lost, executing the approval again must find the transaction on chain
// and adopt it, not sign and pay a second time.
func TestMoney_LostCommitIsReconciledNotPaidTwice(t *testing.T) {
	t.Run("ok/the mined transaction is adopted", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		to := randomAddr()
		tx := e.pay(to, eth(1))
		first, err := e.execute(tx.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.loseCommit(tx.ID)
		again, err := e.execute(tx.ID)
		if err != nil {
			t.Fatal(err)
		}
		if again.TxHash != first.TxHash || again.Status != countersign.StatusSubmitted {
			t.Fatalf("re-execute after a lost commit: %s %s, want the first hash %s", again.Status, again.TxHash, first.TxHash)
		}
		e.track(tx.ID, countersign.StatusConfirmed)
		if got := e.balance(to); got.Cmp(eth(1)) != 0 || e.minedNonce() != 1 {
			t.Fatalf("recipient holds %s after %d transactions: paid twice", got, e.minedNonce())
		}
		if c, _ := e.svc.store.NonceCounter(e.ctx, tx.ChainID, tx.From); c > 1 {
			t.Fatalf("counter %d", c)
		}
		// the next approval takes the next nonce
		next, err := e.execute(e.pay(randomAddr(), eth(1)).ID)
		if err != nil || *next.Nonce != 1 {
			t.Fatalf("next: %v (hash %s)", err, hashOf(next))
		}
	})
	t.Run("fail/outside the scan window: refused, nothing signed", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{ReconcileBlocks: 2})
		e.fund(e.wallet.Address, eth(10))
		to := randomAddr()
		tx := e.pay(to, eth(1))
		first, err := e.execute(tx.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.loseCommit(tx.ID)
		for range 3 {
			e.dev.Mine()
		}
		sends := len(e.proxy.sends)
		if _, err := e.execute(tx.ID); code(err) != countersign.Conflict || !strings.Contains(countersign.ErrorDetail(err), "RECONCILE_BLOCKS") {
			t.Fatalf("execute with a short window: %v", err)
		}
		if r := e.row(tx.ID); r.Status != countersign.StatusAuthorized || r.TxHash != "" || len(e.proxy.sends) != sends || e.minedNonce() != 1 {
			t.Fatalf("something was signed: %s %q", r.Status, r.TxHash)
		}
		e.svc.cfg.Money.ReconcileBlocks = 2000
		again, err := e.execute(tx.ID)
		if err != nil || again.TxHash != first.TxHash {
			t.Fatalf("with a wide window: %v (hash %s, first %s)", err, hashOf(again), first.TxHash)
		}
		e.track(tx.ID, countersign.StatusConfirmed)
		if got := e.balance(to); got.Cmp(eth(1)) != 0 {
			t.Fatalf("recipient holds %s", got)
		}
	})
	t.Run("ok/an unrelated transaction at the unknown nonce: signed anew", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		// the key used outside countersign's counter
		other := randomAddr()
		raw, _, err := e.svc.signer.SignTx(e.ctx, e.wallet, &countersign.UnsignedTx{ChainID: big.NewInt(1337), Nonce: 0, To: other,
			Value: big.NewInt(1), Gas: 21000, Tip: big.NewInt(1e9), FeeCap: big.NewInt(50e9)})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.chain.SendRawTransaction(e.ctx, raw); err != nil {
			t.Fatal(err)
		}
		to := randomAddr()
		tx := e.pay(to, eth(1))
		got, err := e.execute(tx.ID)
		if err != nil || *got.Nonce != 1 {
			t.Fatalf("execute: %v (hash %s)", err, hashOf(got))
		}
		e.track(tx.ID, countersign.StatusConfirmed)
		if b := e.balance(to); b.Cmp(eth(1)) != 0 {
			t.Fatalf("recipient holds %s", b)
		}
	})
	t.Run("ok/a pooled transaction is adopted or waited for, never signed twice", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{poolOnly: true} })
		to := randomAddr()
		tx := e.pay(to, eth(1))
		first, err := e.execute(tx.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.loseCommit(tx.ID)
		again, err := e.execute(tx.ID)
		switch {
		case err == nil && again.TxHash == first.TxHash: // found in the pool (txpool_contentFrom)
		case code(err) == countersign.Conflict: // the pool is not visible: wait until mined
		default:
			t.Fatalf("re-execute with the transaction pooled: %v (hash %s, first %s)", err, hashOf(again), first.TxHash)
		}
		e.dev.Mine()
		again, err = e.execute(tx.ID)
		if err != nil || again.TxHash != first.TxHash {
			t.Fatalf("once mined: %v (hash %s, first %s)", err, hashOf(again), first.TxHash)
		}
		e.track(tx.ID, countersign.StatusConfirmed)
		if b := e.balance(to); b.Cmp(eth(1)) != 0 {
			t.Fatalf("recipient holds %s", b)
		}
	})
}

// Finding 3: the approval digest covers the chain id; execute refuses to
// sign for another chain than the approved one.
func TestMoney_ChainMismatchIsRefused(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	tx := e.pay(randomAddr(), eth(1))
	e.svc.chainID = big.NewInt(11155111) // restarted against another chain
	if _, err := e.execute(tx.ID); code(err) != countersign.ChainMismatch {
		t.Fatalf("execute on another chain: %v", err)
	}
	if r := e.row(tx.ID); r.Status != countersign.StatusAuthorized || r.TxHash != "" || r.Nonce != nil || len(e.proxy.sends) != 0 {
		t.Fatalf("signed anyway: %s %q", r.Status, r.TxHash)
	}
	e.svc.chainID = big.NewInt(1337)
	got, err := e.execute(tx.ID)
	if err != nil {
		t.Fatal(err)
	}
	var signed types.Transaction
	if err := signed.UnmarshalBinary(got.RawTx); err != nil || signed.ChainId().Int64() != 1337 {
		t.Fatalf("signed for chain %v", signed.ChainId())
	}
}

// Finding 4, first half: spends in flight count in the balance check, so
// the wallet never signs a transaction the node will refuse for funds
// (and leave a gap behind).
func TestMoney_InFlightSpendsCountInTheBalance(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{poolOnly: true} }) // taken, not mined yet
	a, b, c := e.pay(randomAddr(), eth(4)), e.pay(randomAddr(), eth(4)), e.pay(randomAddr(), eth(4))
	for _, tx := range []*countersign.Transaction{a, b} {
		if _, err := e.execute(tx.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.execute(c.ID); code(err) != countersign.InsufficientFunds || !strings.Contains(countersign.ErrorDetail(err), "in flight") {
		t.Fatalf("third 4 ETH of 10 while 8 are in flight: %v", err)
	}
	if r := e.row(c.ID); r.Status != countersign.StatusAuthorized || r.TxHash != "" || len(e.proxy.sends) != 2 {
		t.Fatalf("the third was signed: %s %q (%d sends)", r.Status, r.TxHash, len(e.proxy.sends))
	}
	e.dev.Mine()
	e.track(a.ID, countersign.StatusConfirmed)
	e.track(b.ID, countersign.StatusConfirmed)
	// mined spends are in the balance, not counted again
	e.proxy.set(nil)
	e.fund(e.wallet.Address, eth(3))
	if _, err := e.execute(c.ID); err != nil {
		t.Fatalf("after the first two were mined: %v", err)
	}
	e.track(c.ID, countersign.StatusConfirmed)
}

// Finding 4, second half: four transactions, the second refused after the
// third and fourth were signed. Its nonce cannot be handed back; a
// zero-value self-transfer fills it, so the later two are mined.
func TestMoney_RefusedNonceGapIsFilled(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	txs, to := e.refusedGap(sendFault{forward: true})
	// the later two are mined once they are due for a rebroadcast
	e.clock.Advance(time.Minute)
	e.track(txs[2].ID, countersign.StatusConfirmed)
	e.track(txs[3].ID, countersign.StatusConfirmed)
	filler := e.filler()
	if filler == nil || *filler.Nonce != 1 || filler.To != e.wallet.Address || filler.TxTo != e.wallet.Address || filler.TxValue != "0" || len(filler.TxData) != 0 {
		t.Fatalf("no zero-value self-transfer at nonce 1: %+v", filler)
	}
	if perGas, _ := new(big.Int).SetString(filler.MaxFeePerGas, 10); perGas.Cmp(e.svc.cfg.Money.MaxFeePerGas) > 0 {
		t.Fatalf("filler fee cap %s above MAX_FEE_PER_GAS", perGas)
	}
	e.track(filler.ID, countersign.StatusConfirmed)
	for i, want := range []*big.Int{eth(1), new(big.Int), eth(1), eth(1)} {
		if got := e.balance(to[i]); got.Cmp(want) != 0 {
			t.Fatalf("recipient %d holds %s, want %s", i, got, want)
		}
	}
	if e.minedNonce() != 4 {
		t.Fatalf("mined nonce %d", e.minedNonce())
	}
	if len(e.audited(filler.ID, "transaction.nonce_fill")) != 1 {
		t.Fatal("the filler is not audited")
	}
}

// A nonce filler the node does not mine (fees rose after it was signed)
// is replaced with bumped fees like any transaction, within
// MAX_FEE_PER_GAS — no human approved a tighter bound, and a filler that
// could not be bumped would hold up every later nonce of the wallet.
func TestMoney_UnminedNonceFillerIsReplaced(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: time.Minute, RebroadcastAfter: time.Hour, RebroadcastMax: time.Hour})
	txs, _ := e.refusedGap(sendFault{poolOnly: true})
	filler := e.filler()
	if filler == nil || filler.Status != countersign.StatusSubmitted {
		t.Fatalf("filler: %+v", filler)
	}
	if wei(filler.MaxFeePerGas).Cmp(e.svc.cfg.Money.MaxFeePerGas) != 0 {
		t.Fatalf("filler bound %s, want MAX_FEE_PER_GAS %s", filler.MaxFeePerGas, e.svc.cfg.Money.MaxFeePerGas)
	}
	first := decodeTx(t, filler.RawTx)
	// it holds back of the wallet's balance what its signed bytes may cost,
	// not gas × MAX_FEE_PER_GAS (which refused the small wallets fillers
	// are made for every payment until it was mined)
	if got := maxCost(filler); got.Cmp(first.Cost()) != 0 {
		t.Fatalf("filler reserves %s, its signed bytes cost at most %s", got, first.Cost())
	}
	e.clock.Advance(time.Minute)
	e.pass()
	atts := e.attempts(filler.ID)
	if len(atts) != 2 || atts[1].Kind != countersign.AttemptReplace {
		t.Fatalf("filler not replaced: %d attempts, stuck reports %d", len(atts), len(e.audited(filler.ID, "transaction.stuck")))
	}
	repl := decodeTx(t, atts[1].RawTx)
	if repl.Nonce() != first.Nonce() || repl.Value().Sign() != 0 || repl.GasFeeCap().Cmp(bumpFee(first.GasFeeCap())) < 0 ||
		repl.GasFeeCap().Cmp(e.svc.cfg.Money.MaxFeePerGas) > 0 || *repl.To() != common.HexToAddress(e.wallet.Address) {
		t.Fatalf("replacement nonce %d value %s cap %s (first %s) to %s", repl.Nonce(), repl.Value(), repl.GasFeeCap(), first.GasFeeCap(), repl.To())
	}
	if got := maxCost(e.row(filler.ID)); got.Cmp(repl.Cost()) != 0 {
		t.Fatalf("bumped filler reserves %s, its replacement costs at most %s", got, repl.Cost())
	}
	e.proxy.set(nil)
	if done := e.track(filler.ID, countersign.StatusConfirmed); done.TxHash != atts[1].TxHash {
		t.Fatalf("filler confirmed as %s, want the replacement %s", done.TxHash, atts[1].TxHash)
	}
	e.clock.Advance(time.Hour)
	e.track(txs[2].ID, countersign.StatusConfirmed)
	e.track(txs[3].ID, countersign.StatusConfirmed)
}

// refusedGap signs four payments and has the node refuse the second's
// first broadcast after the third and fourth were signed, so its nonce is
// filled; fill is what the node does with the filler's broadcast. It
// returns the payments and their recipients.
func (e *moneyEnv) refusedGap(fill sendFault) ([4]*countersign.Transaction, [4]string) {
	t := e.t
	t.Helper()
	e.fund(e.wallet.Address, eth(10))
	var to [4]string
	var txs [4]*countersign.Transaction
	for i := range txs {
		to[i] = randomAddr()
		txs[i] = e.pay(to[i], eth(1))
	}
	if _, err := e.execute(txs[0].ID); err != nil {
		t.Fatal(err)
	}
	e.track(txs[0].ID, countersign.StatusConfirmed)
	started, release := make(chan struct{}), make(chan struct{})
	e.proxy.set(func(n int, _ *types.Transaction) sendFault {
		switch n {
		case 2: // the second transaction: held, then refused
			return sendFault{started: started, hold: release, code: -32000, msg: "insufficient funds for gas * price + value: balance 1, tx cost 2"}
		case 5: // the filler
			return fill
		}
		return sendFault{forward: true}
	})
	errc := make(chan error, 1)
	go func() {
		_, err := e.execute(txs[1].ID)
		errc <- err
	}()
	<-started
	for _, tx := range txs[2:] {
		if _, err := e.execute(tx.ID); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	if err := <-errc; code(err) != countersign.InsufficientFunds {
		t.Fatalf("the refused second: %v", err)
	}
	if r := e.row(txs[1].ID); r.Status != countersign.StatusFailed {
		t.Fatalf("refused transaction is %s", r.Status)
	}
	return txs, to
}

// filler is the env's one nonce filler, or nil.
func (e *moneyEnv) filler() *countersign.Transaction {
	e.t.Helper()
	all, err := e.svc.store.Transactions(e.ctx, countersign.TxFilter{OwnerID: e.user.ID})
	if err != nil {
		e.t.Fatal(err)
	}
	var filler *countersign.Transaction
	for _, r := range all {
		if r.Type == countersign.TxNonceFill {
			if filler != nil {
				e.t.Fatal("two fillers")
			}
			filler = r
		}
	}
	return filler
}

// A refusal of the first broadcast that cannot be recorded (a later nonce
// is signed already, and the fee read for its filler fails) is not
// answered as a refusal: the row stays submitted, and says so, and the
// tracker's later broadcast of the same bytes is mined — an agent told
// "refused" would have prepared the payment again.
func TestMoney_UnrecordedRefusalIsAnsweredAsSubmitted(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	to := [2]string{randomAddr(), randomAddr()}
	first, second := e.pay(to[0], eth(1)), e.pay(to[1], eth(1))
	started, release := make(chan struct{}), make(chan struct{})
	e.proxy.set(func(n int, _ *types.Transaction) sendFault {
		if n == 1 { // the first transaction's first broadcast: held, then refused
			return sendFault{started: started, hold: release, code: -32000, msg: "insufficient funds for gas * price + value: balance 1, tx cost 2"}
		}
		return sendFault{forward: true}
	})
	type answer struct {
		tx  *countersign.Transaction
		err error
	}
	ans := make(chan answer, 1)
	go func() {
		tx, err := e.execute(first.ID)
		ans <- answer{tx, err}
	}()
	<-started
	if _, err := e.execute(second.ID); err != nil { // holds the next nonce
		t.Fatal(err)
	}
	e.proxy.setRewrite(func(method string, _ []json.RawMessage, _ json.RawMessage) (json.RawMessage, int, string) {
		if method == "eth_maxPriorityFeePerGas" {
			return nil, -32000, "fee suggestion unavailable"
		}
		return nil, 0, ""
	})
	close(release)
	a := <-ans
	if a.err != nil || a.tx == nil || a.tx.Status != countersign.StatusSubmitted {
		t.Fatalf("execute answered %+v, %v; want the transaction as it stands: submitted", a.tx, a.err)
	}
	if r := e.row(first.ID); r.Status != countersign.StatusSubmitted || r.TxHash != a.tx.TxHash {
		t.Fatalf("the row is %s (%s)", r.Status, r.TxHash)
	}
	e.proxy.setRewrite(nil)
	e.clock.Advance(time.Minute) // due for a rebroadcast
	e.track(first.ID, countersign.StatusConfirmed)
	e.track(second.ID, countersign.StatusConfirmed)
	for i, addr := range to {
		if got := e.balance(addr); got.Cmp(eth(1)) != 0 {
			t.Fatalf("recipient %d holds %s, want exactly 1 ETH", i, got)
		}
	}
}

// Finding 5: the approval binds the network fee; execute signs with
// exactly it and refuses when the chain now wants more.
func TestMoney_FeesAreBoundByTheApproval(t *testing.T) {
	t.Run("ok/signed with exactly the bound gas limit and a fee cap within the bound", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		tx := e.pay(randomAddr(), big.NewInt(1))
		if tx.GasLimit != 25200 || tx.MaxFeePerGas == "" {
			t.Fatalf("bound %d gas at %q", tx.GasLimit, tx.MaxFeePerGas)
		}
		v := View(tx)
		if v.GasLimit == nil || *v.GasLimit != 25200 || v.MaxFee == "" || v.MaxFeePerGas != tx.MaxFeePerGas {
			t.Fatalf("view: %+v", v)
		}
		r, err := e.svc.Review(e.ctx, &Principal{User: e.user}, tx.ID)
		if err != nil || !strings.HasSuffix(r.MaxFee, " "+NativeSymbol) {
			t.Fatalf("review shows no max fee: %q %v", r.MaxFee, err)
		}
		got, err := e.execute(tx.ID)
		if err != nil {
			t.Fatal(err)
		}
		var signed types.Transaction
		if err := signed.UnmarshalBinary(got.RawTx); err != nil {
			t.Fatal(err)
		}
		// The first attempt signs at most the bound (the room above it is
		// for fee-bump replacements, tracker.go).
		bound, _ := new(big.Int).SetString(tx.MaxFeePerGas, 10)
		if signed.Gas() != tx.GasLimit || signed.GasFeeCap().Cmp(bound) > 0 || signed.GasFeeCap().Sign() <= 0 || signed.GasTipCap().Cmp(signed.GasFeeCap()) > 0 {
			t.Fatalf("signed %d gas at %s, approved %d at %s", signed.Gas(), signed.GasFeeCap(), tx.GasLimit, tx.MaxFeePerGas)
		}
	})
	t.Run("fail/the gas estimate grew past the bound", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		tx := e.pay(randomAddr(), big.NewInt(1))
		e.proxy.setRewrite(func(method string, _ []json.RawMessage, _ json.RawMessage) (json.RawMessage, int, string) {
			if method == "eth_estimateGas" {
				return json.RawMessage(`"0xc04380"`), 0, "" // 12.6M gas
			}
			return nil, 0, ""
		})
		if _, err := e.execute(tx.ID); code(err) != countersign.FeeTooHigh {
			t.Fatalf("execute with 12.6M gas needed: %v", err)
		}
		if r := e.row(tx.ID); r.Status != countersign.StatusAuthorized || r.TxHash != "" || len(e.proxy.sends) != 0 {
			t.Fatalf("signed anyway: %s %q", r.Status, r.TxHash)
		}
	})
	t.Run("fail/the base fee rose above the approved max fee per gas", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		tx := e.pay(randomAddr(), big.NewInt(1))
		perGas, _ := new(big.Int).SetString(tx.MaxFeePerGas, 10)
		e.proxy.setRewrite(func(method string, params []json.RawMessage, result json.RawMessage) (json.RawMessage, int, string) {
			if method != "eth_getBlockByNumber" || len(params) == 0 || string(params[0]) != `"latest"` {
				return nil, 0, ""
			}
			var head map[string]any
			_ = json.Unmarshal(result, &head)
			head["baseFeePerGas"] = hexutil.EncodeBig(new(big.Int).Mul(perGas, big.NewInt(2)))
			b, _ := json.Marshal(head)
			return b, 0, ""
		})
		if _, err := e.execute(tx.ID); code(err) != countersign.FeeTooHigh {
			t.Fatalf("execute at twice the approved fee: %v", err)
		}
		if r := e.row(tx.ID); r.Status != countersign.StatusAuthorized || len(e.proxy.sends) != 0 {
			t.Fatalf("signed anyway: %s", r.Status)
		}
		e.proxy.setRewrite(nil) // fees fell: the same approval executes
		if _, err := e.execute(tx.ID); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("fail/MAX_FEE_PER_GAS lowered below the approval", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		tx := e.pay(randomAddr(), big.NewInt(1))
		e.svc.cfg.Money.MaxFeePerGas = big.NewInt(1)
		if _, err := e.execute(tx.ID); code(err) != countersign.FeeTooHigh {
			t.Fatalf("execute above MAX_FEE_PER_GAS: %v", err)
		}
	})
	t.Run("fail/prepare while the base fee is above MAX_FEE_PER_GAS", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{MaxFeePerGas: big.NewInt(1)})
		if _, err := e.svc.Prepare(e.ctx, e.agent, &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: "1"}, ""); code(err) != countersign.FeeTooHigh {
			t.Fatalf("prepare: %v", err)
		}
		if l, _ := e.svc.store.Transactions(e.ctx, countersign.TxFilter{OwnerID: e.user.ID}); len(l) != 0 {
			t.Fatal("a refused prepare stored a row")
		}
	})
	t.Run("ok/MAX_FEE_PER_GAS caps what an approval binds", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		base, err := e.svc.chain.BaseFee(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		limit := new(big.Int).Add(base, big.NewInt(1))
		e.svc.cfg.Money.MaxFeePerGas = limit
		if tx := e.pay(randomAddr(), big.NewInt(1)); tx.MaxFeePerGas != limit.String() {
			t.Fatalf("bound %s per gas, cap %s", tx.MaxFeePerGas, limit)
		}
	})
	t.Run("fail/no fee bound: prepare again", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		// a row from before fee limits
		tx, err := e.svc.buildSpend(e.ctx, e.wallet, &PrepareRequest{Type: "native", ToAddress: randomAddr(), Amount: "1"})
		if err != nil {
			t.Fatal(err)
		}
		tx.GasLimit, tx.MaxFeePerGas = 0, ""
		tx.Digest = Digest(tx)
		now := e.clock.Now()
		tx.AgentID, tx.Status, tx.ApprovedDigest, tx.CreatedAt, tx.UpdatedAt, tx.ExpiresAt = e.agent.Agent.ID, countersign.StatusAuthorized, tx.Digest, now, now, now
		if err := e.svc.store.CreateTransaction(e.ctx, tx); err != nil {
			t.Fatal(err)
		}
		if _, err := e.execute(tx.ID); code(err) != countersign.NotAuthorized || !strings.Contains(countersign.ErrorDetail(err), "prepare it again") {
			t.Fatalf("execute without a fee bound: %v", err)
		}
		// a call whose simulation fails binds nothing, and the review says so
		c := e.approved(&PrepareRequest{Type: "contract_call", ContractAddress: e.dev.Counter.Hex(), ContractABI: json.RawMessage(contracts.MustLoad("Counter").ABIJSON), FunctionName: "alwaysReverts"})
		if c.GasLimit != 0 || c.MaxFeePerGas != "" {
			t.Fatalf("a failing simulation bound %d gas", c.GasLimit)
		}
		if r, err := e.svc.Review(e.ctx, &Principal{User: e.user}, c.ID); err != nil || r.MaxFee != "" || !strings.Contains(warningText(r.Warnings), "No network fee limit") {
			t.Fatalf("review of an unbound request: %+v %v", r, err)
		}
	})
	t.Run("ok/the digest binds the fee", func(t *testing.T) {
		tx := &countersign.Transaction{ChainID: 1337, Type: countersign.TxNative, GasLimit: 25200, MaxFeePerGas: "2000000000"}
		d := Digest(tx)
		tx.GasLimit++
		if string(Digest(tx)) == string(d) {
			t.Fatal("gas limit not in the digest")
		}
		tx.GasLimit--
		tx.MaxFeePerGas = "2000000001"
		if string(Digest(tx)) == string(d) {
			t.Fatal("max fee per gas not in the digest")
		}
	})
}

// Finding 6: executing a failed transaction again answers 409 with its
// status and reason, not 201 with a hash of bytes that were never sent.
func TestMoney_ExecuteAFailedTransactionIsAConflict(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	e.fund(e.wallet.Address, eth(10))
	tx := e.pay(randomAddr(), eth(1))
	e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{code: -32000, msg: "intrinsic gas too low"} })
	if _, err := e.execute(tx.ID); code(err) != countersign.ChainError {
		t.Fatalf("refused broadcast: %v", err)
	}
	got, err := e.execute(tx.ID)
	if code(err) != countersign.Conflict || got != nil {
		t.Fatalf("re-execute of a failed transaction: %v (answered a row: %v)", err, got != nil)
	}
	if d := countersign.ErrorDetail(err); !strings.Contains(d, "failed") || !strings.Contains(d, "intrinsic gas") {
		t.Fatalf("detail %q lacks the status and reason", d)
	}
}

// Finding 7: one receipt error does not stop the tracker; rows that stay
// submitted do not starve newer ones; rebroadcasts back off.
func TestMoney_TrackerIsPerTransactionFairAndBacksOff(t *testing.T) {
	t.Run("ok/one receipt error does not stop the pass", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{poolOnly: true} })
		a, b := e.pay(randomAddr(), eth(1)), e.pay(randomAddr(), eth(1))
		ra, err := e.execute(a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.execute(b.ID); err != nil {
			t.Fatal(err)
		}
		e.dev.Mine()
		e.proxy.setRewrite(func(method string, params []json.RawMessage, _ json.RawMessage) (json.RawMessage, int, string) {
			if method == "eth_getTransactionReceipt" && strings.Contains(strings.ToLower(string(params[0])), strings.ToLower(ra.TxHash)) {
				return nil, -32603, "receipt store unavailable"
			}
			return nil, 0, ""
		})
		if err := e.svc.TrackReceipts(e.ctx); err == nil {
			t.Fatal("a pass with an error reports none")
		}
		if e.row(b.ID).Status != countersign.StatusConfirmed || e.row(a.ID).Status != countersign.StatusSubmitted || e.svc.TrackerErrors() != 1 {
			t.Fatalf("after one receipt error: a %s, b %s, %d errors", e.row(a.ID).Status, e.row(b.ID).Status, e.svc.TrackerErrors())
		}
		e.proxy.setRewrite(nil)
		e.track(a.ID, countersign.StatusConfirmed)
	})
	t.Run("ok/stuck rows do not starve a new one", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		old := e.clock.Now().Add(-time.Hour)
		for i := range 201 {
			n := uint64(0)
			created := old.Add(time.Duration(i) * time.Second)
			stuck := &countersign.Transaction{ID: uuid.NewString(), OwnerID: e.user.ID, WalletID: e.wallet.ID, ChainID: 1337, Type: countersign.TxNative,
				From: randomAddr(), To: randomAddr(), Amount: "1", TxTo: randomAddr(), TxValue: "1", Digest: []byte{1}, Status: countersign.StatusSubmitted,
				Nonce: &n, TxHash: common.BytesToHash([]byte(uuid.NewString())).Hex(), RawTx: []byte{1},
				CreatedAt: created, UpdatedAt: created, ExpiresAt: created, NextBroadcastAt: e.clock.Now().Add(24 * time.Hour)}
			if err := e.svc.store.CreateTransaction(e.ctx, stuck); err != nil {
				t.Fatal(err)
			}
		}
		tx := e.pay(randomAddr(), eth(1))
		if _, err := e.execute(tx.ID); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			_ = e.svc.TrackReceipts(e.ctx)
		}
		if s := e.row(tx.ID).Status; s != countersign.StatusConfirmed {
			t.Fatalf("behind 201 stuck rows the new transaction is %s after 3 passes", s)
		}
	})
	t.Run("ok/rebroadcasts back off", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{} }) // answered, dropped
		tx := e.pay(randomAddr(), eth(1))
		got, err := e.execute(tx.ID)
		if err != nil {
			t.Fatal(err)
		}
		for range 60 { // ten minutes in 10 s steps
			e.clock.Advance(10 * time.Second)
			_ = e.svc.TrackReceipts(e.ctx)
		}
		// at 30 s, then 60, 120 and 240 s later: 5 with the first
		if n := e.proxy.sendsOf(got.TxHash); n < 2 || n > 6 {
			t.Fatalf("%d broadcasts in ten minutes", n)
		}
		if r := e.row(tx.ID); r.Status != countersign.StatusSubmitted || r.Broadcasts < 1 {
			t.Fatalf("stuck row: %s, %d broadcasts recorded", r.Status, r.Broadcasts)
		}
		// and once the node takes it, it is mined and settled
		e.proxy.set(nil)
		e.clock.Advance(time.Hour)
		e.track(tx.ID, countersign.StatusConfirmed)
	})
	t.Run("fail/a nonce used by another transaction ends it", func(t *testing.T) {
		e := newMoneyEnv(t, MoneyConfig{})
		e.fund(e.wallet.Address, eth(10))
		e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{} }) // answered, dropped
		tx := e.pay(randomAddr(), eth(1))
		got, err := e.execute(tx.ID)
		if err != nil {
			t.Fatal(err)
		}
		e.proxy.set(nil)
		// the key used elsewhere takes nonce 0
		raw, _, err := e.svc.signer.SignTx(e.ctx, e.wallet, &countersign.UnsignedTx{ChainID: big.NewInt(1337), Nonce: 0, To: randomAddr(),
			Value: big.NewInt(1), Gas: 21000, Tip: big.NewInt(1e9), FeeCap: big.NewInt(50e9)})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.chain.SendRawTransaction(e.ctx, raw); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Minute)
		r := e.track(tx.ID, countersign.StatusFailed)
		if !strings.Contains(r.Error, "another transaction") || r.TxHash != got.TxHash {
			t.Fatalf("failed with %q", r.Error)
		}
	})
}
