package countersign

import (
	"context"
	"time"
)

// Approver is a registered user who may approve, reject and freeze the
// requests of one wallet besides its owner (who is always an approver and
// has no row). Approvers must have MFA: every decision is their own TOTP
// code.
type Approver struct {
	WalletID string
	UserID   string
	AddedBy  string // the owner who invited them
	AddedAt  time.Time
}

// Invitation is an owner's offer to a user to become an approver of a
// wallet. It becomes an Approver only when the invitee accepts it with
// their own TOTP code.
type Invitation struct {
	ID         string
	WalletID   string
	OwnerID    string
	InviteeID  string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	AcceptedAt time.Time // zero while open
}

// Approval is one approver's approval of one transaction, bound to the
// digest they approved. A withdrawn approval is kept (WithdrawnAt set) and
// no longer counts.
type Approval struct {
	TransactionID string
	UserID        string
	Digest        []byte
	At            time.Time
	WithdrawnAt   time.Time
}

// Freeze is the kill switch: while a freeze covers a wallet, its agents'
// new requests are refused with Frozen and nothing of it is executed.
// WalletID "" freezes every wallet of OwnerID.
type Freeze struct {
	ID       string
	OwnerID  string
	WalletID string
	By       string // "user:<id>" who set it
	At       time.Time
}

// FreezeLift is one approver's TOTP-proven consent to lift a freeze; a
// freeze on a quorum wallet lifts when enough distinct ones are recorded.
type FreezeLift struct {
	FreezeID string
	UserID   string
	At       time.Time
}

// ApprovalStore is the persistence of approvers, invitations, approvals
// and freezes (part of Store). Lookups return NotFound when nothing
// matches; unique violations return Conflict.
type ApprovalStore interface {
	ApproverAdminStore // invitations sent, webhook deletion (approvers_admin.go)

	CreateInvitation(ctx context.Context, inv *Invitation) error
	Invitation(ctx context.Context, id string) (*Invitation, error)
	// InvitationsFor lists the open (unaccepted) invitations of a user.
	InvitationsFor(ctx context.Context, inviteeID string) ([]*Invitation, error)
	// AcceptInvitation marks an open invitation accepted; Conflict if it
	// was accepted already.
	AcceptInvitation(ctx context.Context, id string, at time.Time) error

	// AddApprover adds a user to a wallet's approvers; Conflict if they
	// are one already.
	AddApprover(ctx context.Context, a *Approver) error
	// RemoveApprover removes one; NotFound if they were none.
	RemoveApprover(ctx context.Context, walletID, userID string) error
	// Approvers lists a wallet's approvers (not its owner), oldest first.
	Approvers(ctx context.Context, walletID string) ([]*Approver, error)
	// ApproverWallets lists the ids of the wallets userID approves.
	ApproverWallets(ctx context.Context, userID string) ([]string, error)

	// AddApproval records an approval; Conflict if the user has an
	// approval of the transaction that is not withdrawn. A withdrawn one
	// is replaced.
	AddApproval(ctx context.Context, a *Approval) error
	// Approvals lists a transaction's approvals that are not withdrawn,
	// oldest first.
	Approvals(ctx context.Context, txID string) ([]*Approval, error)
	// WithdrawApproval marks the user's approval withdrawn; NotFound if
	// there is none that is not withdrawn.
	WithdrawApproval(ctx context.Context, txID, userID string, at time.Time) error

	// AddFreeze stores a freeze; Conflict if (owner, wallet) is frozen.
	AddFreeze(ctx context.Context, f *Freeze) error
	// Freezes lists the freezes of an owner (owner-wide and per wallet).
	Freezes(ctx context.Context, ownerID string) ([]*Freeze, error)
	// DeleteFreeze lifts a freeze and forgets its lifts; NotFound if none.
	DeleteFreeze(ctx context.Context, id string) error
	// AddFreezeLift records one consent to lift; Conflict if the user
	// gave one already.
	AddFreezeLift(ctx context.Context, l *FreezeLift) error
	FreezeLifts(ctx context.Context, freezeID string) ([]*FreezeLift, error)

	// WebhooksOf returns the webhooks the user owns (not the operator's).
	WebhooksOf(ctx context.Context, userID string) ([]*Webhook, error)

	PolicyChangeStore
}

// Policy change states.
const (
	PolicyChangePending    = "pending"
	PolicyChangeApplied    = "applied"
	PolicyChangeRejected   = "rejected"
	PolicyChangeSuperseded = "superseded" // the policy it would replace changed first
)

// PolicyChange is a policy document that loosens a quorum wallet's rules,
// waiting for the quorum: it takes effect only once Needed distinct
// approvers of the wallet have approved it, and only over the policy it
// was proposed against (BaseHash).
type PolicyChange struct {
	ID         string
	OwnerID    string
	WalletID   string
	Level      PolicyLevel
	SubjectID  string
	Document   string // canonical JSON of the proposed policy
	Hash       string
	BaseHash   string // the hash of the policy it replaces ("" : none)
	ProposedBy string // "user:<id>"
	Needed     int
	Status     string // PolicyChange…
	CreatedAt  time.Time
	ExpiresAt  time.Time
	DecidedAt  time.Time
}

// PolicyChangeApproval is one approver's TOTP-proven approval of a change.
type PolicyChangeApproval struct {
	ChangeID string
	UserID   string
	At       time.Time
}

// PolicyChangeStore persists pending policy changes (part of Store).
type PolicyChangeStore interface {
	CreatePolicyChange(ctx context.Context, c *PolicyChange) error
	PolicyChange(ctx context.Context, id string) (*PolicyChange, error)
	// PolicyChangesOf lists a wallet's changes in status, oldest first.
	PolicyChangesOf(ctx context.Context, walletID, status string) ([]*PolicyChange, error)
	// SetPolicyChangeStatus moves a pending change to status; Conflict if
	// it is no longer pending.
	SetPolicyChangeStatus(ctx context.Context, id, status string, at time.Time) error
	// AddPolicyChangeApproval records one approval; Conflict if the user
	// approved the change already.
	AddPolicyChangeApproval(ctx context.Context, a *PolicyChangeApproval) error
	PolicyChangeApprovals(ctx context.Context, changeID string) ([]*PolicyChangeApproval, error)
}
