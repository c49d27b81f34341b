package countersign

import "context"

// ApproverAdminStore is the part of the approval store (and so of Store)
// that lets owners manage what they set up: the invitations they sent and
// the users' own webhooks.
type ApproverAdminStore interface {
	// InvitationsOfWallet lists a wallet's open (unaccepted) invitations,
	// oldest first (expired ones too: the caller filters by its clock).
	InvitationsOfWallet(ctx context.Context, walletID string) ([]*Invitation, error)
	// DeleteInvitation removes an open invitation; NotFound if there is
	// no open invitation with id (an accepted one is an approver now).
	DeleteInvitation(ctx context.Context, id string) error
	// DeleteWebhook removes a webhook and its deliveries (pending ones are
	// never sent); NotFound if there is none.
	DeleteWebhook(ctx context.Context, id string) error
}
