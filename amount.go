package countersign

import (
	"math/big"
	"strings"
)

// maxUint256 bounds every amount: nothing larger fits in an EVM word.
var maxUint256 = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))

// ParseAmount parses a non-negative integer amount of base units given as a
// decimal string ("1000000000000000000" for one ether). Signs, fractions,
// exponents, hex and values above 2^256-1 are refused with a clear error.
func ParseAmount(field, s string) (*big.Int, error) {
	if s == "" {
		return nil, Errorf(BadRequest, "%s is required: a decimal string of base units, e.g. \"1000000000000000000\"", field)
	}
	if len(s) > 78 { // 2^256 has 78 digits
		return nil, Errorf(BadRequest, "%s is too large", field)
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			switch {
			case r == '-':
				return nil, Errorf(BadRequest, "%s must not be negative", field)
			case r == '.' || r == 'e' || r == 'E':
				return nil, Errorf(BadRequest, "%s must be an integer number of base units (no decimals): %q", field, s)
			default:
				return nil, Errorf(BadRequest, "%s must be a decimal integer string of base units: %q", field, s)
			}
		}
	}
	if len(s) > 1 && strings.HasPrefix(s, "0") {
		return nil, Errorf(BadRequest, "%s must not have leading zeros: %q", field, s)
	}
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Cmp(maxUint256) > 0 {
		return nil, Errorf(BadRequest, "%s is too large", field)
	}
	return v, nil
}

// FormatUnits renders base units with decimals for display only
// (FormatUnits(1500000000000000000, 18) = "1.5").
func FormatUnits(v *big.Int, decimals int) string {
	if v == nil {
		return "0"
	}
	neg := v.Sign() < 0
	s := new(big.Int).Abs(v).String()
	if decimals > 0 {
		if len(s) <= decimals {
			s = strings.Repeat("0", decimals-len(s)+1) + s
		}
		s = s[:len(s)-decimals] + "." + s[len(s)-decimals:]
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	if neg {
		s = "-" + s
	}
	return s
}
