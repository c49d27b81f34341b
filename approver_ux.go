package countersign

import (
	"context"
	"time"
)

// The approver's half (docs/APPROVER.md): an owner's address book, whose
// labels the review pages show beside every address.

// AddressLabel is one entry of a user's address book: a name the user
// gave an address. Address is EIP-55; one label per (owner, address).
type AddressLabel struct {
	OwnerID   string
	Address   string
	Label     string
	CreatedAt time.Time
}

// AddressBookStore keeps address books (migration 00021).
type AddressBookStore interface {
	// PutAddressLabel sets the label of (OwnerID, Address), replacing one
	// already there.
	PutAddressLabel(ctx context.Context, l *AddressLabel) error
	// AddressLabels lists ownerID's entries by address (at most 10000).
	AddressLabels(ctx context.Context, ownerID string) ([]*AddressLabel, error)
	// DeleteAddressLabel removes one entry; NotFound when there is none.
	DeleteAddressLabel(ctx context.Context, ownerID, address string) error
}

// ApproverUXStore is what the approver's half keeps: address books and
// passkeys.
type ApproverUXStore interface {
	AddressBookStore
	PasskeyStore
}

// Passkey is one WebAuthn credential a user registered as an approval
// factor. Credential is the verifier's record of it (public key, sign
// counter, flags) as JSON; it holds no secret.
type Passkey struct {
	ID         string // the credential id, base64url
	UserID     string
	Name       string
	Credential []byte
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// PasskeyChallenge is one outstanding WebAuthn ceremony: a registration,
// or an approval bound to one transaction's digest. It is used once.
type PasskeyChallenge struct {
	ID        string // the challenge, base64url
	UserID    string
	Purpose   string // "register" or "approve"
	TxID      string // approve: the transaction
	Digest    []byte // approve: the digest the challenge commits to
	Nonce     []byte // approve: the random part of the challenge
	Session   []byte // the verifier's session data, JSON
	ExpiresAt time.Time
}

// PasskeyStore keeps passkeys and their ceremonies (migration 00021).
type PasskeyStore interface {
	// CreatePasskey stores a new credential; Conflict if its id exists.
	CreatePasskey(ctx context.Context, k *Passkey) error
	// Passkeys lists userID's credentials, oldest first.
	Passkeys(ctx context.Context, userID string) ([]*Passkey, error)
	// UpdatePasskey replaces a credential's record (its sign counter) and
	// sets when it was last used.
	UpdatePasskey(ctx context.Context, id string, credential []byte, usedAt time.Time) error
	// DeletePasskey removes one of userID's credentials; NotFound if none.
	DeletePasskey(ctx context.Context, userID, id string) error
	// PutPasskeyChallenge stores a ceremony.
	PutPasskeyChallenge(ctx context.Context, c *PasskeyChallenge) error
	// TakePasskeyChallenge removes and returns the ceremony id if it has
	// not expired at now; NotFound otherwise. A challenge answers once.
	TakePasskeyChallenge(ctx context.Context, id string, now time.Time) (*PasskeyChallenge, error)
}
