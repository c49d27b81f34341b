package hd

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/json"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
	hdkeys "github.com/countersign/countersign/keys/hd"
	"github.com/countersign/countersign/keys/keystore"
)

// unlocked is an open wallet: its secret until the deadline, and the keys
// derived from it.
type unlocked struct {
	secret  []byte
	kind    string
	curve   string
	expires time.Time

	// mu guards the wiping of everything: users of the secret or a key
	// hold it for reading, wipe holds it for writing, so nothing is zeroed
	// mid-signature. (Lock order: Keyring.mu, then this.)
	mu    sync.RWMutex
	keys  sync.Map // account id → *accountKey, derived once per unlock
	wiped bool
}

// accountKey is an account's private key, ready to sign with: the raw
// bytes (for export), and the parsed form so a signature costs no key
// setup (an ed25519 expansion or a secp256k1 public-key multiplication).
type accountKey struct {
	raw []byte
	ed  ed25519.PrivateKey
	ec  *ecdsa.PrivateKey
}

func (k *accountKey) wipe() {
	clear(k.raw)
	clear(k.ed)
	if k.ec != nil {
		keystore.ZeroKey(k.ec)
	}
}

// wipe zeroes the seed and every derived key. The caller holds Keyring.mu.
func (u *unlocked) wipe() {
	u.mu.Lock()
	defer u.mu.Unlock()
	clear(u.secret)
	u.keys.Range(func(id, k any) bool {
		k.(*accountKey).wipe()
		u.keys.Delete(id)
		return true
	})
	u.wiped = true
}

// key returns the account's key, deriving it on first use. The caller
// holds u.mu for reading.
func (u *unlocked) key(a *countersign.DaemonAccount) (*accountKey, error) {
	if k, ok := u.keys.Load(a.ID); ok {
		return k.(*accountKey), nil
	}
	k, err := deriveAccountKey(u, a)
	if err != nil {
		return nil, err
	}
	if prev, loaded := u.keys.LoadOrStore(a.ID, k); loaded { // another signer derived it first
		k.wipe()
		return prev.(*accountKey), nil
	}
	return k, nil
}

// Unlock decrypts a wallet into memory until the deadline.
func (k *Keyring) Unlock(ctx context.Context, walletID, password string, until time.Time) (*countersign.HDWallet, error) {
	blob, err := k.keys.Get(ctx, walletID)
	if err != nil {
		return nil, err
	}
	if h, err := keystore.ReadHeader(blob); err == nil {
		var m walletMeta
		if json.Unmarshal(h.Meta, &m) == nil && m.Kind == apiWalletKind {
			return nil, countersign.Errorf(countersign.NotFound, "wallet not found")
		}
	}
	secret, meta, err := keystore.Decrypt(blob, []byte(password))
	if err != nil {
		if err == keystore.ErrDecrypt {
			return nil, countersign.Errorf(countersign.BadPassword, "wrong password (or the wallet file was altered)")
		}
		return nil, countersign.Wrap(countersign.Internal, err, "the wallet file is unreadable")
	}
	var m walletMeta
	if err := json.Unmarshal(meta, &m); err != nil || m.WalletID != walletID {
		clear(secret)
		return nil, countersign.Errorf(countersign.Internal, "the wallet file belongs to another wallet")
	}
	k.mu.Lock()
	if old := k.unlocked[walletID]; old != nil {
		old.wipe()
	}
	k.unlocked[walletID] = &unlocked{secret: secret, kind: m.Kind, curve: m.Curve, expires: until}
	k.mu.Unlock()
	return &countersign.HDWallet{ID: walletID, Name: m.Name, Kind: m.Kind, Curve: m.Curve, CreatedAt: m.CreatedAt, Unlocked: true}, nil
}

// Lock zeroes and forgets one wallet's secret, or every wallet's when
// walletID is empty, and returns how many were unlocked.
func (k *Keyring) Lock(walletID string) int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for id, u := range k.unlocked {
		if walletID == "" || id == walletID {
			u.wipe()
			delete(k.unlocked, id)
			n++
		}
	}
	return n
}

