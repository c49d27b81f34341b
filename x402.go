package countersign

import (
	"context"
	"time"
)

// TxX402 is an x402 payment (core/x402.go): an EIP-3009
// TransferWithAuthorization of Amount of TokenAddress to To, signed
// instead of broadcast. Its Message is the typed data, so its approval
// binds exactly what is signed; the policy sees it as a transfer of
// Amount of the token to To (kind "x402").
const TxX402 TxType = "x402"

// X402 payment states: the authorization was built (its request waits for
// the policy or a human), sent to the resource server, settled (the
// server's answer says the money moved) or failed (it says it did not, or
// the answer never came).
const (
	X402Prepared = "prepared"
	X402Sent     = "sent"
	X402Settled  = "settled"
	X402Failed   = "failed"
)

// X402Payment is one x402 payment: the authorization built for a paid
// resource, bound to the request (TransactionID) the policy decided.
type X402Payment struct {
	TransactionID string // the x402 request; one payment per request
	OwnerID       string
	AgentID       string
	WalletID      string
	Nonce         string // the authorization's 32-byte nonce, 0x-hex: unique across all payments, never reused
	Resource      string // the URL fetched, or mcp:<server>#<tool>
	Method        string
	Version       int    // x402Version of the 402
	Requirement   string // the accepted requirement, JSON as the server sent it
	ResourceInfo  string // v2: the 402's resource object, echoed in the payment
	Quote         string // the amount the first 402 asked: a later one may not ask more
	Amount        string // base units of Asset
	Asset         string // the token, EIP-55
	PayTo         string
	Network       string
	ValidBefore   time.Time
	Status        string // X402Prepared, X402Sent, X402Settled, X402Failed
	SettlementTx  string // the settlement transaction hash the server reported
	Settlement    string // the settlement JSON as received (bounded)
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// X402Store keeps x402 payments: the authorizations signed for paid
// resources, so a nonce is never reused and every payment has a record.
type X402Store interface {
	// AddX402Payment stores p. A payment whose nonce or transaction is
	// already stored is a Conflict: a nonce is never handed out twice.
	AddX402Payment(ctx context.Context, p *X402Payment) error
	// X402Payment returns the payment of transactionID, NotFound if none.
	X402Payment(ctx context.Context, transactionID string) (*X402Payment, error)
	// X402NonceUsed reports whether any payment holds nonce.
	X402NonceUsed(ctx context.Context, nonce string) (bool, error)
	// UpdateX402Payment saves p's status, settlement and updated_at.
	UpdateX402Payment(ctx context.Context, p *X402Payment) error
}
