package core

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/core/types"

	"github.com/countersign/countersign"
)

// MoneyConfig holds the limits of the execute path. Zero values take
// defaults.
type MoneyConfig struct {
	// MaxFeePerGas caps the fee per gas (wei) of every transaction: an
	// approval binds at most this, and execute refuses above it
	// (MAX_FEE_PER_GAS; default DefaultMaxFeePerGas).
	MaxFeePerGas *big.Int
	// ReconcileBlocks bounds the block scan that looks for an approval's
	// transaction at nonces the chain used without countersign's record
	// (RECONCILE_BLOCKS; default 2000).
	ReconcileBlocks uint64
	// RebroadcastAfter is the wait before a submitted transaction without
	// a receipt is broadcast again; it doubles with every rebroadcast up to
	// RebroadcastMax (defaults 30 s and 30 min).
	RebroadcastAfter time.Duration
	RebroadcastMax   time.Duration
	// TrackBatch is how many submitted transactions one tracker pass
	// examines, least recently checked first (default 200).
	TrackBatch int
	// Confirmations is how many blocks (its own included) must hold a
	// transaction's receipt before it is confirmed or failed
	// (CONFIRMATIONS; default 1, which suits the dev chain; 12 or more on
	// mainnets, per the L2's finality elsewhere).
	Confirmations uint64
	// ReplaceAfter is how long a submitted transaction may stay unmined
	// after its latest attempt before it is replaced with bumped fees
	// (REPLACE_AFTER; default 3 min; negative disables replacement).
	ReplaceAfter time.Duration
	// ReorgWindow is how many blocks back confirmed transactions are
	// rechecked for a reorg that removed their block (REORG_WINDOW;
	// default 64).
	ReorgWindow uint64
	// TrackLease is how long a tracker pass holds its claim on the rows
	// it examines; a replica that dies mid-pass frees them after it
	// (default 30 s). Correctness does not rest on it: every write the
	// tracker makes re-reads its row under the row lock and checks it is
	// unchanged; the claim keeps replicas from doing the same work (and
	// sending the same bytes) at once.
	TrackLease time.Duration
}

// DefaultMaxFeePerGas is 500 gwei: far above what Base or an idle mainnet
// charge, low enough that a runaway fee market cannot take more than that
// per gas without the operator saying so.
var DefaultMaxFeePerGas = big.NewInt(500_000_000_000)

func (c *MoneyConfig) defaults() {
	if c.MaxFeePerGas == nil || c.MaxFeePerGas.Sign() <= 0 {
		c.MaxFeePerGas = DefaultMaxFeePerGas
	}
	if c.ReconcileBlocks == 0 {
		c.ReconcileBlocks = 2000
	}
	if c.RebroadcastAfter <= 0 {
		c.RebroadcastAfter = 30 * time.Second
	}
	if c.RebroadcastMax <= 0 {
		c.RebroadcastMax = 30 * time.Minute
	}
	if c.TrackBatch <= 0 {
		c.TrackBatch = 200
	}
	if c.Confirmations == 0 {
		c.Confirmations = 1
	}
	if c.ReplaceAfter == 0 {
		c.ReplaceAfter = 3 * time.Minute
	}
	if c.ReorgWindow == 0 {
		c.ReorgWindow = 64
	}
	if c.TrackLease <= 0 {
		c.TrackLease = 30 * time.Second
	}
}

// feeHeadroom multiplies the node's fee cap suggestion into what an
// approval binds: execute signs the first attempt at the suggestion, and
// the room above it is what fee-bump replacements (12.5% each, about five
// of them) may use without a new approval. MAX_FEE_PER_GAS still caps it.
const feeHeadroom = 2

// reconcileSkew widens the reconcile scan past the approval's time: block
// timestamps come from validators' clocks, not ours.
const reconcileSkew = time.Hour

// maxInFlight bounds the in-flight transactions of one wallet that the
// balance check adds up; beyond it execute refuses rather than guess.
const maxInFlight = 1000

