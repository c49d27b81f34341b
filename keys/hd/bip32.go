// Package hd derives keys deterministically: BIP-39 mnemonics, BIP-32/44
// for secp256k1, SLIP-10 for ed25519 (hardened only), derivation paths, and
// the bech32 "ait" addresses of the AITBC wallet-daemon design. Every algorithm is checked against
// the official vectors in testdata/.
package hd

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	//lint:ignore SA1019 BIP-32 defines key fingerprints with RIPEMD-160; there is no choice
	"golang.org/x/crypto/ripemd160"
)

// HardenedOffset marks a hardened child index.
const HardenedOffset uint32 = 0x80000000

var (
	// ErrInvalidKey is returned for an extended key that breaks BIP-32's
	// rules (vector 5's cases), and for a derivation that lands on an
	// invalid key (then the next index must be used).
	ErrInvalidKey = errors.New("hd: invalid extended key")
	// ErrHardenedFromPublic: a public key cannot derive hardened children.
	ErrHardenedFromPublic = errors.New("hd: cannot derive a hardened child from a public key")
)

var (
	versionXprv = [4]byte{0x04, 0x88, 0xad, 0xe4}
	versionXpub = [4]byte{0x04, 0x88, 0xb2, 0x1e}
)

// ExtendedKey is a BIP-32 secp256k1 node.
type ExtendedKey struct {
	key       []byte // 32-byte private scalar, or 33-byte compressed public key
	chainCode []byte
	depth     uint8
	parentFP  [4]byte
	childNum  uint32
	private   bool
}

// NewMaster derives the master node from a seed (16 to 64 bytes).
func NewMaster(seed []byte) (*ExtendedKey, error) {
	if len(seed) < 16 || len(seed) > 64 {
		return nil, fmt.Errorf("hd: seed must be 16 to 64 bytes")
	}
	m := hmac.New(sha512.New, []byte("Bitcoin seed"))
	m.Write(seed)
	I := m.Sum(nil)
	var k secp256k1.ModNScalar
	if overflow := k.SetByteSlice(I[:32]); overflow || k.IsZero() {
		return nil, ErrInvalidKey
	}
	return &ExtendedKey{key: I[:32], chainCode: I[32:], private: true}, nil
}

// IsPrivate reports whether the node holds a private key.
func (k *ExtendedKey) IsPrivate() bool { return k.private }

// PublicKey returns the 33-byte compressed public key.
func (k *ExtendedKey) PublicKey() []byte {
	if !k.private {
		return append([]byte(nil), k.key...)
	}
	return secp256k1.PrivKeyFromBytes(k.key).PubKey().SerializeCompressed()
}

// PrivateKey returns the 32-byte private key (nil for a public node).
func (k *ExtendedKey) PrivateKey() []byte {
	if !k.private {
		return nil
	}
	return append([]byte(nil), k.key...)
}

// ChainCode returns the node's chain code.
func (k *ExtendedKey) ChainCode() []byte { return append([]byte(nil), k.chainCode...) }

// Fingerprint is the first 4 bytes of HASH160 of the public key.
func (k *ExtendedKey) Fingerprint() [4]byte {
	sha := sha256.Sum256(k.PublicKey())
	r := ripemd160.New()
	r.Write(sha[:])
	var fp [4]byte
	copy(fp[:], r.Sum(nil))
	return fp
}

// Child derives child index i (≥ HardenedOffset for hardened).
func (k *ExtendedKey) Child(i uint32) (*ExtendedKey, error) {
	if k.depth == 255 {
		return nil, fmt.Errorf("hd: depth limit reached")
	}
	hardened := i >= HardenedOffset
	if hardened && !k.private {
		return nil, ErrHardenedFromPublic
	}
	data := make([]byte, 0, 37)
	if hardened {
		data = append(append(data, 0), k.key...)
	} else {
		data = append(data, k.PublicKey()...)
	}
	data = binary.BigEndian.AppendUint32(data, i)
	m := hmac.New(sha512.New, k.chainCode)
	m.Write(data)
	I := m.Sum(nil)
	var il secp256k1.ModNScalar
	if overflow := il.SetByteSlice(I[:32]); overflow {
		return nil, ErrInvalidKey
	}
	child := &ExtendedKey{chainCode: I[32:], depth: k.depth + 1, parentFP: k.Fingerprint(), childNum: i, private: k.private}
	if k.private {
		var kpar secp256k1.ModNScalar
		kpar.SetByteSlice(k.key)
		il.Add(&kpar)
		if il.IsZero() {
			return nil, ErrInvalidKey
		}
		b := il.Bytes()
		child.key = b[:]
	} else {
		var p, q, sum secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(&il, &p)
		parent, err := secp256k1.ParsePubKey(k.key)
		if err != nil {
			return nil, ErrInvalidKey
		}
		parent.AsJacobian(&q)
		secp256k1.AddNonConst(&p, &q, &sum)
		if (sum.X.IsZero() && sum.Y.IsZero()) || sum.Z.IsZero() {
			return nil, ErrInvalidKey
		}
		sum.ToAffine()
		child.key = secp256k1.NewPublicKey(&sum.X, &sum.Y).SerializeCompressed()
	}
	return child, nil
}

