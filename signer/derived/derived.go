// Package derived is the DEVELOPMENT-ONLY derived-key signer: one EVM key
// per omni_account, derived from a master secret with HKDF-SHA256, so the
// operator manages no per-user keys.
//
// ██ DEV ONLY — REPLACE WITH A TEE. ██ Anyone holding the master secret can
// derive every user's key. The wire shape (the /dev/* routes) is the one the
// TEE worker will keep; switching is a SIGNER_URL change.
//
// Derivation: key = HKDF-SHA256(IKM = master secret (32 bytes), salt = none
// (RFC 5869: HashLen zero bytes), info = "agentkeys-evm-wallet-v1:" ‖
// omni_account, L = 32). If those 32 bytes are not a valid secp256k1 scalar
// (zero, or ≥ the group order n; probability about 2^-128) the derivation
// is repeated with info ‖ ":" ‖ decimal counter, counter = 1, 2, … until it
// is.
package derived

import (
	"context"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/ethsig"
	"github.com/countersign/countersign/keys/keystore"
)

// InfoPrefix is the HKDF info prefix of the identity design's derivation.
const InfoPrefix = "agentkeys-evm-wallet-v1:"

// ErrNoSecret is returned by New when the master secret is absent or not
// 32 bytes of hex: the signer refuses to run rather than guess.
var ErrNoSecret = errors.New("DEV_KEY_SERVICE_MASTER_SECRET must be 32 bytes of hex (64 hex digits)")

// Signer is the in-process derived-key signer. DEV ONLY — replace with a TEE.
type Signer struct {
	master []byte
	mu     sync.Mutex
	addrs  map[string]string // omni_account → address (derivation is deterministic)
}

var _ countersign.DerivedSigner = (*Signer)(nil)

// New returns a signer for the hex master secret. DEV ONLY — replace with a TEE.
func New(masterHex string) (*Signer, error) {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(masterHex), "0x"))
	if err != nil || len(b) != 32 {
		return nil, ErrNoSecret
	}
	return &Signer{master: b, addrs: map[string]string{}}, nil
}

// DeriveKey derives omni's private key. DEV ONLY — replace with a TEE.
// The caller must not keep or log it.
func (s *Signer) DeriveKey(omni string) (*ecdsa.PrivateKey, error) {
	if !countersign.ValidOmniAccount(omni) {
		return nil, countersign.Errorf(countersign.BadRequest, "omni_account must be 64 lowercase hex digits")
	}
	info := InfoPrefix + omni
	for counter := 0; counter < 16; counter++ {
		in := info
		if counter > 0 {
			in += ":" + strconv.Itoa(counter)
		}
		okm, err := hkdf.Key(sha256.New, s.master, nil, in, 32)
		if err != nil {
			return nil, err
		}
		key, err := crypto.ToECDSA(okm)
		clear(okm)
		if err == nil {
			return key, nil
		}
	}
	return nil, errors.New("derived: no valid scalar in 16 tries") // never happens: p ≈ 2^-2048
}

// DeriveAddress returns omni's address, cached after the first derivation.
// DEV ONLY — replace with a TEE.
func (s *Signer) DeriveAddress(_ context.Context, omni string) (string, error) {
	s.mu.Lock()
	a, ok := s.addrs[omni]
	s.mu.Unlock()
	if ok {
		return a, nil
	}
	key, err := s.DeriveKey(omni)
	if err != nil {
		return "", err
	}
	a = crypto.PubkeyToAddress(key.PublicKey).Hex()
	keystore.ZeroKey(key)
	s.mu.Lock()
	s.addrs[omni] = a
	s.mu.Unlock()
	return a, nil
}

func (s *Signer) signHash(omni string, hash []byte) ([]byte, error) {
	key, err := s.DeriveKey(omni)
	if err != nil {
		return nil, err
	}
	defer keystore.ZeroKey(key)
	return ethsig.SignHash(key, hash)
}

// SignDigest signs a 32-byte digest (a countersigned wallet's transaction
// hash, once approved). DEV ONLY — replace with a TEE.
func (s *Signer) SignDigest(_ context.Context, omni string, digest []byte) ([]byte, error) {
	if len(digest) != 32 {
		return nil, countersign.Errorf(countersign.BadRequest, "digest must be 32 bytes")
	}
	return s.signHash(omni, digest)
}

var _ countersign.DerivedDigestSigner = (*Signer)(nil)

// SignMessage signs an EIP-191 personal message. DEV ONLY — replace with a TEE.
func (s *Signer) SignMessage(_ context.Context, omni string, message []byte) ([]byte, error) {
	if len(message) > ethsig.MaxMessage {
		return nil, countersign.Errorf(countersign.BadRequest, "message is too large")
	}
	return s.signHash(omni, accounts.TextHash(message))
}

// SignTypedData signs EIP-712 typed data. DEV ONLY — replace with a TEE.
// Chain-free by design: a derived key belongs to an omni_account, not to a
// chain, so any domain.chainId, or none, is signed.
func (s *Signer) SignTypedData(_ context.Context, omni string, typedData []byte) ([]byte, error) {
	_, hash, err := ethsig.ParseTypedData(typedData, ethsig.AnyChain)
	if err != nil {
		return nil, err
	}
	return s.signHash(omni, hash)
}
