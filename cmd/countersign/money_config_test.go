package main

import (
	"io"
	"math/big"
	"strings"
	"testing"
)

func TestMoneyConfigFromEnv(t *testing.T) {
	tests := map[string]struct {
		env     map[string]string
		fee     string // "" keeps the default
		blocks  uint64
		wantErr string
	}{
		"ok/defaults":          {env: map[string]string{}},
		"ok/wei":               {env: map[string]string{"MAX_FEE_PER_GAS": "30000000000"}, fee: "30000000000"},
		"ok/gwei":              {env: map[string]string{"MAX_FEE_PER_GAS": "30gwei"}, fee: "30000000000"},
		"ok/fractional gwei":   {env: map[string]string{"MAX_FEE_PER_GAS": "0.05 gwei"}, fee: "50000000"},
		"ok/reconcile blocks":  {env: map[string]string{"RECONCILE_BLOCKS": "10000"}, blocks: 10000},
		"fail/zero":            {env: map[string]string{"MAX_FEE_PER_GAS": "0"}, wantErr: "MAX_FEE_PER_GAS"},
		"fail/negative":        {env: map[string]string{"MAX_FEE_PER_GAS": "-1"}, wantErr: "MAX_FEE_PER_GAS"},
		"fail/fractional wei":  {env: map[string]string{"MAX_FEE_PER_GAS": "1.5"}, wantErr: "MAX_FEE_PER_GAS"},
		"fail/too precise":     {env: map[string]string{"MAX_FEE_PER_GAS": "0.0000000001gwei"}, wantErr: "MAX_FEE_PER_GAS"},
		"fail/ether":           {env: map[string]string{"MAX_FEE_PER_GAS": "1ether"}, wantErr: "MAX_FEE_PER_GAS"},
		"fail/blocks zero":     {env: map[string]string{"RECONCILE_BLOCKS": "0"}, wantErr: "RECONCILE_BLOCKS"},
		"fail/blocks too many": {env: map[string]string{"RECONCILE_BLOCKS": "1000001"}, wantErr: "RECONCILE_BLOCKS"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := parseServeConfig(nil, func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.fee == "" && c.Money.MaxFeePerGas != nil || tt.fee != "" && (c.Money.MaxFeePerGas == nil || c.Money.MaxFeePerGas.String() != tt.fee) {
				t.Fatalf("max fee per gas %v, want %q", c.Money.MaxFeePerGas, tt.fee)
			}
			if c.Money.ReconcileBlocks != tt.blocks {
				t.Fatalf("reconcile blocks %d", c.Money.ReconcileBlocks)
			}
		})
	}
}

// FuzzParseWeiPerGas: a value is refused or positive; a plain integer is
// that many wei; with a gwei suffix, 10^9 times the number.
func FuzzParseWeiPerGas(f *testing.F) {
	for _, s := range []string{"1", "500gwei", "0.5 gwei", "1.000000001gwei", "0", "-1", "1e9", "gwei", ".5gwei", "00012"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseWeiPerGas(s)
		if err != nil {
			return
		}
		if n.Sign() <= 0 {
			t.Fatalf("%q parsed to %s", s, n)
		}
		if num, ok := strings.CutSuffix(strings.ToLower(s), "gwei"); ok {
			whole, frac, _ := strings.Cut(strings.TrimSpace(num), ".")
			want, _ := new(big.Int).SetString(whole+frac+strings.Repeat("0", 9-len(frac)), 10)
			if want == nil || want.Cmp(n) != 0 {
				t.Fatalf("%q parsed to %s", s, n)
			}
			return
		}
		if want, ok := new(big.Int).SetString(s, 10); !ok || want.Cmp(n) != 0 {
			t.Fatalf("%q parsed to %s", s, n)
		}
	})
}