// ExecuteHooks let tests stop execute at its crash points. Nil hooks are
// skipped. They must not be set while the service is executing.
type ExecuteHooks struct {
	// BeforeSign runs when the spend is planned and reconciled, before
	// the write transaction that takes the nonce and signs.
	BeforeSign func(t *countersign.Transaction)
	// BeforeBroadcast runs after the signed transaction (status
	// submitted) has committed and before it is broadcast.
	BeforeBroadcast func(t *countersign.Transaction)
	// AfterBroadcast runs when the broadcast has returned (err is its
	// result) and before anything about it is written.
	AfterBroadcast func(t *countersign.Transaction, err error)
}

// maxFee is the most a transaction's approval lets it pay in fees: gas
// limit × max fee per gas; nil when nothing is bound.
func maxFee(t *countersign.Transaction) *big.Int {
	perGas, ok := new(big.Int).SetString(t.MaxFeePerGas, 10)
	if t.GasLimit == 0 || !ok {
		return nil
	}
	return perGas.Mul(perGas, new(big.Int).SetUint64(t.GasLimit))
}

// bindFees sets the network fee an approval allows before the human sees
// it: the gas limit (the simulation's estimate plus 20% for state changes
// between estimate and inclusion) and the max fee per gas (feeHeadroom ×
// the node's suggestion, capped by MAX_FEE_PER_GAS). Execute signs with
// this gas limit and at most this fee cap, and refuses when the chain now
// needs more; replacements stay within it too. When the simulation fails,
// nothing is bound: the review says so and execute refuses until the agent
// prepares again.
func (s *Service) bindFees(ctx context.Context, t *countersign.Transaction) error {
	value, ok := new(big.Int).SetString(t.TxValue, 10)
	if !ok {
		return countersign.Errorf(countersign.Internal, "transaction value is not an integer")
	}
	msg := countersign.CallMsg{From: t.From, To: t.TxTo, Value: value, Data: t.TxData}
	if head, err := s.chain.BlockNumber(ctx); err == nil {
		// one head read for the simulation and the fee quote, each
		// remembered at that head (review_cache.go)
		ctx = context.WithValue(ctx, headKey{}, head)
	}
	gas, err := s.simulate(ctx, msg) // the review the answer carries reuses it (review_cache.go)
	if err != nil && t.Type == countersign.TxNative && countersign.ErrorCode(err) == countersign.InsufficientFunds {
		// A plain transfer to an account without code needs the same gas
		// whatever it sends, and the wallet may be funded before execute.
		if code, cerr := s.chain.CodeAt(ctx, t.TxTo); cerr == nil && len(code) == 0 {
			gas, err = s.chain.EstimateGas(ctx, countersign.CallMsg{From: t.From, To: t.TxTo, Value: new(big.Int)})
		}
	}
	if errors.Is(err, countersign.ErrUnavailable) {
		// The node did not answer: no simulation ran, so there is nothing
		// a human could judge; prepare refuses and creates nothing.
		return err
	}
	if err != nil {
		return nil // unbound: the review shows the failed simulation
	}
	_, feeCap, base, err := s.quoteFees(ctx)
	if err != nil {
		return err
	}
	limit := s.cfg.Money.MaxFeePerGas
	if base.Cmp(limit) > 0 {
		return countersign.Errorf(countersign.FeeTooHigh, "the chain's base fee is %s wei per gas, above MAX_FEE_PER_GAS (%s wei): nothing can be sent until fees fall", base, limit)
	}
	feeCap = new(big.Int).Mul(feeCap, big.NewInt(feeHeadroom))
	if feeCap.Cmp(limit) > 0 {
		feeCap = new(big.Int).Set(limit)
	}
	t.GasLimit, t.MaxFeePerGas = gas+gas/5, feeCap.String()
	return nil
}

// feeReader is the optional part of a chain that reads the tip
// suggestion, the usual fee cap and the base fee in one go (chain/evm:
// one header read where SuggestFees and BaseFee read it twice).
type feeReader interface {
	Fees(ctx context.Context) (tip, feeCap, base *big.Int, err error)
}

// fees is the chain's tip suggestion, fee cap suggestion and base fee.
func (s *Service) fees(ctx context.Context) (tip, feeCap, base *big.Int, err error) {
	if f, ok := s.chain.(feeReader); ok {
		return f.Fees(ctx)
	}
	if tip, feeCap, err = s.chain.SuggestFees(ctx); err != nil {
		return nil, nil, nil, err
	}
	if base, err = s.chain.BaseFee(ctx); err != nil {
		return nil, nil, nil, err
	}
	return tip, feeCap, base, nil
}

