package main

import (
	"fmt"
	"strconv"
	"time"

	"github.com/countersign/countersign/core"
)

// parseTrackingConfig reads the receipt tracker's settings:
// CONFIRMATIONS (blocks a receipt needs before a transaction is final),
// REPLACE_AFTER (how long an unmined transaction waits before a fee-bump
// replacement; 0 turns replacement off) and REORG_WINDOW (how many blocks
// back confirmed transactions are rechecked for a reorg).
func parseTrackingConfig(m *core.MoneyConfig, env func(...string) string) error {
	if v := env("CONFIRMATIONS"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 || n > 10_000 {
			return fmt.Errorf("CONFIRMATIONS must be an integer from 1 to 10000")
		}
		m.Confirmations = n
	}
	if v := env("REPLACE_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			return fmt.Errorf("REPLACE_AFTER must be a duration such as 3m, or 0 to turn fee-bump replacement off")
		}
		m.ReplaceAfter = d
		if d == 0 {
			m.ReplaceAfter = -1 // core: negative disables; zero would take the default
		}
	}
	if v := env("REORG_WINDOW"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 || n > 100_000 {
			return fmt.Errorf("REORG_WINDOW must be an integer from 1 to 100000")
		}
		m.ReorgWindow = n
	}
	if m.Confirmations > 0 && m.ReorgWindow > 0 && m.ReorgWindow < m.Confirmations {
		return fmt.Errorf("REORG_WINDOW (%d) must be at least CONFIRMATIONS (%d)", m.ReorgWindow, m.Confirmations)
	}
	return nil
}
