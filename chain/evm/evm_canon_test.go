package evm_test

import (
	"context"
	"testing"

	"github.com/countersign/countersign"
)

// HeadHashes and BlockHashes name the canonical blocks the receipt
// tracker's reorg recheck walks: the head's number and hash, each block's
// parent the hash of the block below it, and a block past the head
// NotFound. After a reorg the replaced heights have new hashes.
func TestAdapterBlockHashes(t *testing.T) {
	ctx := context.Background()
	dev := startDev(t)
	dev.Mine()
	dev.Mine()
	for name, c := range transports(t, dev) {
		t.Run(name, func(t *testing.T) {
			head, hash, parent, err := c.HeadHashes(ctx)
			if err != nil || head < 2 {
				t.Fatalf("head %d: %v", head, err)
			}
			if h, p, err := c.BlockHashes(ctx, head); err != nil || h != hash || p != parent {
				t.Fatalf("block %d: %s %s %v; the head says %s %s", head, h, p, err, hash, parent)
			}
			below, _, err := c.BlockHashes(ctx, head-1)
			if err != nil || below != parent {
				t.Fatalf("block %d is %s (%v), the head's parent %s", head-1, below, err, parent)
			}
			if _, _, err := c.BlockHashes(ctx, head+100); countersign.ErrorCode(err) != countersign.NotFound {
				t.Fatalf("a block past the head: %v", err)
			}
		})
	}
	c := transports(t, dev)["in-process"]
	head, _, _, _ := c.HeadHashes(ctx)
	before, _, _ := c.BlockHashes(ctx, head)
	if err := dev.Reorg(ctx, head, 2); err != nil {
		t.Fatal(err)
	}
	after, _, err := c.BlockHashes(ctx, head)
	if err != nil || after == before {
		t.Fatalf("block %d after a reorg: %s (was %s) %v", head, after, before, err)
	}
}