// ended reports whether a signed transaction has ended without being paid
// (failed, or dropped with a change of chain): its hash is no proof of a
// payment, and nothing will be sent for it again.
func ended(t *countersign.Transaction) bool {
	return t.Status != countersign.StatusSubmitted && t.Status != countersign.StatusConfirmed && t.Status != countersign.StatusSigned
}

// failedError answers an execute of a transaction that ended unpaid.
func failedError(t *countersign.Transaction) error {
	reason := t.Error
	if reason == "" {
		reason = "no reason recorded"
	}
	return countersign.Errorf(countersign.Conflict, "transaction %s is %s (%s): it will not be sent again; prepare a new one", t.ID, t.Status, reason)
}

// spendPlan is what execute reads from the chain before it signs.
type spendPlan struct {
	// maxFeePerGas is the approval's bound; feeCap what the first attempt
	// is signed with (at most the bound, leaving room for replacements).
	value, maxFeePerGas, feeCap, tip, balance *big.Int
	mined, pending                            uint64 // the sender's nonce in mined blocks, and with the pool
}

// planSpend re-simulates t and checks the chain's current fees against
// what the approval binds. Nothing is signed when it refuses, and the row
// stays authorized: execute can be retried when fees fall, and an approval
// for a higher fee needs a new prepare.
func (s *Service) planSpend(ctx context.Context, t *countersign.Transaction) (*spendPlan, error) {
	p := &spendPlan{}
	var ok bool
	if p.value, ok = new(big.Int).SetString(t.TxValue, 10); !ok {
		return nil, countersign.Errorf(countersign.Internal, "transaction value is not an integer")
	}
	gas, err := s.chain.EstimateGas(ctx, countersign.CallMsg{From: t.From, To: t.TxTo, Value: p.value, Data: t.TxData})
	if err != nil {
		return nil, err
	}
	if p.maxFeePerGas, ok = new(big.Int).SetString(t.MaxFeePerGas, 10); t.GasLimit == 0 || !ok || p.maxFeePerGas.Sign() <= 0 {
		return nil, countersign.Errorf(countersign.NotAuthorized,
			"the approval binds no network fee limit (the simulation failed when the transaction was prepared, or it predates fee limits): prepare it again")
	}
	if gas > t.GasLimit {
		return nil, countersign.Errorf(countersign.FeeTooHigh, "the transaction needs %d gas now; its approval allows at most %d: prepare it again", gas, t.GasLimit)
	}
	if limit := s.cfg.Money.MaxFeePerGas; p.maxFeePerGas.Cmp(limit) > 0 {
		return nil, countersign.Errorf(countersign.FeeTooHigh, "its approved max fee per gas (%s wei) is above MAX_FEE_PER_GAS (%s wei): prepare it again", p.maxFeePerGas, limit)
	}
	tip, _, base, err := s.fees(ctx)
	if err != nil {
		return nil, err
	}
	if base.Cmp(p.maxFeePerGas) > 0 {
		return nil, countersign.Errorf(countersign.FeeTooHigh, "the base fee is now %s wei per gas, above the %s its approval allows: execute again when fees fall, or prepare it again", base, p.maxFeePerGas)
	}
	p.tip = tip
	if p.tip.Cmp(p.maxFeePerGas) > 0 {
		p.tip = new(big.Int).Set(p.maxFeePerGas)
	}
	// The usual suggestion (twice the base fee plus the tip), never above
	// the bound: what is left above it is the replacements' room.
	p.feeCap = new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), p.tip)
	if p.feeCap.Cmp(p.maxFeePerGas) > 0 {
		p.feeCap = new(big.Int).Set(p.maxFeePerGas)
	}
	// The mined nonce first, then the balance: if a block lands between
	// the two reads, spends are counted twice (refused), never missed.
	if p.mined, err = s.chain.NonceAt(ctx, t.From); err != nil {
		return nil, err
	}
	if p.pending, err = s.chain.PendingNonceAt(ctx, t.From); err != nil {
		return nil, err
	}
	if p.balance, err = s.chain.BalanceAt(ctx, t.From); err != nil {
		return nil, err
	}
	return p, nil
}

