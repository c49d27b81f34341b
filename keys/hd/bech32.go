package hd

import (
	"errors"
	"strings"

	"golang.org/x/crypto/blake2b"
)

// Bech32 (BIP-173) encoding, and the "ait" addresses of the AITBC wallet-daemon design.

const bech32Charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"

var errBech32 = errors.New("hd: invalid bech32 string")

func bech32Polymod(values []byte) uint32 {
	gen := [5]uint32{0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3}
	chk := uint32(1)
	for _, v := range values {
		b := chk >> 25
		chk = (chk&0x1ffffff)<<5 ^ uint32(v)
		for i := 0; i < 5; i++ {
			if (b>>uint(i))&1 == 1 {
				chk ^= gen[i]
			}
		}
	}
	return chk
}

func hrpExpand(hrp string) []byte {
	out := make([]byte, 0, len(hrp)*2+1)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]>>5)
	}
	out = append(out, 0)
	for i := 0; i < len(hrp); i++ {
		out = append(out, hrp[i]&31)
	}
	return out
}

// Bech32Encode encodes 5-bit data under hrp (BIP-173 checksum).
func Bech32Encode(hrp string, data []byte) (string, error) {
	hrp = strings.ToLower(hrp)
	values := append(hrpExpand(hrp), data...)
	pm := bech32Polymod(append(values, 0, 0, 0, 0, 0, 0)) ^ 1
	var b strings.Builder
	b.WriteString(hrp + "1")
	for _, d := range data {
		if d > 31 {
			return "", errBech32
		}
		b.WriteByte(bech32Charset[d])
	}
	for i := 0; i < 6; i++ {
		b.WriteByte(bech32Charset[(pm>>uint(5*(5-i)))&31])
	}
	if b.Len() > 90 {
		return "", errBech32
	}
	return b.String(), nil
}

// Bech32Decode decodes and checks a BIP-173 string: at most 90 characters,
// one case, printable HRP, valid checksum.
func Bech32Decode(s string) (hrp string, data []byte, err error) {
	if len(s) > 90 || len(s) < 8 {
		return "", nil, errBech32
	}
	if strings.ToLower(s) != s && strings.ToUpper(s) != s {
		return "", nil, errBech32
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return "", nil, errBech32
		}
	}
	s = strings.ToLower(s)
	pos := strings.LastIndexByte(s, '1')
	if pos < 1 || pos+7 > len(s) {
		return "", nil, errBech32
	}
	hrp = s[:pos]
	for _, c := range s[pos+1:] {
		v := strings.IndexRune(bech32Charset, c)
		if v < 0 {
			return "", nil, errBech32
		}
		data = append(data, byte(v))
	}
	if bech32Polymod(append(hrpExpand(hrp), data...)) != 1 {
		return "", nil, errBech32
	}
	return hrp, data[:len(data)-6], nil
}

// ConvertBits regroups bits (8 → 5 to encode, 5 → 8 to decode).
func ConvertBits(data []byte, from, to uint, pad bool) ([]byte, error) {
	acc, bits := uint32(0), uint(0)
	maxv := uint32(1)<<to - 1
	var out []byte
	for _, v := range data {
		if uint32(v)>>from != 0 {
			return nil, errBech32
		}
		acc = acc<<from | uint32(v)
		bits += from
		for bits >= to {
			bits -= to
			out = append(out, byte(acc>>bits&maxv))
		}
	}
	if pad {
		if bits > 0 {
			out = append(out, byte(acc<<(to-bits)&maxv))
		}
	} else if bits >= from || acc<<(to-bits)&maxv != 0 {
		return nil, errBech32
	}
	return out, nil
}

// AddressHRP is the human-readable part of the AITBC wallet-daemon design's addresses.
const AddressHRP = "ait"

// Address is bech32("ait", BLAKE2b-160(public key)): the public key bytes
// hashed are the 32-byte ed25519 key, or the 33-byte compressed secp256k1
// key; BLAKE2b is unkeyed with a 20-byte digest.
func Address(publicKey []byte) (string, error) {
	h, err := blake2b.New(20, nil)
	if err != nil {
		return "", err
	}
	h.Write(publicKey)
	five, err := ConvertBits(h.Sum(nil), 8, 5, true)
	if err != nil {
		return "", err
	}
	return Bech32Encode(AddressHRP, five)
}

// ParseAddress checks an "ait" address and returns its 20-byte hash.
func ParseAddress(s string) ([]byte, error) {
	hrp, data, err := Bech32Decode(s)
	if err != nil || hrp != AddressHRP {
		return nil, errors.New("hd: not an ait address")
	}
	b, err := ConvertBits(data, 5, 8, false)
	if err != nil || len(b) != 20 {
		return nil, errors.New("hd: not an ait address")
	}
	return b, nil
}
