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
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
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
	BlockByNumber(ctx context.Context, number *big.Int) (*types.Block, error)
}

// Chain adapts a Client to countersign.Chain. Every call to the node has
// a timeout; idempotent reads are retried with backoff (RetryPolicy), a
// broadcast never is.
type Chain struct {
	c   Client
	rpc *rpc.Client // for verbatim read calls; nil if c has none

	timeout     time.Duration // one call: a read's attempt, or a broadcast
	retry       RetryPolicy
	customRetry bool
	node        string // the node as details name it (nodeName); "" in process

	mu     sync.Mutex
	signer types.Signer // recovers senders in SentTxs; from the node's chain id
}

var (
	_ countersign.Chain  = (*Chain)(nil)
	_ countersign.RawRPC = (*Chain)(nil)
)

// New returns a Chain over c. If c exposes its JSON-RPC client (as
// ethclient.Client does with Client(), and chain/sim with RPC()), read
// calls can also be forwarded verbatim (CallRaw). Without options a call
// times out after DefaultTimeout and reads follow DefaultRetry.
func New(c Client, opts ...Option) *Chain {
	ch := &Chain{c: c, timeout: DefaultTimeout, retry: DefaultRetry(DefaultTimeout)}
	for _, o := range opts {
		o(ch)
	}
	switch x := c.(type) {
	case interface{ RPC() *rpc.Client }:
		ch.rpc = x.RPC() // may be nil: CallRaw then refuses
	case interface{ Client() *rpc.Client }:
		ch.rpc = x.Client()
	}
	return ch
}

// CallRaw forwards a read-only JSON-RPC call (countersign.RawRPC) to the
// node and returns its result verbatim. Node errors keep their JSON-RPC
// code and data; failing to reach the node is a ChainError. Being a read,
// it is retried like the others.
func (c *Chain) CallRaw(ctx context.Context, method string, params []json.RawMessage) (json.RawMessage, error) {
	if c.rpc == nil {
		return nil, countersign.Errorf(countersign.ChainError, "this chain adapter cannot forward %s", method)
	}
	args := make([]any, len(params))
	for i, p := range params {
		args[i] = p
	}
	out, err := read(c, ctx, func(ctx context.Context) (json.RawMessage, error) {
		var out json.RawMessage
		err := c.rpc.CallContext(ctx, &out, method, args...)
		return out, err
	})
	if err != nil {
		var re rpc.Error
		if errors.As(err, &re) {
			return nil, err // the node's answer, passed on as it is
		}
		return nil, c.chainErr(err, "cannot forward "+method)
	}
	if out == nil {
		out = json.RawMessage("null")
	}
	return out, nil
}

// Dial connects to an EVM JSON-RPC endpoint (http, https, ws or ipc).
// Error details name the node by scheme and host only (nodeName).
func Dial(ctx context.Context, url string, opts ...Option) (*Chain, func(), error) {
	ch := New(nil, opts...) // for the timeout only
	dctx, cancel := context.WithTimeout(ctx, ch.timeout)
	defer cancel()
	c, err := ethclient.DialContext(dctx, url) // ws and ipc connect here; http on the first call
	if err != nil {
		return nil, nil, err
	}
	return New(c, append([]Option{withNode(url)}, opts...)...), c.Close, nil
}

// chainErr wraps a failed call to the node as a ChainError whose detail
// says what failed (detail) and why, naming the node (why). A failure to
// get an answer (unreachable, 5xx, timeout) also wraps ErrUnavailable, so
// callers can tell "the node is down" from "the node said no".
func (c *Chain) chainErr(err error, detail string) error {
	if err == nil {
		return nil
	}
	var e *countersign.Error
	if errors.As(err, &e) {
		return err
	}
	cause := c.scrub(err)
	if !answered(err) {
		cause = fmt.Errorf("%w: %w", countersign.ErrUnavailable, cause)
	}
	return countersign.Wrap(countersign.ChainError, cause, detail+": "+c.why(err))
}

func (c *Chain) ChainID(ctx context.Context) (*big.Int, error) {
	id, err := read(c, ctx, c.c.ChainID)
	return id, c.chainErr(err, "cannot read chain id")
}

func (c *Chain) BlockNumber(ctx context.Context) (uint64, error) {
	n, err := read(c, ctx, c.c.BlockNumber)
	return n, c.chainErr(err, "cannot read block number")
}