// maxCost is the most a signed transaction can take from its sender:
// the larger of its value plus the approved maximum fee (what any attempt
// signed for the approval, the first or a replacement, may cost) and what
// the current signed bytes may cost (value plus gas limit × fee cap; an
// on-chain cancel's fee is capped by MAX_FEE_PER_GAS, not the approval).
// A nonce filler counts its signed bytes only: its bound is
// MAX_FEE_PER_GAS itself (so the tracker can bump it), and reserving gas ×
// MAX_FEE_PER_GAS for a self-transfer signed at a fraction of it would
// refuse the small wallets fillers are made for every payment until it is
// mined; a bump replaces the bytes, and the reservation follows.
func maxCost(t *countersign.Transaction) *big.Int {
	if t.Type == countersign.TxNonceFill {
		var tx types.Transaction
		if err := tx.UnmarshalBinary(t.RawTx); err == nil {
			return tx.Cost()
		}
	}
	cost, _ := new(big.Int).SetString(t.TxValue, 10)
	if cost == nil {
		cost = new(big.Int)
	}
	if f := maxFee(t); f != nil {
		cost.Add(cost, f)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(t.RawTx); err == nil && tx.Cost().Cmp(cost) > 0 {
		return tx.Cost()
	}
	return cost
}

// inFlight adds up what t's wallet's submitted transactions that are not
// mined yet (nonce at or above the mined nonce) may still spend: the
// balance on chain does not show them, and the node refuses a transaction
// the wallet cannot pay after them, which would leave a nonce gap.
func (s *Service) inFlight(ctx context.Context, t *countersign.Transaction, mined uint64) (*big.Int, error) {
	subs, err := s.store.Transactions(ctx, countersign.TxFilter{OwnerID: t.OwnerID, From: t.From, ChainID: t.ChainID, Status: countersign.StatusSubmitted, Limit: maxInFlight})
	if err != nil {
		return nil, err
	}
	if len(subs) >= maxInFlight {
		return nil, countersign.Errorf(countersign.Conflict, "wallet %s has %d or more transactions in flight: wait until some are mined", t.From, maxInFlight)
	}
	sum := new(big.Int)
	for _, r := range subs {
		if r.ID != t.ID && r.Nonce != nil && *r.Nonce >= mined {
			sum.Add(sum, maxCost(r))
		}
	}
	return sum, nil
}

// knownNonces maps the nonces of t's wallet's signed transactions on t's
// chain to their hashes.
func (s *Service) knownNonces(ctx context.Context, t *countersign.Transaction) (map[uint64]string, error) {
	rows, err := s.store.Transactions(ctx, countersign.TxFilter{OwnerID: t.OwnerID, From: t.From, ChainID: t.ChainID, Limit: 1000})
	if err != nil {
		return nil, err
	}
	known := map[uint64]string{}
	for _, r := range rows {
		if r.Nonce != nil && r.TxHash != "" {
			known[*r.Nonce] = r.TxHash
		}
	}
	return known, nil
}

// matches reports whether a transaction found on chain is one countersign
// signed for t's approval: same destination, value and calldata, the gas
// limit the approval binds and a fee cap within its bound (the first
// attempt and each replacement sign their own fees at or below it).
func matches(t *countersign.Transaction, f *countersign.SentTx) bool {
	bound, ok := new(big.Int).SetString(t.MaxFeePerGas, 10)
	return ok && strings.EqualFold(f.To, t.TxTo) && f.Value != nil && f.Value.String() == t.TxValue && bytes.Equal(f.Data, t.TxData) &&
		f.Gas == t.GasLimit && f.FeeCap != nil && f.FeeCap.Sign() > 0 && f.FeeCap.Cmp(bound) <= 0
}

// reconcile runs before signing. When the sender's nonce on chain is past
// countersign's counter, nonces were used without a record here: a commit
// lost after its broadcast (a power cut), or the key used elsewhere. It
// looks for this approval's transaction at those nonces and adopts it
// instead of signing a second payment; it refuses when it cannot rule
// that out. It returns the adopted row, or nil to sign anew.
func (s *Service) reconcile(ctx context.Context, actor string, t *countersign.Transaction, p *spendPlan) (*countersign.Transaction, error) {
	counter, err := s.store.NonceCounter(ctx, t.ChainID, t.From)
	if err != nil || p.pending <= counter {
		return nil, err
	}
	known, err := s.knownNonces(ctx, t)
	if err != nil {
		return nil, err
	}
	var unknown []uint64
	for n := counter; n < p.pending; n++ {
		if _, ok := known[n]; !ok {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) == 0 {
		return nil, nil
	}
	var since time.Time
	if !t.DecidedAt.IsZero() {
		since = t.DecidedAt.Add(-reconcileSkew) // nothing for this approval was signed before it was approved
	}
	found, complete, err := s.chain.SentTxs(ctx, countersign.SentQuery{From: t.From, Nonces: unknown, Since: since, MaxBlocks: s.cfg.Money.ReconcileBlocks})
	if err != nil {
		return nil, err
	}
	for _, f := range found {
		if matches(t, f) {
			return s.adopt(ctx, actor, t, f)
		}
	}
	seen := map[uint64]bool{}
	for _, f := range found {
		seen[f.Nonce] = true
	}
	for _, n := range unknown {
		if !seen[n] && n >= p.mined {
			return nil, countersign.Errorf(countersign.Conflict,
				"nonce %d of wallet %s is held by a pending transaction countersign has no record of, and it cannot rule out that it pays this approval: execute again once it is mined", n, t.From)
		}
	}
	if !complete {
		for _, n := range unknown {
			if !seen[n] {
				return nil, countersign.Errorf(countersign.Conflict,
					"wallet %s sent a transaction countersign has no record of (nonce %d) that is not among the last %d blocks, so countersign cannot rule out that it pays this approval: raise RECONCILE_BLOCKS and execute again",
					t.From, n, s.cfg.Money.ReconcileBlocks)
			}
		}
	}
	s.log.Info("reconciled unknown nonces: none pays this approval", "transaction_id", t.ID, "from", t.From, "nonces", len(unknown))
	return nil, nil
}

// adopt records f as the transaction that fulfils t's approval.
func (s *Service) adopt(ctx context.Context, actor string, t *countersign.Transaction, f *countersign.SentTx) (*countersign.Transaction, error) {
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		if cur.TxHash != "" {
			t = cur
			return nil
		}
		if cur.Status != countersign.StatusAuthorized {
			return notAuthorized(cur)
		}
		known, err := s.knownNonces(ctx, cur)
		if err != nil {
			return err
		}
		if _, taken := known[f.Nonce]; taken {
			return countersign.Errorf(countersign.Conflict, "another transaction was matched to nonce %d meanwhile: execute again", f.Nonce)
		}
		n := f.Nonce
		cur.Nonce, cur.RawTx, cur.TxHash = &n, f.Raw, f.Hash
		cur.NextBroadcastAt = s.clock.Now().UTC().Add(s.cfg.Money.RebroadcastAfter)
		if _, err := s.addAttempt(ctx, cur, countersign.AttemptExecute, nil, f.FeeCap); err != nil {
			return err
		}
		where := "mined"
		if f.BlockNumber == nil {
			where = "in the node's pool"
		}
		if err := s.setStatus(ctx, cs, cur, countersign.StatusSubmitted, actor, "transaction.adopt",
			map[string]any{"tx_hash": f.Hash, "nonce": n, "found": where}); err != nil {
			return err
		}
		t = cur
		return nil
	})
	if err != nil {
		return nil, err
	}
	if ended(t) { // settled by a concurrent execute meanwhile
		return nil, failedError(t)
	}
	s.log.Warn("adopted a transaction found on chain instead of signing again", "transaction_id", t.ID, "tx_hash", t.TxHash, "nonce", *t.Nonce)
	s.nudge()
	return t, nil
}

