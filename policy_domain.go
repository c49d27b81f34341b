package countersign

import (
	"context"
	"math/big"
	"time"
)

// PolicyLevel says which document a stored policy is: an agent's own, or
// its wallet's (every agent of the wallet). A request is decided by both;
// the stricter decision wins.
type PolicyLevel string

const (
	PolicyAgent  PolicyLevel = "agent"
	PolicyWallet PolicyLevel = "wallet"
)

// PolicyRecord is a stored policy document: the canonical JSON of the
// policy package (policy.Marshal) and its SHA-256, which the audit log
// records on every change.
type PolicyRecord struct {
	Level     PolicyLevel
	SubjectID string // the agent's or the wallet's id
	OwnerID   string
	Document  string // canonical JSON
	Hash      string // hex SHA-256 of Document
	UpdatedBy string // the actor ("user:<id>")
	UpdatedAt time.Time
}

// Budget reservation states. A reservation is written with its request
// row in one database transaction (reserved), and settles once: spent when
// the request is signed, released when it ends without moving money.
const (
	ReservationReserved = "reserved"
	ReservationSpent    = "spent"
	ReservationReleased = "released"
)

// BudgetKey names one budget counter: what a policy level's rule counts
// for one subject (an agent, or a wallet when the budget's scope is
// "wallet") in one asset. Concurrent prepares against the same key are
// serialised by LockBudget.
type BudgetKey struct {
	Level   PolicyLevel // the document the rule is in
	Subject string      // "agent:<id>" or "wallet:<id>" (the budget's scope)
	RuleID  string
	Asset   string // "native" or a lower-case token address
}

// BudgetReservation is one request's claim on a budget.
type BudgetReservation struct {
	TransactionID string
	OwnerID       string
	Key           BudgetKey
	Amount        *big.Int
	State         string // Reservation…
	ReservedAt    time.Time
	SettledAt     time.Time // when it became spent or released
}

// PolicyStore is the persistence of policies and budgets; the root's Store
// embeds it. Methods called with a context returned by InTx run inside
// that database transaction.
type PolicyStore interface {
	// Policy returns the stored policy of (level, subjectID); NotFound if
	// none is set.
	Policy(ctx context.Context, level PolicyLevel, subjectID string) (*PolicyRecord, error)
	// PutPolicy stores r, replacing the earlier document of its subject.
	PutPolicy(ctx context.Context, r *PolicyRecord) error

	// LockBudget takes the budget counter row of key for the rest of the
	// current transaction (creating it on first use): an upsert that every
	// prepare against key performs before it reads BudgetUsed, so two
	// prepares never both read the same remaining budget. SQLite's write
	// lock serialises it; on PostgreSQL it is the row lock of
	// INSERT … ON CONFLICT DO UPDATE (SELECT … FOR UPDATE).
	LockBudget(ctx context.Context, key BudgetKey) error
	// BudgetUsed returns what key has spent after since (rolling window,
	// since exclusive) and what it holds reserved (every open reservation,
	// whatever its age: it may still be spent).
	BudgetUsed(ctx context.Context, key BudgetKey, since time.Time) (spent, reserved *big.Int, err error)
	// LockBudgetUsed is LockBudget then BudgetUsed, as a prepare does for
	// each budget it reads, in one statement fewer.
	LockBudgetUsed(ctx context.Context, key BudgetKey, since time.Time) (spent, reserved *big.Int, err error)
	// AddReservation stores a reservation (state reserved).
	AddReservation(ctx context.Context, r *BudgetReservation) error
	// SettleReservations moves transactionID's reservations to state at
	// at, and returns how many it moved: ReservationSpent moves the open
	// ones; ReservationReleased moves the open and the spent ones (a
	// broadcast the node refused spent nothing). A released reservation
	// never changes again.
	SettleReservations(ctx context.Context, transactionID, state string, at time.Time) (int, error)
	// Reservations returns transactionID's reservations.
	Reservations(ctx context.Context, transactionID string) ([]*BudgetReservation, error)

	// PaidBefore says whether walletID has a signed transaction (submitted
	// or confirmed) to address (any case).
	PaidBefore(ctx context.Context, walletID, address string) (bool, error)
	// DueDelayed returns up to limit pending transactions whose delay has
	// passed (AuthorizeAt set and not after now), oldest first.
	DueDelayed(ctx context.Context, now time.Time, limit int) ([]*Transaction, error)
}