// Sweep zeroes every wallet whose deadline has passed.
func (k *Keyring) Sweep() {
	now := k.clock.Now()
	k.mu.Lock()
	defer k.mu.Unlock()
	for id, u := range k.unlocked {
		if !now.Before(u.expires) {
			u.wipe()
			delete(k.unlocked, id)
		}
	}
}

// useWallet runs fn with an unlocked wallet under its read lock, so lock
// and expiry (which zero it) wait for fn to finish. An unlock found expired
// is zeroed here and now, not at the next sweep.
func (k *Keyring) useWallet(walletID string, fn func(u *unlocked) error) error {
	k.mu.RLock()
	u := k.unlocked[walletID]
	k.mu.RUnlock()
	if u != nil && !k.clock.Now().Before(u.expires) {
		k.mu.Lock()
		if k.unlocked[walletID] == u {
			u.wipe()
			delete(k.unlocked, walletID)
		}
		k.mu.Unlock()
		u = nil
	}
	locked := countersign.Errorf(countersign.WalletLocked, "wallet %s is locked: POST /v1/wallet/unlock first", walletID)
	if u == nil {
		return locked
	}
	u.mu.RLock()
	defer u.mu.RUnlock()
	if u.wiped {
		return locked
	}
	return fn(u)
}

// withKey runs fn with the account's key while its wallet is unlocked,
// deriving and parsing the key on first use. fn must not keep the key.
func (k *Keyring) withKey(a *countersign.DaemonAccount, fn func(k *accountKey) error) error {
	return k.useWallet(a.WalletID, func(u *unlocked) error {
		key, err := u.key(a)
		if err != nil {
			return err
		}
		return fn(key)
	})
}

// Derive derives the public key at path of an unlocked seed wallet.
func (k *Keyring) Derive(_ context.Context, walletID, curve, path string) (*countersign.HDPublicKey, error) {
	if path == "" {
		path = DefaultPaths[curve]
	}
	p, err := hdkeys.ParsePath(path)
	if err != nil {
		return nil, countersign.Errorf(countersign.BadRequest, "%v", err)
	}
	var pub *countersign.HDPublicKey
	err = k.useWallet(walletID, func(u *unlocked) error {
		if u.kind != countersign.HDWalletSeed {
			return countersign.Errorf(countersign.BadRequest, "a single-key wallet has one account and derives none")
		}
		priv, err := deriveHD(u.secret, curve, p)
		if err != nil {
			return err
		}
		defer clear(priv)
		pub, err = publicKeyOf(curve, p.String(), priv)
		return err
	})
	return pub, err
}

// deriveHD derives the private key at path p of a BIP-39 seed: SLIP-10 for
// ed25519 (its 32-byte seed), BIP-32 for secp256k1.
func deriveHD(seed []byte, curve string, p hdkeys.Path) ([]byte, error) {
	switch curve {
	case countersign.CurveEd25519:
		m, err := hdkeys.NewEd25519Master(seed)
		if err != nil {
			return nil, err
		}
		k, err := m.Derive(p)
		if err != nil {
			return nil, countersign.Errorf(countersign.BadRequest, "%v", err)
		}
		return k.Seed, nil
	case countersign.CurveSecp256k1:
		m, err := hdkeys.NewMaster(seed)
		if err != nil {
			return nil, err
		}
		k, err := m.Derive(p)
		if err != nil {
			return nil, countersign.Errorf(countersign.BadRequest, "%v", err)
		}
		return k.PrivateKey(), nil
	default:
		return nil, countersign.Errorf(countersign.BadRequest, "curve must be ed25519 or secp256k1")
	}
}

