package policy

import "math/bits"

// The policy package may import only the standard library, which has
// SHA-3 but not the pre-standard Keccak-256 that Ethereum uses; EIP-55
// checksums need it, so here is the permutation (FIPS 202's Keccak-f[1600]
// with the original 0x01 padding).

var keccakRC = [24]uint64{
	0x0000000000000001, 0x0000000000008082, 0x800000000000808a, 0x8000000080008000,
	0x000000000000808b, 0x0000000080000001, 0x8000000080008081, 0x8000000000008009,
	0x000000000000008a, 0x0000000000000088, 0x0000000080008009, 0x000000008000000a,
	0x000000008000808b, 0x800000000000008b, 0x8000000000008089, 0x8000000000008003,
	0x8000000000008002, 0x8000000000000080, 0x000000000000800a, 0x800000008000000a,
	0x8000000080008081, 0x8000000000008080, 0x0000000080000001, 0x8000000080008008,
}

var (
	keccakRot = [24]int{1, 3, 6, 10, 15, 21, 28, 36, 45, 55, 2, 14, 27, 41, 56, 8, 25, 43, 62, 18, 39, 61, 20, 44}
	keccakPi  = [24]int{10, 7, 11, 17, 18, 3, 5, 16, 8, 21, 24, 4, 15, 23, 19, 13, 12, 2, 20, 14, 22, 9, 6, 1}
)

func keccakF(st *[25]uint64) {
	var bc [5]uint64
	for round := range 24 {
		for i := range 5 {
			bc[i] = st[i] ^ st[i+5] ^ st[i+10] ^ st[i+15] ^ st[i+20]
		}
		for i := range 5 {
			t := bc[(i+4)%5] ^ bits.RotateLeft64(bc[(i+1)%5], 1)
			for j := 0; j < 25; j += 5 {
				st[j+i] ^= t
			}
		}
		t := st[1]
		for i := range 24 {
			j := keccakPi[i]
			t, st[j] = st[j], bits.RotateLeft64(t, keccakRot[i])
		}
		for j := 0; j < 25; j += 5 {
			for i := range 5 {
				bc[i] = st[j+i]
			}
			for i := range 5 {
				st[j+i] ^= ^bc[(i+1)%5] & bc[(i+2)%5]
			}
		}
		st[0] ^= keccakRC[round]
	}
}

// keccak256 is Ethereum's Keccak-256 of data.
func keccak256(data []byte) [32]byte {
	const rate = 136
	var st [25]uint64
	absorb := func(block []byte) {
		for i := 0; i < rate/8; i++ {
			var w uint64
			for k := 7; k >= 0; k-- {
				w = w<<8 | uint64(block[i*8+k])
			}
			st[i] ^= w
		}
		keccakF(&st)
	}
	for len(data) >= rate {
		absorb(data[:rate])
		data = data[rate:]
	}
	var last [rate]byte
	copy(last[:], data)
	last[len(data)] ^= 0x01
	last[rate-1] ^= 0x80
	absorb(last[:])
	var out [32]byte
	for i := range 4 {
		for k := range 8 {
			out[i*8+k] = byte(st[i] >> (8 * k))
		}
	}
	return out
}

// checksumAddress is the EIP-55 form of a 0x-prefixed address.
func checksumAddress(addr string) string {
	lower := []byte(toLowerASCII(addr[2:]))
	h := keccak256(lower)
	out := []byte("0x")
	for i, c := range lower {
		nib := h[i/2] >> 4
		if i%2 == 1 {
			nib = h[i/2] & 0x0f
		}
		if c >= 'a' && c <= 'f' && nib >= 8 {
			c -= 'a' - 'A'
		}
		out = append(out, c)
	}
	return string(out)
}

func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
