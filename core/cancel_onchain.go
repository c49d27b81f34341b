package core

import (
	"context"
	"fmt"
	"math/big"

	"github.com/countersign/countersign"
)

// CancelOnchainResult is what an on-chain cancel signed: the zero-value
// self-transfer that takes the stuck transaction's nonce, and the fee the
// approver agreed to with their code.
type CancelOnchainResult struct {
	Transaction *countersign.Transaction
	CancelHash  string   // the self-transfer's hash (the row's current hash)
	Nonce       uint64   // the nonce it takes
	GasLimit    uint64   // of the self-transfer
	Tip         *big.Int // wei per gas
	FeeCap      *big.Int // wei per gas
	MaxFee      *big.Int // GasLimit × FeeCap: the most the cancel can cost
	// BroadcastError is the node's answer when the broadcast failed; the
	// tracker sends the bytes again (and settles the transaction if the
	// original was mined first).
	BroadcastError string
}

// cancelPlan is what the cancel is signed with, read before MFA and the
// write transaction.
type cancelPlan struct {
	gas         uint64
	tip, feeCap *big.Int
}

// CancelOnchain is the escape hatch for a stuck nonce: an approver of the
// transaction's wallet (its owner, or an invited approver — who may
// approve may cancel), with a current TOTP code, replaces a submitted
// transaction with a zero-value transfer from the wallet to itself at the
// same nonce and bumped fees. When the cancel is mined the transaction
// ends cancelled; if one of its earlier attempts is mined first, it ends
// confirmed (or failed) as usual. Its fee is capped by MAX_FEE_PER_GAS,
// not the approval's bound: the approver agrees to it with MFA, and the
// response shows it.
func (s *Service) CancelOnchain(ctx context.Context, p *Principal, id, code string) (*CancelOnchainResult, error) {
	if p.IsAgent() {
		return nil, countersign.Errorf(countersign.Forbidden, "only an approver of the wallet may cancel a transaction on chain")
	}
	t, err := s.load(ctx, p, id) // owner, or an approver of its wallet; NotFound for anyone else
	if err != nil {
		return nil, err
	}
	if err := s.cancellable(ctx, t); err != nil {
		return nil, err
	}
	plan, err := s.planCancel(ctx, t)
	if err != nil {
		return nil, err
	}
	// Everything checked before the code is spent, so a refusal does not
	// burn it.
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	w, err := s.store.WalletByID(ctx, t.WalletID)
	if err != nil {
		return nil, err
	}
	res := &CancelOnchainResult{GasLimit: plan.gas, Tip: plan.tip, FeeCap: plan.feeCap,
		MaxFee: new(big.Int).Mul(plan.feeCap, new(big.Int).SetUint64(plan.gas))}
	err = s.change(ctx, func(ctx context.Context, cs *changeSet) error {
		cur, err := s.store.Transaction(ctx, t.ID)
		if err != nil {
			return err
		}
		if cur.Status != countersign.StatusSubmitted || cur.TxHash != t.TxHash || cur.Nonce == nil {
			return countersign.Errorf(countersign.Conflict, "transaction %s changed meanwhile (it is %s): look at it again", cur.ID, cur.Status)
		}
		if _, err := s.addAttempt(ctx, cur, countersign.AttemptExecute, nil, nil); err != nil { // rows from before attempts were recorded
			return err
		}
		raw, hash, err := s.signer.SignTx(ctx, w, &countersign.UnsignedTx{ChainID: big.NewInt(cur.ChainID), Nonce: *cur.Nonce, To: cur.From,
			Value: new(big.Int), Gas: plan.gas, Tip: plan.tip, FeeCap: plan.feeCap})
		if err != nil {
			return err
		}
		old := cur.TxHash
		now := s.clock.Now().UTC()
		cur.RawTx, cur.TxHash = raw, hash
		// Said on the row until the chain decides: an agent that calls
		// execute again, or polls, learns its payment is being cancelled,
		// not sent (tx_hash is now the cancel's).
		cur.Error = cancelNote(*cur.Nonce, hash, old)
		cur.Broadcasts, cur.NextBroadcastAt, cur.UpdatedAt = 0, now.Add(s.cfg.Money.RebroadcastAfter), now
		n, err := s.addAttempt(ctx, cur, countersign.AttemptCancel, plan.tip, plan.feeCap)
		if err != nil {
			return err
		}
		if err := s.store.UpdateTransaction(ctx, cur); err != nil {
			return err
		}
		cs.add(countersign.Change{Owner: cur.OwnerID, Actor: p.Actor(), Action: "transaction.cancel_onchain", Subject: cur.ID,
			Details: map[string]any{"old_tx_hash": old, "tx_hash": hash, "nonce": *cur.Nonce, "attempt": n, "gas_limit": plan.gas,
				"tip": plan.tip.String(), "fee_cap": plan.feeCap.String(), "max_fee": res.MaxFee.String()},
			Events: []countersign.ChangeEvent{{Type: "transaction.submitted", Subject: cur.ID, Payload: View(cur)}}})
		res.Transaction, res.CancelHash, res.Nonce = cur, hash, *cur.Nonce
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.log.Warn("an approver cancelled a transaction on chain", "transaction_id", t.ID, "cancel_tx_hash", res.CancelHash, "nonce", res.Nonce, "fee_cap", plan.feeCap.String())
	if err := s.chain.SendRawTransaction(ctx, res.Transaction.RawTx); err != nil {
		// Not an end: "nonce too low" means an earlier attempt was mined,
		// which the tracker settles; anything else is retried by it.
		res.BroadcastError = countersign.ErrorDetail(err)
		s.log.Warn("cancel broadcast: the tracker retries and settles it", "transaction_id", t.ID, "err", err)
	}
	s.nudge()
	return res, nil
}

// cancellable refuses what cancel_onchain cannot do: only a submitted
// transaction with a nonce has one to take; one of whose attempts a
// receipt already exists is mined and cannot be cancelled any more. A
// cancel can itself be cancelled again: that bumps its fees.
func (s *Service) cancellable(ctx context.Context, t *countersign.Transaction) error {
	if t.Status != countersign.StatusSubmitted || t.Nonce == nil || len(t.RawTx) == 0 {
		return countersign.Errorf(countersign.Conflict, "transaction %s is %s: only a submitted transaction can be cancelled on chain", t.ID, t.Status)
	}
	atts, err := s.attemptsOf(ctx, t)
	if err != nil {
		return err
	}
	for _, a := range atts {
		r, err := s.chain.Receipt(ctx, a.TxHash)
		if err == nil {
			s.nudge() // the tracker settles it
			return countersign.Errorf(countersign.Conflict, "transaction %s is already mined (%s, block %d): it can no longer be cancelled; it ends confirmed or failed once CONFIRMATIONS blocks hold it",
				t.ID, r.TxHash, r.BlockNumber)
		}
		if countersign.ErrorCode(err) != countersign.NotFound {
			return err
		}
	}
	return nil
}

// planCancel picks the cancel's gas and fees: the gas of a plain transfer
// to the wallet itself, and fees at least bumpFee over the latest
// attempt's (what a node needs to replace it), at least the node's
// suggestion, at most MAX_FEE_PER_GAS; FeeTooHigh when that cap leaves no
// room, InsufficientFunds when the wallet cannot pay the fee.
func (s *Service) planCancel(ctx context.Context, t *countersign.Transaction) (*cancelPlan, error) {
	limit := s.cfg.Money.MaxFeePerGas
	tip, feeCap, room, err := s.replacementFees(ctx, t.RawTx, limit)
	if err != nil {
		return nil, err
	}
	if !room {
		return nil, countersign.Errorf(countersign.FeeTooHigh, "replacing nonce %d needs more than MAX_FEE_PER_GAS (%s wei per gas) allows: wait, or raise MAX_FEE_PER_GAS", *t.Nonce, limit)
	}
	gas, err := s.chain.EstimateGas(ctx, countersign.CallMsg{From: t.From, To: t.From, Value: new(big.Int)})
	if err != nil {
		gas = 21000 // a plain transfer's intrinsic gas
	}
	balance, err := s.chain.BalanceAt(ctx, t.From)
	if err != nil {
		return nil, err
	}
	if need := new(big.Int).Mul(feeCap, new(big.Int).SetUint64(gas)); balance.Cmp(need) < 0 {
		return nil, countersign.Errorf(countersign.InsufficientFunds, "wallet %s holds %s wei; the cancel may cost up to %s wei in fees", t.From, balance, need)
	}
	return &cancelPlan{gas: gas, tip: tip, feeCap: feeCap}, nil
}

// cancelNote is what a submitted row being cancelled on chain says in its
// error until the chain decides.
func cancelNote(nonce uint64, cancel, original string) string {
	return fmt.Sprintf("being cancelled on chain: nonce %d is being replaced by a zero-value self-transfer %s; the payment goes out only if its earlier transaction %s is mined first", nonce, cancel, original)
}

// pendingCancelNote is cancelNote for t when one of its attempts is an
// on-chain cancel, else "".
func (s *Service) pendingCancelNote(ctx context.Context, t *countersign.Transaction) (string, error) {
	if t.Nonce == nil {
		return "", nil
	}
	atts, err := s.store.Attempts(ctx, t.ID)
	if err != nil {
		return "", err
	}
	cancel, original := "", ""
	for _, a := range atts {
		if a.Kind == countersign.AttemptCancel {
			cancel = a.TxHash
		} else {
			original = a.TxHash
		}
	}
	if cancel == "" {
		return "", nil
	}
	return cancelNote(*t.Nonce, cancel, original), nil
}
