package core

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// A wallet's key is where its row's KeyFormat says: sealed by this server
// (kdb, sealed: the default signer), or with an external backend — the
// operator's keystore file, an AWS KMS key — that signs for it without
// the server ever holding the key. Every signature (execute, a fee bump,
// cancel_onchain, a message, an x402 authorization) goes through the
// wallet's own backend, so the approval, policy and audit path is the
// same whichever holds the key.

// walletSigners is the Signer the service signs through: it hands each
// wallet to the backend its key format names.
type walletSigners struct {
	def countersign.Signer
	by  map[string]countersign.Signer
}

// routeSigners routes to by's backends and def. Even with no backend
// loaded it routes: a wallet of an unloaded backend gets a clear
// Unavailable, never an attempt by the default signer.
func routeSigners(def countersign.Signer, by map[string]countersign.Signer) countersign.Signer {
	return walletSigners{def: def, by: by}
}

func (r walletSigners) pick(w *countersign.Wallet) (countersign.Signer, error) {
	if countersign.WalletSignerName(w.KeyFormat) == "sealed" {
		return r.def, nil
	}
	if sg := r.by[w.KeyFormat]; sg != nil {
		return sg, nil
	}
	return nil, unloadedSigner(w)
}

func unloadedSigner(w *countersign.Wallet) error {
	return countersign.Errorf(countersign.Unavailable, "wallet %s's key is held by the %s signer, which this server has not loaded (%s): it cannot sign now",
		w.Address, w.KeyFormat, signerSetting(w.KeyFormat))
}

func signerSetting(format string) string {
	switch format {
	case countersign.WalletKeyKeystore:
		return "set OPERATOR_KEYSTORE_PATH and OPERATOR_WALLET_PASSPHRASE"
	case countersign.WalletKeyAWSKMS:
		return "set OPERATOR_KMS_KEY"
	}
	return "unknown signer"
}

// NewKey always creates a key the server holds: external backends hold
// the keys they were given.
func (r walletSigners) NewKey(ctx context.Context, walletID string) (string, string, []byte, error) {
	return r.def.NewKey(ctx, walletID)
}

func (r walletSigners) SignTx(ctx context.Context, w *countersign.Wallet, tx *countersign.UnsignedTx) ([]byte, string, error) {
	sg, err := r.pick(w)
	if err != nil {
		return nil, "", err
	}
	return sg.SignTx(ctx, w, tx)
}

func (r walletSigners) SignHash(ctx context.Context, w *countersign.Wallet, hash []byte) ([]byte, error) {
	sg, err := r.pick(w)
	if err != nil {
		return nil, err
	}
	return sg.SignHash(ctx, w, hash)
}

var _ countersign.Signer = walletSigners{}

// OperatorKey is an external signer's key to keep a wallet for.
type OperatorKey struct {
	Format  string // countersign.WalletKeyKeystore or WalletKeyAWSKMS
	Address string // the key's address (EIP-55)
}

// AttachOperatorWallet makes sure the user named owner has a wallet for
// key: it creates one (name "operator", audited wallet.attach) the first
// time and returns it; a later start finds it. The owner then creates
// agents and policies for it like for any wallet. Refused (and the server
// does not start) when owner is no user, or the address is already a
// wallet of someone else or with its key elsewhere: a key can back one
// wallet only, and never silently changes hands.
func (s *Service) AttachOperatorWallet(ctx context.Context, owner string, key OperatorKey, log *slog.Logger) (*countersign.Wallet, error) {
	if s.cfg.Signers[key.Format] == nil {
		return nil, fmt.Errorf("the %s signer is not loaded", key.Format)
	}
	u, err := s.store.UserByName(ctx, configuredUsername(owner))
	if countersign.ErrorCode(err) == countersign.NotFound {
		return nil, fmt.Errorf("OPERATOR_OWNER %q is no registered user: register that user first (or unset OPERATOR_OWNER to start without the operator wallet)", owner)
	}
	if err != nil {
		return nil, err
	}
	addr, err := ParseAddress("address", key.Address)
	if err != nil {
		return nil, err
	}
	w, err := s.store.WalletByAddress(ctx, addr.Hex())
	switch {
	case err == nil:
		if w.OwnerID != u.ID || w.KeyFormat != key.Format {
			return nil, fmt.Errorf("the operator key %s is already wallet %s of another owner or with its key elsewhere (%s): refusing to attach it to %s", w.Address, w.ID, countersign.WalletSignerName(w.KeyFormat), owner)
		}
		return w, nil
	case countersign.ErrorCode(err) != countersign.NotFound:
		return nil, err
	}
	w = &countersign.Wallet{ID: uuid.NewString(), OwnerID: u.ID, Name: "operator", Address: addr.Hex(), KeyFormat: key.Format, KeySealed: []byte{}, CreatedAt: s.clock.Now().UTC()}
	err = s.Record(ctx, countersign.Change{Owner: u.ID, Actor: SystemOwner, Action: "wallet.attach", Subject: w.ID,
		Details: map[string]string{"address": w.Address, "signer": key.Format}},
		func(ctx context.Context) error { return s.store.CreateWallet(ctx, w) })
	if err != nil {
		return nil, err
	}
	if log != nil {
		log.Info("attached the operator key as a wallet", "wallet_id", w.ID, "address", w.Address, "signer", key.Format, "owner", owner)
	}
	return w, nil
}

// configuredUsername is a configured username as registration stores it;
// one registration would refuse matches no user.
func configuredUsername(name string) string {
	if n, err := NormalizeUsername(name); err == nil {
		return n
	}
	return strings.TrimSpace(name)
}
