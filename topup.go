package countersign

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Credit top-ups: an agent asks a credit provider (OpenRouter) for a
// charge, and pays it from its wallet as an ordinary agent request that
// the wallet's policy decides. The provider is a port; its adapters live
// in topup/… and never sign or send anything themselves.

// TopupStatus is where a top-up is in its state machine:
//
//	pending ──charge made──► charge_created ──payment broadcast──► tx_broadcast ──► confirmed
//	   └────────────┴──────────────────┴───────────────────────────────────────► failed
type TopupStatus string

const (
	TopupPending       TopupStatus = "pending"        // no charge yet
	TopupChargeCreated TopupStatus = "charge_created" // the provider made a charge; its payment is being decided or sent
	TopupTxBroadcast   TopupStatus = "tx_broadcast"   // the payment is on the network
	TopupConfirmed     TopupStatus = "confirmed"      // the payment is confirmed: the provider credits the account
	TopupFailed        TopupStatus = "failed"         // ended without paying (Error says why)
)

// Open reports whether a top-up may still move.
func (s TopupStatus) Open() bool { return s != TopupConfirmed && s != TopupFailed }

// Valid reports whether s is one of the statuses.
func (s TopupStatus) Valid() bool {
	switch s {
	case TopupPending, TopupChargeCreated, TopupTxBroadcast, TopupConfirmed, TopupFailed:
		return true
	}
	return false
}

