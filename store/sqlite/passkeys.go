package sqlite

import (
	"context"
	"time"

	"github.com/countersign/countersign"
)

// Passkeys and their ceremonies (countersign.PasskeyStore; migration 00021).

var _ countersign.PasskeyStore = (*Store)(nil)

func (s *Store) CreatePasskey(ctx context.Context, k *countersign.Passkey) error {
	res, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO passkeys (id, user_id, name, credential, created_at, last_used_at) VALUES (?,?,?,?,?,0) ON CONFLICT (id) DO NOTHING`,
		k.ID, k.UserID, k.Name, k.Credential, ts(k.CreatedAt))
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return err
		}
		return countersign.Errorf(countersign.Conflict, "this passkey is already registered")
	}
	return nil
}

func (s *Store) Passkeys(ctx context.Context, userID string) ([]*countersign.Passkey, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT id, user_id, name, credential, created_at, last_used_at FROM passkeys WHERE user_id = ? ORDER BY created_at, id LIMIT 100`, userID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.Passkey, error) {
		var k countersign.Passkey
		var at, used int64
		if err := r.Scan(&k.ID, &k.UserID, &k.Name, &k.Credential, &at, &used); err != nil {
			return nil, err
		}
		k.CreatedAt, k.LastUsedAt = fromTS(at), fromTS(used)
		return &k, nil
	})
}

func (s *Store) UpdatePasskey(ctx context.Context, id string, credential []byte, usedAt time.Time) error {
	_, err := s.writer(ctx).ExecContext(ctx, `UPDATE passkeys SET credential = ?, last_used_at = ? WHERE id = ?`, credential, ts(usedAt), id)
	return err
}

func (s *Store) DeletePasskey(ctx context.Context, userID, id string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM passkeys WHERE user_id = ? AND id = ?`, userID, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return err
		}
		return countersign.Errorf(countersign.NotFound, "passkey not found")
	}
	return nil
}

func (s *Store) PutPasskeyChallenge(ctx context.Context, c *countersign.PasskeyChallenge) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO passkey_challenges (id, user_id, purpose, tx_id, digest, nonce, session, expires_at) VALUES (?,?,?,?,?,?,?,?)`,
		c.ID, c.UserID, c.Purpose, c.TxID, c.Digest, c.Nonce, c.Session, ts(c.ExpiresAt))
	return err
}

func (s *Store) TakePasskeyChallenge(ctx context.Context, id string, now time.Time) (*countersign.PasskeyChallenge, error) {
	var c countersign.PasskeyChallenge
	var exp int64
	err := s.writer(ctx).QueryRowContext(ctx, `DELETE FROM passkey_challenges WHERE id = ? RETURNING id, user_id, purpose, tx_id, digest, nonce, session, expires_at`, id).
		Scan(&c.ID, &c.UserID, &c.Purpose, &c.TxID, &c.Digest, &c.Nonce, &c.Session, &exp)
	if err != nil {
		return nil, countersign.Errorf(countersign.NotFound, "the passkey challenge is unknown or was used")
	}
	c.ExpiresAt = fromTS(exp)
	if !now.Before(c.ExpiresAt) {
		return nil, countersign.Errorf(countersign.NotFound, "the passkey challenge has expired")
	}
	// expired ceremonies of anyone are swept on the way
	_, _ = s.writer(ctx).ExecContext(ctx, `DELETE FROM passkey_challenges WHERE expires_at < ?`, ts(now))
	return &c, nil
}
