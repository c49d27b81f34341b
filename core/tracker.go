package core

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/countersign/countersign"
)

// The receipt tracker: a background worker any replica may run. Each pass
// claims its rows in the store (ClaimTracked: FOR UPDATE SKIP LOCKED on
// PostgreSQL), so two replicas never work on one transaction at once, and
// for each claimed row it
//
//   - looks for a receipt of any of its attempts (the first signature,
//     fee-bump replacements, an on-chain cancel: whichever is mined
//     settles it) and settles it once CONFIRMATIONS blocks hold it;
//   - replaces one not mined REPLACE_AFTER after its latest attempt with
//     bumped fees, within the approval's bound, or reports it stuck once;
//   - rebroadcasts the latest bytes of one the node has lost, backing off;
//   - settles one whose nonce another transaction used;
//   - rechecks those the chain settled within REORG_WINDOW blocks of the head, and
//     sends one whose block a reorg removed back to submitted.
//
// Rechecking every confirmed row of the window on every pass would read
// the whole window's rows and receipts several times a second while
// nothing changes. Where the chain can say which block is canonical at a
// height (canonReader), a pass instead walks block hashes back from the
// head until it meets one it saw before: a block hash commits to every
// block below it, so only confirmed rows at the heights it walked (new or
// replaced blocks) are claimed and rechecked. Every fullRecheckEvery
// passes, and after any pass that could not finish, the whole window is
// rechecked as before (rows another replica held a claim on, or that
// another replica confirmed on a node that saw another branch, are seen
// then); a row whose recorded block hash is the canonical one at its
// height needs no receipt.

// canonReader is the optional part of a chain that the reorg recheck
// uses: the hash of the canonical block at a height, and of its parent.
// chain/evm implements it; without it every pass rechecks the window.
type canonReader interface {
	BlockHashes(ctx context.Context, number uint64) (hash, parent string, err error)
	// HeadHashes is BlockHashes of the latest block, with its number.
	HeadHashes(ctx context.Context) (number uint64, hash, parent string, err error)
}

// fullRecheckEvery is how many tracker passes may go by between two
// rechecks of every confirmed row in the reorg window.
const fullRecheckEvery = 32

// maxCanonWalk bounds how many block headers one pass reads walking back
// from the head. A longer walk (the first pass after a start, a chain that
// moved far since the last pass that finished) stops there: the pass
// rechecks the whole window, by receipts below the blocks it walked, so a
// slow node costs at most this many header reads per pass, not
// REORG_WINDOW.
const maxCanonWalk = 16

type trackerStats struct {
	errors       atomic.Uint64
	replacements atomic.Uint64
	stuck        atomic.Uint64
	reorgs       atomic.Uint64

	// pass serialises this replica's tracker passes: canon is what the
	// last pass that finished saw, and a pass that did not finish must
	// leave it as it was, so the next one sees the same changes.
	pass      sync.Mutex
	canon     map[uint64]string // height → canonical block hash, within the reorg window
	sinceFull int               // passes since the last full recheck that finished
}

// TrackerErrors is how many times the receipt tracker could not settle a
// transaction it examined (each is logged with the transaction id).
func (s *Service) TrackerErrors() uint64 { return s.tracker.errors.Load() }

// TrackerReplacements is how many fee-bump replacements the tracker signed.
func (s *Service) TrackerReplacements() uint64 { return s.tracker.replacements.Load() }

// TrackerStuck is how many transactions were reported stuck: not mined,
// and no room left under their approval's fee bound to bump again.
func (s *Service) TrackerStuck() uint64 { return s.tracker.stuck.Load() }

// TrackerReorgs is how many settled transactions a reorg sent back to
// submitted.
func (s *Service) TrackerReorgs() uint64 { return s.tracker.reorgs.Load() }

// bumpFee is the least fee a replacement must offer over fee: +12.5%,
// above geth's replacement minimum (+10% on the tip and the fee cap
// alike), rounded up, and at least 1 wei more.
func bumpFee(fee *big.Int) *big.Int {
	b := new(big.Int).Mul(fee, big.NewInt(9))
	b.Add(b, big.NewInt(7)).Div(b, big.NewInt(8))
	if b.Cmp(fee) <= 0 {
		b.Add(fee, big.NewInt(1))
	}
	return b
}

