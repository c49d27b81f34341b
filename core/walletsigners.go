package core

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	ethtypes "github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
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
	case countersign.WalletKeyDerived:
		return "set DEV_KEY_SERVICE_MASTER_SECRET or SIGNER_URL"
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

// derivedWallets backs wallets whose key is the derived-key signer's key
// of an omni_account (countersign.WalletKeyDerived; the row's KeySealed is
// the omni_account). Every signature is checked to recover to the
// wallet's address before it is used: a row naming another omni_account
// must never sign from another key.
type derivedWallets struct {
	ds countersign.DerivedDigestSigner
}

func (d derivedWallets) sign(ctx context.Context, w *countersign.Wallet, digest []byte) ([]byte, error) {
	omni := string(w.KeySealed)
	if !countersign.ValidOmniAccount(omni) {
		return nil, countersign.Errorf(countersign.Internal, "wallet %s names no valid omni_account", w.Address)
	}
	sig, err := d.ds.SignDigest(ctx, omni, digest)
	if err != nil {
		return nil, err
	}
	if len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
		return nil, countersign.Errorf(countersign.Internal, "the derived-key signer returned a malformed signature")
	}
	rsv := append([]byte(nil), sig...)
	rsv[64] -= 27
	pub, err := crypto.SigToPub(digest, rsv)
	if err != nil || !strings.EqualFold(crypto.PubkeyToAddress(*pub).Hex(), w.Address) {
		return nil, countersign.Errorf(countersign.Internal, "the derived-key signer signed for another address than wallet %s: refused", w.Address)
	}
	return sig, nil
}

func (derivedWallets) NewKey(context.Context, string) (string, string, []byte, error) {
	return "", "", nil, countersign.Errorf(countersign.BadRequest, "a derived wallet is made with POST /api/wallets/derived")
}

func (d derivedWallets) SignHash(ctx context.Context, w *countersign.Wallet, hash []byte) ([]byte, error) {
	if len(hash) != 32 {
		return nil, countersign.Errorf(countersign.Internal, "digest must be 32 bytes")
	}
	return d.sign(ctx, w, hash)
}

func (d derivedWallets) SignTx(ctx context.Context, w *countersign.Wallet, u *countersign.UnsignedTx) ([]byte, string, error) {
	signer := ethtypes.LatestSignerForChainID(u.ChainID)
	tx := ethsig.EIP1559Tx(u)
	sig, err := d.sign(ctx, w, signer.Hash(tx).Bytes())
	if err != nil {
		return nil, "", err
	}
	sig[64] -= 27
	signed, err := tx.WithSignature(signer, sig)
	if err != nil {
		return nil, "", err
	}
	return ethsig.Encode(signed)
}

var _ countersign.Signer = derivedWallets{}

// CreateDerivedWallet makes a countersigned wallet whose key is the
// derived-key signer's key of the omni_account an identity session
// (SIWE, email or OIDC login: /v1/auth/…) proves: the user holds that
// identity now, and the wallet — its spends prepared by agents, decided by
// the policy and approved like any other — signs with the identity's
// derived key. One wallet per identity (its address is unique).
// p is a user with MFA on (http: UserMFA); code is their TOTP code.
func (s *Service) CreateDerivedWallet(ctx context.Context, p *Principal, omniSession, code, name string) (*countersign.Wallet, error) {
	name = strings.TrimSpace(name)
	if err := CheckText("name", name, MaxName, false); err != nil {
		return nil, err
	}
	if s.cfg.Derived == nil {
		return nil, countersign.Errorf(countersign.SignerDisabled, "the derived-key signer is not configured on this server (DEV_KEY_SERVICE_MASTER_SECRET or SIGNER_URL)")
	}
	if _, ok := s.cfg.Derived.(countersign.DerivedDigestSigner); !ok {
		return nil, countersign.Errorf(countersign.Unavailable, "this derived-key signer cannot sign transactions")
	}
	sess, err := s.AuthenticateOmni(ctx, omniSession)
	if err != nil {
		return nil, err
	}
	if err := s.VerifyMFA(ctx, p.User.ID, code); err != nil {
		return nil, err
	}
	addr, err := s.cfg.Derived.DeriveAddress(ctx, sess.OmniAccount)
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = "derived " + addr[:8]
	}
	w := &countersign.Wallet{ID: uuid.NewString(), OwnerID: p.User.ID, Name: name, Address: common.HexToAddress(addr).Hex(),
		KeyFormat: countersign.WalletKeyDerived, KeySealed: []byte(sess.OmniAccount), CreatedAt: s.clock.Now().UTC()}
	err = s.Record(ctx, countersign.Change{Owner: p.User.ID, Actor: p.Actor(), Action: "wallet.create", Subject: w.ID,
		Details: map[string]string{"address": w.Address, "name": name, "signer": countersign.WalletKeyDerived}},
		func(ctx context.Context) error { return s.store.CreateWallet(ctx, w) })
	if err != nil {
		return nil, err
	}
	return w, nil
}
