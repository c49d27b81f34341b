package evm

import (
	"context"
	"errors"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/countersign/countersign"
)

// GenesisHash returns the hash of block 0 as the node reports it
// (eth_getBlockByNumber "0x0"), or, for a client without a JSON-RPC
// handle, as computed from its header.
func (c *Chain) GenesisHash(ctx context.Context) (string, error) {
	if c.rpc != nil {
		var b *struct {
			Hash common.Hash `json:"hash"`
		}
		if _, err := read(c, ctx, func(ctx context.Context) (struct{}, error) {
			return struct{}{}, c.rpc.CallContext(ctx, &b, "eth_getBlockByNumber", "0x0", false)
		}); err != nil {
			return "", c.chainErr(err, "cannot read the genesis block")
		}
		if b == nil || b.Hash == (common.Hash{}) {
			return "", countersign.Wrap(countersign.ChainError, errors.New("no block 0"), "the node has no genesis block")
		}
		return strings.ToLower(b.Hash.Hex()), nil
	}
	h, err := read(c, ctx, func(ctx context.Context) (*types.Header, error) { return c.c.HeaderByNumber(ctx, big.NewInt(0)) })
	if err != nil {
		return "", c.chainErr(err, "cannot read the genesis block")
	}
	return strings.ToLower(h.Hash().Hex()), nil
}
