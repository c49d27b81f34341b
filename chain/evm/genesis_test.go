package evm_test

import (
	"context"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/countersign/countersign/chain/evm"
	"github.com/countersign/countersign/chain/sim"
)

// Two starts of the embedded dev chain are two chains: same id, other
// genesis hash — which is how a restarted server tells that the rows it
// holds in flight belong to a chain that is gone. The hash read over
// JSON-RPC (what a node reports) and the one computed from the in-process
// header agree. On the old code every start had the same genesis block.
func TestMoney_DevChainGenesisIsNewEachStart(t *testing.T) {
	ctx := context.Background()
	var seen []string
	for range 2 {
		c, err := sim.Start(ctx, []byte("same seed"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		in := evm.New(c.Client())
		g, err := in.GenesisHash(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(g) != 66 || !strings.HasPrefix(g, "0x") || g != strings.ToLower(g) {
			t.Fatalf("genesis hash %q", g)
		}
		h, err := c.Client().HeaderByNumber(ctx, big.NewInt(0))
		if err != nil || strings.ToLower(h.Hash().Hex()) != g {
			t.Fatalf("in-process header hash %s, adapter says %s (%v)", h.Hash().Hex(), g, err)
		}
		srv := httptest.NewServer(c.Handler())
		defer srv.Close()
		remote, closeFn, err := evm.Dial(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		if rg, err := remote.GenesisHash(ctx); err != nil || rg != g {
			t.Fatalf("over JSON-RPC %s %v, in process %s", rg, err, g)
		}
		seen = append(seen, g)
	}
	if seen[0] == seen[1] {
		t.Fatalf("two dev chains share the genesis %s", seen[0])
	}
}