// execute signs and broadcasts an authorized transaction exactly once:
// checks what may be signed, plans the spend (fees, balance, nonces),
// adopts a transaction already on chain for the approval if there is one,
// and otherwise signs inside the write transaction and broadcasts.
func (s *Service) execute(ctx context.Context, actor string, t *countersign.Transaction) (*countersign.Transaction, error) {
	if t.TxHash != "" || len(t.Signature) > 0 {
		if ended(t) {
			return nil, failedError(t)
		}
		return t, nil
	}
	if err := s.checkExecutable(t); err != nil {
		return nil, err
	}
	if err := s.frozen(ctx, t.OwnerID, t.WalletID); err != nil { // the kill switch (freeze.go)
		return nil, err
	}
	w, err := s.store.WalletByID(ctx, t.WalletID)
	if err != nil {
		return nil, err
	}
	if t.Type.IsMessage() {
		return s.signMessage(ctx, actor, w, t)
	}
	p, err := s.planSpend(ctx, t)
	if err != nil {
		return nil, err
	}
	if adopted, err := s.reconcile(ctx, actor, t, p); err != nil || adopted != nil {
		return adopted, err
	}
	if h := s.hooks.BeforeSign; h != nil {
		h(t)
	}
	t, signed, err := s.signSpend(ctx, actor, w, t, p)
	if err != nil {
		return nil, err
	}
	if !signed {
		if ended(t) {
			return nil, failedError(t)
		}
		return t, nil
	}
	// The broadcast and what it decides are not the caller's to cut
	// short: a client that hangs up must not leave a refusal unrecorded.
	bctx, cancel := detach(ctx, 30*time.Second)
	defer cancel()
	return s.broadcast(bctx, t)
}