func (c *Chain) BalanceAt(ctx context.Context, addr string) (*big.Int, error) {
	b, err := read(c, ctx, func(ctx context.Context) (*big.Int, error) { return c.c.BalanceAt(ctx, common.HexToAddress(addr), nil) })
	return b, c.chainErr(err, "cannot read balance")
}

func (c *Chain) CodeAt(ctx context.Context, addr string) ([]byte, error) {
	b, err := read(c, ctx, func(ctx context.Context) ([]byte, error) { return c.c.CodeAt(ctx, common.HexToAddress(addr), nil) })
	return b, c.chainErr(err, "cannot read contract code")
}

func (c *Chain) PendingNonceAt(ctx context.Context, addr string) (uint64, error) {
	n, err := read(c, ctx, func(ctx context.Context) (uint64, error) { return c.c.PendingNonceAt(ctx, common.HexToAddress(addr)) })
	return n, c.chainErr(err, "cannot read nonce")
}

func (c *Chain) NonceAt(ctx context.Context, addr string) (uint64, error) {
	n, err := read(c, ctx, func(ctx context.Context) (uint64, error) { return c.c.NonceAt(ctx, common.HexToAddress(addr), nil) })
	return n, c.chainErr(err, "cannot read nonce")
}

// head reads the latest block's header.
func (c *Chain) head(ctx context.Context) (*types.Header, error) {
	h, err := read(c, ctx, func(ctx context.Context) (*types.Header, error) { return c.c.HeaderByNumber(ctx, nil) })
	return h, c.chainErr(err, "cannot read latest block")
}

// BlockHashes returns the hash of the canonical block number and the hash
// of its parent (0x-hex). The receipt tracker walks these back from the
// head to see which blocks a reorg replaced, instead of asking for the
// receipt of every confirmed transaction on every pass.
func (c *Chain) BlockHashes(ctx context.Context, number uint64) (hash, parent string, err error) {
	h, err := read(c, ctx, func(ctx context.Context) (*types.Header, error) {
		return c.c.HeaderByNumber(ctx, new(big.Int).SetUint64(number))
	})
	if errors.Is(err, ethereum.NotFound) {
		return "", "", countersign.Errorf(countersign.NotFound, "block %d not found", number)
	}
	if err != nil {
		return "", "", c.chainErr(err, "cannot read block header")
	}
	return h.Hash().Hex(), h.ParentHash.Hex(), nil
}

// HeadHashes is BlockHashes of the latest block, with its number: one
// call where BlockNumber and BlockHashes would be two.
func (c *Chain) HeadHashes(ctx context.Context) (number uint64, hash, parent string, err error) {
	h, err := c.head(ctx)
	if err != nil {
		return 0, "", "", err
	}
	return h.Number.Uint64(), h.Hash().Hex(), h.ParentHash.Hex(), nil
}

func (c *Chain) BaseFee(ctx context.Context) (*big.Int, error) {
	head, err := c.head(ctx)
	if err != nil {
		return nil, err
	}
	if head.BaseFee == nil {
		return new(big.Int), nil
	}
	return new(big.Int).Set(head.BaseFee), nil
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
	out, err := read(c, ctx, func(ctx context.Context) ([]byte, error) { return c.c.CallContract(ctx, callMsg(m), nil) })
	if err != nil {
		if !answered(err) {
			return nil, c.chainErr(err, "the call failed")
		}
		return nil, countersign.Wrap(countersign.ChainError, err, revertDetail(err))
	}
	return out, nil
}

func (c *Chain) EstimateGas(ctx context.Context, m countersign.CallMsg) (uint64, error) {
	g, err := read(c, ctx, func(ctx context.Context) (uint64, error) { return c.c.EstimateGas(ctx, callMsg(m)) })
	if err != nil {
		if !answered(err) {
			return 0, c.chainErr(err, "gas estimation failed")
		}
		if isInsufficientFunds(err) {
			return 0, countersign.Wrap(countersign.InsufficientFunds, err, "the wallet cannot pay for this transaction")
		}
		return 0, countersign.Wrap(countersign.ChainError, err, "gas estimation failed: "+revertDetail(err))
	}
	return g, nil
}

// answered reports whether err is the node's own answer (a JSON-RPC
// error such as a revert) rather than a failure to get one.
func answered(err error) bool {
	var re rpc.Error
	return errors.As(err, &re) || !(retryable(err) || errors.Is(err, context.Canceled))
}

