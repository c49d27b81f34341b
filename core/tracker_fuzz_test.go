package core

import (
	"math/big"
	"testing"
)

// FuzzBumpFee: a replacement's fee is always strictly above the old one
// and at least 12.5% above it (so above geth's +10% replacement minimum),
// and never more than 12.5% plus one wei above it (a bump does not
// overshoot what the approval's headroom is for).
func FuzzBumpFee(f *testing.F) {
	for _, s := range []string{"0", "1", "7", "8", "9", "1000000000", "115792089237316195423570985008687907853269984665640564039457584007913129639935"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fee, ok := new(big.Int).SetString(s, 10)
		if !ok || fee.Sign() < 0 || fee.BitLen() > 256 {
			return
		}
		b := bumpFee(fee)
		if b.Cmp(fee) <= 0 {
			t.Fatalf("bumpFee(%s) = %s: not above", fee, b)
		}
		eighth := new(big.Int).Mul(fee, big.NewInt(9)) // 8·b ≥ 9·fee
		if new(big.Int).Mul(b, big.NewInt(8)).Cmp(eighth) < 0 {
			t.Fatalf("bumpFee(%s) = %s: less than +12.5%%", fee, b)
		}
		tenth := new(big.Int).Mul(fee, big.NewInt(11)) // geth: 10·b ≥ 11·fee
		if new(big.Int).Mul(b, big.NewInt(10)).Cmp(tenth) < 0 {
			t.Fatalf("bumpFee(%s) = %s: below geth's replacement minimum", fee, b)
		}
		most := new(big.Int).Add(eighth, big.NewInt(8+7)) // 8·b ≤ 9·fee + 7, or fee + 1 for tiny fees
		if new(big.Int).Mul(b, big.NewInt(8)).Cmp(most) > 0 {
			t.Fatalf("bumpFee(%s) = %s: overshoots", fee, b)
		}
	})
}
