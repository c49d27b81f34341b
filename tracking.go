package countersign

import (
	"context"
	"time"
)

// Attempt kinds: every signature of one transaction's nonce.
const (
	AttemptExecute = "execute" // the first signature (execute, a nonce filler, an adopted one)
	AttemptReplace = "replace" // a fee-bump replacement the tracker signed
	AttemptCancel  = "cancel"  // a zero-value self-transfer an approver asked for (cancel_onchain)
)

// TxAttempt is one signed transaction for a countersign transaction's
// nonce. Only one of them can be mined (they share the nonce), and any of
// them may be: a replacement does not take the earlier bytes out of
// other nodes' pools. The transaction row holds the latest attempt's hash
// and bytes; the attempts are the record of everything that was signed.
type TxAttempt struct {
	TransactionID string
	N             int // 0 for the first signature, then 1, 2, …
	TxHash        string
	RawTx         []byte
	Tip           string // wei per gas, decimal
	FeeCap        string // wei per gas, decimal
	Kind          string // AttemptExecute, AttemptReplace or AttemptCancel
	CreatedAt     time.Time
}

// TrackState is the receipt tracker's own record of a transaction, beside
// the row: the hash of the block its receipt was in (to see a reorg
// remove it), and when it was reported stuck (reported once).
type TrackState struct {
	BlockHash string // 0x-hex; "" while no receipt is known
	StuckAt   time.Time
}

// TrackingStore is the receipt tracker's part of the store: the attempts
// of each transaction and the claims that let several replicas track
// transactions without two of them working on one at once.
type TrackingStore interface {
	// AddAttempt stores a; a taken (TransactionID, N) is Conflict.
	AddAttempt(ctx context.Context, a *TxAttempt) error
	// Attempts returns a transaction's attempts in order of N (none for
	// rows signed before attempts were recorded).
	Attempts(ctx context.Context, transactionID string) ([]*TxAttempt, error)
	// ClaimTracked claims up to q.Limit transactions for one tracker
	// pass, least recently checked first: submitted ones, and ones the
	// chain settled (confirmed, reverted, cancelled on chain) to recheck for reorgs (q.MinBlock, q.ConfirmedSince). A row
	// claimed by another pass until after q.Now is skipped, and so is one
	// another database transaction holds locked; the claimed rows are held
	// until q.Now+q.Lease or ReleaseClaims.
	ClaimTracked(ctx context.Context, q ClaimQuery) ([]*Transaction, error)
	// ReleaseClaims ends the claims on ids that a claim held until until
	// (its q.Now+q.Lease) still holds, and sets their CheckedAt to at. A
	// row claimed since by another pass (the lease ended, and another
	// replica took it) keeps that pass's claim.
	ReleaseClaims(ctx context.Context, until, at time.Time, ids ...string) error
	// TrackState returns the tracker's record of a transaction (zero
	// values for an unknown id).
	TrackState(ctx context.Context, transactionID string) (*TrackState, error)
	// SetTrackState replaces it; NotFound for an unknown transaction.
	SetTrackState(ctx context.Context, transactionID string, st *TrackState) error
}

// ClaimQuery is what one tracker pass claims.
type ClaimQuery struct {
	Now   time.Time
	Lease time.Duration
	Limit int
	// Rows the chain settled are claimed too when their block number is at least
	// MinBlock and they were confirmed (last updated) after ConfirmedSince (the
	// chain identity's recording): rows of an earlier chain are not rechecked.
	MinBlock       uint64
	ConfirmedSince time.Time
}

// RevertReasoner is implemented by chains that can tell why a mined
// transaction reverted (by replaying it as a call at its block). ""
// when the node gives no reason.
type RevertReasoner interface {
	RevertReason(ctx context.Context, txHash string, blockNumber uint64) (string, error)
}
