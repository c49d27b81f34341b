// Package local implements countersign.Signer with keys held by this
// server: each wallet's key is a v1-kdb file in the KeyStore (the same
// format and port as the wallet daemon's, so the dir and store adapters
// hold both), encrypted under a random 32-byte unlock secret that the
// wallet row keeps sealed under the key-encryption key. A key is opened
// only for the moment of signing.
//
// The files are keyed ones (format version 2): the file key is HKDF of the
// unlock secret with the wallet id, not Argon2id of it. The secret is 32
// random bytes, so Argon2id added no strength, only ~5 ms of CPU and
// 8 MiB to every signature. Files written before (version 1, Argon2id at
// the format's minimum) still open, and are rewritten as keyed files under
// the same secret the first time they are opened (so the row is
// unchanged).
package local

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
	"github.com/countersign/countersign/keys/keystore"
)

// Params are the Argon2id parameters API wallet files had before they
// became keyed files (format version 2): the lowest the format allows.
// Files with them still open; new files have no KDF parameters.
var Params = keystore.Params{Time: 1, MemoryKiB: keystore.MinMemoryKiB, Threads: 1}

// Signer signs with the secp256k1 keys of API wallets.
type Signer struct {
	sealer countersign.Sealer
	keys   countersign.KeyStore
}

var _ countersign.Signer = (*Signer)(nil)

// New returns a Signer that keeps keys in keys and seals their unlock
// secrets with sealer.
func New(sealer countersign.Sealer, keys countersign.KeyStore) *Signer {
	return &Signer{sealer: sealer, keys: keys}
}

// keyRecord is the associated data of a legacy sealed key; secretRecord
// that of a keystore file's unlock secret. They differ, so one cannot be
// passed off as the other.
func keyRecord(walletID string) string    { return "wallet:" + walletID }
func secretRecord(walletID string) string { return "wallet-kdb-secret:" + walletID }

// fileMeta is the public metadata of an API wallet's file. Kind "api"
// keeps it out of the daemon's wallets.
type fileMeta struct {
	WalletID string `json:"wallet_id"`
	Kind     string `json:"kind"`
	Curve    string `json:"curve"`
	Address  string `json:"address"`
}

// KindAPI is the metadata kind of API wallet files.
const KindAPI = "api"

// NewKey generates a secp256k1 key, writes it to the keystore and returns
// its address and sealed unlock secret, bound to walletID.
func (s *Signer) NewKey(ctx context.Context, walletID string) (string, string, []byte, error) {
	key, err := crypto.GenerateKey()
	if err != nil {
		return "", "", nil, err
	}
	defer keystore.ZeroKey(key)
	raw := crypto.FromECDSA(key)
	defer clear(raw)
	addr := crypto.PubkeyToAddress(key.PublicKey).Hex()
	sealed, err := s.store(ctx, walletID, addr, raw)
	if err != nil {
		return "", "", nil, err
	}
	return addr, countersign.WalletKeyKDB, sealed, nil
}

// ImportKeystore keeps the key of a v3 keystore file for walletID, as
// NewKey keeps a generated one (countersign.KeystoreImporter).
func (s *Signer) ImportKeystore(ctx context.Context, walletID string, keystoreJSON []byte, passphrase string, check func(string) error) (string, string, []byte, error) {
	raw, a, err := keystore.ImportV3(keystoreJSON, passphrase)
	switch {
	case errors.Is(err, keystore.ErrDecrypt):
		return "", "", nil, countersign.Errorf(countersign.BadRequest, "the keystore passphrase is wrong")
	case err != nil:
		return "", "", nil, countersign.Wrap(countersign.BadRequest, err, strings.TrimPrefix(err.Error(), "keystore: "))
	}
	defer clear(raw)
	addr := a.Hex()
	if err := check(addr); err != nil {
		return "", "", nil, err
	}
	sealed, err := s.store(ctx, walletID, addr, raw)
	if err != nil {
		return "", "", nil, err
	}
	return addr, countersign.WalletKeyKDB, sealed, nil
}

