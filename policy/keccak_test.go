package policy

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestKeccak256(t *testing.T) {
	for in, want := range map[string]string{
		"":    "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470",
		"abc": "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45",
	} {
		got := keccak256([]byte(in))
		if hex.EncodeToString(got[:]) != want {
			t.Fatalf("keccak256(%q) = %x, want %s", in, got, want)
		}
	}
	// transfer(address,uint256) is the selector everyone knows.
	if h := keccak256([]byte("transfer(address,uint256)")); hex.EncodeToString(h[:4]) != "a9059cbb" {
		t.Fatalf("selector = %x", h[:4])
	}
}

func TestChecksumAddress(t *testing.T) {
	// The vectors of EIP-55.
	for _, a := range []string{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
		"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
	} {
		if got := checksumAddress(strings.ToLower(a)); got != a {
			t.Fatalf("checksum(%s) = %s", a, got)
		}
	}
}
