// Package evm implements countersign.Chain over go-ethereum's client
// interfaces: a JSON-RPC node (Dial) or any in-process client with the same
// methods, such as the simulated backend of chain/sim.
package evm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/countersign/countersign"
)

// Client is the part of go-ethereum's ethclient that the adapter uses.
// ethclient.Client and simulated.Client both provide it.
type Client interface {
	ethereum.ChainIDReader
	ethereum.BlockNumberReader
	ethereum.ChainStateReader
	ethereum.ContractCaller
	ethereum.GasEstimator
	ethereum.GasPricer1559
	ethereum.PendingStateReader
	ethereum.TransactionReader
	ethereum.TransactionSender
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
}

// Chain adapts a Client to countersign.Chain.
type Chain struct {
	c   Client
	rpc *rpc.Client // for verbatim read calls; nil if c has none
}

var (
	_ countersign.Chain  = (*Chain)(nil)
	_ countersign.RawRPC = (*Chain)(nil)
)

// New returns a Chain over c. If c exposes its JSON-RPC client (as
// ethclient.Client does with Client(), and chain/sim with RPC()), read
// calls can also be forwarded verbatim (CallRaw).
func New(c Client) *Chain {
	ch := &Chain{c: c}
	switch x := c.(type) {
	case interface{ RPC() *rpc.Client }:
		ch.rpc = x.RPC() // may be nil: CallRaw then refuses
	case interface{ Client() *rpc.Client }:
		ch.rpc = x.Client()
	}
	return ch
}

// CallRaw forwards a JSON-RPC call to the node and returns its result
// verbatim. Node errors keep their JSON-RPC code and data.
func (c *Chain) CallRaw(ctx context.Context, method string, params []json.RawMessage) (json.RawMessage, error) {
	if c.rpc == nil {
		return nil, countersign.Errorf(countersign.ChainError, "this chain adapter cannot forward %s", method)
	}
	args := make([]any, len(params))
	for i, p := range params {
		args[i] = p
	}
	var out json.RawMessage
	if err := c.rpc.CallContext(ctx, &out, method, args...); err != nil {
		return nil, err
	}
	if out == nil {
		out = json.RawMessage("null")
	}
	return out, nil
}

// Dial connects to an EVM JSON-RPC endpoint (http, https, ws or ipc).
func Dial(ctx context.Context, url string) (*Chain, func(), error) {
	c, err := ethclient.DialContext(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	return New(c), c.Close, nil
}

func chainErr(err error, detail string) error {
	if err == nil {
		return nil
	}
	var e *countersign.Error
	if errors.As(err, &e) {
		return err
	}
	return countersign.Wrap(countersign.ChainError, err, detail)
}

func (c *Chain) ChainID(ctx context.Context) (*big.Int, error) {
	id, err := c.c.ChainID(ctx)
	return id, chainErr(err, "cannot read chain id")
}

func (c *Chain) BlockNumber(ctx context.Context) (uint64, error) {
	n, err := c.c.BlockNumber(ctx)
	return n, chainErr(err, "cannot read block number")
}

func (c *Chain) BalanceAt(ctx context.Context, addr string) (*big.Int, error) {
	b, err := c.c.BalanceAt(ctx, common.HexToAddress(addr), nil)
	return b, chainErr(err, "cannot read balance")
}

func (c *Chain) CodeAt(ctx context.Context, addr string) ([]byte, error) {
	b, err := c.c.CodeAt(ctx, common.HexToAddress(addr), nil)
	return b, chainErr(err, "cannot read contract code")
}

func (c *Chain) PendingNonceAt(ctx context.Context, addr string) (uint64, error) {
	n, err := c.c.PendingNonceAt(ctx, common.HexToAddress(addr))
	return n, chainErr(err, "cannot read nonce")
}

func callMsg(m countersign.CallMsg) ethereum.CallMsg {
	msg := ethereum.CallMsg{Value: m.Value, Data: m.Data}
	if m.From != "" {
		msg.From = common.HexToAddress(m.From)
	}
	if m.To != "" {
		to := common.HexToAddress(m.To)
		msg.To = &to
	}
	return msg
}

// revertDetail turns a node's revert error into a client-safe message.
func revertDetail(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "execution reverted"); i >= 0 {
		return msg[i:]
	}
	return "the chain refused the call"
}

func (c *Chain) Call(ctx context.Context, m countersign.CallMsg) ([]byte, error) {
	out, err := c.c.CallContract(ctx, callMsg(m), nil)
	if err != nil {
		return nil, countersign.Wrap(countersign.ChainError, err, revertDetail(err))
	}
	return out, nil
}

func (c *Chain) EstimateGas(ctx context.Context, m countersign.CallMsg) (uint64, error) {
	g, err := c.c.EstimateGas(ctx, callMsg(m))
	if err != nil {
		if isInsufficientFunds(err) {
			return 0, countersign.Wrap(countersign.InsufficientFunds, err, "the wallet cannot pay for this transaction")
		}
		return 0, countersign.Wrap(countersign.ChainError, err, "gas estimation failed: "+revertDetail(err))
	}
	return g, nil
}

// SuggestFees returns the node's suggested tip and a fee cap of twice the
// latest base fee plus the tip, which survives several full blocks.
func (c *Chain) SuggestFees(ctx context.Context) (*big.Int, *big.Int, error) {
	tip, err := c.c.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, nil, chainErr(err, "cannot read fee suggestion")
	}
	head, err := c.c.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, nil, chainErr(err, "cannot read latest block")
	}
	base := head.BaseFee
	if base == nil {
		base = new(big.Int)
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip)
	return tip, feeCap, nil
}

// isRefusal reports whether the node answered with a JSON-RPC error (it
// saw the transaction and said no), rather than not answering.
func isRefusal(err error) bool {
	var re rpc.Error
	return errors.As(err, &re)
}

func isInsufficientFunds(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "insufficient funds")
}

func (c *Chain) SendRawTransaction(ctx context.Context, raw []byte) error {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		return countersign.Wrap(countersign.Internal, err, "cannot decode signed transaction")
	}
	err := c.c.SendTransaction(ctx, &tx)
	switch {
	case err == nil:
		return nil
	case strings.Contains(err.Error(), "already known"):
		return nil // a rebroadcast of the same bytes: the node has it
	case isInsufficientFunds(err):
		return countersign.Wrap(countersign.InsufficientFunds, err, "the wallet cannot pay for this transaction")
	case isRefusal(err):
		return countersign.Wrap(countersign.ChainError, err, "the node refused the transaction")
	default:
		// Transport trouble: the node may or may not have the transaction.
		return countersign.Wrap(countersign.ChainError, fmt.Errorf("%w: %v", countersign.ErrUnavailable, err), "the chain node is unreachable")
	}
}

func (c *Chain) Receipt(ctx context.Context, hash string) (*countersign.Receipt, error) {
	r, err := c.c.TransactionReceipt(ctx, common.HexToHash(hash))
	if errors.Is(err, ethereum.NotFound) || (err != nil && strings.Contains(err.Error(), "not found")) {
		return nil, countersign.Errorf(countersign.NotFound, "receipt not found")
	}
	if err != nil {
		return nil, chainErr(err, "cannot read receipt")
	}
	return &countersign.Receipt{
		TxHash:      r.TxHash.Hex(),
		BlockNumber: r.BlockNumber.Uint64(),
		Success:     r.Status == types.ReceiptStatusSuccessful,
		GasUsed:     r.GasUsed,
	}, nil
}
