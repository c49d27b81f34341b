package core

import (
	"context"
	"strings"

	"github.com/countersign/countersign"
)

// The owner's address book (docs/APPROVER.md): names a user gives
// addresses, shown beside every address on the review pages so a
// look-alike of a known payee stands out as unlabelled. Only the user
// writes it (never an agent: the routes take a user session), so nothing
// an agent sends can put a trusted name on its own address.

// MaxAddressBook bounds one user's address book.
const MaxAddressBook = 1000

// AddressBook lists the caller's labels by address.
func (s *Service) AddressBook(ctx context.Context, p *Principal) ([]*countersign.AddressLabel, error) {
	return s.store.AddressLabels(ctx, p.User.ID)
}

// AddressLabels is the caller's address book as lower-case address →
// label, for display. A store error shows no labels (labels only add
// context; the address is always shown).
func (s *Service) AddressLabels(ctx context.Context, p *Principal) map[string]string {
	out := map[string]string{}
	if p == nil || p.User == nil {
		return out
	}
	list, err := s.store.AddressLabels(ctx, p.User.ID)
	if err != nil {
		s.log.WarnContext(ctx, "address book unavailable", "err", err)
		return out
	}
	for _, l := range list {
		out[strings.ToLower(l.Address)] = l.Label
	}
	return out
}

// SetAddressLabel names address in the caller's book (replacing a label it
// had). The label is one line of at most MaxName characters; audited.
func (s *Service) SetAddressLabel(ctx context.Context, p *Principal, address, label string) (*countersign.AddressLabel, error) {
	a, err := ParseAddress("address", address)
	if err != nil {
		return nil, err
	}
	label = strings.TrimSpace(label)
	if label == "" {
		return nil, countersign.Errorf(countersign.BadRequest, "label must not be empty")
	}
	if err := CheckText("label", label, MaxName, false); err != nil {
		return nil, err
	}
	list, err := s.store.AddressLabels(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	exists := false
	for _, l := range list {
		exists = exists || strings.EqualFold(l.Address, a.Hex())
	}
	if !exists && len(list) >= MaxAddressBook {
		return nil, countersign.Errorf(countersign.BadRequest, "the address book is full (%d entries): delete one first", MaxAddressBook)
	}
	l := &countersign.AddressLabel{OwnerID: p.User.ID, Address: a.Hex(), Label: label, CreatedAt: s.clock.Now().UTC()}
	err = s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "address_book.set", Subject: a.Hex(), Details: map[string]string{"label": label}},
		func(ctx context.Context) error { return s.store.PutAddressLabel(ctx, l) })
	if err != nil {
		return nil, err
	}
	return l, nil
}

// DeleteAddressLabel removes address from the caller's book; NotFound when
// it is not there. Audited.
func (s *Service) DeleteAddressLabel(ctx context.Context, p *Principal, address string) error {
	a, err := ParseAddress("address", address)
	if err != nil {
		return err
	}
	return s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "address_book.delete", Subject: a.Hex()},
		func(ctx context.Context) error { return s.store.DeleteAddressLabel(ctx, p.User.ID, a.Hex()) })
}