// ExportKeystore writes w's key as a v3 keystore file under passphrase
// (countersign.KeystoreExporter).
func (s *Signer) ExportKeystore(ctx context.Context, w *countersign.Wallet, passphrase string, scryptN, scryptP int) ([]byte, error) {
	key, err := s.open(ctx, w)
	if err != nil {
		return nil, err
	}
	defer keystore.ZeroKey(key)
	raw := crypto.FromECDSA(key)
	defer clear(raw)
	return keystore.ExportV3(raw, passphrase, scryptN, scryptP)
}

// store writes raw as walletID's keystore file under a fresh unlock secret
// (the write is verified by decrypting what was written) and returns the
// secret sealed.
func (s *Signer) store(ctx context.Context, walletID, addr string, raw []byte) ([]byte, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	defer clear(secret)
	if err := s.putFile(ctx, walletID, addr, raw, secret); err != nil {
		return nil, err
	}
	return s.sealer.Seal(secretRecord(walletID), secret)
}

// putFile writes raw as walletID's keyed file under secret, verified by
// opening what was written before it replaces anything.
func (s *Signer) putFile(ctx context.Context, walletID, addr string, raw, secret []byte) error {
	meta, _ := json.Marshal(fileMeta{WalletID: walletID, Kind: KindAPI, Curve: "secp256k1", Address: addr})
	if err := keystore.PutKeyed(ctx, s.keys, walletID, raw, secret, meta); err != nil {
		return countersign.Wrap(countersign.Internal, err, "cannot write the wallet's keystore file")
	}
	return nil
}

// MigrateKey moves a legacy wallet's sealed key into the keystore and
// returns the new format and sealed unlock secret for its row. Writing the
// file again is harmless, so a migration cut short is simply redone.
func (s *Signer) MigrateKey(ctx context.Context, w *countersign.Wallet) (string, []byte, error) {
	if w.KeyFormat != countersign.WalletKeySealed {
		return "", nil, countersign.Errorf(countersign.Conflict, "wallet %s is already in the keystore", w.ID)
	}
	key, err := s.open(ctx, w)
	if err != nil {
		return "", nil, err
	}
	defer keystore.ZeroKey(key)
	raw := crypto.FromECDSA(key)
	defer clear(raw)
	sealed, err := s.store(ctx, w.ID, w.Address, raw)
	if err != nil {
		return "", nil, err
	}
	return countersign.WalletKeyKDB, sealed, nil
}

// CheckKey reports whether the wallet's key is where its row says, without
// opening it: for the keystore format, a readable file of this wallet.
func (s *Signer) CheckKey(ctx context.Context, w *countersign.Wallet) error {
	if w.KeyFormat != countersign.WalletKeyKDB {
		return nil // sealed in the row itself
	}
	_, err := s.readFile(ctx, w)
	return err
}

// readFile returns the wallet's keystore file once its metadata — readable
// without the secret, and authenticated by decryption — names this wallet.
func (s *Signer) readFile(ctx context.Context, w *countersign.Wallet) ([]byte, error) {
	blob, _, err := s.readFileHeader(ctx, w)
	return blob, err
}

// readFileHeader is readFile with the file's parsed header.
func (s *Signer) readFileHeader(ctx context.Context, w *countersign.Wallet) ([]byte, *keystore.Header, error) {
	blob, err := s.keys.Get(ctx, w.ID)
	if err != nil {
		return nil, nil, countersign.Wrap(countersign.Internal, err, "wallet keystore file is missing")
	}
	h, err := keystore.ReadHeader(blob)
	if err != nil {
		return nil, nil, countersign.Wrap(countersign.Internal, err, "wallet keystore file is unreadable")
	}
	var m fileMeta
	if json.Unmarshal(h.Meta, &m) != nil || m.WalletID != w.ID || m.Kind != KindAPI || m.Address != w.Address {
		return nil, nil, countersign.Errorf(countersign.Internal, "the keystore file of wallet %s belongs to another wallet", w.ID)
	}
	return blob, h, nil
}