// SuggestFees returns the node's suggested tip and a fee cap of twice the
// latest base fee plus the tip, which survives several full blocks.
func (c *Chain) SuggestFees(ctx context.Context) (*big.Int, *big.Int, error) {
	tip, feeCap, _, err := c.Fees(ctx)
	return tip, feeCap, err
}

// Fees is SuggestFees and BaseFee from one read of the latest header:
// the tip suggestion, the usual fee cap (twice the base fee plus the tip)
// and the base fee. core asks for it where it needs all three.
func (c *Chain) Fees(ctx context.Context) (tip, feeCap, base *big.Int, err error) {
	if tip, err = read(c, ctx, c.c.SuggestGasTipCap); err != nil {
		return nil, nil, nil, c.chainErr(err, "cannot read fee suggestion")
	}
	head, err := c.head(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	base = new(big.Int)
	if head.BaseFee != nil {
		base.Set(head.BaseFee)
	}
	feeCap = new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip)
	return tip, feeCap, base, nil
}

func isInsufficientFunds(err error) bool {
	return strings.Contains(strings.ToLower(err.Error()), "insufficient funds")
}

// refusals are the rejection reasons of geth's pool and RPC layer (the
// texts other clients and providers pass on) that mean the node did not
// take the transaction and will not: the bytes can never be mined as they
// are. Matched in lower case, as substrings, each with the reason shown
// to the client. "replacement transaction underpriced" is not among them
// (another transaction holds the nonce; which one is mined is for the
// chain to say), nor are pool-capacity answers (the node may take the same
// bytes later): those, like every reason not listed, are ambiguous.
var refusals = []struct{ match, reason string }{
	{"insufficient funds", "the wallet cannot pay for this transaction"},
	{"intrinsic gas too low", "the gas limit is below the intrinsic gas"},
	{"insufficient gas for floor data gas cost", "the gas limit is below the calldata floor cost"},
	{"max fee per gas less than block base fee", "the fee cap is below the base fee"},
	{"max priority fee per gas higher than max fee per gas", "the tip is above the fee cap"},
	{"higher than 2^256-1", "a fee field is out of range"},
	{"exceeds block gas limit", "the gas limit exceeds the block gas limit"},
	{"transaction gas limit too high", "the gas limit is too high"},
	{"gas uint64 overflow", "the gas cost overflows"},
	{"oversized data", "the transaction is too large"},
	{"negative value", "the value is negative"},
	{"invalid sender", "the signature is invalid"},
	{"invalid chain id", "the transaction is signed for another chain"},
	{"only replay-protected", "the node accepts only EIP-155 transactions"},
	{"exceeds the configured cap", "the fee exceeds the node's configured cap"},
	{"transaction type not supported", "the node does not support this transaction type"},
	{"sender not an eoa", "the sender is not an externally owned account"},
	{"nonce has max value", "the nonce is exhausted"},
}

// accepted are the answers that mean the node already has these bytes.
var accepted = []string{"already known", "known transaction", "alreadyknown", "already_known", "already imported"}

// refused returns the public reason when msg is a definite refusal.
func refused(msg string) (string, bool) {
	msg = strings.ToLower(msg)
	if strings.Contains(msg, "replacement transaction underpriced") {
		return "", false
	}
	if strings.Contains(msg, "transaction underpriced") || strings.Contains(msg, "gas price below minimum") {
		return "the fee is below the node's minimum", true
	}
	for _, r := range refusals {
		if strings.Contains(msg, r.match) {
			return r.reason, true
		}
	}
	return "", false
}

func isAccepted(msg string) bool {
	msg = strings.ToLower(msg)
	for _, a := range accepted {
		if strings.Contains(msg, a) {
			return true
		}
	}
	return false
}

// ambiguous wraps a broadcast error the node gave without saying no: the
// node may have taken the transaction (geth answers -32002 "request timed
// out" while the method keeps running; proxies drop answers), so it is
// settled later from the chain, never assumed to have failed.
func ambiguous(err error, detail string) error {
	return countersign.Wrap(countersign.ChainError, fmt.Errorf("%w: %v", countersign.ErrUnavailable, err), detail)
}

