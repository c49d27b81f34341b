// Package keyfile is the operator wallet's keystore-file signer: one key
// from a Web3 Secret Storage v3 file (OPERATOR_KEYSTORE_PATH), decrypted
// once at start with its passphrase (OPERATOR_WALLET_PASSPHRASE) into a
// buffer that Close zeroes. It implements the signer port for the one
// wallet whose address is the key's, and refuses every other wallet. The
// key never leaves it: it creates, imports and exports nothing.
package keyfile

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
	"github.com/countersign/countersign/keys/keystore"
)

// maxFile bounds what is read as a keystore file (they are ~500 bytes).
const maxFile = 64 << 10

// Signer holds one decrypted key.
type Signer struct {
	mu   sync.RWMutex
	raw  []byte // the 32-byte scalar; zeroed by Close
	addr string // EIP-55
}

// Open reads and decrypts the keystore file at path. Errors name the file,
// never the passphrase.
func Open(path, passphrase string) (*Signer, error) {
	if passphrase == "" {
		return nil, fmt.Errorf("keystore %s: OPERATOR_WALLET_PASSPHRASE is not set", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("keystore %s: mode %v lets others read it: chmod 600 it", path, st.Mode().Perm())
	}
	if st.Size() > maxFile {
		return nil, fmt.Errorf("keystore %s: %d bytes is not a keystore file", path, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("keystore %s: %w", path, err)
	}
	raw, addr, err := keystore.ImportV3(b, passphrase)
	if errors.Is(err, keystore.ErrDecrypt) {
		return nil, fmt.Errorf("keystore %s: the passphrase (OPERATOR_WALLET_PASSPHRASE) is wrong", path)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore %s: %s", path, strings.TrimPrefix(err.Error(), "keystore: "))
	}
	return &Signer{raw: raw, addr: addr.Hex()}, nil
}

// Address is the key's address (EIP-55).
func (s *Signer) Address() string { return s.addr }

// Close zeroes the key; every later signature is refused.
func (s *Signer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.raw)
	s.raw = nil
	return nil
}

// key returns the private key for w, to be zeroed by the caller.
func (s *Signer) key(w *countersign.Wallet) (*ecdsa.PrivateKey, error) {
	if w == nil || !strings.EqualFold(w.Address, s.addr) {
		return nil, countersign.Errorf(countersign.Internal, "the keystore-file signer holds the key of %s only", s.addr)
	}
	if s.raw == nil {
		return nil, countersign.Errorf(countersign.Unavailable, "the keystore-file signer is closed")
	}
	return crypto.ToECDSA(s.raw)
}

// NewKey is refused: this signer holds one key, made by countersign keygen.
func (s *Signer) NewKey(context.Context, string) (string, string, []byte, error) {
	return "", "", nil, countersign.Errorf(countersign.BadRequest, "the keystore-file signer cannot create keys: run countersign keygen")
}

// SignHash signs a 32-byte digest: r ‖ s ‖ v with v = 27 or 28.
func (s *Signer) SignHash(_ context.Context, w *countersign.Wallet, hash []byte) ([]byte, error) {
	if len(hash) != 32 {
		return nil, countersign.Errorf(countersign.Internal, "digest must be 32 bytes")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	key, err := s.key(w)
	if err != nil {
		return nil, err
	}
	defer keystore.ZeroKey(key)
	return ethsig.SignHash(key, hash)
}

// SignTx signs an EIP-1559 transaction.
func (s *Signer) SignTx(_ context.Context, w *countersign.Wallet, u *countersign.UnsignedTx) ([]byte, string, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	key, err := s.key(w)
	if err != nil {
		return nil, "", err
	}
	defer keystore.ZeroKey(key)
	return ethsig.SignTx(key, u)
}

var _ countersign.Signer = (*Signer)(nil)
