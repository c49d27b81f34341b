package countersign

import (
	"context"
	"time"
)

// Limits, leases and claims kept in the database. Several replicas of
// countersign serve one PostgreSQL: a limit counted in one process's memory
// would let each replica grant its own allowance (N replicas, N times the
// password guesses), and work taken by one replica must not be taken by
// another at the same time. So the counters that stop guessing and the
// claims on shared work live in the store, where every replica sees them.

// LimitKey is one counter of a fixed-window limit: Key names it (for
// example `login:addr:"192.0.2.7"`; text without NUL, which PostgreSQL
// cannot store), Max is how many attempts one window allows (at least 1).
type LimitKey struct {
	Key string
	Max int
}

// LimitStore keeps rate limits and leases. Each method is atomic on its
// own (one statement, or one short transaction with row locks) and correct
// when several replicas call it at once. None may be called inside InTx:
// a count must stand even when the caller's transaction rolls back.
type LimitStore interface {
	// CountAttempt counts one attempt against every key, in fixed windows
	// that start at a key's first attempt and last window. When any key
	// has reached its Max in a window that has not ended, it counts
	// nothing at all and returns how long until the last such window ends
	// (> 0); otherwise it counts one on every key and returns 0. An
	// expired window starts again from zero. Rows of ended windows are
	// pruned, so a spray of fresh keys cannot grow the table beyond one
	// window's worth.
	CountAttempt(ctx context.Context, keys []LimitKey, window time.Duration, now time.Time) (wait time.Duration, err error)
	// RefundAttempt gives one attempt back to each key (never below zero):
	// the attempt turned out not to be a guess, or the guess was right.
	RefundAttempt(ctx context.Context, keys []string) error
	// ResetAttempts forgets the keys' windows (a correct password forgives
	// the pair's failures).
	ResetAttempts(ctx context.Context, keys []string) error

	// TakeToken takes one token from the bucket key, which refills at rate
	// tokens per second and holds at most burst (a new bucket starts
	// full). It returns 0 when a token was taken, or how long until one
	// will be there (> 0) and takes nothing.
	TakeToken(ctx context.Context, key string, rate float64, burst int, now time.Time) (wait time.Duration, err error)

	// AcquireLease takes the lease name for holder until now+ttl when it is
	// free, expired or already holder's (acquiring again renews it). It
	// returns who holds the lease afterwards and until when: the caller
	// holds it exactly when heldBy == holder.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (heldBy string, until time.Time, err error)
	// ReleaseLease gives up holder's lease name; it does nothing when the
	// lease is someone else's.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// DeliveryClaimStore hands due webhook deliveries to one worker at a time.
type DeliveryClaimStore interface {
	// ClaimDeliveries claims up to limit pending deliveries whose next
	// attempt is due at now and that nobody holds (claimed by holder until
	// until): on PostgreSQL with SELECT … FOR UPDATE SKIP LOCKED, so two
	// replicas never claim the same delivery, and a claim of a worker that
	// died frees itself when until passes. Oldest due first.
	ClaimDeliveries(ctx context.Context, holder string, now, until time.Time, limit int) ([]*Delivery, error)
	// FinishDelivery writes the outcome of a claimed delivery (status,
	// attempts, next attempt, last status and error, delivered at) and
	// ends the claim. Conflict when holder no longer holds the claim (it
	// expired and another worker took the delivery): nothing is written.
	FinishDelivery(ctx context.Context, d *Delivery, holder string) error
}

// CoordinationStore is what replicas coordinate through: limits, leases
// and claims on webhook deliveries (part of Store).
type CoordinationStore interface {
	LimitStore
	DeliveryClaimStore
}