func maxInt(a, b *big.Int) *big.Int {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

// trackPass is what one tracker pass reads once.
type trackPass struct {
	now   time.Time
	head  uint64
	mined map[string]uint64 // per sender
	// signerDown holds the wallets whose signer did not answer a fee bump
	// in this pass: their other bumps wait for the next pass, instead of
	// each holding the write transaction for the signer's timeout.
	signerDown map[string]bool
	// canon is the canonical block hash at each height of the reorg
	// window, as this pass walked it (nil when the chain cannot say).
	canon map[uint64]string
	// stale is set when a receipt named a block other than canon's at its
	// height (the chain moved during the pass): the next pass is full.
	stale bool
}

// blockHashes is a block's hash and its parent's (canonReader).
type blockHashes struct{ hash, parent string }

// reorgPlan is which confirmed rows a pass rechecks.
type reorgPlan struct {
	from  uint64            // confirmed rows in blocks from here on are claimed
	canon map[uint64]string // nil: unknown (every row's receipt is read)
	full  bool              // from is the window's first block
	keep  bool              // canon may be kept for the next pass if this one finishes
}

// planRecheck walks canonical block hashes back from head until one
// matches what the last finished pass saw (or to minBlock) and returns
// the first height that changed. A walk that fails, or whose blocks do not
// link up (a reorg while walking), falls back to rechecking the window.
func (s *Service) planRecheck(ctx context.Context, cr canonReader, head uint64, top blockHashes, minBlock uint64) reorgPlan {
	full := reorgPlan{from: minBlock, full: true}
	old := s.tracker.canon
	canon := make(map[uint64]string, len(old)+1)
	for n, h := range old {
		if n >= minBlock && n <= head {
			canon[n] = h
		}
	}
	from := head + 1
	var link string // the parent hash of the block above n
	for n := head; ; n-- {
		if head-n >= maxCanonWalk {
			// Too far to walk: the receipts of the whole window say what
			// changed this time; the blocks walked are what the next pass
			// compares with (a block's hash commits to those below it).
			// The hashes below them are the last pass's, which nothing
			// here has checked against this chain: dropped, so no row in
			// those blocks is taken for canonical without its receipt.
			for k := range canon {
				if k <= n {
					delete(canon, k)
				}
			}
			return reorgPlan{from: minBlock, canon: canon, full: true, keep: true}
		}
		hash, parent, err := top.hash, top.parent, error(nil)
		if n != head {
			hash, parent, err = cr.BlockHashes(ctx, n)
		}
		if err != nil || (link != "" && !strings.EqualFold(hash, link)) {
			if err != nil && ctx.Err() == nil {
				s.log.Info("receipt tracker: cannot walk block hashes; rechecking the reorg window", "block", n, "err", err)
			}
			return full
		}
		if strings.EqualFold(old[n], hash) {
			break // this block and every one below it are as the last pass saw them
		}
		canon[n], from, link = hash, n, parent
		if n <= minBlock {
			break
		}
		if strings.EqualFold(old[n-1], parent) {
			break // the block below is the one seen before
		}
	}
	p := reorgPlan{from: max(from, minBlock), canon: canon, keep: true}
	if old == nil || s.tracker.sinceFull+1 >= fullRecheckEvery {
		p.from, p.full = minBlock, true
	}
	return p
}

// TrackReceipts runs one tracker pass over up to TrackBatch claimed rows,
// least recently checked first. A row that cannot be settled is logged and
// counted and does not stop the others.
func (s *Service) TrackReceipts(ctx context.Context) error {
	var head uint64
	var top *blockHashes // the head's hashes, where the chain can say
	cr, canon := s.chain.(canonReader)
	if canon {
		n, hash, parent, err := cr.HeadHashes(ctx)
		if err != nil {
			return err
		}
		head, top = n, &blockHashes{hash: hash, parent: parent}
	} else {
		n, err := s.chain.BlockNumber(ctx)
		if err != nil {
			return err
		}
		head = n
	}
	now := s.clock.Now().UTC()
	var minBlock uint64 // confirmed rows in blocks from here on are rechecked
	if w := s.cfg.Money.ReorgWindow; head >= w {
		minBlock = head - w + 1
	}
	// Confirmed rows of an earlier chain (the embedded chain is new on
	// every start) have no receipt here: rechecked, they would look
	// reorged and be broadcast on a chain nobody approved them for.
	var since time.Time
	if id, err := s.store.ChainIdentity(ctx); err == nil {
		since = id.RecordedAt
	} else if countersign.ErrorCode(err) != countersign.NotFound {
		return err
	}
	s.tracker.pass.Lock()
	defer s.tracker.pass.Unlock()
	plan := reorgPlan{from: minBlock, full: true}
	if canon {
		plan = s.planRecheck(ctx, cr, head, *top, minBlock)
	}
	cctx, cancel := claimContext(ctx)
	subs, err := s.store.ClaimTracked(cctx, countersign.ClaimQuery{Now: now, Lease: s.cfg.Money.TrackLease, Limit: s.cfg.Money.TrackBatch,
		MinBlock: plan.from, ConfirmedSince: since})
	cancel()
	if err != nil {
		return err
	}
	// A sender's transactions in nonce order, so rebroadcasts reach the
	// node in an order it can mine (a later nonce first would be queued
	// behind a gap, and some nodes drop such transactions).
	sort.SliceStable(subs, func(i, j int) bool {
		a, b := subs[i], subs[j]
		if a.From != b.From {
			return a.From < b.From
		}
		if (a.Nonce == nil) != (b.Nonce == nil) {
			return a.Nonce != nil
		}
		return a.Nonce != nil && *a.Nonce < *b.Nonce
	})
	pass := &trackPass{now: now, head: head, mined: map[string]uint64{}, signerDown: map[string]bool{}, canon: plan.canon}
	checked := make([]string, 0, len(subs))
	failed := 0
	for _, t := range subs {
		if ctx.Err() != nil {
			break
		}
		checked = append(checked, t.ID)
		if err := s.track(ctx, t, pass); err != nil {
			failed++
			s.tracker.errors.Add(1)
			s.log.Warn("receipt tracker: cannot settle transaction", "transaction_id", t.ID, "err", err)
			if errors.Is(err, countersign.ErrUnavailable) {
				// The node (or a remote signer) stopped answering mid-pass: the rest are given
				// back unreached for the next pass, rather than each
				// waiting out its own retries (a pass of hours, with every
				// other worker of this replica waiting behind it).
				break
			}
		}
	}
	rctx, cancel := claimContext(ctx)        // bounded: a stalled database must not hold up shutdown
	until := now.Add(s.cfg.Money.TrackLease) // the claim's own lease: a row another pass claimed since keeps its claim
	err = s.store.ReleaseClaims(rctx, until, now, checked...)
	cancel()
	// Rows claimed but not reached (ctx ended: a shutdown) are given back
	// as they were, their place in the queue kept, so the next pass (this
	// server's after a restart, or another replica's) need not wait for
	// the lease to end — unless the lease has ended already, and another
	// pass may hold them now.
	if s.clock.Now().Before(until) {
		err = errors.Join(err, s.releaseUnchecked(ctx, until, subs[len(checked):]))
	}
	if err != nil {
		return err
	}
	// What this pass walked becomes what the next one compares with only
	// when every row it claimed was checked and nothing was left for lack
	// of room in the batch; otherwise the next pass sees the same changes.
	if failed == 0 && len(checked) == len(subs) && len(subs) < s.cfg.Money.TrackBatch && plan.keep {
		s.tracker.canon = plan.canon
		s.tracker.sinceFull++
		if plan.full {
			s.tracker.sinceFull = 0
		}
	}
	if pass.stale {
		s.tracker.sinceFull = fullRecheckEvery
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d tracked transactions could not be checked", failed, len(checked))
	}
	return nil
}

// attemptsOf returns t's attempts, newest first, with the row's current
// bytes among them (rows signed before attempts were recorded have none).
func (s *Service) attemptsOf(ctx context.Context, t *countersign.Transaction) ([]*countersign.TxAttempt, error) {
	list, err := s.store.Attempts(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	out := make([]*countersign.TxAttempt, 0, len(list)+1)
	current := false
	for i := len(list) - 1; i >= 0; i-- {
		out = append(out, list[i])
		current = current || list[i].TxHash == t.TxHash
	}
	if !current && t.TxHash != "" {
		out = append([]*countersign.TxAttempt{{TransactionID: t.ID, N: -1, TxHash: t.TxHash, RawTx: t.RawTx, Kind: countersign.AttemptExecute, CreatedAt: t.UpdatedAt}}, out...)
	}
	return out, nil
}

func isAttempt(atts []*countersign.TxAttempt, hash string) *countersign.TxAttempt {
	for _, a := range atts {
		if strings.EqualFold(a.TxHash, hash) {
			return a
		}
	}
	return nil
}

// addAttempt records t's current bytes as its next attempt, inside the
// caller's database transaction, and returns its number; bytes that are
// already the latest attempt are not recorded twice. tip and feeCap are
// read from the bytes when they decode (nil when unknown).
func (s *Service) addAttempt(ctx context.Context, t *countersign.Transaction, kind string, tip, feeCap *big.Int) (int, error) {
	list, err := s.store.Attempts(ctx, t.ID)
	if err != nil {
		return 0, err
	}
	n := 0
	if len(list) > 0 {
		last := list[len(list)-1]
		if last.TxHash == t.TxHash {
			return last.N, nil
		}
		n = last.N + 1
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(t.RawTx); err == nil {
		tip, feeCap = tx.GasTipCap(), tx.GasFeeCap()
	}
	str := func(v *big.Int) string {
		if v == nil {
			return ""
		}
		return v.String()
	}
	return n, s.store.AddAttempt(ctx, &countersign.TxAttempt{TransactionID: t.ID, N: n, TxHash: t.TxHash, RawTx: t.RawTx,
		Tip: str(tip), FeeCap: str(feeCap), Kind: kind, CreatedAt: s.clock.Now().UTC()})
}

func (s *Service) track(ctx context.Context, t *countersign.Transaction, pass *trackPass) error {
	if t.Status != countersign.StatusSubmitted { // settled by the chain: confirmed, reverted or cancelled in a block
		return s.recheckReorg(ctx, t, pass)
	}
	atts, err := s.attemptsOf(ctx, t)
	if err != nil {
		return err
	}
	for _, a := range atts {
		r, err := s.chain.Receipt(ctx, a.TxHash)
		if err == nil {
			return s.onReceipt(ctx, t, a, r, pass)
		}
		if countersign.ErrorCode(err) != countersign.NotFound {
			return err
		}
	}
	if t.BlockNumber != nil { // a receipt short of CONFIRMATIONS that a reorg removed
		if err := s.unmined(ctx, t, "its block left the chain before CONFIRMATIONS were reached"); err != nil {
			return err
		}
	}
	now := pass.now
	replaceDue := s.replaceDue(t, atts, now)
	if now.Before(t.NextBroadcastAt) && !replaceDue {
		return nil
	}
	if t.Nonce != nil {
		m, ok := pass.mined[t.From]
		if !ok {
			if m, err = s.chain.NonceAt(ctx, t.From); err != nil {
				return err
			}
			pass.mined[t.From] = m
		}
		if m > *t.Nonce {
			return s.settleUsedNonce(ctx, t, atts, now)
		}
	}
	if replaceDue && pass.signerDown[t.WalletID] {
		replaceDue = false // its signer did not answer this pass: rebroadcast what it signed before
		if now.Before(t.NextBroadcastAt) {
			return nil
		}
	}
	if replaceDue {
		replaced, err := s.replace(ctx, t, atts, now)
		var down signerUnavailable
		if errors.As(err, &down) {
			// The wallet's signer (a remote one) does not answer, the node
			// does: the bytes signed before keep their rebroadcast
			// schedule, the bump is tried again next pass, and this pass
			// goes on to the other transactions, without asking that
			// signer again (each ask holds the write transaction).
			s.tracker.errors.Add(1)
			s.log.Warn("receipt tracker: cannot sign a fee bump, the signer is unavailable", "transaction_id", t.ID, "err", down.err)
			pass.signerDown[t.WalletID] = true
			replaced, err = false, nil
		}
		if replaced || err != nil {
			return err
		}
		if now.Before(t.NextBroadcastAt) {
			return nil
		}
	}
	// Never ends the transaction: an earlier broadcast may sit in some
	// node's pool whatever this one answers.
	if err := s.chain.SendRawTransaction(ctx, t.RawTx); err != nil {
		s.log.Warn("rebroadcast", "transaction_id", t.ID, "err", err)
	}
	return s.backOff(ctx, t, now)
}

// signerUnavailable is a fee bump the wallet's signer did not answer: it
// is not the node's silence, which ends a tracker pass.
type signerUnavailable struct{ err error }

func (e signerUnavailable) Error() string { return "the signer is unavailable: " + e.err.Error() }

// replaceDue reports whether t has waited REPLACE_AFTER since its latest
// attempt. An on-chain cancel is not replaced by the tracker: its fee is
// what the approver agreed to with MFA.
func (s *Service) replaceDue(t *countersign.Transaction, atts []*countersign.TxAttempt, now time.Time) bool {
	if s.cfg.Money.ReplaceAfter < 0 || t.Nonce == nil || len(atts) == 0 || atts[0].Kind == countersign.AttemptCancel {
		return false
	}
	return !now.Before(atts[0].CreatedAt.Add(s.cfg.Money.ReplaceAfter))
}

// onReceipt handles a receipt of attempt a of t: short of CONFIRMATIONS
// it records the block and waits; then it settles t by that attempt.
func (s *Service) onReceipt(ctx context.Context, t *countersign.Transaction, a *countersign.TxAttempt, r *countersign.Receipt, pass *trackPass) error {
	if h, ok := pass.canon[r.BlockNumber]; ok && !strings.EqualFold(h, r.BlockHash) {
		pass.stale = true
	}
	head := max(pass.head, r.BlockNumber)
	if head-r.BlockNumber+1 < s.cfg.Money.Confirmations {
		if t.BlockNumber != nil && *t.BlockNumber == r.BlockNumber {
			return nil
		}
		return s.inTx(ctx, func(ctx context.Context) error {
			cur, err := s.store.Transaction(ctx, t.ID)
			if err != nil || cur.Status != countersign.StatusSubmitted {
				return err
			}
			bn := r.BlockNumber
			cur.BlockNumber = &bn
			if err := s.store.UpdateTransaction(ctx, cur); err != nil {
				return err
			}
			st, err := s.store.TrackState(ctx, cur.ID)
			if err != nil {
				return err
			}
			st.BlockHash = r.BlockHash
			return s.store.SetTrackState(ctx, cur.ID, st)
		})
	}
	reason := ""
	if !r.Success {
		reason = "transaction reverted on chain"
		if rr, ok := s.chain.(countersign.RevertReasoner); ok {
			if why, err := rr.RevertReason(ctx, r.TxHash, r.BlockNumber); err == nil && why != "" {
				reason = "transaction reverted on chain: " + why
			} else if err != nil {
				s.log.Info("no revert reason", "transaction_id", t.ID, "err", err)
			}
		}
	}
	return s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil || cur.Status != countersign.StatusSubmitted {
			return err
		}
		bn := r.BlockNumber
		cur.BlockNumber = &bn
		details := map[string]any{"block_number": bn, "block_hash": r.BlockHash, "gas_used": r.GasUsed, "tx_hash": a.TxHash}
		if !strings.EqualFold(cur.TxHash, a.TxHash) {
			// An earlier (or the other) attempt was mined: the row names
			// the one the chain holds.
			details["replaces"] = cur.TxHash
			cur.TxHash = a.TxHash
			if len(a.RawTx) > 0 {
				cur.RawTx = a.RawTx
			}
		}
		if err := s.store.SetTrackState(ctx, cur.ID, &countersign.TrackState{BlockHash: r.BlockHash}); err != nil {
			return err
		}
		if a.Kind == countersign.AttemptCancel && r.Success {
			cur.Error = fmt.Sprintf("cancelled on chain: nonce %d used by a zero-value self-transfer %s", *cur.Nonce, a.TxHash)
			return s.chainStatus(ctx, cs, cur, countersign.StatusCancelled, "transaction.cancelled_onchain", details)
		}
		to := countersign.StatusConfirmed
		cur.Error = "" // a cancel's note ends with the original mined
		if !r.Success {
			to, cur.Error = countersign.StatusFailed, reason
			details["reason"] = reason
		}
		return s.setStatus(ctx, cs, cur, to, "system", "transaction."+string(to), details)
	})
}

// chainStatus moves t to a status the chain decided that the lifecycle
// table (transaction.go) does not list as a request: a reorg undoing a
// confirmation (confirmed → submitted) and a mined on-chain cancel
// (submitted → cancelled). They are facts to record, not moves to allow,
// so nothing but the tracker makes them; the audit entry, the event and
// the budget settlement are setStatus's.
func (s *Service) chainStatus(ctx context.Context, cs *changeSet, t *countersign.Transaction, to countersign.Status, action string, details any) error {
	from := t.Status
	t.Status, t.UpdatedAt = to, s.clock.Now().UTC()
	if err := s.store.UpdateTransaction(ctx, t); err != nil {
		return err
	}
	if err := s.settleBudget(ctx, t, from, to, action); err != nil {
		return err
	}
	if err := s.settleCharge(ctx, t, from, to); err != nil { // charges.go: a reorg takes the receipt back
		return err
	}
	cs.add(countersign.Change{Owner: t.OwnerID, Actor: "system", Action: action, Subject: t.ID, Details: details,
		Events: []countersign.ChangeEvent{{Type: "transaction." + string(to), Subject: t.ID, Payload: View(t), WalletID: t.WalletID}}})
	return nil
}

// recheckReorg looks again at a transaction the chain settled (confirmed,
// failed by a revert, cancelled by a mined self-transfer) within
// REORG_WINDOW of the head: when its receipt is gone or in another block,
// a reorg removed its block, and it goes back to submitted to be tracked
// again (the node usually puts it back in its pool; if not, it is
// rebroadcast) — on the new branch a revert may succeed, or the payment a
// cancel replaced be mined instead.
func (s *Service) recheckReorg(ctx context.Context, t *countersign.Transaction, pass *trackPass) error {
	st, err := s.store.TrackState(ctx, t.ID)
	if err != nil {
		return err
	}
	if t.BlockNumber != nil && st.BlockHash != "" {
		if h, ok := pass.canon[*t.BlockNumber]; ok && strings.EqualFold(h, st.BlockHash) {
			return nil // its block is still the canonical one at its height
		}
	}
	r, err := s.chain.Receipt(ctx, t.TxHash)
	if err != nil && countersign.ErrorCode(err) != countersign.NotFound {
		return err
	}
	if err == nil && st.BlockHash == "" { // confirmed before block hashes were kept
		return s.store.SetTrackState(ctx, t.ID, &countersign.TrackState{BlockHash: r.BlockHash, StuckAt: st.StuckAt})
	}
	if err == nil && strings.EqualFold(r.BlockHash, st.BlockHash) {
		return nil
	}
	found := "no receipt"
	if r != nil {
		found = fmt.Sprintf("a receipt in block %d (%s)", r.BlockNumber, r.BlockHash)
	}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil || cur.Status != t.Status || cur.BlockNumber == nil || cur.TxHash != t.TxHash {
			return err
		}
		details := map[string]any{"tx_hash": cur.TxHash, "block_hash": st.BlockHash, "found": found, "was": cur.Status}
		if cur.BlockNumber != nil {
			details["block_number"] = *cur.BlockNumber
		}
		cur.BlockNumber = nil
		if cur.Error, err = s.pendingCancelNote(ctx, cur); err != nil { // "" unless a cancel undone by the reorg is pending again
			return err
		}
		cur.Broadcasts, cur.NextBroadcastAt = 0, pass.now // rebroadcast at once if the node lost it
		if err := s.store.SetTrackState(ctx, cur.ID, &countersign.TrackState{StuckAt: st.StuckAt}); err != nil {
			return err
		}
		return s.chainStatus(ctx, cs, cur, countersign.StatusSubmitted, "transaction.reorged", details)
	})
	if err != nil {
		return err
	}
	s.tracker.reorgs.Add(1)
	s.log.Warn("a reorg removed a settled transaction's block: tracking it again", "transaction_id", t.ID, "status", t.Status, "tx_hash", t.TxHash, "found", found)
	return nil
}