// Topup is one credit top-up and everything needed to resume it after a
// restart.
type Topup struct {
	ID          string
	OwnerID     string
	AgentID     string // the agent whose wallet pays (and on whose behalf the payment is requested)
	WalletID    string
	Provider    string // e.g. "openrouter"
	AmountCents int64  // USD cents asked for
	Automatic   bool   // made by the low-credit check, not by a request
	Status      TopupStatus

	ChargeID        string // the provider's charge id; unique per provider, "" before charge_created
	Charge          string // the charge as JSON (TopupCharge), so a restart pays exactly it
	ChargeExpiresAt time.Time

	ApprovalTxID  string // the exact-amount ERC-20 approve request, for a token charge
	TransactionID string // the payment request
	TxHash        string
	Error         string // why it failed, for the operator
	Attempts      int    // failed tries at the provider (transient errors)

	ClaimedBy    string    // the replica working on it now
	ClaimedUntil time.Time // its lease
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// TopupFilter selects top-ups; zero fields do not filter.
type TopupFilter struct {
	OwnerID string // required
	AgentID string
	Status  TopupStatus
	Limit   int
}

// TopupStore keeps credit top-ups: a provider charge, the transaction that
// pays it, and the state the top-up is in, so a restart resumes it.
type TopupStore interface {
	// CreateTopup stores a new top-up. Conflict when an automatic top-up
	// is already open for the same wallet and provider: there is never
	// more than one.
	CreateTopup(ctx context.Context, t *Topup) error
	// Topup returns one top-up; NotFound when there is none.
	Topup(ctx context.Context, id string) (*Topup, error)
	// TopupByTransaction returns the top-up whose payment (or ERC-20
	// approval) is transaction txID; NotFound when there is none.
	TopupByTransaction(ctx context.Context, txID string) (*Topup, error)
	// Topups lists top-ups newest first.
	Topups(ctx context.Context, f TopupFilter) ([]*Topup, error)
	// OpenTopups lists top-ups that may still move, oldest first, for the
	// worker.
	OpenTopups(ctx context.Context, limit int) ([]*Topup, error)
	// ClaimTopup leases an open top-up to holder until now+lease, when it
	// is unclaimed, its lease has passed or holder holds it already; it
	// reports whether holder now holds it. Of several replicas claiming
	// at once, one wins.
	ClaimTopup(ctx context.Context, id, holder string, now time.Time, lease time.Duration) (bool, error)
	// ReleaseTopup gives up holder's lease (nothing when it is not held).
	ReleaseTopup(ctx context.Context, id, holder string) error
	// UpdateTopup writes t's mutable fields if the stored row is still in
	// status from and leased to holder; Conflict otherwise, and Conflict
	// when t's charge id is already another top-up's (one charge is never
	// paid twice).
	UpdateTopup(ctx context.Context, t *Topup, from TopupStatus, holder string) error
}

// TopupChargeRequest is what a provider is asked for.
type TopupChargeRequest struct {
	AmountCents int64  // USD cents
	Sender      string // the paying wallet's address
	ChainID     int64
}

// TopupCharge is a provider's charge: a Coinbase Commerce transfer intent
// to be paid through the Transfers contract.
type TopupCharge struct {
	ID        string         `json:"id"`
	CreatedAt time.Time      `json:"created_at"`
	ExpiresAt time.Time      `json:"expires_at"`
	Contract  string         `json:"contract_address"` // the Transfers contract to call
	Sender    string         `json:"sender"`
	ChainID   int64          `json:"chain_id"`
	Intent    TransferIntent `json:"intent"`
}

// TransferIntent is the Transfers contract's TransferIntent struct, as
// strings: amounts in decimal base units, addresses and bytes in 0x hex.
type TransferIntent struct {
	RecipientAmount   string `json:"recipient_amount"`
	Deadline          string `json:"deadline"` // unix seconds
	Recipient         string `json:"recipient"`
	RecipientCurrency string `json:"recipient_currency"` // the zero address: native
	RefundDestination string `json:"refund_destination"`
	FeeAmount         string `json:"fee_amount"`
	ID                string `json:"id"` // bytes16
	Operator          string `json:"operator"`
	Signature         string `json:"signature"`
	Prefix            string `json:"prefix"`
}

// TopupProvider is a credit provider's charge API (the port the top-up
// service consumes). Implementations talk to the provider only: they never
// sign or broadcast.
type TopupProvider interface {
	// Name is the provider's name in requests and receipts ("openrouter").
	Name() string
	// CreateCharge asks for a charge of req.AmountCents to be paid by
	// req.Sender on req.ChainID. A *ProviderError says whether trying
	// again can help; any other error is treated as transient.
	CreateCharge(ctx context.Context, req TopupChargeRequest) (*TopupCharge, error)
	// Credits reports the account's remaining credits in USD cents.
	Credits(ctx context.Context) (int64, error)
}

// ProviderError is a provider's refusal. Detail is safe to show the
// operator (it never carries the API key); Permanent says retrying cannot
// help (the endpoint is gone, the key is refused, the amount is out of
// range).
type ProviderError struct {
	Provider  string
	Status    int // the HTTP status, 0 for a transport error
	Permanent bool
	Detail    string
	Err       error
}

func (e *ProviderError) Error() string {
	return fmt.Sprintf("%s: %s", e.Provider, e.Detail)
}

func (e *ProviderError) Unwrap() error { return e.Err }

// MaxTopupCents bounds any USD amount the edge accepts: one million
// dollars, far above any provider's limit, so cents fit every integer.
const MaxTopupCents = 100_000_000

// ParseUSD parses a decimal USD amount ("10", "10.5", "10.50") into cents.
// More than two decimals, signs, exponents and zero are refused: money is
// never rounded at the edge.
func ParseUSD(field, s string) (int64, error) {
	bad := func(why string) (int64, error) {
		return 0, Errorf(BadRequest, "%s must be a decimal amount of US dollars such as \"10\" or \"12.50\": %s", field, why)
	}
	if s == "" {
		return bad("it is empty")
	}
	if len(s) > 16 {
		return bad("it is too long")
	}
	whole, frac, dot := strings.Cut(s, ".")
	if whole == "" || (dot && (frac == "" || len(frac) > 2)) {
		return bad("give digits, and at most two after the point")
	}
	for _, part := range []string{whole, frac} {
		for _, r := range part {
			if r < '0' || r > '9' {
				return bad("only digits and one point")
			}
		}
	}
	if len(whole) > 1 && whole[0] == '0' {
		return bad("no leading zeros")
	}
	for len(frac) < 2 {
		frac += "0"
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > MaxTopupCents/100 {
		return bad("it is too large")
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	cents := w*100 + f
	if cents <= 0 {
		return bad("it must be more than zero")
	}
	if cents > MaxTopupCents {
		return bad("it is too large")
	}
	return cents, nil
}

// FormatUSD renders cents as a decimal string with two decimals.
func FormatUSD(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s%d.%02d", sign, cents/100, cents%100)
}