// deriveAccountKey derives (seed) or takes (single key) an account's key
// from an unlocked wallet's secret.
func deriveAccountKey(u *unlocked, a *countersign.DaemonAccount) (*accountKey, error) {
	var raw []byte
	if u.kind == countersign.HDWalletKey {
		raw = append([]byte(nil), u.secret...)
	} else {
		p, err := hdkeys.ParsePath(a.Path)
		if err != nil {
			return nil, err
		}
		if raw, err = deriveHD(u.secret, a.Curve, p); err != nil {
			return nil, err
		}
	}
	k := &accountKey{raw: raw}
	if a.Curve == countersign.CurveEd25519 {
		k.ed = ed25519.NewKeyFromSeed(raw)
		return k, nil
	}
	ec, err := crypto.ToECDSA(raw)
	if err != nil {
		clear(raw)
		return nil, err
	}
	k.ec = ec
	return k, nil
}

// SignMessage signs msg: ed25519 over the bytes, secp256k1 EIP-191.
func (k *Keyring) SignMessage(_ context.Context, a *countersign.DaemonAccount, msg []byte) (sig []byte, algo string, err error) {
	err = k.withKey(a, func(key *accountKey) error {
		if a.Curve == countersign.CurveEd25519 {
			sig, algo = ed25519.Sign(key.ed, msg), "ed25519"
			return nil
		}
		s, err := ethsig.SignHash(key.ec, accounts.TextHash(msg))
		if err != nil {
			return err
		}
		sig, algo = s, "secp256k1-eip191"
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return sig, algo, nil
}

// SignTx signs an aitbc_v0 (ed25519 over the bytes) or evm transaction.
// An evm transaction is decoded before the wallet is looked at, so a
// malformed one is a BadRequest even while the wallet is locked.
func (k *Keyring) SignTx(_ context.Context, a *countersign.DaemonAccount, typ string, tx []byte, chainID *big.Int) (*countersign.HDSignedTx, error) {
	var unsigned *types.Transaction
	var signer types.Signer
	switch typ {
	case "aitbc_v0":
	case "evm":
		var err error
		if unsigned, signer, err = ethsig.DecodeUnsignedEVMTx(tx, chainID); err != nil {
			return nil, err
		}
	default:
		return nil, countersign.Errorf(countersign.BadRequest, "type must be aitbc_v0 or evm")
	}
	out := &countersign.HDSignedTx{}
	err := k.withKey(a, func(key *accountKey) error {
		if typ == "aitbc_v0" {
			if key.ed == nil {
				return countersign.Errorf(countersign.BadRequest, "aitbc_v0 transactions are signed by ed25519 accounts")
			}
			out.Signature, out.Algo = ed25519.Sign(key.ed, tx), "ed25519"
			out.Signed = append(append([]byte(nil), tx...), out.Signature...)
			return nil
		}
		if key.ec == nil {
			return countersign.Errorf(countersign.BadRequest, "evm transactions are signed by secp256k1 accounts")
		}
		signed, err := types.SignTx(unsigned, signer, key.ec)
		if err != nil {
			return countersign.Errorf(countersign.BadRequest, "cannot sign this transaction: %v", err)
		}
		raw, err := signed.MarshalBinary()
		if err != nil {
			return err
		}
		v, r, s := signed.RawSignatureValues()
		out.Signature = append(append(common.LeftPadBytes(r.Bytes(), 32), common.LeftPadBytes(s.Bytes(), 32)...), byte(v.Uint64()))
		out.Algo, out.Signed, out.TxHash = "secp256k1", raw, signed.Hash().Hex()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Export returns an account's key encrypted with exportPassword: a Web3 v3
// keystore (secp256k1) or a v1-kdb file of the raw key (ed25519).
func (k *Keyring) Export(_ context.Context, a *countersign.DaemonAccount, exportPassword string, scryptN int) (format string, blob []byte, err error) {
	err = k.withKey(a, func(key *accountKey) (err error) {
		if a.Curve == countersign.CurveSecp256k1 {
			blob, err = keystore.ExportV3(key.raw, exportPassword, scryptN, 1)
			format = "web3-v3"
			return err
		}
		meta, _ := json.Marshal(map[string]string{"kind": "key", "curve": a.Curve, "address": a.Address})
		blob, err = keystore.Encrypt(key.raw, []byte(exportPassword), meta, k.cfg.Argon2)
		format = "v1-kdb"
		return err
	})
	if err != nil {
		return "", nil, err
	}
	return format, blob, nil
}