// unmined forgets the block of a submitted transaction whose receipt
// (short of CONFIRMATIONS) is gone.
func (s *Service) unmined(ctx context.Context, t *countersign.Transaction, why string) error {
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil || cur.Status != countersign.StatusSubmitted || cur.BlockNumber == nil {
			return err
		}
		details := map[string]any{"tx_hash": cur.TxHash, "block_number": *cur.BlockNumber, "reason": why}
		cur.BlockNumber = nil
		cur.UpdatedAt = s.clock.Now().UTC()
		if err := s.store.UpdateTransaction(ctx, cur); err != nil {
			return err
		}
		st, err := s.store.TrackState(ctx, cur.ID)
		if err != nil {
			return err
		}
		if err := s.store.SetTrackState(ctx, cur.ID, &countersign.TrackState{StuckAt: st.StuckAt}); err != nil {
			return err
		}
		cs.add(countersign.Change{Owner: cur.OwnerID, Actor: "system", Action: "transaction.reorged", Subject: cur.ID, Details: details,
			Events: []countersign.ChangeEvent{{Type: "transaction.submitted", Subject: cur.ID, Payload: View(cur)}}})
		t.BlockNumber = nil
		return nil
	})
	return err
}

// replacementFees computes the fees of a replacement of raw (the latest
// attempt's bytes): at least bumpFee of each of its tip and fee cap, at
// least what the node suggests now, and a fee cap at most limit. ok is
// false when limit leaves no room for the bump.
func (s *Service) replacementFees(ctx context.Context, raw []byte, limit *big.Int) (tip, feeCap *big.Int, ok bool, err error) {
	var old types.Transaction
	if err := old.UnmarshalBinary(raw); err != nil {
		return nil, nil, false, countersign.Wrap(countersign.Internal, err, "the signed transaction does not decode")
	}
	minTip, minCap := bumpFee(old.GasTipCap()), bumpFee(old.GasFeeCap())
	if minCap.Cmp(limit) > 0 { // no room whatever the chain says (the tip is at most the cap)
		return nil, nil, false, nil
	}
	sugTip, _, base, err := s.fees(ctx) // money.go
	if err != nil {
		return nil, nil, false, err
	}
	tip = maxInt(minTip, sugTip)
	feeCap = maxInt(minCap, new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip))
	if feeCap.Cmp(limit) > 0 {
		feeCap = new(big.Int).Set(limit)
	}
	if tip.Cmp(feeCap) > 0 {
		tip = new(big.Int).Set(feeCap)
	}
	return tip, feeCap, feeCap.Cmp(minCap) >= 0 && tip.Cmp(minTip) >= 0, nil
}

