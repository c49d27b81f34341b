package sim

import (
	"context"
	"fmt"
	"math/big"
)

// Reorg replaces the chain from block number on with depth new empty
// blocks (depth > head − number makes the new branch the longer one, as a
// real reorg would): the transactions of the removed blocks are dropped,
// not mined again, so their receipts are gone. It is for tests of what
// happens to a confirmed transaction when its block leaves the chain.
func (c *Chain) Reorg(ctx context.Context, number uint64, depth int) error {
	if number == 0 {
		return fmt.Errorf("sim: cannot reorg the genesis block")
	}
	c.client.mu.Lock()
	defer c.client.mu.Unlock()
	parent, err := c.client.HeaderByNumber(ctx, new(big.Int).SetUint64(number-1))
	if err != nil {
		return err
	}
	c.backend.Rollback() // Fork refuses a pool with pending transactions
	if err := c.backend.Fork(parent.Hash()); err != nil {
		return err
	}
	for range depth {
		// The pool may hold the removed blocks' transactions again: drop
		// them so the new branch really lacks them.
		c.backend.Rollback()
		c.backend.Commit()
	}
	c.backend.Rollback()
	return nil
}
