package hd

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzBech32Decode: every string the decoder accepts re-encodes to itself
// in lower case (BIP-173 strings have one canonical form), so two spellings
// can never name different things; everything else is refused without a
// panic.
func FuzzBech32Decode(f *testing.F) {
	for _, s := range []string{
		"A12UEL5L", "a12uel5l", "abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		"split1checkupstagehandshakeupstreamerranterredcaperred2y9e3w", "?1ezyfcl",
		"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		"A1G7SGD8", "x1b4n0q5v", "li1dgmt3", "de1lg7wt\xff", "1pzry9x0s0muk", "pzry9x0s0muk", "a1Q", "aBcD1qqqqqqqq",
		"ait1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "AIT1", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		hrp, data, err := Bech32Decode(s)
		if err != nil {
			return
		}
		if len(s) > 90 || hrp == "" || hrp != strings.ToLower(hrp) {
			t.Fatalf("%q accepted with hrp %q", s, hrp)
		}
		for _, d := range data {
			if d > 31 {
				t.Fatalf("%q decoded to a value %d above 31", s, d)
			}
		}
		again, err := Bech32Encode(hrp, data)
		if err != nil || again != strings.ToLower(s) {
			t.Fatalf("%q decoded but re-encodes to %q (%v)", s, again, err)
		}
	})
}

// FuzzParseAitAddress: an accepted ait address is exactly the encoding of
// the 20-byte hash it names (lower-cased), and any 20-byte hash encodes to
// an address that parses back to it. A second spelling of the same hash
// (other than upper case) would be a second ledger account.
func FuzzParseAitAddress(f *testing.F) {
	good, _ := Address(bytes.Repeat([]byte{7}, 32))
	for _, s := range []string{good, strings.ToUpper(good), good[:len(good)-1] + "q", "bc1" + good[4:], "ait1", "ait1qqqqqq",
		"ait1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq", "Ait1" + good[4:]} {
		f.Add(s, []byte(nil))
	}
	f.Add("", bytes.Repeat([]byte{0xff}, 20))
	f.Fuzz(func(t *testing.T, s string, hash []byte) {
		if h, err := ParseAddress(s); err == nil {
			if len(h) != 20 {
				t.Fatalf("%q parsed to %d bytes", s, len(h))
			}
			five, err := ConvertBits(h, 8, 5, true)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Bech32Encode(AddressHRP, five)
			if err != nil || again != strings.ToLower(s) {
				t.Fatalf("%q parsed but its hash encodes to %q (%v)", s, again, err)
			}
		}
		if len(hash) != 20 {
			return
		}
		five, err := ConvertBits(hash, 8, 5, true)
		if err != nil {
			t.Fatal(err)
		}
		a, err := Bech32Encode(AddressHRP, five)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseAddress(a)
		if err != nil || !bytes.Equal(back, hash) {
			t.Fatalf("hash %x → %q → %x (%v)", hash, a, back, err)
		}
	})
}