// checkExecutable refuses what no approval covers: a transaction not
// authorized, changed since it was approved, or approved for another chain.
func (s *Service) checkExecutable(t *countersign.Transaction) error {
	if t.Status != countersign.StatusAuthorized {
		return notAuthorized(t)
	}
	// Fail closed: the approval must be for exactly these fields.
	if !bytes.Equal(Digest(t), t.Digest) || !bytes.Equal(t.ApprovedDigest, t.Digest) {
		return countersign.Errorf(countersign.NotAuthorized, "the approval does not match this transaction")
	}
	// The approval names its chain; signing for whatever chain the server
	// is connected to now would spend on a chain nobody approved.
	if t.ChainID != s.chainID.Int64() {
		return countersign.Errorf(countersign.ChainMismatch, "transaction %s was approved for chain %d, but this server is connected to chain %s: it cannot be executed here", t.ID, t.ChainID, s.chainID)
	}
	return nil
}

// signSpend takes the next nonce, signs t and moves it to submitted, in
// one write transaction, after checking the balance covers it on top of
// the wallet's spends in flight. It returns the current row and whether
// this call signed it (false: a concurrent execute did first).
func (s *Service) signSpend(ctx context.Context, actor string, w *countersign.Wallet, t *countersign.Transaction, p *spendPlan) (*countersign.Transaction, bool, error) {
	signed := false
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		if cur.TxHash != "" { // a concurrent execute got here first
			t = cur
			return nil
		}
		if cur.Status != countersign.StatusAuthorized {
			return notAuthorized(cur)
		}
		// Again inside the write transaction: a freeze committed since the
		// check above stops the signature (freeze.go).
		if err := s.frozen(ctx, cur.OwnerID, cur.WalletID); err != nil {
			return err
		}
		// Inside the write transaction, so concurrent executes of one
		// wallet see each other's spends.
		if err := s.checkFunds(ctx, cur, p); err != nil {
			return err
		}
		nonce, err := s.store.NextNonce(ctx, cur.ChainID, cur.From, p.pending)
		if err != nil {
			return err
		}
		raw, hash, err := s.signer.SignTx(ctx, w, &countersign.UnsignedTx{ChainID: big.NewInt(cur.ChainID), Nonce: nonce, To: cur.TxTo,
			Value: p.value, Data: cur.TxData, Gas: cur.GasLimit, Tip: p.tip, FeeCap: p.feeCap})
		if err != nil {
			return err
		}
		cur.Nonce, cur.RawTx, cur.TxHash = &nonce, raw, hash
		cur.Broadcasts, cur.NextBroadcastAt = 0, s.clock.Now().UTC().Add(s.cfg.Money.RebroadcastAfter)
		if _, err := s.addAttempt(ctx, cur, countersign.AttemptExecute, p.tip, p.feeCap); err != nil {
			return err
		}
		if err := s.setStatus(ctx, cs, cur, countersign.StatusSubmitted, actor, "transaction.execute",
			map[string]any{"tx_hash": hash, "nonce": nonce, "gas_limit": cur.GasLimit, "max_fee_per_gas": cur.MaxFeePerGas, "fee_cap": p.feeCap.String(), "tip": p.tip.String()}); err != nil {
			return err
		}
		t, signed = cur, true
		return nil
	})
	return t, signed, err
}

