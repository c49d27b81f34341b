package postgres

import (
	"context"

	"github.com/countersign/countersign"
)

// The approver's address book (countersign.AddressBookStore; migration 00021).

var _ countersign.AddressBookStore = (*Store)(nil)

func (s *Store) PutAddressLabel(ctx context.Context, l *countersign.AddressLabel) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO address_labels (owner_id, address, label, created_at) VALUES (?,?,?,?)
		ON CONFLICT (owner_id, address) DO UPDATE SET label = excluded.label`,
		l.OwnerID, l.Address, l.Label, ts(l.CreatedAt))
	return err
}

func (s *Store) AddressLabels(ctx context.Context, ownerID string) ([]*countersign.AddressLabel, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT owner_id, address, label, created_at FROM address_labels WHERE owner_id = ? ORDER BY address LIMIT 10000`, ownerID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.AddressLabel, error) {
		var l countersign.AddressLabel
		var at int64
		if err := r.Scan(&l.OwnerID, &l.Address, &l.Label, &at); err != nil {
			return nil, err
		}
		l.CreatedAt = fromTS(at)
		return &l, nil
	})
}

func (s *Store) DeleteAddressLabel(ctx context.Context, ownerID, address string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM address_labels WHERE owner_id = ? AND address = ?`, ownerID, address)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return err
		}
		return countersign.Errorf(countersign.NotFound, "no address book entry for %s", address)
	}
	return nil
}
