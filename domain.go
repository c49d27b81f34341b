package countersign

import (
	"context"
	"encoding/json"
	"math/big"
	"time"
)

// User is a human who owns wallets and agents and countersigns their spends.
type User struct {
	ID           string
	Username     string
	PasswordHash string // PHC-format Argon2id; never leaves the server

	MFASealed      []byte // TOTP secret sealed under the key-encryption key
	MFAPending     []byte // a new secret being enrolled (web UI), sealed, until confirmed
	MFAEnabled     bool
	MFALastStep    int64 // highest accepted TOTP step: each code works once
	MFAFailures    int
	MFALockedUntil time.Time

	CreatedAt time.Time
}

// Wallet is one secp256k1 key held by the server for its owner.
type Wallet struct {
	ID      string
	OwnerID string
	Name    string
	Address string // EIP-55
	// KeyFormat says where the key is and what KeySealed holds:
	// WalletKeyKDB, or WalletKeySealed for rows from before the keystore.
	KeyFormat string
	// KeySealed is sealed under the KEK with the wallet id as associated
	// data: the unlock secret of the wallet's keystore file (WalletKeyKDB),
	// or the private key itself (WalletKeySealed).
	KeySealed []byte
	CreatedAt time.Time
}

// Wallet key formats.
const (
	// WalletKeyKDB: the key is a v1-kdb file in the KeyStore (the daemon's
	// format and port), encrypted under a random 32-byte secret that the
	// server holds sealed in the wallet row, so an authorised execution can
	// open it without a human typing a password.
	WalletKeyKDB = "kdb"
	// WalletKeySealed: the key itself sealed in the row (older rows);
	// such keys are moved into the KeyStore when the server starts.
	WalletKeySealed = "sealed"
	// WalletKeyKeystore: the server holds no key for the wallet; the
	// operator's Web3 v3 keystore file (OPERATOR_KEYSTORE_PATH) does, and
	// the keystore-file signer signs (KeySealed is empty).
	WalletKeyKeystore = "keystore"
	// WalletKeyAWSKMS: the key is an AWS KMS ECC_SECG_P256K1 key
	// (OPERATOR_KMS_KEY) and never leaves KMS (KeySealed is empty).
	WalletKeyAWSKMS = "awskms"
	// WalletKeyDerived: the key is the derived-key signer's key of an
	// omni_account (in process, or a separate countersign signer);
	// KeySealed holds the omni_account, an identifier and not a secret.
	WalletKeyDerived = "derived"
)

// WalletSignerName is the signer backend that holds a wallet's key, as the
// API names it: "sealed" for every key the server holds sealed under its
// key-encryption key (both formats), else the external backend's name.
func WalletSignerName(keyFormat string) string {
	switch keyFormat {
	case WalletKeyKDB, WalletKeySealed, "":
		return "sealed"
	}
	return keyFormat
}

// Agent is a machine principal that may prepare and execute transactions for
// one wallet of its owner. Only the SHA-256 of its API key is stored.
type Agent struct {
	ID         string
	OwnerID    string
	Name       string
	WalletID   string
	KeyHash    []byte
	KeyPrefix  string // the first characters of the key, to recognise it in lists
	CreatedAt  time.Time
	LastUsedAt time.Time
	RevokedAt  time.Time
}

// Revoked reports whether the agent's key has been revoked.
func (a *Agent) Revoked() bool { return !a.RevokedAt.IsZero() }

// AuditEntry is one row of an owner's hash-chained audit log. Hash covers
// PrevHash and every other field, so editing or deleting a row breaks the
// chain (see core.VerifyAudit).
type AuditEntry struct {
	OwnerID  string
	Seq      int64
	At       time.Time
	Actor    string // "user:<id>", "agent:<id>", "system"
	Action   string // e.g. "login", "transaction.authorize"
	Subject  string // the id the action is about
	Details  string // JSON object, never secrets
	PrevHash []byte
	Hash     []byte
}

// Event is a notification of a state change, written to the outbox in the
// same database transaction as the change.
type Event struct {
	ID        int64
	OwnerID   string
	Type      string // e.g. "transaction.pending", "transaction.status"
	Subject   string
	Payload   string // JSON
	CreatedAt time.Time
}