// SendRawTransaction broadcasts raw and classifies the node's answer: nil
// when the node has the bytes, an error wrapping countersign.ErrRefused for
// the known rejection reasons, and an ambiguous (ErrUnavailable) error for
// everything else, JSON-RPC errors included.
func (c *Chain) SendRawTransaction(ctx context.Context, raw []byte) error {
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil {
		return countersign.Wrap(countersign.Internal, fmt.Errorf("%w: %v", countersign.ErrRefused, err), "cannot decode signed transaction")
	}
	// Once, with the per-call timeout: the bytes are stored, so when the
	// answer is lost the tracker sends them again; a retry here would only
	// hide which attempt the node took.
	err := c.once(ctx, func(ctx context.Context) error { return c.c.SendTransaction(ctx, &tx) })
	if err == nil || isAccepted(err.Error()) {
		return nil
	}
	if strings.Contains(strings.ToLower(err.Error()), "nonce too low") {
		// The nonce is used: by these very bytes (the node took them
		// before, or mined them) or by another transaction. Only the
		// first is known here; the tracker settles the second.
		if _, lerr := read(c, ctx, func(ctx context.Context) (*types.Transaction, error) {
			t, _, err := c.c.TransactionByHash(ctx, tx.Hash())
			return t, err
		}); lerr == nil {
			return nil
		}
		return ambiguous(err, "the node reports the nonce as used: countersign settles the transaction from the chain")
	}
	if reason, ok := refused(err.Error()); ok {
		code := countersign.ChainError
		if isInsufficientFunds(err) {
			code = countersign.InsufficientFunds
		}
		return countersign.Wrap(code, fmt.Errorf("%w: %v", countersign.ErrRefused, err), "the node refused the transaction: "+reason)
	}
	var re rpc.Error
	if errors.As(err, &re) {
		return ambiguous(err, "the node answered the broadcast with an error that does not say it refused the transaction: countersign settles it from the chain")
	}
	// Transport trouble or a timeout: the node may or may not have the
	// transaction.
	return ambiguous(c.scrub(err), c.why(err))
}

func (c *Chain) Receipt(ctx context.Context, hash string) (*countersign.Receipt, error) {
	r, err := read(c, ctx, func(ctx context.Context) (*types.Receipt, error) {
		return c.c.TransactionReceipt(ctx, common.HexToHash(hash))
	})
	if errors.Is(err, ethereum.NotFound) || (err != nil && answered(err) && strings.Contains(err.Error(), "not found")) {
		return nil, countersign.Errorf(countersign.NotFound, "receipt not found")
	}
	if err != nil {
		return nil, c.chainErr(err, "cannot read receipt")
	}
	return &countersign.Receipt{
		TxHash:      r.TxHash.Hex(),
		BlockNumber: r.BlockNumber.Uint64(),
		BlockHash:   r.BlockHash.Hex(),
		Success:     r.Status == types.ReceiptStatusSuccessful,
		GasUsed:     r.GasUsed,
	}, nil
}

// senderSigner returns the signer that recovers senders on this chain.
func (c *Chain) senderSigner(ctx context.Context) (types.Signer, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.signer == nil {
		id, err := c.ChainID(ctx)
		if err != nil {
			return nil, err
		}
		c.signer = types.LatestSignerForChainID(id)
	}
	return c.signer, nil
}

func sentTx(tx *types.Transaction, block *uint64) (*countersign.SentTx, error) {
	raw, err := tx.MarshalBinary()
	if err != nil {
		return nil, err
	}
	st := &countersign.SentTx{Hash: tx.Hash().Hex(), Raw: raw, Nonce: tx.Nonce(), Value: tx.Value(), Data: tx.Data(),
		Gas: tx.Gas(), FeeCap: tx.GasFeeCap(), BlockNumber: block}
	if tx.To() != nil {
		st.To = tx.To().Hex()
	}
	return st, nil
}

