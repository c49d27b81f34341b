package evm_test

import (
	"context"
	"math/big"
	"testing"
)

// Fees answers what SuggestFees and BaseFee answer, from one header: the
// cap is twice the base fee plus the tip.
func TestAdapterFees(t *testing.T) {
	ctx := context.Background()
	dev := startDev(t)
	dev.Mine()
	for name, c := range transports(t, dev) {
		t.Run(name, func(t *testing.T) {
			tip, feeCap, base, err := c.Fees(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sTip, sCap, err := c.SuggestFees(ctx)
			if err != nil {
				t.Fatal(err)
			}
			b, err := c.BaseFee(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tip.Cmp(sTip) != 0 || feeCap.Cmp(sCap) != 0 || base.Cmp(b) != 0 {
				t.Fatalf("Fees %s %s %s; SuggestFees %s %s, BaseFee %s", tip, feeCap, base, sTip, sCap, b)
			}
			if want := new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip); feeCap.Cmp(want) != 0 || base.Sign() <= 0 {
				t.Fatalf("fee cap %s, want 2 × %s + %s", feeCap, base, tip)
			}
		})
	}
}
