package sqlite

import (
	"context"

	"github.com/countersign/countersign"
)

// The owners' management of invitations and their own webhooks
// (countersign.ApproverAdminStore).

var _ countersign.ApproverAdminStore = (*Store)(nil)

func (s *Store) InvitationsOfWallet(ctx context.Context, walletID string) ([]*countersign.Invitation, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+invitationCols+` FROM approver_invitations WHERE wallet_id = ? AND accepted_at = 0 ORDER BY created_at, id`, walletID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanInvitation)
}

func (s *Store) DeleteInvitation(ctx context.Context, id string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM approver_invitations WHERE id = ? AND accepted_at = 0`, id)
	return mustAffect(res, err, "invitation")
}

// DeleteWebhook deletes the deliveries first: they reference the webhook,
// and a pending one left behind would be sent to a URL its owner removed.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = ?`, id); err != nil {
			return err
		}
		res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM webhooks WHERE id = ?`, id)
		return mustAffect(res, err, "webhook")
	})
}