// WebSession is a browser session of the approval UI: a cookie token
// (stored as its SHA-256) and the CSRF token its forms must carry. It is
// separate from API session tokens.
type WebSession struct {
	TokenHash []byte
	UserID    string
	CSRF      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SIWERequest is an issued Sign-In with Ethereum challenge.
type SIWERequest struct {
	ID        string
	Address   string
	Message   string
	Nonce     string
	ExpiresAt time.Time
	UsedAt    time.Time
}

// EmailCode is a one-time login code sent by email, stored as a hash.
type EmailCode struct {
	Email     string
	CodeHash  []byte
	CreatedAt time.Time
	ExpiresAt time.Time
	Attempts  int
	UsedAt    time.Time
}

// SigningKey is an asymmetric key that signs session tokens. The private
// half is sealed; the public half is served at /.well-known/jwks.json.
type SigningKey struct {
	KID       string
	Alg       string
	Sealed    []byte
	Public    []byte
	CreatedAt time.Time
}

// Store is the persistence port. Implementations: store/sqlite (and later
// store/postgres), both checked by one conformance suite.
//
// Lookups return an *Error with code NotFound when nothing matches. Unique
// violations return Conflict. Methods called with a context returned by
// InTx run inside that database transaction.
type Store interface {
	PolicyStore // policies, budgets and reservations (policy_domain.go)
	// approvers, invitations, approvals, freezes (approvers.go)
	ApprovalStore
	ChargeStore       // charge receipts (charges.go)
	BalanceAlertStore // low-balance thresholds (balancealerts.go)
	TrackingStore     // attempts and tracker claims (tracking.go)
	// limits, leases, webhook delivery claims (limits.go)
	CoordinationStore
	TopupStore // credit top-ups and their state machine (topup.go)
	X402Store  // x402 payments and authorization nonces (x402.go)
	// the approver's address book and passkeys (approver_ux.go)
	ApproverUXStore

	// InTx runs fn in one database transaction: all writes commit together
	// or none do. Audit rows and outbox events are written through the same
	// context so they commit with the change they describe.
	InTx(ctx context.Context, fn func(ctx context.Context) error) error

	CreateUser(ctx context.Context, u *User) error
	UserByID(ctx context.Context, id string) (*User, error)
	UserByName(ctx context.Context, username string) (*User, error)
	UpdateUserMFA(ctx context.Context, u *User) error

	CreateWallet(ctx context.Context, w *Wallet) error
	WalletByID(ctx context.Context, id string) (*Wallet, error)
	WalletByAddress(ctx context.Context, address string) (*Wallet, error)
	WalletsByOwner(ctx context.Context, ownerID string) ([]*Wallet, error)
	// WalletsByKeyFormat lists every wallet whose key is in format.
	WalletsByKeyFormat(ctx context.Context, format string) ([]*Wallet, error)
	// SwapWalletKey sets a wallet's key format and sealed bytes if its
	// format is still from; Conflict otherwise.
	SwapWalletKey(ctx context.Context, id, from, to string, sealed []byte) error

	CreateAgent(ctx context.Context, a *Agent) error
	AgentByID(ctx context.Context, id string) (*Agent, error)
	AgentByKeyHash(ctx context.Context, hash []byte) (*Agent, error)
	// AgentWithOwner is AgentByKeyHash and the agent's owner in one read
	// (what authenticating an agent needs); NotFound for an unknown hash.
	AgentWithOwner(ctx context.Context, hash []byte) (*Agent, *User, error)
	AgentsByOwner(ctx context.Context, ownerID string) ([]*Agent, error)
	RevokeAgent(ctx context.Context, id string, at time.Time) error
	TouchAgent(ctx context.Context, id string, at time.Time) error

	CreateTransaction(ctx context.Context, t *Transaction) error
	// Transaction returns the transaction with id. Inside InTx it also locks
	// the row against concurrent writers until the transaction ends.
	Transaction(ctx context.Context, id string) (*Transaction, error)
	TransactionByIdempotencyKey(ctx context.Context, agentID, key string) (*Transaction, error)
	UpdateTransaction(ctx context.Context, t *Transaction) error
	Transactions(ctx context.Context, f TxFilter) ([]*Transaction, error)
	// PaymentHistory summarises an owner's confirmed payments for a
	// review's warnings, however many there are: whether it paid q.To with
	// q.Type before, and how many confirmed payments of q.Type in q.Token
	// q.AgentID made and the largest (none when q.AgentID is "").
	PaymentHistory(ctx context.Context, q PaymentQuery) (PaymentSummary, error)
	// TransactionsByStatus returns up to limit transactions in status across
	// all owners (for the expiry sweeper and the receipt tracker).
	TransactionsByStatus(ctx context.Context, s Status, limit int) ([]*Transaction, error)
	// PendingExpired returns up to limit pending transactions whose
	// approval window ended at or before now, the earliest first (the
	// expiry sweeper's query: it reads only what is due, however many
	// requests wait for a human).
	PendingExpired(ctx context.Context, now time.Time, limit int) ([]*Transaction, error)
	// AuthorizedExpired returns up to limit authorized transactions,
	// neither signed nor broadcast, authorized at or before cutoff (the
	// decision's time; for one no human decided, the later of its creation
	// and its delay's end), the earliest authorized first: the
	// AUTHORIZED_TTL sweeper's query, which reads only what is due however
	// many authorized requests wait for their agent.
	AuthorizedExpired(ctx context.Context, cutoff time.Time, limit int) ([]*Transaction, error)
	CountTransactionsByStatus(ctx context.Context) (map[Status]int64, error)

	// NextNonce allocates the next nonce for (chainID, address): the larger
	// of the stored counter and floor, which is then stored plus one.
	NextNonce(ctx context.Context, chainID int64, address string, floor uint64) (uint64, error)
	// ReleaseNonce gives nonce back when the transaction that took it was
	// refused by the node, if no later nonce has been allocated since.
	ReleaseNonce(ctx context.Context, chainID int64, address string, nonce uint64) error
	// NonceCounter returns the next nonce NextNonce would hand out for
	// (chainID, address) without a floor: 0 if none was ever allocated.
	NonceCounter(ctx context.Context, chainID int64, address string) (uint64, error)
	// MarkChecked sets CheckedAt of the transactions with ids to at, and
	// nothing else (the receipt tracker's fair-scheduling bookkeeping).
	// TransactionsByStatus returns the least recently checked first.
	MarkChecked(ctx context.Context, at time.Time, ids ...string) error
	// ResetNonces forgets every nonce counter of chainID and returns how
	// many there were: after a change of chain the next allocation starts
	// from the new chain's own count (NextNonce's floor).
	ResetNonces(ctx context.Context, chainID int64) (int64, error)

	// ChainIdentity returns the chain recorded for this database; NotFound
	// before the first start recorded one.
	ChainIdentity(ctx context.Context) (*ChainIdentity, error)
	// SetChainIdentity records id, replacing the earlier record.
	SetChainIdentity(ctx context.Context, id *ChainIdentity) error

	// AppendAudit stores entries (in one statement when there are many);
	// a taken (owner, seq) is Conflict and stores none of them.
	AppendAudit(ctx context.Context, entries ...*AuditEntry) error
	AuditEntries(ctx context.Context, ownerID string, afterSeq int64, limit int) ([]*AuditEntry, error)
	AuditOwners(ctx context.Context) ([]string, error)

	// AddEvent stores events in order and sets their ids (increasing).
	AddEvent(ctx context.Context, events ...*Event) error
	EventsAfter(ctx context.Context, ownerID string, afterID int64, limit int) ([]*Event, error)
	LastEventID(ctx context.Context, ownerID string) (int64, error)
	// AllEventsAfter and LastEventIDAll span every owner (the operator's
	// local event stream).
	AllEventsAfter(ctx context.Context, afterID int64, limit int) ([]*Event, error)
	LastEventIDAll(ctx context.Context) (int64, error)

	RevokeToken(ctx context.Context, jti string, expires time.Time) error
	TokenRevoked(ctx context.Context, jti string) (bool, error)

	CreateWebSession(ctx context.Context, s *WebSession) error
	// WebSession returns an unexpired session by token hash.
	WebSession(ctx context.Context, tokenHash []byte, now time.Time) (*WebSession, error)
	DeleteWebSession(ctx context.Context, tokenHash []byte) error

	// SetRecoveryCodes replaces the user's recovery codes (hashes); the
	// replaced ones stay known as spent, so UseRecoveryCode can tell a
	// replay from a guess.
	SetRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error
	// UseRecoveryCode marks a code used; NotFound if unknown, Conflict if it
	// was already used or replaced.
	UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error

	// LinkIdentity records that an identity belongs to omni; Conflict if
	// the identity is already linked.
	LinkIdentity(ctx context.Context, typ, value, omni string, at time.Time) error
	// LinkedOmni returns the omni_account an identity is linked to.
	LinkedOmni(ctx context.Context, typ, value string) (string, error)

	CreateSIWERequest(ctx context.Context, r *SIWERequest) error
	// TakeSIWERequest marks a request used and returns it; NotFound if it
	// does not exist or was used: each nonce works once.
	TakeSIWERequest(ctx context.Context, id string, at time.Time) (*SIWERequest, error)

	AddEmailCode(ctx context.Context, c *EmailCode) error
	// EmailCodesSince counts codes sent to email since t (rate limit).
	EmailCodesSince(ctx context.Context, email string, t time.Time) (int, error)
	// LatestEmailCode returns the newest unused, unexpired code for email.
	LatestEmailCode(ctx context.Context, email string, now time.Time) (*EmailCode, error)
	// UpdateEmailCode writes attempts and used_at.
	UpdateEmailCode(ctx context.Context, c *EmailCode) error

	// KeyStore blobs in the database (the "store" adapter) and the
	// daemon's derived accounts.
	PutKeyBlob(ctx context.Context, walletID string, blob []byte) error
	KeyBlob(ctx context.Context, walletID string) ([]byte, error)
	KeyBlobIDs(ctx context.Context) ([]string, error)
	CreateDaemonAccount(ctx context.Context, a *DaemonAccount) error
	DaemonAccount(ctx context.Context, id string) (*DaemonAccount, error)
	DaemonAccounts(ctx context.Context, walletID string) ([]*DaemonAccount, error)
	DaemonAccountByAddress(ctx context.Context, address string) (*DaemonAccount, error)
	// SetDaemonAccountTags replaces an account's tags; NotFound if none.
	SetDaemonAccountTags(ctx context.Context, id string, tags map[string]string) error

	// The mock ledger of the AITBC wallet-daemon design (stage 1, until a chain is plugged in).
	LedgerBalance(ctx context.Context, address string) (*big.Int, error)
	// LedgerMove moves units from → to in the current transaction
	// (from "" mints); InsufficientFunds if from cannot pay.
	LedgerMove(ctx context.Context, from, to string, units *big.Int) error
	AddLedgerTx(ctx context.Context, t *LedgerTx) error
	LedgerTxByID(ctx context.Context, id string) (*LedgerTx, error)

	CreateWebhook(ctx context.Context, w *Webhook) error
	Webhook(ctx context.Context, id string) (*Webhook, error)
	// WebhooksFor returns the webhooks that see ownerID's events: its own,
	// and the operator's (owner "daemon"), which see every owner's.
	WebhooksFor(ctx context.Context, ownerID string) ([]*Webhook, error)
	AddDelivery(ctx context.Context, d *Delivery) error
	// DueDeliveries returns pending deliveries whose next attempt is due.
	DueDeliveries(ctx context.Context, now time.Time, limit int) ([]*Delivery, error)
	UpdateDelivery(ctx context.Context, d *Delivery) error
	Deliveries(ctx context.Context, webhookID string, limit int) ([]*Delivery, error)

	SigningKeys(ctx context.Context) ([]*SigningKey, error)
	AddSigningKey(ctx context.Context, k *SigningKey) error

	Ping(ctx context.Context) error
	Close() error
}

// ChainIdentity is the chain a database's transactions belong to. It is
// recorded at the first start; a later start on another chain is refused
// (unless the operator accepts the change), because nonce counters and
// signed bytes meant for one chain would be wrong — or replayable — on
// another.
type ChainIdentity struct {
	ChainID     int64
	GenesisHash string // 0x-hex, lower case
	// Embedded marks the in-process development chain, which is a new
	// chain (a new genesis) on every start.
	Embedded   bool
	RecordedAt time.Time
}

// CallMsg is a read-only call or a gas estimate against the chain.
type CallMsg struct {
	From  string
	To    string
	Value *big.Int
	Data  []byte
}

// Receipt is what the chain says about a mined transaction.
type Receipt struct {
	TxHash      string
	BlockNumber uint64
	BlockHash   string // 0x-hex: a reorg that removes the block changes it
	Success     bool
	GasUsed     uint64
}

// Chain is the port to an EVM chain. Implementations: chain/evm over any
// JSON-RPC endpoint, and chain/sim, an in-process development chain.
//
// Receipt returns an *Error with code NotFound while the transaction is not
// yet mined.
type Chain interface {
	ChainID(ctx context.Context) (*big.Int, error)
	BlockNumber(ctx context.Context) (uint64, error)
	BalanceAt(ctx context.Context, address string) (*big.Int, error)
	CodeAt(ctx context.Context, address string) ([]byte, error)
	// PendingNonceAt counts the address's transactions in mined blocks and
	// in the node's pool; NonceAt only those in mined blocks.
	PendingNonceAt(ctx context.Context, address string) (uint64, error)
	NonceAt(ctx context.Context, address string) (uint64, error)
	Call(ctx context.Context, msg CallMsg) ([]byte, error)
	EstimateGas(ctx context.Context, msg CallMsg) (uint64, error)
	// SuggestFees returns an EIP-1559 tip and fee cap.
	SuggestFees(ctx context.Context) (tip, feeCap *big.Int, err error)
	// BaseFee returns the latest block's base fee per gas (0 before London).
	BaseFee(ctx context.Context) (*big.Int, error)
	// SendRawTransaction broadcasts signed bytes. nil means the node has
	// them (also when it already had them). An error wrapping ErrRefused is
	// a definite refusal (the node's known rejection reasons: the bytes are
	// not in its pool), with code InsufficientFunds or ChainError; any other
	// error is ambiguous (timeouts, unknown JSON-RPC errors, transport
	// trouble): the node may have taken the transaction.
	SendRawTransaction(ctx context.Context, raw []byte) error
	Receipt(ctx context.Context, txHash string) (*Receipt, error)
	// GenesisHash returns the hash of block 0 (0x-hex, lower case). With
	// the chain id it identifies the chain: two chains can share an id (a
	// dev chain restarted, a testnet reset), never a genesis block.
	GenesisHash(ctx context.Context) (string, error)
	// SentTxs finds the transactions q.From sent with the nonces q.Nonces,
	// in the node's pool (where it can see it) and in mined blocks from the
	// head back. An EVM node has no lookup by sender and nonce, so this is a
	// scan, bounded by q.MaxBlocks. complete reports that the scan reached
	// a block older than q.Since (or genesis), or found every nonce: a nonce
	// not found was then not used by any transaction mined since q.Since.
	SentTxs(ctx context.Context, q SentQuery) (found []*SentTx, complete bool, err error)
}

// SentQuery asks Chain.SentTxs for a sender's transactions by nonce.
type SentQuery struct {
	From      string
	Nonces    []uint64
	Since     time.Time // blocks older than this cannot hold what is sought
	MaxBlocks uint64    // at most this many blocks are read
}

// SentTx is a signed transaction the chain holds, mined or pooled.
type SentTx struct {
	Hash        string
	Raw         []byte // the signed bytes, for rebroadcasting
	Nonce       uint64
	To          string // EIP-55; "" for a contract creation
	Value       *big.Int
	Data        []byte
	Gas         uint64
	FeeCap      *big.Int
	BlockNumber *uint64 // nil while in the pool
}

// UnsignedTx is an EIP-1559 transaction before signing.
type UnsignedTx struct {
	ChainID *big.Int
	Nonce   uint64
	To      string
	Value   *big.Int
	Data    []byte
	Gas     uint64
	Tip     *big.Int
	FeeCap  *big.Int
}

// Signer creates and uses wallet keys. Implementations must never return
// or log key material; keys leave it only sealed.
type Signer interface {
	// NewKey creates a key for walletID and returns its address, the
	// format it is kept in (a WalletKey… constant) and the sealed bytes the
	// wallet row keeps for it, bound to walletID.
	NewKey(ctx context.Context, walletID string) (address, format string, sealed []byte, err error)
	// SignTx signs tx with the wallet's key and returns the raw signed
	// transaction and its hash.
	SignTx(ctx context.Context, w *Wallet, tx *UnsignedTx) (raw []byte, hash string, err error)
	// SignHash signs a 32-byte digest (an EIP-191 or EIP-712 hash the
	// caller computed) and returns r ‖ s ‖ v with v in {27, 28}.
	SignHash(ctx context.Context, w *Wallet, hash []byte) ([]byte, error)
}

// DerivedSigner derives one EVM key per omni_account from a master secret
// and signs with it (DEVELOPMENT ONLY until a TEE backs it). Both the
// in-process signer (signer/derived) and the client of a separate signer
// process (signer/remote) implement it, with the same behaviour.
type DerivedSigner interface {
	// DeriveAddress returns the EIP-55 address of omni's key.
	DeriveAddress(ctx context.Context, omni string) (string, error)
	// SignMessage signs an EIP-191 personal message: r ‖ s ‖ v, v = 27/28.
	SignMessage(ctx context.Context, omni string, message []byte) ([]byte, error)
	// SignTypedData signs EIP-712 typed data (JSON).
	SignTypedData(ctx context.Context, omni string, typedData []byte) ([]byte, error)
}

// DerivedDigestSigner is a DerivedSigner that also signs a 32-byte digest
// (a transaction's signing hash) with omni's key, r ‖ s ‖ v with v = 27
// or 28: what lets a derived key back a countersigned wallet, whose every
// signature the approval path has already decided.
type DerivedDigestSigner interface {
	SignDigest(ctx context.Context, omni string, digest []byte) ([]byte, error)
}

// KeyStore holds the daemon's encrypted wallet files (v1-kdb bytes) by
// wallet id. Adapters: keys/keystore.Dir (one .kdb per wallet, the
// default) and the database store (for replicas).
type KeyStore interface {
	// Put stores blob for walletID, atomically. verify is called on the
	// bytes read back from the new copy before it replaces anything; its
	// error aborts the write.
	Put(ctx context.Context, walletID string, blob []byte, verify func(readBack []byte) error) error
	// Get returns the blob; NotFound if there is none.
	Get(ctx context.Context, walletID string) ([]byte, error)
	// List returns every wallet id.
	List(ctx context.Context) ([]string, error)
}

// DaemonAccount is an address derived from (or imported into) a daemon
// wallet.
type DaemonAccount struct {
	ID         string
	WalletID   string
	Curve      string // ed25519 | secp256k1
	Path       string // "" for a single-key wallet
	Address    string // ait1…
	PublicKey  []byte
	EVMAddress string            // secp256k1 only
	Tags       map[string]string // the operator's labels ("role": "payout"); never nil once stored
	CreatedAt  time.Time
}

// Ledger is where the wallet daemon's balances and transfers live: the
// AITBC wallet-daemon design's chain adapter. Adapters: ledger/mock, balances and transfers in
// the store (WALLET_CHAIN=mock, stage 1); a node of the AITBC chain
// once that chain has an RPC to talk to (WALLET_CHAIN=aitbc, not built).
type Ledger interface {
	// Name is the adapter's WALLET_CHAIN value.
	Name() string
	Balance(ctx context.Context, address string) (*big.Int, error)
	// Submit records (mock) or broadcasts (a node) a signed transfer. It is
	// called inside the transaction that audits the transfer; InsufficientFunds
	// if the sender cannot pay.
	Submit(ctx context.Context, t *LedgerTx) error
	Tx(ctx context.Context, id string) (*LedgerTx, error)
	// Credit adds units to an address: a faucet, which only a mock ledger
	// has (Forbidden elsewhere).
	Credit(ctx context.Context, address string, units *big.Int) error
}

// LedgerTx is a signed transfer on the mock ledger.
type LedgerTx struct {
	ID, From, To, Memo string
	Units              *big.Int
	Canonical          string // what the sender signed (RFC 8785 JSON)
	Signature          []byte
	PublicKey          []byte
	CreatedAt          time.Time
}

// Webhook is a subscriber to events, called with HMAC-signed POSTs.
type Webhook struct {
	ID, OwnerID, URL string
	Events           []string // exact types, or a prefix ending in "*"
	SecretSealed     []byte
	CreatedAt        time.Time
}

// Delivery states.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryDead      = "dead" // gave up after the last retry
)

// Delivery is one event on its way to one webhook, persisted in the same
// transaction as the event, so nothing is lost across restarts. LastError
// is a class ("connect", "http_status", "refused_address"…), never the
// error's text, which would map the network behind the server.
type Delivery struct {
	ID, WebhookID, EventType, Payload, Status, LastError string
	EventID                                              int64
	Attempts, LastStatus                                 int
	NextAttemptAt, CreatedAt, DeliveredAt                time.Time
}

// RawRPC is implemented by chains that can forward a read-only JSON-RPC
// call verbatim (the agents' Ethereum JSON-RPC endpoint uses it). It
// returns the node's result, or an error carrying the node's JSON-RPC code.
type RawRPC interface {
	CallRaw(ctx context.Context, method string, params []json.RawMessage) (json.RawMessage, error)
}

// Sealer encrypts small secrets at rest with a per-record data key under a
// key-encryption key. Open fails unless recordID matches the one Seal got.
type Sealer interface {
	Seal(recordID string, plaintext []byte) ([]byte, error)
	Open(recordID string, sealed []byte) ([]byte, error)
}

// Clock tells the time; tests inject one they control.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns the current time.
func (SystemClock) Now() time.Time { return time.Now() }