// open returns the wallet's key, checked against the wallet's address.
// The caller must zero it.
func (s *Signer) open(ctx context.Context, w *countersign.Wallet) (*ecdsa.PrivateKey, error) {
	var raw []byte
	switch w.KeyFormat {
	case countersign.WalletKeyKDB:
		secret, err := s.sealer.Open(secretRecord(w.ID), w.KeySealed)
		if err != nil {
			return nil, countersign.Wrap(countersign.Internal, err, "wallet key cannot be opened")
		}
		defer clear(secret)
		blob, h, err := s.readFileHeader(ctx, w)
		if err != nil {
			return nil, err
		}
		// the metadata checked above is authenticated by either decryption
		if h.Keyed() {
			raw, _, err = keystore.DecryptKeyed(blob, secret, w.ID)
		} else {
			raw, _, err = keystore.Decrypt(blob, secret)
		}
		if err != nil {
			return nil, countersign.Wrap(countersign.Internal, err, "wallet keystore file cannot be opened")
		}
		if !h.Keyed() {
			if err := s.upgrade(ctx, w, raw, secret); err != nil {
				clear(raw)
				return nil, err
			}
		}
	case countersign.WalletKeySealed:
		var err error
		raw, err = s.sealer.Open(keyRecord(w.ID), w.KeySealed)
		if err != nil {
			return nil, countersign.Wrap(countersign.Internal, err, "wallet key cannot be opened")
		}
	default:
		return nil, countersign.Errorf(countersign.Internal, "wallet key format %q is unknown", w.KeyFormat)
	}
	key, err := crypto.ToECDSA(raw)
	clear(raw)
	if err != nil {
		return nil, countersign.Wrap(countersign.Internal, err, "wallet key is invalid")
	}
	if crypto.PubkeyToAddress(key.PublicKey) != common.HexToAddress(w.Address) {
		keystore.ZeroKey(key)
		return nil, countersign.Errorf(countersign.Internal, "wallet key does not match its address")
	}
	return key, nil
}

// upgrade rewrites a version 1 (Argon2id) file as a keyed one under the
// same secret, once its key has been checked against the wallet's
// address, so later signatures skip the KDF. It fails closed: a rewrite
// that does not verify is an error, and the signature is not made (with
// KEYSTORE=store the rewrite is part of the caller's transaction, which
// then rolls back, leaving the old file).
func (s *Signer) upgrade(ctx context.Context, w *countersign.Wallet, raw, secret []byte) error {
	key, err := crypto.ToECDSA(raw)
	if err != nil {
		return countersign.Wrap(countersign.Internal, err, "wallet key is invalid")
	}
	ok := crypto.PubkeyToAddress(key.PublicKey) == common.HexToAddress(w.Address)
	keystore.ZeroKey(key)
	if !ok {
		return countersign.Errorf(countersign.Internal, "wallet key does not match its address")
	}
	return s.putFile(ctx, w.ID, w.Address, raw, secret)
}

// SignHash signs a 32-byte digest and returns r ‖ s ‖ v with v = 27 or 28,
// the form personal_sign and eth_signTypedData_v4 return.
func (s *Signer) SignHash(ctx context.Context, w *countersign.Wallet, hash []byte) ([]byte, error) {
	if len(hash) != 32 {
		return nil, countersign.Errorf(countersign.Internal, "digest must be 32 bytes")
	}
	key, err := s.open(ctx, w)
	if err != nil {
		return nil, err
	}
	defer keystore.ZeroKey(key)
	return ethsig.SignHash(key, hash)
}

// SignTx signs an EIP-1559 transaction with the wallet's key.
func (s *Signer) SignTx(ctx context.Context, w *countersign.Wallet, u *countersign.UnsignedTx) ([]byte, string, error) {
	key, err := s.open(ctx, w)
	if err != nil {
		return nil, "", err
	}
	defer keystore.ZeroKey(key)
	return ethsig.SignTx(key, u)
}
