package countersign

import (
	"math/big"
	"time"
)

// Status is a transaction's place in the lifecycle (docs/ARCHITECTURE.md).
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
	// StatusDropped: the server was moved to another chain (or the
	// embedded dev chain, new on every start, was restarted) while the
	// transaction was authorized or in flight. It is never signed,
	// broadcast or tracked again here: on a chain with the same id its
	// signed bytes would replay, and on the old chain its outcome is
	// unknown to this server. The agent prepares it again if it still
	// wants it.
	StatusDropped Status = "dropped"
)

// Statuses lists every status, in lifecycle order.
var Statuses = []Status{
	StatusPending, StatusAuthorized, StatusRejected, StatusExpired,
	StatusCancelled, StatusSubmitted, StatusConfirmed, StatusFailed, StatusDropped, StatusSigned,
}

// transitions is the whole state machine: a move not listed here is refused.
// authorized → pending: an approver withdrew an approval the authorization
// needed; authorized → expired: not executed within AUTHORIZED_TTL
// (core/approvers.go); authorized → cancelled: the agent withdrew it
// before it was signed (its budget reservation is released).
var transitions = map[Status][]Status{
	StatusPending:    {StatusAuthorized, StatusRejected, StatusExpired, StatusCancelled},
	StatusAuthorized: {StatusSubmitted, StatusFailed, StatusSigned, StatusDropped, StatusPending, StatusExpired, StatusCancelled},
	StatusSubmitted:  {StatusConfirmed, StatusFailed, StatusDropped},
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
	// TxNonceFill is a zero-value transfer from a wallet to itself that the
	// server signs at the nonce of a transaction the node refused, when
	// later nonces were already signed: without it they could never be
	// mined. It moves no value; its fee is bounded by MAX_FEE_PER_GAS.
	TxNonceFill TxType = "nonce_fill"
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
	// The network fee the approval allows: the transaction is signed with
	// exactly this gas limit and at most this fee per gas (wei, decimal),
	// so the most it can cost in fees is GasLimit × MaxFeePerGas. Zero and
	// "" when nothing is bound (messages; rows whose simulation failed at
	// prepare time, or from before fee limits), which execute refuses.
	GasLimit     uint64
	MaxFeePerGas string

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

	// The receipt tracker's bookkeeping: when it last looked at the row
	// (it looks at the least recently checked first), how often it has
	// rebroadcast the signed bytes and when it may next (backing off).
	CheckedAt       time.Time
	Broadcasts      int
	NextBroadcastAt time.Time

	IdempotencyKey string
	RequestHash    []byte

	// What the policy decided at prepare (policy_domain.go): the outcome
	// ("human" when no policy is set), the deciding rule ("" without a
	// policy, "default" when no rule matched), the warnings it gave, when
	// a delay authorizes the request (zero unless Decision is "delay"),
	// and how many approvers must approve (0: one, as before).
	Decision        string
	RuleID          string
	PolicyWarnings  []string
	AuthorizeAt     time.Time
	ApprovalsNeeded int

	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Expired reports whether a pending request has passed its approval window.
func (t *Transaction) Expired(now time.Time) bool {
	return t.Status == StatusPending && !now.Before(t.ExpiresAt)
}

// PaymentQuery asks Store.PaymentHistory about one payment's
// counterparty and kind. Addresses compare without regard to case.
type PaymentQuery struct {
	OwnerID string
	Type    TxType // TxNative or TxERC20
	To      string
	AgentID string // "" for a user's own payment: no per-agent figures
	Token   string // the payment's TokenAddress as stored
}

// PaymentSummary is Store.PaymentHistory's answer.
type PaymentSummary struct {
	Paid     bool     // the owner has a confirmed payment of this kind to To
	Previous int      // the agent's confirmed payments of this kind and token
	Largest  *big.Int // the largest of them, nil when Previous is 0
}

// TxFilter selects transactions for an owner's inbox.
type TxFilter struct {
	OwnerID string
	AgentID string
	Status  Status
	Limit   int
	Before  time.Time // for paging: only transactions created before this
	After   time.Time // only transactions created at or after this
	From    string    // only transactions sent from this address (EIP-55)
	ChainID int64     // only transactions on this chain (0: any)
	// ApproverOf adds the transactions of these wallets (ones the caller
	// approves but does not own) to OwnerID's.
	ApproverOf []string
}