// checkFunds refuses a spend the wallet's balance cannot cover: its value
// plus the approved maximum fee, on top of what its transactions in flight
// may still spend.
func (s *Service) checkFunds(ctx context.Context, cur *countersign.Transaction, p *spendPlan) error {
	flight, err := s.inFlight(ctx, cur, p.mined)
	if err != nil {
		return err
	}
	need := new(big.Int).Mul(p.maxFeePerGas, new(big.Int).SetUint64(cur.GasLimit))
	need.Add(need, p.value)
	if total := new(big.Int).Add(need, flight); p.balance.Cmp(total) < 0 {
		return countersign.Errorf(countersign.InsufficientFunds, "wallet %s holds %s wei but needs up to %s wei (value plus the approved maximum fee) on top of %s wei its transactions in flight may spend",
			cur.From, p.balance, need, flight)
	}
	return nil
}

// broadcast sends a freshly signed transaction. Only a definite refusal
// ends it; anything ambiguous stays submitted for the tracker, which
// settles it by the hash and the sender's nonce.
func (s *Service) broadcast(ctx context.Context, t *countersign.Transaction) (*countersign.Transaction, error) {
	if h := s.hooks.BeforeBroadcast; h != nil {
		h(t)
	}
	err := s.chain.SendRawTransaction(ctx, t.RawTx)
	if h := s.hooks.AfterBroadcast; h != nil {
		h(t, err)
	}
	if err == nil {
		s.nudge()
		return t, nil
	}
	if !errors.Is(err, countersign.ErrRefused) {
		s.log.Warn("broadcast unconfirmed: the node may have the transaction; the tracker settles it from the chain", "transaction_id", t.ID, "tx_hash", t.TxHash, "err", err)
		s.nudge()
		return t, nil
	}
	if rerr := s.refused(ctx, t, err); rerr != nil {
		// The refusal is not recorded: the row stays submitted, its nonce
		// held, and the tracker sends its bytes again (they may yet be
		// mined). Answered as it stands — a caller told "refused" would
		// prepare the payment again, and could pay twice.
		s.log.Warn("broadcast refused, and the refusal could not be recorded: the transaction stays submitted and the tracker sends it again",
			"transaction_id", t.ID, "tx_hash", t.TxHash, "refusal", err, "err", rerr)
		s.nudge()
		return t, nil
	}
	if cur, rerr := s.store.Transaction(ctx, t.ID); rerr == nil && cur.Status != countersign.StatusFailed {
		if ended(cur) {
			return nil, failedError(cur) // ended otherwise meanwhile (a mined cancel): as execute answers it
		}
		return cur, nil // settled meanwhile (another replica saw it mined): not refused after all
	}
	return nil, err
}

// fillPlan is what a nonce filler is signed with, read before the
// database transaction.
type fillPlan struct {
	gas         uint64
	tip, feeCap *big.Int
}

func (s *Service) planFill(ctx context.Context, from string) (*fillPlan, error) {
	tip, feeCap, err := s.chain.SuggestFees(ctx)
	if err != nil {
		return nil, err
	}
	if limit := s.cfg.Money.MaxFeePerGas; feeCap.Cmp(limit) > 0 {
		feeCap = new(big.Int).Set(limit)
	}
	if tip.Cmp(feeCap) > 0 {
		tip = new(big.Int).Set(feeCap)
	}
	gas, err := s.chain.EstimateGas(ctx, countersign.CallMsg{From: from, To: from, Value: new(big.Int)})
	if err != nil {
		gas = 21000 // a plain transfer's intrinsic gas
	}
	return &fillPlan{gas: gas + gas/5, tip: tip, feeCap: feeCap}, nil
}

