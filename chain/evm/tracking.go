package evm

import (
	"context"
	"errors"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/countersign/countersign"
)

var _ countersign.RevertReasoner = (*Chain)(nil)

// RevertReason replays a mined transaction as a call at its block and
// returns the reason string the node gives for the revert ("" when it
// gives none, or the replay does not revert: state at the end of the
// block may differ from what the transaction met inside it). A receipt
// carries no reason, so this is the only way to learn it.
func (c *Chain) RevertReason(ctx context.Context, txHash string, blockNumber uint64) (string, error) {
	// Both reads under the retry policy and its timeouts, as every read
	// is: a node that stalls here must not hold the tracker's pass.
	tx, err := read(c, ctx, func(ctx context.Context) (*types.Transaction, error) {
		tx, _, err := c.c.TransactionByHash(ctx, common.HexToHash(txHash))
		return tx, err
	})
	if err != nil {
		return "", c.chainErr(err, "cannot read the transaction to replay it")
	}
	from, err := types.Sender(types.LatestSignerForChainID(tx.ChainId()), tx)
	if err != nil {
		return "", countersign.Wrap(countersign.ChainError, err, "cannot recover the transaction's sender")
	}
	_, err = read(c, ctx, func(ctx context.Context) ([]byte, error) {
		return c.c.CallContract(ctx, ethereum.CallMsg{From: from, To: tx.To(), Gas: tx.Gas(), Value: tx.Value(), Data: tx.Data()},
			new(big.Int).SetUint64(blockNumber))
	})
	if err == nil {
		return "", nil
	}
	var de interface{ ErrorData() any }
	msg := err.Error()
	if i := strings.Index(msg, "execution reverted"); i >= 0 {
		return limitReason(msg[i:]), nil
	}
	if errors.As(err, &de) {
		return "execution reverted", nil
	}
	return "", c.chainErr(err, "cannot replay the transaction")
}

// limitReason bounds what a contract chose to say, which lands in the
// transaction's error and its audit entry.
func limitReason(s string) string {
	const max = 300
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
