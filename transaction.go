package countersign

import (
	"time"
)

// Status is a transaction's place in the lifecycle (DESIGN.md §3).
type Status string

const (
	StatusPending    Status = "pending"
	StatusAuthorized Status = "authorized"
	StatusRejected   Status = "rejected"
	StatusExpired    Status = "expired"
	StatusCancelled  Status = "cancelled"
	StatusSubmitted  Status = "submitted"
	StatusConfirmed  Status = "confirmed"
	StatusFailed     Status = "failed"
	StatusSigned     Status = "signed" // message requests: the signature is ready
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{
	StatusPending, StatusAuthorized, StatusRejected, StatusExpired,
	StatusCancelled, StatusSubmitted, StatusConfirmed, StatusFailed, StatusSigned,
}

// transitions is the whole state machine: a move not listed here is refused.
var transitions = map[Status][]Status{
	StatusPending:    {StatusAuthorized, StatusRejected, StatusExpired, StatusCancelled},
	StatusAuthorized: {StatusSubmitted, StatusFailed, StatusSigned},
	StatusSubmitted:  {StatusConfirmed, StatusFailed},
}

// CanTransition reports whether the lifecycle allows from → to.
func CanTransition(from, to Status) bool {
	for _, s := range transitions[from] {
		if s == to {
			return true
		}
	}
	return false
}

// Final reports whether no further transition is possible.
func (s Status) Final() bool { return len(transitions[s]) == 0 }

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	for _, v := range Statuses {
		if v == s {
			return true
		}
	}
	return false
}

// TxType is the kind of a prepared transaction.
type TxType string

const (
	TxNative       TxType = "native"
	TxERC20        TxType = "erc20"
	TxContractCall TxType = "contract_call"
	TxPersonalSign TxType = "personal_sign" // EIP-191 message signature
	TxTypedData    TxType = "typed_data"    // EIP-712 typed data signature
)

// IsMessage reports whether the request is for a signature, not a
// transaction on chain.
func (t TxType) IsMessage() bool { return t == TxPersonalSign || t == TxTypedData }

// Transaction is a spend request and, once executed, the on-chain
// transaction that fulfils it. Amounts are base units as decimal strings of
// arbitrary size (see Amount); the calldata is what will be signed.
type Transaction struct {
	ID       string
	OwnerID  string
	AgentID  string // empty for a spend the user started
	WalletID string
	ChainID  int64
	Type     TxType

	From            string // EIP-55
	To              string // the recipient (native, erc20) or the contract (contract_call)
	Amount          string // base units: wei for native, token units for erc20
	TokenAddress    string
	ContractAddress string
	ContractABI     string
	FunctionName    string
	FunctionArgs    string // JSON array as sent
	Value           string // wei sent along a contract call
	Memo            string
	Message         string // personal_sign: 0x-hex bytes; typed_data: the EIP-712 JSON

	// What gets signed, derived from the fields above at prepare time.
	TxTo    string
	TxValue string
	TxData  []byte

	// Digest binds an approval to the exact fields above.
	Digest         []byte
	ApprovedDigest []byte
	DecidedBy      string
	DecidedAt      time.Time
	Reason         string

	Status      Status
	Nonce       *uint64
	RawTx       []byte
	TxHash      string
	BlockNumber *uint64
	Signature   []byte // message requests, once signed
	Error       string

	IdempotencyKey string
	RequestHash    []byte

	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Expired reports whether a pending request has passed its approval window.
func (t *Transaction) Expired(now time.Time) bool {
	return t.Status == StatusPending && !now.Before(t.ExpiresAt)
}

// TxFilter selects transactions for an owner's inbox.
type TxFilter struct {
	OwnerID string
	AgentID string
	Status  Status
	Limit   int
	Before  time.Time // for paging: only transactions created before this
	After   time.Time // only transactions created at or after this
}
