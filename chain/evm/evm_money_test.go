package evm_test

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/chain/evm"
	"github.com/countersign/countersign/chain/sim"
)

// jsonErr is a JSON-RPC error as go-ethereum's rpc client returns it.
type jsonErr struct {
	code int
	msg  string
}

func (e jsonErr) Error() string  { return e.msg }
func (e jsonErr) ErrorCode() int { return e.code }

// faultClient answers SendTransaction with err, after handing the
// transaction to the dev chain when forward is set.
type faultClient struct {
	*sim.Client
	forward bool
	err     error
}

func (f *faultClient) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	if f.forward {
		if err := f.Client.SendTransaction(ctx, tx); err != nil {
			return err
		}
	}
	return f.err
}

func startDev(t *testing.T) *sim.Chain {
	t.Helper()
	dev, err := sim.Start(context.Background(), []byte("evm money test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

// signedTransfer signs a 1-wei transfer from a fresh funded key.
func signedTransfer(t *testing.T, dev *sim.Chain, nonce uint64) ([]byte, *types.Transaction) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	from := crypto.PubkeyToAddress(key.PublicKey)
	if _, err := dev.Fund(context.Background(), from, big.NewInt(1e18)); err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(1337)), &types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: nonce,
		To: &to, Value: big.NewInt(1), Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tx.MarshalBinary()
	return raw, tx
}

type outcome int

const (
	accepted outcome = iota
	refused
	ambiguous
)

// TestMoney_BroadcastAnswersClassified: only the node's known rejection
// reasons are refusals; a JSON-RPC error the node may answer after taking
// the transaction (geth's -32002 request timeout, a provider's -32603) is
// ambiguous, never a refusal that would fail the transaction and hand its
// nonce back.
func TestMoney_BroadcastAnswersClassified(t *testing.T) {
	dev := startDev(t)
	tests := map[string]struct {
		forward bool
		err     error
		want    outcome
		code    countersign.Code
	}{
		"ok/accepted":                                          {forward: true, want: accepted},
		"ok/already known":                                     {forward: true, err: jsonErr{-32000, "already known"}, want: accepted},
		"ok/known transaction (older geth)":                    {forward: true, err: jsonErr{-32000, "known transaction: 0xabc"}, want: accepted},
		"ok/nonce too low, these bytes mined":                  {forward: true, err: jsonErr{-32000, "nonce too low: next nonce 1, tx nonce 0"}, want: accepted},
		"ambiguous/request timed out after taking it (-32002)": {forward: true, err: jsonErr{-32002, "request timed out"}, want: ambiguous},
		"ambiguous/provider internal error (-32603)":           {err: jsonErr{-32603, "internal error"}, want: ambiguous},
		"ambiguous/unknown server error (-32000)":              {err: jsonErr{-32000, "something went wrong"}, want: ambiguous},
		"ambiguous/nonce too low, another transaction":         {err: jsonErr{-32000, "nonce too low: next nonce 5, tx nonce 0"}, want: ambiguous},
		"ambiguous/replacement transaction underpriced":        {err: jsonErr{-32000, "replacement transaction underpriced"}, want: ambiguous},
		"ambiguous/pool full":                                  {err: jsonErr{-32000, "txpool is full"}, want: ambiguous},
		"ambiguous/transport":                                  {err: errors.New("read tcp: connection reset by peer"), want: ambiguous},
		"refused/insufficient funds": {err: jsonErr{-32000, "insufficient funds for gas * price + value: balance 0, tx cost 1"}, want: refused,
			code: countersign.InsufficientFunds},
		"refused/intrinsic gas too low":   {err: jsonErr{-32000, "intrinsic gas too low: gas 100, minimum needed 21000"}, want: refused, code: countersign.ChainError},
		"refused/fee cap below base fee":  {err: jsonErr{-32000, "max fee per gas less than block base fee: address 0x1, maxFeePerGas: 1, baseFee: 7"}, want: refused, code: countersign.ChainError},
		"refused/underpriced":             {err: jsonErr{-32000, "transaction underpriced: tip needed 1, tip permitted 0"}, want: refused, code: countersign.ChainError},
		"refused/exceeds block gas limit": {err: jsonErr{-32000, "exceeds block gas limit"}, want: refused, code: countersign.ChainError},
		"refused/node fee cap":            {err: jsonErr{-32000, "tx fee (2.00 ether) exceeds the configured cap (1.00 ether)"}, want: refused, code: countersign.ChainError},
		"refused/wrong chain":             {err: jsonErr{-32000, "invalid chain id for signer: have 1 want 1337"}, want: refused, code: countersign.ChainError},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			raw, _ := signedTransfer(t, dev, 0)
			c := evm.New(&faultClient{Client: dev.Client(), forward: tt.forward, err: tt.err})
			err := c.SendRawTransaction(context.Background(), raw)
			var got outcome
			switch {
			case err == nil:
				got = accepted
			case errors.Is(err, countersign.ErrRefused):
				got = refused
				if errors.Is(err, countersign.ErrUnavailable) {
					t.Fatalf("both refused and unavailable: %v", err)
				}
			case errors.Is(err, countersign.ErrUnavailable):
				got = ambiguous
			default:
				t.Fatalf("unclassified: %v", err)
			}
			if got != tt.want {
				t.Fatalf("%v: outcome %d, want %d", err, got, tt.want)
			}
			if tt.code != "" && countersign.ErrorCode(err) != tt.code {
				t.Fatalf("code %s, want %s", countersign.ErrorCode(err), tt.code)
			}
			if err != nil && strings.Contains(countersign.ErrorDetail(err), "balance") {
				t.Fatalf("the node's raw message reached the client: %q", countersign.ErrorDetail(err))
			}
		})
	}
}