// feeLimit is the most a replacement of t may offer per gas: its
// approval's bound and MAX_FEE_PER_GAS, whichever is lower.
func (s *Service) feeLimit(t *countersign.Transaction) (*big.Int, bool) {
	bound, ok := new(big.Int).SetString(t.MaxFeePerGas, 10)
	if !ok || bound.Sign() <= 0 || t.GasLimit == 0 {
		return nil, false
	}
	if bound.Cmp(s.cfg.Money.MaxFeePerGas) > 0 {
		bound = new(big.Int).Set(s.cfg.Money.MaxFeePerGas)
	}
	return bound, true
}

// replace signs a replacement of t with bumped fees (same nonce, the
// approved gas limit, a fee cap within the approval's bound), records it
// as an attempt with its audit entry in one transaction, and broadcasts
// it. It reports false, having signed nothing, when there is no room left
// to bump: the transaction is then reported stuck (once) and rebroadcast
// as it is.
func (s *Service) replace(ctx context.Context, t *countersign.Transaction, atts []*countersign.TxAttempt, now time.Time) (bool, error) {
	limit, ok := s.feeLimit(t)
	if !ok {
		return false, nil // nothing bound (rows from before fee limits): never replaced
	}
	tip, feeCap, room, err := s.replacementFees(ctx, t.RawTx, limit)
	if err != nil {
		return false, err
	}
	if !room {
		return false, s.reportStuck(ctx, t, limit)
	}
	w, err := s.store.WalletByID(ctx, t.WalletID)
	if err != nil {
		return false, err
	}
	value, ok := new(big.Int).SetString(t.TxValue, 10)
	if !ok {
		return false, countersign.Errorf(countersign.Internal, "transaction value is not an integer")
	}
	var signed *countersign.Transaction
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil || cur.Status != countersign.StatusSubmitted || cur.TxHash != t.TxHash || cur.Nonce == nil {
			return err // settled, replaced or cancelled meanwhile
		}
		// The bytes being replaced first, for rows signed before attempts
		// were recorded (a no-op otherwise).
		if _, err := s.addAttempt(ctx, cur, countersign.AttemptExecute, nil, nil); err != nil {
			return err
		}
		raw, hash, err := s.signer.SignTx(ctx, w, &countersign.UnsignedTx{ChainID: big.NewInt(cur.ChainID), Nonce: *cur.Nonce, To: cur.TxTo,
			Value: value, Data: cur.TxData, Gas: cur.GasLimit, Tip: tip, FeeCap: feeCap})
		if err != nil {
			if errors.Is(err, countersign.ErrUnavailable) {
				return signerUnavailable{err}
			}
			return err
		}
		old := cur.TxHash
		cur.RawTx, cur.TxHash = raw, hash
		cur.Broadcasts, cur.NextBroadcastAt, cur.UpdatedAt = 0, now.Add(s.cfg.Money.RebroadcastAfter), now
		n, err := s.addAttempt(ctx, cur, countersign.AttemptReplace, tip, feeCap)
		if err != nil {
			return err
		}
		if err := s.store.UpdateTransaction(ctx, cur); err != nil {
			return err
		}
		// the same status with new bytes: a change without a transition
		cs.add(countersign.Change{Owner: cur.OwnerID, Actor: "system", Action: "transaction.replace", Subject: cur.ID,
			Details: map[string]any{"old_tx_hash": old, "tx_hash": hash, "nonce": *cur.Nonce, "attempt": n, "tip": tip.String(), "fee_cap": feeCap.String(),
				"gas_limit": cur.GasLimit, "max_fee_per_gas": cur.MaxFeePerGas},
			Events: []countersign.ChangeEvent{{Type: "transaction.submitted", Subject: cur.ID, Payload: View(cur)}}})
		signed = cur
		return nil
	})
	if err != nil || signed == nil {
		return signed != nil, err
	}
	s.tracker.replacements.Add(1)
	s.log.Info("replaced an unmined transaction with bumped fees", "transaction_id", t.ID, "old_tx_hash", t.TxHash, "tx_hash", signed.TxHash,
		"nonce", *signed.Nonce, "fee_cap", feeCap.String(), "tip", tip.String())
	if err := s.chain.SendRawTransaction(ctx, signed.RawTx); err != nil {
		// The earlier attempts stay valid and are still looked for; the
		// tracker rebroadcasts these bytes later.
		s.log.Warn("replacement broadcast", "transaction_id", t.ID, "tx_hash", signed.TxHash, "err", err)
	}
	return true, nil
}