// Derive follows a path from this node.
func (k *ExtendedKey) Derive(path Path) (*ExtendedKey, error) {
	n := k
	for _, i := range path {
		var err error
		if n, err = n.Child(i); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// Neuter returns the public node.
func (k *ExtendedKey) Neuter() *ExtendedKey {
	if !k.private {
		return k
	}
	c := *k
	c.key, c.private = k.PublicKey(), false
	return &c
}

// String serialises as xprv/xpub (Base58Check).
func (k *ExtendedKey) String() string {
	b := make([]byte, 0, 78)
	if k.private {
		b = append(b, versionXprv[:]...)
	} else {
		b = append(b, versionXpub[:]...)
	}
	b = append(b, k.depth)
	b = append(b, k.parentFP[:]...)
	b = binary.BigEndian.AppendUint32(b, k.childNum)
	b = append(b, k.chainCode...)
	if k.private {
		b = append(b, 0)
	}
	b = append(b, k.key...)
	return base58CheckEncode(b)
}

// ParseExtendedKey parses an xprv/xpub with every check of BIP-32 (the
// invalid keys of vector 5 are refused, unlike some libraries).
func ParseExtendedKey(s string) (*ExtendedKey, error) {
	b, err := base58CheckDecode(s)
	if err != nil || len(b) != 78 {
		return nil, ErrInvalidKey
	}
	var version [4]byte
	copy(version[:], b[:4])
	k := &ExtendedKey{depth: b[4], childNum: binary.BigEndian.Uint32(b[9:13]), chainCode: append([]byte(nil), b[13:45]...)}
	copy(k.parentFP[:], b[5:9])
	keyData := b[45:78]
	switch version {
	case versionXprv:
		if keyData[0] != 0 {
			return nil, ErrInvalidKey // private key version with a public key
		}
		var s secp256k1.ModNScalar
		if overflow := s.SetByteSlice(keyData[1:]); overflow || s.IsZero() {
			return nil, ErrInvalidKey
		}
		k.key, k.private = append([]byte(nil), keyData[1:]...), true
	case versionXpub:
		if keyData[0] != 2 && keyData[0] != 3 {
			return nil, ErrInvalidKey // public key version with a private key, or an invalid prefix
		}
		if _, err := secp256k1.ParsePubKey(keyData); err != nil {
			return nil, ErrInvalidKey
		}
		k.key = append([]byte(nil), keyData...)
	default:
		return nil, ErrInvalidKey
	}
	if k.depth == 0 && (k.parentFP != [4]byte{} || k.childNum != 0) {
		return nil, ErrInvalidKey // a master key names no parent
	}
	return k, nil
}

// ---- Base58Check

const b58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

func base58CheckEncode(payload []byte) string {
	h1 := sha256.Sum256(payload)
	h2 := sha256.Sum256(h1[:])
	b := append(append([]byte(nil), payload...), h2[:4]...)
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	digits := []byte{}
	for _, c := range b {
		carry := int(c)
		for j := range digits {
			carry += int(digits[j]) << 8
			digits[j] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := bytes.Repeat([]byte{'1'}, zeros)
	for i := len(digits) - 1; i >= 0; i-- {
		out = append(out, b58[digits[i]])
	}
	return string(out)
}

func base58CheckDecode(s string) ([]byte, error) {
	if len(s) == 0 || len(s) > 200 {
		return nil, ErrInvalidKey
	}
	zeros := 0
	for zeros < len(s) && s[zeros] == '1' {
		zeros++
	}
	bytesLE := []byte{}
	for i := 0; i < len(s); i++ {
		v := bytes.IndexByte([]byte(b58), s[i])
		if v < 0 {
			return nil, ErrInvalidKey
		}
		carry := v
		for j := range bytesLE {
			carry += int(bytesLE[j]) * 58
			bytesLE[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			bytesLE = append(bytesLE, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros, zeros+len(bytesLE))
	for i := len(bytesLE) - 1; i >= 0; i-- {
		out = append(out, bytesLE[i])
	}
	if len(out) < 4 {
		return nil, ErrInvalidKey
	}
	payload, sum := out[:len(out)-4], out[len(out)-4:]
	h1 := sha256.Sum256(payload)
	h2 := sha256.Sum256(h1[:])
	if !bytes.Equal(h2[:4], sum) {
		return nil, ErrInvalidKey
	}
	return payload, nil
}