// TestSentTxsScan finds a sender's transactions by nonce in mined blocks,
// and says whether the scan was complete.
func TestSentTxsScan(t *testing.T) {
	dev := startDev(t)
	ctx := context.Background()
	c := evm.New(dev.Client())
	// the faucet deployed two contracts (nonces 0, 1) at start; fund twice more (2, 3)
	for range 2 {
		if _, err := dev.Fund(ctx, common.HexToAddress("0x000000000000000000000000000000000000bEEF"), big.NewInt(1)); err != nil {
			t.Fatal(err)
		}
	}
	dev.Mine() // an empty block on top
	faucet := dev.Faucet.Hex()
	found, complete, err := c.SentTxs(ctx, countersign.SentQuery{From: faucet, Nonces: []uint64{0, 3, 9}, MaxBlocks: 1000})
	if err != nil || !complete || len(found) != 2 {
		t.Fatalf("found %d, complete %v, %v", len(found), complete, err)
	}
	for _, f := range found {
		var tx types.Transaction
		if err := tx.UnmarshalBinary(f.Raw); err != nil || tx.Hash().Hex() != f.Hash || tx.Nonce() != f.Nonce || f.BlockNumber == nil {
			t.Fatalf("raw bytes do not match: %+v", f)
		}
		if f.Nonce == 3 && (f.To != "0x000000000000000000000000000000000000bEEF" || f.Value.Int64() != 1 || f.Gas == 0 || f.FeeCap == nil) {
			t.Fatalf("nonce 3: %+v", f)
		}
		if f.Nonce == 0 && f.To != "" {
			t.Fatalf("a deployment has no recipient: %+v", f)
		}
	}
	// nonce 0 is deep: two blocks are not enough, and the scan says so
	found, complete, err = c.SentTxs(ctx, countersign.SentQuery{From: faucet, Nonces: []uint64{0}, MaxBlocks: 2})
	if err != nil || complete || len(found) != 0 {
		t.Fatalf("short window: found %d, complete %v, %v", len(found), complete, err)
	}
	// nothing older than Since can hold what is sought: complete at once
	found, complete, err = c.SentTxs(ctx, countersign.SentQuery{From: faucet, Nonces: []uint64{0}, MaxBlocks: 1000, Since: time.Now().Add(24 * time.Hour)})
	if err != nil || !complete || len(found) != 0 {
		t.Fatalf("since the future: found %d, complete %v, %v", len(found), complete, err)
	}
	// another sender's nonces are not the faucet's
	found, _, err = c.SentTxs(ctx, countersign.SentQuery{From: "0x000000000000000000000000000000000000bEEF", Nonces: []uint64{0, 1}, MaxBlocks: 1000})
	if err != nil || len(found) != 0 {
		t.Fatalf("another sender: %d %v", len(found), err)
	}
}