// reportStuck records once that t cannot be bumped any more within its
// approval: an audit entry and a transaction.stuck event, a log line and
// a counter. The approver's ways out are cancel_onchain or waiting.
func (s *Service) reportStuck(ctx context.Context, t *countersign.Transaction, limit *big.Int) error {
	if st, err := s.store.TrackState(ctx, t.ID); err != nil || !st.StuckAt.IsZero() {
		return err // reported already: no write transaction every pass
	}
	reported := false
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil || cur.Status != countersign.StatusSubmitted {
			return err
		}
		st, err := s.store.TrackState(ctx, cur.ID)
		if err != nil || !st.StuckAt.IsZero() {
			return err
		}
		st.StuckAt = s.clock.Now().UTC()
		if err := s.store.SetTrackState(ctx, cur.ID, st); err != nil {
			return err
		}
		cs.add(countersign.Change{Owner: cur.OwnerID, Actor: "system", Action: "transaction.stuck", Subject: cur.ID,
			Details: map[string]any{"tx_hash": cur.TxHash, "nonce": cur.Nonce, "fee_limit": limit.String(),
				"reason": "not mined, and its fees cannot be bumped further within the approval's max fee: cancel it on chain or wait"},
			Events: []countersign.ChangeEvent{{Type: "transaction.stuck", Subject: cur.ID, Payload: View(cur)}}})
		reported = true
		return nil
	})
	if err == nil && reported {
		s.tracker.stuck.Add(1)
		s.log.Warn("transaction stuck: not mined and no fee room left under its approval; cancel_onchain or wait", "transaction_id", t.ID, "tx_hash", t.TxHash, "fee_limit", limit.String())
	}
	return err
}

