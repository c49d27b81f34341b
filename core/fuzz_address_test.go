package core

import (
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign"
)

// FuzzParseAddress fuzzes the EIP-55 parser of every address an agent
// gives (to_address, token_address, contract_address, ABI address
// arguments): an accepted address is the 20 bytes written, and a
// mixed-case spelling is accepted only with a correct checksum, so a typo
// in a checksummed address is caught instead of sending funds to it. Any
// 20 bytes in checksummed form are accepted.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{"0x000000000000000000000000000000000000dEaD", "0x000000000000000000000000000000000000dead",
		"0X000000000000000000000000000000000000DEAD", "0x000000000000000000000000000000000000DeaD", "000000000000000000000000000000000000dEaD",
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed", "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0x", "0x0", "0x000000000000000000000000000000000000dEaD00", "0x000000000000000000000000000000000000dEaG", " 0x000000000000000000000000000000000000dEaD"} {
		f.Add(s, []byte(nil))
	}
	f.Add("", []byte("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\xff"))
	f.Fuzz(func(t *testing.T, s string, raw []byte) {
		if a, err := ParseAddress("to_address", s); err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("non-BadRequest error %v", err)
			}
		} else {
			if len(s) != 42 || (s[:2] != "0x" && s[:2] != "0X") || !strings.EqualFold(a.Hex()[2:], s[2:]) {
				t.Fatalf("%q accepted as %s", s, a.Hex())
			}
			body := s[2:]
			if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex()[2:] != body {
				t.Fatalf("%q has a wrong checksum (want %s) but was accepted", s, a.Hex())
			}
		}
		if len(raw) != 20 {
			return
		}
		want := common.BytesToAddress(raw)
		for _, form := range []string{want.Hex(), strings.ToLower(want.Hex())} {
			if got, err := ParseAddress("to_address", form); err != nil || got != want {
				t.Fatalf("%q refused or misread: %s %v", form, got.Hex(), err)
			}
		}
	})
}
