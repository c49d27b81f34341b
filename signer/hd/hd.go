// Package hd implements countersign.HDKeyring, the wallet daemon's keys:
// BIP-39 seeds and single keys sealed as v1-kdb files in a KeyStore,
// unlocked into memory until a deadline, BIP-32/BIP-44 (secp256k1) and
// SLIP-10 (ed25519) derivation, and the signatures. It is the only code
// that holds a daemon private key; the daemon service decides when one may
// be used.
package hd

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	hdkeys "github.com/countersign/countersign/keys/hd"
	"github.com/countersign/countersign/keys/keystore"
)

// DefaultPaths are the derivation paths used when none is given.
var DefaultPaths = map[string]string{countersign.CurveEd25519: hdkeys.DefaultEd25519Path, countersign.CurveSecp256k1: hdkeys.DefaultSecp256k1Path}

// CoinType is the provisional coin type in DefaultPaths.
const CoinType = hdkeys.CoinType

// apiWalletKind marks the keystore files of API wallets (signer/local),
// which share the KeyStore but are not the daemon's: never listed, never
// unlocked here.
const apiWalletKind = "api"

// walletMeta is the readable metadata of a daemon wallet's file. Its JSON
// is the file format: existing files must keep opening.
type walletMeta struct {
	WalletID  string    `json:"wallet_id"`
	Name      string    `json:"name"`
	Kind      string    `json:"kind"` // "hd" (secret = BIP-39 seed) | "key" (secret = private key)
	Curve     string    `json:"curve,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// Config configures a Keyring.
type Config struct {
	// Argon2 is the cost new wallet files (and ed25519 exports) are
	// sealed with; default keystore.DefaultParams (ARGON_TIME,
	// ARGON_MEMORY_MB, ARGON_PARALLELISM).
	Argon2 keystore.Params
}

// Keyring is the HD keyring over a KeyStore.
type Keyring struct {
	keys  countersign.KeyStore
	clock countersign.Clock
	cfg   Config

	mu       sync.RWMutex
	unlocked map[string]*unlocked
}

var _ countersign.HDKeyring = (*Keyring)(nil)

// New returns a keyring over ks; clock tells when an unlock's deadline has
// passed.
func New(ks countersign.KeyStore, clock countersign.Clock, cfg Config) *Keyring {
	if cfg.Argon2.Time == 0 {
		cfg.Argon2 = keystore.DefaultParams
	}
	if clock == nil {
		clock = countersign.SystemClock{}
	}
	return &Keyring{keys: ks, clock: clock, cfg: cfg, unlocked: map[string]*unlocked{}}
}

// Parameters are the public parameters shown by /about.
func (k *Keyring) Parameters() map[string]any {
	return map[string]any{"argon2id": k.cfg.Argon2, "default_paths": DefaultPaths, "coin_type": CoinType}
}

// ValidAddress reports whether s is an ait1… address.
func (k *Keyring) ValidAddress(s string) bool {
	_, err := hdkeys.ParseAddress(s)
	return err == nil
}

// seal encrypts and writes a new wallet file.
func (k *Keyring) seal(ctx context.Context, w *countersign.HDWallet, secret []byte, password string) error {
	meta, _ := json.Marshal(walletMeta{WalletID: w.ID, Name: w.Name, Kind: w.Kind, Curve: w.Curve, CreatedAt: w.CreatedAt})
	return keystore.Put(ctx, k.keys, w.ID, secret, []byte(password), meta, k.cfg.Argon2)
}

// CreateMnemonic seals a seed wallet from a new mnemonic of 12 or 24 words.
func (k *Keyring) CreateMnemonic(ctx context.Context, w *countersign.HDWallet, password string, words int) (string, error) {
	mnemonic, err := hdkeys.NewMnemonic(words)
	if err != nil {
		return "", countersign.Errorf(countersign.BadRequest, "mnemonic_len must be 12 or 24")
	}
	seed, err := hdkeys.Seed(mnemonic, "")
	if err != nil {
		return "", err
	}
	defer clear(seed)
	w.Kind, w.Curve = countersign.HDWalletSeed, ""
	if err := k.seal(ctx, w, seed, password); err != nil {
		return "", err
	}
	return mnemonic, nil
}

// ImportMnemonic seals a seed wallet from a mnemonic and passphrase.
func (k *Keyring) ImportMnemonic(ctx context.Context, w *countersign.HDWallet, password, mnemonic, passphrase string) error {
	seed, err := hdkeys.Seed(mnemonic, passphrase)
	if err != nil {
		return countersign.Errorf(countersign.BadRequest, "%v", err)
	}
	defer clear(seed)
	w.Kind, w.Curve = countersign.HDWalletSeed, ""
	return k.seal(ctx, w, seed, password)
}

// ImportKey seals a single-key wallet of w.Curve.
func (k *Keyring) ImportKey(ctx context.Context, w *countersign.HDWallet, password, keyHex string) (*countersign.HDPublicKey, error) {
	key, err := hex.DecodeString(strings.TrimPrefix(keyHex, "0x"))
	if err != nil || len(key) != 32 {
		return nil, countersign.Errorf(countersign.BadRequest, "private_key_hex must be 32 bytes of hex")
	}
	defer clear(key)
	return k.sealKey(ctx, w, w.Curve, key, password)
}

// ImportKeystore seals a single-key secp256k1 wallet from a v3 keystore.
func (k *Keyring) ImportKeystore(ctx context.Context, w *countersign.HDWallet, password string, keystoreJSON []byte, keystorePassword string) (*countersign.HDPublicKey, error) {
	if len(keystoreJSON) == 0 {
		return nil, countersign.Errorf(countersign.BadRequest, "keystore_json is required")
	}
	key, _, err := keystore.ImportV3(keystoreJSON, keystorePassword)
	switch {
	case errors.Is(err, keystore.ErrDecrypt):
		return nil, countersign.Errorf(countersign.BadPassword, "wrong keystore_password (or the keystore was altered)")
	case err != nil:
		return nil, countersign.Errorf(countersign.BadRequest, "keystore_json: %v", err)
	}
	defer clear(key)
	return k.sealKey(ctx, w, countersign.CurveSecp256k1, key, password)
}

func (k *Keyring) sealKey(ctx context.Context, w *countersign.HDWallet, curve string, key []byte, password string) (*countersign.HDPublicKey, error) {
	pub, err := publicKeyOf(curve, "", key)
	if err != nil {
		return nil, err
	}
	w.Kind, w.Curve = countersign.HDWalletKey, curve
	if err := k.seal(ctx, w, key, password); err != nil {
		return nil, err
	}
	return pub, nil
}

// publicKeyOf is what a private key shows.
func publicKeyOf(curve, path string, priv []byte) (*countersign.HDPublicKey, error) {
	out := &countersign.HDPublicKey{Curve: curve, Path: path}
	switch curve {
	case countersign.CurveEd25519:
		out.PublicKey = ed25519.NewKeyFromSeed(priv).Public().(ed25519.PublicKey)
	case countersign.CurveSecp256k1:
		ec, err := crypto.ToECDSA(priv)
		if err != nil {
			return nil, countersign.Errorf(countersign.BadRequest, "not a valid secp256k1 private key")
		}
		defer keystore.ZeroKey(ec)
		out.PublicKey = crypto.CompressPubkey(&ec.PublicKey)
		out.EVMAddress = crypto.PubkeyToAddress(ec.PublicKey).Hex()
	default:
		return nil, countersign.Errorf(countersign.BadRequest, "curve must be ed25519 or secp256k1")
	}
	addr, err := hdkeys.Address(out.PublicKey)
	if err != nil {
		return nil, err
	}
	out.Address = addr
	return out, nil
}

// readMeta reads a file's readable metadata; ok is false for files that
// are not daemon wallets (unreadable, or an API wallet's).
func readMeta(blob []byte) (m walletMeta, ok bool) {
	h, err := keystore.ReadHeader(blob)
	if err != nil {
		return m, false
	}
	if json.Unmarshal(h.Meta, &m) != nil || m.Kind == apiWalletKind {
		return m, false
	}
	return m, true
}

// Wallets lists the daemon wallets of the KeyStore from their metadata.
func (k *Keyring) Wallets(ctx context.Context) ([]*countersign.HDWallet, error) {
	ids, err := k.keys.List(ctx)
	if err != nil {
		return nil, err
	}
	k.Sweep()
	out := []*countersign.HDWallet{}
	for _, id := range ids {
		blob, err := k.keys.Get(ctx, id)
		if err != nil {
			continue
		}
		m, ok := readMeta(blob)
		if !ok {
			continue // API wallets share the keystore but are not the operator's
		}
		k.mu.RLock()
		_, open := k.unlocked[id]
		k.mu.RUnlock()
		out = append(out, &countersign.HDWallet{ID: id, Name: m.Name, Kind: m.Kind, Curve: m.Curve, CreatedAt: m.CreatedAt, Unlocked: open})
	}
	return out, nil
}
