package hd

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
)

// ErrNonHardenedEd25519 is returned for an ed25519 path with a
// non-hardened level: SLIP-10 defines only hardened derivation for ed25519.
var ErrNonHardenedEd25519 = errors.New("hd: ed25519 (SLIP-10) derives hardened levels only: write every level with ' (e.g. m/44'/1313'/0'/0'/0')")

// Ed25519Key is a SLIP-10 ed25519 node.
type Ed25519Key struct {
	Seed      []byte // 32-byte private key seed (RFC 8032)
	ChainCode []byte
}

// NewEd25519Master derives the SLIP-10 ed25519 master node.
func NewEd25519Master(seed []byte) (*Ed25519Key, error) {
	if len(seed) < 16 || len(seed) > 64 {
		return nil, errors.New("hd: seed must be 16 to 64 bytes")
	}
	m := hmac.New(sha512.New, []byte("ed25519 seed"))
	m.Write(seed)
	I := m.Sum(nil)
	return &Ed25519Key{Seed: I[:32], ChainCode: I[32:]}, nil
}

// Child derives hardened child i (i must be ≥ HardenedOffset).
func (k *Ed25519Key) Child(i uint32) (*Ed25519Key, error) {
	if i < HardenedOffset {
		return nil, ErrNonHardenedEd25519
	}
	data := append(append([]byte{0}, k.Seed...), 0, 0, 0, 0)
	binary.BigEndian.PutUint32(data[33:], i)
	m := hmac.New(sha512.New, k.ChainCode)
	m.Write(data)
	I := m.Sum(nil)
	return &Ed25519Key{Seed: I[:32], ChainCode: I[32:]}, nil
}

// Derive follows a fully hardened path.
func (k *Ed25519Key) Derive(p Path) (*Ed25519Key, error) {
	if !p.AllHardened() {
		return nil, ErrNonHardenedEd25519
	}
	n := k
	for _, i := range p {
		var err error
		if n, err = n.Child(i); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// PublicKey returns the 32-byte ed25519 public key.
func (k *Ed25519Key) PublicKey() ed25519.PublicKey {
	return ed25519.NewKeyFromSeed(k.Seed).Public().(ed25519.PublicKey)
}

// PrivateKey returns the ed25519 private key.
func (k *Ed25519Key) PrivateKey() ed25519.PrivateKey { return ed25519.NewKeyFromSeed(k.Seed) }
