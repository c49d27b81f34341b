package countersign

import (
	"strings"
	"testing"
)

func TestParseUSD(t *testing.T) {
	for in, want := range map[string]int64{
		"ok/10": 1000, "ok/10.5": 1050, "ok/10.50": 1050, "ok/0.01": 1, "ok/0.1": 10, "ok/1000000": 100_000_000, "ok/999999.99": 99_999_999,
	} {
		t.Run(in, func(t *testing.T) {
			got, err := ParseUSD("amount_usd", strings.TrimPrefix(in, "ok/"))
			if err != nil || got != want {
				t.Fatalf("ParseUSD = %d, %v; want %d", got, err, want)
			}
		})
	}
	for _, in := range []string{"", "0", "0.00", "-1", "+1", "1.", ".5", "1.005", "1e3", "0x10", "01", "1,00", " 1", "1 ", "NaN", "Inf",
		"1000000.01", "99999999999999999", "１０", "1.0\u0000", "10.5.1"} {
		t.Run("fail/"+in, func(t *testing.T) {
			if got, err := ParseUSD("amount_usd", in); err == nil || ErrorCode(err) != BadRequest || !strings.Contains(err.Error(), "amount_usd") {
				t.Fatalf("ParseUSD(%q) = %d, %v", in, got, err)
			}
		})
	}
}

func TestFormatUSD(t *testing.T) {
	for cents, want := range map[int64]string{0: "0.00", 1: "0.01", 1050: "10.50", 100_000_000: "1000000.00", -5: "-0.05"} {
		if got := FormatUSD(cents); got != want {
			t.Errorf("FormatUSD(%d) = %q, want %q", cents, got, want)
		}
	}
}

// FuzzParseUSD: an accepted amount is in range and formats back to a
// string that parses to the same cents (round trip), and it never panics.
func FuzzParseUSD(f *testing.F) {
	for _, s := range []string{"10", "10.5", "0.01", "1000000", "1.005", "-1", "", "00", "9223372036854775807"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseUSD("x", s)
		if err != nil {
			return
		}
		if c <= 0 || c > MaxTopupCents {
			t.Fatalf("ParseUSD(%q) = %d: out of range", s, c)
		}
		back, err := ParseUSD("x", FormatUSD(c))
		if err != nil || back != c {
			t.Fatalf("round trip of %q: %d → %q → %d, %v", s, c, FormatUSD(c), back, err)
		}
	})
}
