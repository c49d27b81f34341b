package postgres

import (
	"context"

	"github.com/countersign/countersign"
)

// ---- chain identity (one row) and nonce counter resets

func (s *Store) ChainIdentity(ctx context.Context) (*countersign.ChainIdentity, error) {
	var id countersign.ChainIdentity
	var embedded int
	var at int64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT chain_id, genesis_hash, embedded, recorded_at FROM chain_identity WHERE id = 1`).
		Scan(&id.ChainID, &id.GenesisHash, &embedded, &at)
	if err != nil {
		return nil, notFound("chain identity", err)
	}
	id.Embedded, id.RecordedAt = embedded == 1, fromTS(at)
	return &id, nil
}

func (s *Store) SetChainIdentity(ctx context.Context, id *countersign.ChainIdentity) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO chain_identity (id, chain_id, genesis_hash, embedded, recorded_at) VALUES (1,?,?,?,?)
 ON CONFLICT (id) DO UPDATE SET chain_id = excluded.chain_id, genesis_hash = excluded.genesis_hash,
 embedded = excluded.embedded, recorded_at = excluded.recorded_at`,
		id.ChainID, id.GenesisHash, b2i(id.Embedded), ts(id.RecordedAt))
	return err
}

func (s *Store) ResetNonces(ctx context.Context, chainID int64) (int64, error) {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM nonces WHERE chain_id = ?`, chainID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
