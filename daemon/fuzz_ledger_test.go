package daemon

import (
	"math/big"
	"strings"
	"testing"

	"github.com/countersign/countersign"
)

// FuzzParseLedgerAmount fuzzes the ledger's decimal amounts ("123.456",
// /v1/ledger/transfer and /v1/ledger/faucet): an accepted amount is a
// positive number of units equal to the decimal's exact value times 10^6,
// and the display form parses back to the same units. Anything else is a
// BadRequest.
func FuzzParseLedgerAmount(f *testing.F) {
	for _, s := range []string{"1", "0.000001", "123.456", "1.500000", "0", "0.0", "00.1", "1.", ".5", "-1", "+1", "1e3", "1.0000001",
		"0x10", " 1", "1 ", "1_000", "١", "999999999999999999999999999999.999999", "9999999999999999999999999999999", "1..2", "1.2.3"} {
		f.Add(s)
	}
	million := big.NewRat(1_000_000, 1)
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseLedgerAmount(s)
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("non-BadRequest error %v", err)
			}
			return
		}
		if u.Sign() <= 0 {
			t.Fatalf("%q parsed to a non-positive %s", s, u)
		}
		// exact value: only digits and at most one dot are accepted, so
		// big.Rat's reading is the intended one
		if strings.Trim(s, "0123456789.") != "" || strings.Count(s, ".") > 1 {
			t.Fatalf("%q accepted", s)
		}
		r, ok := new(big.Rat).SetString(s)
		if !ok {
			t.Fatalf("%q accepted but is not a decimal", s)
		}
		r.Mul(r, million)
		if !r.IsInt() || r.Num().Cmp(u) != 0 {
			t.Fatalf("%q parsed to %s units, want %s", s, u, r.RatString())
		}
		shown := FormatLedgerAmount(u)
		back, err := ParseLedgerAmount(shown)
		if err != nil || back.Cmp(u) != 0 {
			t.Fatalf("%q → %s units → %q → %v (%v)", s, u, shown, back, err)
		}
	})
}
