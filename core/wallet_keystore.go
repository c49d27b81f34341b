package core

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// Moving a key in and out of the countersigned wallets as a Web3 Secret
// Storage v3 keystore file. Both need the owner's password and a TOTP
// code, like every action that changes what a wallet can spend; both are
// audited. Export hands out the key itself — whoever holds the file and
// its passphrase can spend without any human here — so it is refused for
// a frozen wallet and for a wallet with approvers besides its owner, whose
// quorum a key outside would undercut.

// MinExportPassphrase is the shortest passphrase an exported keystore
// file may be encrypted under.
const MinExportPassphrase = 12

// ImportWallet creates a wallet for p from a v3 keystore file.
// p is a user with MFA on (http: UserMFA).
func (s *Service) ImportWallet(ctx context.Context, p *Principal, password, code, name string, keystoreJSON []byte, passphrase string) (*countersign.Wallet, error) {
	name = strings.TrimSpace(name)
	if err := CheckText("name", name, MaxName, false); err != nil {
		return nil, err
	}
	if len(keystoreJSON) == 0 {
		return nil, countersign.Errorf(countersign.BadRequest, "keystore is required: the v3 keystore file's JSON")
	}
	imp, ok := s.keys.(countersign.KeystoreImporter)
	if !ok {
		return nil, countersign.Errorf(countersign.Unavailable, "this server's wallet signer cannot import keys")
	}
	if err := s.checkPassword(ctx, p.User, password); err != nil {
		return nil, err
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	existing, err := s.store.WalletsByOwner(ctx, p.User.ID)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = fmt.Sprintf("wallet %d", len(existing)+1)
	}
	w := &countersign.Wallet{ID: uuid.NewString(), OwnerID: p.User.ID, Name: name, CreatedAt: s.clock.Now().UTC()}
	taken := func(addr string) error {
		if _, err := s.store.WalletByAddress(ctx, addr); err == nil {
			// the same answer whoever owns it: no probing of others' wallets
			return countersign.Errorf(countersign.Conflict, "a wallet with address %s already exists on this server", addr)
		} else if countersign.ErrorCode(err) != countersign.NotFound {
			return err
		}
		return nil
	}
	w.Address, w.KeyFormat, w.KeySealed, err = imp.ImportKeystore(ctx, w.ID, keystoreJSON, passphrase, taken)
	if err != nil {
		return nil, err
	}
	err = s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "wallet.import", Subject: w.ID,
		Details: map[string]string{"address": w.Address, "name": name, "from": "v3 keystore"}},
		func(ctx context.Context) error { return s.store.CreateWallet(ctx, w) })
	if err != nil {
		return nil, err
	}
	return w, nil
}

// ExportWallet returns the key of p's wallet at address as a v3 keystore
// file encrypted under passphrase (scrypt n = scryptN, p = 1).
// p is a user with MFA on (http: UserMFA).
func (s *Service) ExportWallet(ctx context.Context, p *Principal, address, password, code, passphrase string, scryptN int) ([]byte, error) {
	if utf8.RuneCountInString(passphrase) < MinExportPassphrase {
		return nil, countersign.Errorf(countersign.BadRequest, "export_passphrase must have at least %d characters: the file is only as safe as it", MinExportPassphrase)
	}
	exp, ok := s.keys.(countersign.KeystoreExporter)
	if !ok {
		return nil, countersign.Errorf(countersign.Unavailable, "this server's wallet signer cannot export keys")
	}
	if err := s.checkPassword(ctx, p.User, password); err != nil {
		return nil, err
	}
	w, err := s.ownedWallet(ctx, p, address)
	if err != nil {
		return nil, err
	}
	if name := countersign.WalletSignerName(w.KeyFormat); name != "sealed" {
		return nil, countersign.Errorf(countersign.BadRequest, "wallet %s's key is held by the %s signer, not by this server: there is nothing here to export", w.Address, name)
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	if err := s.frozen(ctx, w.OwnerID, w.ID); err != nil {
		return nil, err
	}
	approvers, err := s.store.Approvers(ctx, w.ID)
	if err != nil {
		return nil, err
	}
	if len(approvers) > 0 {
		return nil, countersign.Errorf(countersign.Forbidden, "wallet %s has %d approver(s) besides its owner: an exported key would spend without them; remove them first", w.Address, len(approvers))
	}
	// Encrypted first (scrypt takes a second: not inside a write
	// transaction), handed out only once its audit entry is written.
	file, err := exp.ExportKeystore(ctx, w, passphrase, scryptN, 1)
	if err != nil {
		return nil, err
	}
	if err := s.Record(ctx, countersign.Change{Owner: w.OwnerID, Actor: p.Actor(), Action: "wallet.export", Subject: w.ID,
		Details: map[string]any{"address": w.Address, "format": "web3-v3", "scrypt_n": scryptN}}, nil); err != nil {
		clear(file)
		return nil, err
	}
	return file, nil
}