// backOff schedules t's next rebroadcast (or used-nonce check): the wait
// doubles each time, up to RebroadcastMax.
func (s *Service) backOff(ctx context.Context, t *countersign.Transaction, now time.Time) error {
	return s.inTx(ctx, func(ctx context.Context) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil || cur.Status != countersign.StatusSubmitted || cur.TxHash != t.TxHash {
			return err
		}
		cur.Broadcasts++
		wait := s.cfg.Money.RebroadcastMax
		if cur.Broadcasts < 20 {
			wait = min(s.cfg.Money.RebroadcastAfter<<cur.Broadcasts, wait)
		}
		cur.NextBroadcastAt = now.Add(wait)
		return s.store.UpdateTransaction(ctx, cur)
	})
}

// settleUsedNonce handles a submitted transaction without a receipt whose
// nonce the chain has used: by one of its attempts (the receipt is not
// indexed yet), by another signature of the same approval (adopted), or by
// another transaction, in which case none of its attempts can ever be
// mined and the transaction fails. The nonce is used either way: nothing
// is released and no filler is needed.
func (s *Service) settleUsedNonce(ctx context.Context, t *countersign.Transaction, atts []*countersign.TxAttempt, now time.Time) error {
	var since time.Time
	if !t.DecidedAt.IsZero() {
		since = t.DecidedAt.Add(-reconcileSkew)
	}
	found, _, err := s.chain.SentTxs(ctx, countersign.SentQuery{From: t.From, Nonces: []uint64{*t.Nonce}, Since: since, MaxBlocks: s.cfg.Money.ReconcileBlocks})
	if err != nil {
		return err
	}
	if len(found) == 0 || isAttempt(atts, found[0].Hash) != nil {
		if len(found) == 0 {
			s.log.Warn("the transaction's nonce is used but no transaction with it was found: checking again later", "transaction_id", t.ID, "nonce", *t.Nonce)
		} else {
			// Mined (the chain holds it), yet the node serves no receipt for
			// it: its transaction index may be pruned or off. Said, since it
			// does not settle on its own.
			s.log.Warn("the chain holds this transaction, but the node serves no receipt for it (is its transaction index pruned or disabled?): checking again later",
				"transaction_id", t.ID, "tx_hash", found[0].Hash, "nonce", *t.Nonce)
		}
		return s.backOff(ctx, t, now)
	}
	f := found[0]
	return s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil || cur.Status != countersign.StatusSubmitted || cur.TxHash != t.TxHash {
			return err
		}
		if matches(cur, f) {
			old := cur.TxHash
			if _, err := s.addAttempt(ctx, cur, countersign.AttemptExecute, nil, nil); err != nil {
				return err
			}
			cur.TxHash, cur.RawTx = f.Hash, f.Raw
			cur.UpdatedAt = s.clock.Now().UTC()
			if _, err := s.addAttempt(ctx, cur, countersign.AttemptExecute, nil, f.FeeCap); err != nil {
				return err
			}
			if err := s.store.UpdateTransaction(ctx, cur); err != nil {
				return err
			}
			// the same status with another hash: a change without a transition
			cs.add(countersign.Change{Owner: cur.OwnerID, Actor: "system", Action: "transaction.adopt", Subject: cur.ID,
				Details: map[string]any{"tx_hash": f.Hash, "replaces": old, "nonce": f.Nonce},
				Events:  []countersign.ChangeEvent{{Type: "transaction.submitted", Subject: cur.ID, Payload: View(cur)}}})
			return nil
		}
		cur.Error = fmt.Sprintf("nonce %d was used by another transaction (%s): this one can never be mined", f.Nonce, f.Hash)
		return s.setStatus(ctx, cs, cur, countersign.StatusFailed, "system", "transaction.nonce_taken", map[string]any{"nonce": f.Nonce, "by": f.Hash})
	})
}

// releaseUnchecked ends the claims on rows a pass claimed but did not
// check, keeping each one's CheckedAt (the order the tracker takes rows in).
func (s *Service) releaseUnchecked(ctx context.Context, until time.Time, rows []*countersign.Transaction) error {
	if len(rows) == 0 {
		return nil
	}
	rctx, cancel := claimContext(ctx)
	defer cancel()
	type group struct {
		at  time.Time
		ids []string
	}
	byChecked := map[int64]*group{}
	for _, t := range rows {
		k := t.CheckedAt.UnixNano()
		if byChecked[k] == nil {
			byChecked[k] = &group{at: t.CheckedAt}
		}
		byChecked[k].ids = append(byChecked[k].ids, t.ID)
	}
	return s.inTx(rctx, func(ctx context.Context) error { // one commit, however many groups
		for _, g := range byChecked {
			if err := s.store.ReleaseClaims(ctx, until, g.at, g.ids...); err != nil {
				return err
			}
		}
		return nil
	})
}
