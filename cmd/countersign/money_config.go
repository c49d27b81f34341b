package main

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/countersign/countersign/core"
)

// parseMoneyConfig reads the execute path's limits from the environment:
// MAX_FEE_PER_GAS (wei, or a number with a "gwei" suffix) caps the fee per
// gas of every transaction; RECONCILE_BLOCKS bounds the block scan execute
// makes when the chain has used nonces countersign has no record of.
func parseMoneyConfig(m *core.MoneyConfig, env func(...string) string) error {
	if v := strings.TrimSpace(env("MAX_FEE_PER_GAS")); v != "" {
		wei, err := parseWeiPerGas(v)
		if err != nil {
			return fmt.Errorf("MAX_FEE_PER_GAS: %w", err)
		}
		m.MaxFeePerGas = wei
	}
	if v := env("RECONCILE_BLOCKS"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 || n > 1_000_000 {
			return fmt.Errorf("RECONCILE_BLOCKS must be an integer from 1 to 1000000")
		}
		m.ReconcileBlocks = n
	}
	return nil
}

// parseWeiPerGas reads "30000000000" (wei) or "30gwei" / "0.5 gwei".
func parseWeiPerGas(v string) (*big.Int, error) {
	decimals := 0
	if num, ok := strings.CutSuffix(strings.ToLower(v), "gwei"); ok {
		v, decimals = strings.TrimSpace(num), 9
	}
	whole, frac, dot := strings.Cut(v, ".")
	if whole == "" || dot && frac == "" || len(frac) > decimals || strings.Trim(whole+frac, "0123456789") != "" || len(whole) > 30 {
		return nil, fmt.Errorf("must be a positive integer of wei, or of gwei with a gwei suffix (at most 9 decimals), such as 500gwei")
	}
	n, _ := new(big.Int).SetString(whole+frac+strings.Repeat("0", decimals-len(frac)), 10)
	if n.Sign() <= 0 {
		return nil, fmt.Errorf("must be positive")
	}
	return n, nil
}