// refused records a definite refusal of t's first broadcast: nothing was
// sent, so t fails and its nonce is given back. When later nonces were
// already signed the nonce cannot be given back, and a zero-value transfer
// to the wallet itself fills it, so the later transactions can be mined.
func (s *Service) refused(ctx context.Context, t *countersign.Transaction, cause error) error {
	fp, fillErr := s.planFill(ctx, t.From) // only used if there is a gap
	var filler *countersign.Transaction
	err := s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		if cur.Status != countersign.StatusSubmitted || cur.TxHash != t.TxHash || cur.Nonce == nil {
			return nil // settled meanwhile
		}
		nonce := *cur.Nonce
		cur.Error = countersign.ErrorDetail(cause)
		if err := s.store.ReleaseNonce(ctx, cur.ChainID, cur.From, nonce); err != nil {
			return err
		}
		counter, err := s.store.NonceCounter(ctx, cur.ChainID, cur.From)
		if err != nil {
			return err
		}
		if err := s.setStatus(ctx, cs, cur, countersign.StatusFailed, "system", "transaction.broadcast_failed", map[string]string{"error": cur.Error}); err != nil {
			return err
		}
		if counter <= nonce {
			return nil // given back: nothing later was signed
		}
		if fillErr != nil {
			return fillErr // roll back: the row stays submitted and the tracker retries the bytes
		}
		filler, err = s.fillNonce(ctx, cs, cur, fp)
		return err
	})
	if err != nil {
		return err
	}
	if filler != nil {
		s.log.Warn("filled a refused transaction's nonce with a self-transfer", "transaction_id", t.ID, "filler_id", filler.ID, "nonce", *filler.Nonce)
		if err := s.chain.SendRawTransaction(ctx, filler.RawTx); err != nil {
			s.log.Warn("nonce filler broadcast: the tracker retries it", "transaction_id", filler.ID, "err", err)
		}
		s.nudge()
	}
	return nil
}

// fillNonce creates, signs and submits the self-transfer that fills the
// nonce of refused, inside the current database transaction. It moves no
// value, so it needs no human: its only cost is its fee, bounded by
// MAX_FEE_PER_GAS, and it is audited (stated in cs) and listed like any
// transaction. It is signed at the fees the node suggests now, and its
// bound is MAX_FEE_PER_GAS itself, so the tracker can bump it like any
// unmined transaction: a filler stuck at its first fee would hold up every
// later nonce of the wallet.
func (s *Service) fillNonce(ctx context.Context, cs *changeSet, refused *countersign.Transaction, fp *fillPlan) (*countersign.Transaction, error) {
	w, err := s.store.WalletByID(ctx, refused.WalletID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	nonce := *refused.Nonce
	f := &countersign.Transaction{ID: newTxID(), OwnerID: refused.OwnerID, WalletID: refused.WalletID, ChainID: refused.ChainID,
		Type: countersign.TxNonceFill, From: refused.From, To: refused.From, Amount: "0", TxTo: refused.From, TxValue: "0",
		Memo:     fmt.Sprintf("fills nonce %d, which the node refused for transaction %s, so the wallet's later transactions can be mined", nonce, refused.ID),
		GasLimit: fp.gas, MaxFeePerGas: s.cfg.Money.MaxFeePerGas.String(), Status: countersign.StatusAuthorized, DecidedBy: "system", DecidedAt: now,
		CreatedAt: now, UpdatedAt: now, ExpiresAt: now}
	f.Digest = Digest(f)
	f.ApprovedDigest = f.Digest
	if err := s.store.CreateTransaction(ctx, f); err != nil {
		return nil, err
	}
	cs.add(countersign.Change{Owner: f.OwnerID, Actor: "system", Action: "transaction.nonce_fill", Subject: f.ID, Details: map[string]any{"nonce": nonce, "refused": refused.ID,
		"gas_limit": f.GasLimit, "max_fee_per_gas": f.MaxFeePerGas}})
	raw, hash, err := s.signer.SignTx(ctx, w, &countersign.UnsignedTx{ChainID: big.NewInt(f.ChainID), Nonce: nonce, To: f.TxTo,
		Value: new(big.Int), Gas: f.GasLimit, Tip: fp.tip, FeeCap: fp.feeCap})
	if err != nil {
		return nil, err
	}
	f.Nonce, f.RawTx, f.TxHash = &nonce, raw, hash
	f.NextBroadcastAt = now.Add(s.cfg.Money.RebroadcastAfter)
	if _, err := s.addAttempt(ctx, f, countersign.AttemptExecute, fp.tip, fp.feeCap); err != nil {
		return nil, err
	}
	if err := s.setStatus(ctx, cs, f, countersign.StatusSubmitted, "system", "transaction.execute",
		map[string]any{"tx_hash": hash, "nonce": nonce, "gas_limit": f.GasLimit, "max_fee_per_gas": f.MaxFeePerGas}); err != nil {
		return nil, err
	}
	return f, nil
}