// SentTxs looks in the node's pool (geth's txpool_contentFrom, where the
// node offers it) and then walks blocks back from the head. Transactions
// are matched on nonce first, and only those have their sender recovered.
func (c *Chain) SentTxs(ctx context.Context, q countersign.SentQuery) ([]*countersign.SentTx, bool, error) {
	from := common.HexToAddress(q.From)
	want := map[uint64]bool{}
	for _, n := range q.Nonces {
		want[n] = true
	}
	var found []*countersign.SentTx
	if len(want) == 0 {
		return nil, true, nil
	}
	for _, h := range c.poolHashes(ctx, from, want) {
		var pending bool
		tx, err := read(c, ctx, func(ctx context.Context) (*types.Transaction, error) {
			t, p, err := c.c.TransactionByHash(ctx, h)
			pending = p
			return t, err
		})
		if err != nil || !pending || !want[tx.Nonce()] {
			continue // mined meanwhile: the block walk finds it
		}
		st, err := sentTx(tx, nil)
		if err != nil {
			return nil, false, err
		}
		found = append(found, st)
		delete(want, tx.Nonce())
	}
	signer, err := c.senderSigner(ctx)
	if err != nil {
		return nil, false, err
	}
	head, err := c.BlockNumber(ctx)
	if err != nil {
		return nil, false, err
	}
	for walked := uint64(0); len(want) > 0; walked++ {
		if walked >= q.MaxBlocks || walked > head {
			return found, walked > head, nil // genesis reached: nothing older to find
		}
		n := head - walked
		btime, txs, err := c.blockTxs(ctx, n, from)
		if err != nil {
			return nil, false, c.chainErr(err, "cannot read block")
		}
		if !q.Since.IsZero() && int64(btime) < q.Since.Unix() {
			return found, true, nil
		}
		for _, tx := range txs {
			if !want[tx.Nonce()] {
				continue
			}
			if sender, err := types.Sender(signer, tx); err != nil || sender != from {
				continue
			}
			st, err := sentTx(tx, &n)
			if err != nil {
				return nil, false, err
			}
			found = append(found, st)
			delete(want, tx.Nonce())
		}
	}
	return found, true, nil
}

// blockTxs returns block n's time and the transactions in it that may be
// from's (the caller recovers each sender). Over JSON-RPC it reads the
// block as the node serves it and decodes only the transactions the node
// says are from's: a block may hold types go-ethereum does not decode
// (an OP-stack chain's deposit, 0x7e, opens every block on Base), which
// ethclient's BlockByNumber refuses whole — and countersign never signs
// one. Without a JSON-RPC client (an in-process chain), the block as
// go-ethereum reads it.
func (c *Chain) blockTxs(ctx context.Context, n uint64, from common.Address) (uint64, []*types.Transaction, error) {
	if c.rpc == nil {
		b, err := read(c, ctx, func(ctx context.Context) (*types.Block, error) {
			return c.c.BlockByNumber(ctx, new(big.Int).SetUint64(n))
		})
		if err != nil {
			return 0, nil, err
		}
		return b.Time(), b.Transactions(), nil
	}
	var b *struct {
		Time hexutil.Uint64    `json:"timestamp"`
		Txs  []json.RawMessage `json:"transactions"`
	}
	if _, err := read(c, ctx, func(ctx context.Context) (struct{}, error) {
		b = nil
		return struct{}{}, c.rpc.CallContext(ctx, &b, "eth_getBlockByNumber", hexutil.EncodeUint64(n), true)
	}); err != nil {
		return 0, nil, err
	}
	if b == nil {
		return 0, nil, fmt.Errorf("the node has no block %d", n)
	}
	var out []*types.Transaction
	for _, raw := range b.Txs {
		var claim struct {
			From common.Address `json:"from"`
		}
		if json.Unmarshal(raw, &claim) != nil || claim.From != from {
			continue
		}
		tx := new(types.Transaction)
		if tx.UnmarshalJSON(raw) != nil {
			continue // a type this client does not decode, so not one countersign signed
		}
		out = append(out, tx)
	}
	return uint64(b.Time), out, nil
}

// poolHashes returns the hashes of from's pooled transactions with wanted
// nonces, from geth's txpool namespace. Nodes without it (most providers)
// answer nothing, and the caller treats pooled nonces as unseen.
func (c *Chain) poolHashes(ctx context.Context, from common.Address, want map[uint64]bool) []common.Hash {
	if c.rpc == nil {
		return nil
	}
	var content map[string]map[string]struct {
		Hash common.Hash `json:"hash"`
	}
	if _, err := read(c, ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.rpc.CallContext(ctx, &content, "txpool_contentFrom", from)
	}); err != nil {
		return nil
	}
	var out []common.Hash
	for _, byNonce := range content {
		for nonce, tx := range byNonce {
			var n uint64
			if _, err := fmt.Sscan(nonce, &n); err == nil && want[n] {
				out = append(out, tx.Hash)
			}
		}
	}
	return out
}
