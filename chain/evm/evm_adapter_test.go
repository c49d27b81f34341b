package evm_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/chain/evm"
	"github.com/countersign/countersign/chain/sim"
	"github.com/countersign/countersign/contracts"
)

// transports are the two ways the server reaches a chain: the in-process
// client of the embedded dev chain, and a JSON-RPC node (Dial), here the
// same dev chain served over loopback HTTP.
func transports(t *testing.T, dev *sim.Chain) map[string]*evm.Chain {
	t.Helper()
	srv := httptest.NewServer(dev.Handler())
	t.Cleanup(srv.Close)
	remote, closeFn, err := evm.Dial(context.Background(), srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeFn)
	return map[string]*evm.Chain{"in-process": evm.New(dev.Client()), "json-rpc": remote}
}

func fundedKey(t *testing.T, dev *sim.Chain, wei int64) (*ecdsa.PrivateKey, common.Address) {
	t.Helper()
	key, _ := crypto.GenerateKey()
	addr := crypto.PubkeyToAddress(key.PublicKey)
	if wei > 0 {
		if _, err := dev.Fund(context.Background(), addr, big.NewInt(wei)); err != nil {
			t.Fatal(err)
		}
	}
	return key, addr
}

var dead = common.HexToAddress("0x000000000000000000000000000000000000dEaD")

func signTx(t *testing.T, key *ecdsa.PrivateKey, chainID int64, tx *types.DynamicFeeTx) []byte {
	t.Helper()
	tx.ChainID = big.NewInt(chainID)
	if tx.To == nil {
		tx.To = &dead
	}
	s, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(chainID)), tx)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := s.MarshalBinary()
	return raw
}

// The reads return the chain's state exactly, over both transports.
func TestAdapterReads(t *testing.T) {
	dev := startDev(t)
	ctx := context.Background()
	_, addr := fundedKey(t, dev, 123456789)
	minted := big.NewInt(987654321)
	if _, err := dev.Mint(ctx, addr, minted); err != nil {
		t.Fatal(err)
	}
	balanceOf, _ := contracts.MustLoad("TestToken").ABI.Pack("balanceOf", addr)
	for name, c := range transports(t, dev) {
		t.Run(name, func(t *testing.T) {
			if id, err := c.ChainID(ctx); err != nil || id.Int64() != 1337 {
				t.Fatalf("chain id %v %v", id, err)
			}
			head, err := c.BlockNumber(ctx)
			if err != nil || head < 4 { // two deployments, a fund, a mint
				t.Fatalf("block number %d %v", head, err)
			}
			if b, err := c.BalanceAt(ctx, addr.Hex()); err != nil || b.Int64() != 123456789 {
				t.Fatalf("balance %v %v", b, err)
			}
			if b, err := c.BalanceAt(ctx, strings.ToLower(addr.Hex())); err != nil || b.Int64() != 123456789 {
				t.Fatalf("balance of the lower-case address %v %v", b, err)
			}
			if b, err := c.BalanceAt(ctx, "0x00000000000000000000000000000000000000A1"); err != nil || b.Sign() != 0 {
				t.Fatalf("an unknown address's balance %v %v", b, err)
			}
			// the faucet deployed two contracts, then funded and minted: nonce 4
			for what, f := range map[string]func(context.Context, string) (uint64, error){"NonceAt": c.NonceAt, "PendingNonceAt": c.PendingNonceAt} {
				if n, err := f(ctx, dev.Faucet.Hex()); err != nil || n != 4 {
					t.Fatalf("%s(faucet) %d %v, want 4", what, n, err)
				}
				if n, err := f(ctx, addr.Hex()); err != nil || n != 0 {
					t.Fatalf("%s(fresh) %d %v", what, n, err)
				}
			}
			if code, err := c.CodeAt(ctx, dev.Token.Hex()); err != nil || len(code) == 0 {
				t.Fatalf("token code %d bytes %v", len(code), err)
			}
			if code, err := c.CodeAt(ctx, addr.Hex()); err != nil || len(code) != 0 {
				t.Fatalf("an EOA has code: %d bytes %v", len(code), err)
			}
			out, err := c.Call(ctx, countersign.CallMsg{To: dev.Token.Hex(), Data: balanceOf})
			if err != nil || new(big.Int).SetBytes(out).Cmp(minted) != 0 {
				t.Fatalf("balanceOf %x %v, want %v", out, err, minted)
			}
			base, err := c.BaseFee(ctx)
			if err != nil || base.Sign() <= 0 {
				t.Fatalf("base fee %v %v", base, err)
			}
			tip, feeCap, err := c.SuggestFees(ctx)
			if err != nil || tip.Sign() <= 0 {
				t.Fatalf("fees %v %v %v", tip, feeCap, err)
			}
			// the cap survives a doubling of the base fee, plus the tip
			if want := new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip); feeCap.Cmp(want) != 0 {
				t.Fatalf("fee cap %v, want 2×%v+%v", feeCap, base, tip)
			}
			if g, err := c.EstimateGas(ctx, countersign.CallMsg{From: addr.Hex(), To: dead.Hex(), Value: big.NewInt(1)}); err != nil || g != 21000 {
				t.Fatalf("estimate of a plain transfer %d %v", g, err)
			}
		})
	}
}

// Call and estimate failures carry a code and a detail fit for a client:
// the revert reason, not the node's whole message.
func TestAdapterCallErrors(t *testing.T) {
	dev := startDev(t)
	ctx := context.Background()
	reverts, _ := contracts.MustLoad("Counter").ABI.Pack("alwaysReverts")
	_, poor := fundedKey(t, dev, 0)
	for name, c := range transports(t, dev) {
		t.Run(name, func(t *testing.T) {
			_, err := c.Call(ctx, countersign.CallMsg{To: dev.Counter.Hex(), Data: reverts})
			if countersign.ErrorCode(err) != countersign.ChainError || !strings.HasPrefix(countersign.ErrorDetail(err), "execution reverted") {
				t.Fatalf("a reverting call: %s %q", countersign.ErrorCode(err), countersign.ErrorDetail(err))
			}
			_, err = c.EstimateGas(ctx, countersign.CallMsg{From: poor.Hex(), To: dev.Counter.Hex(), Data: reverts})
			if countersign.ErrorCode(err) != countersign.ChainError || !strings.Contains(countersign.ErrorDetail(err), "execution reverted") {
				t.Fatalf("estimating a reverting call: %s %q", countersign.ErrorCode(err), countersign.ErrorDetail(err))
			}
			_, err = c.EstimateGas(ctx, countersign.CallMsg{From: poor.Hex(), To: dead.Hex(), Value: big.NewInt(1e18)})
			if countersign.ErrorCode(err) != countersign.InsufficientFunds {
				t.Fatalf("estimating a transfer the sender cannot pay: %s %v", countersign.ErrorCode(err), err)
			}
			if strings.Contains(countersign.ErrorDetail(err), poor.Hex()[2:10]) {
				t.Fatalf("the node's message (with the address and balances) reached the detail: %q", countersign.ErrorDetail(err))
			}
		})
	}
}

// A signed transfer goes out, is mined, and its receipt reads back; the
// same bytes sent again are "the node has them", not a failure; an
// unknown hash has no receipt (NotFound, so the tracker keeps waiting).
func TestAdapterSendReceiptRoundTrip(t *testing.T) {
	dev := startDev(t)
	ctx := context.Background()
	for name, c := range transports(t, dev) {
		t.Run(name, func(t *testing.T) {
			key, from := fundedKey(t, dev, 1e18)
			raw := signTx(t, key, 1337, &types.DynamicFeeTx{Value: big.NewInt(7), Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)})
			var tx types.Transaction
			_ = tx.UnmarshalBinary(raw)
			if err := c.SendRawTransaction(ctx, raw); err != nil {
				t.Fatal(err)
			}
			r, err := c.Receipt(ctx, tx.Hash().Hex())
			if err != nil || !r.Success || r.TxHash != tx.Hash().Hex() || r.GasUsed != 21000 || r.BlockNumber == 0 {
				t.Fatalf("receipt %+v %v", r, err)
			}
			if n, _ := c.NonceAt(ctx, from.Hex()); n != 1 {
				t.Fatalf("nonce after one send %d", n)
			}
			if err := c.SendRawTransaction(ctx, raw); err != nil {
				t.Fatalf("the same bytes again: %v (the node has them: not a failure)", err)
			}
			if b, _ := c.BalanceAt(ctx, dead.Hex()); b.Int64() < 7 {
				t.Fatalf("recipient balance %v", b)
			}
			_, err = c.Receipt(ctx, "0x"+strings.Repeat("ab", 32))
			if countersign.ErrorCode(err) != countersign.NotFound {
				t.Fatalf("an unknown hash: %v", err)
			}
			// a failed (reverted) transaction has a receipt with Success false
			reverts, _ := contracts.MustLoad("Counter").ABI.Pack("alwaysReverts")
			counter := dev.Counter
			raw = signTx(t, key, 1337, &types.DynamicFeeTx{Nonce: 1, To: &counter, Data: reverts, Gas: 100000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)})
			var failed types.Transaction // a fresh value: a Transaction caches its hash
			_ = failed.UnmarshalBinary(raw)
			if err := c.SendRawTransaction(ctx, raw); err != nil {
				t.Fatal(err)
			}
			if r, err := c.Receipt(ctx, failed.Hash().Hex()); err != nil || r.Success || r.GasUsed <= 21000 {
				t.Fatalf("a reverted transaction's receipt %+v %v", r, err)
			}
		})
	}
}

// TestMoney_RealNodeRefusalsClassified: the answers a real node gives (the
// simulated backend's pool, in process and over JSON-RPC) are classified
// as the tracker needs them: a definite refusal only when the bytes can
// never be mined, ambiguous when another transaction holds the nonce. A
// refusal misread as ambiguous leaves a spend hanging; an ambiguous answer
// misread as a refusal hands a used nonce back.
func TestMoney_RealNodeRefusalsClassified(t *testing.T) {
	dev := startDev(t)
	ctx := context.Background()
	for name, c := range transports(t, dev) {
		t.Run(name, func(t *testing.T) {
			rich, _ := fundedKey(t, dev, 1e18)
			poor, _ := fundedKey(t, dev, 0)
			// nonce 0 of rich is used by another transaction
			if err := c.SendRawTransaction(ctx, signTx(t, rich, 1337, &types.DynamicFeeTx{Value: big.NewInt(1), Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)})); err != nil {
				t.Fatal(err)
			}
			tests := map[string]struct {
				raw  []byte
				want error
				code countersign.Code
			}{
				"fail/refused insufficient funds": {signTx(t, poor, 1337, &types.DynamicFeeTx{Value: big.NewInt(1), Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)}),
					countersign.ErrRefused, countersign.InsufficientFunds},
				"fail/refused intrinsic gas too low": {signTx(t, rich, 1337, &types.DynamicFeeTx{Nonce: 1, Value: big.NewInt(1), Gas: 20000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)}),
					countersign.ErrRefused, countersign.ChainError},
				"fail/refused signed for another chain": {signTx(t, rich, 1, &types.DynamicFeeTx{Nonce: 1, Value: big.NewInt(1), Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)}),
					countersign.ErrRefused, countersign.ChainError},
				"fail/ambiguous nonce used by another transaction": {signTx(t, rich, 1337, &types.DynamicFeeTx{Nonce: 0, Value: big.NewInt(2), Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)}),
					countersign.ErrUnavailable, countersign.ChainError},
				"fail/undecodable bytes": {[]byte{0x02, 0xff}, countersign.ErrRefused, countersign.Internal},
			}
			for name, tt := range tests {
				t.Run(name, func(t *testing.T) {
					err := c.SendRawTransaction(ctx, tt.raw)
					if !errors.Is(err, tt.want) || countersign.ErrorCode(err) != tt.code {
						t.Fatalf("%v: want %v with code %s, got code %s", err, tt.want, tt.code, countersign.ErrorCode(err))
					}
					if tt.want == countersign.ErrRefused && errors.Is(err, countersign.ErrUnavailable) {
						t.Fatalf("both refused and ambiguous: %v", err)
					}
					if d := countersign.ErrorDetail(err); strings.Contains(d, "balance") || strings.Contains(d, "0x") {
						t.Fatalf("the node's raw message reached the detail: %q", d)
					}
				})
			}
		})
	}
}

// noRPC hides the dev client's JSON-RPC handle: an in-process client
// without one.
type noRPC struct{ evm.Client }

// CallRaw forwards verbatim with the node's error code; an adapter without
// a JSON-RPC handle refuses to forward rather than guess.
func TestAdapterCallRaw(t *testing.T) {
	dev := startDev(t)
	ctx := context.Background()
	for name, c := range transports(t, dev) {
		t.Run(name, func(t *testing.T) {
			out, err := c.CallRaw(ctx, "eth_chainId", nil)
			if err != nil || string(out) != `"0x539"` {
				t.Fatalf("eth_chainId %s %v", out, err)
			}
			out, err = c.CallRaw(ctx, "eth_getBalance", []json.RawMessage{json.RawMessage(`"` + dev.Faucet.Hex() + `"`), json.RawMessage(`"latest"`)})
			var b hexutil.Big
			if err != nil || json.Unmarshal(out, &b) != nil || b.ToInt().Sign() <= 0 {
				t.Fatalf("eth_getBalance %s %v", out, err)
			}
			out, err = c.CallRaw(ctx, "eth_getTransactionByHash", []json.RawMessage{json.RawMessage(`"0x` + strings.Repeat("cd", 32) + `"`)})
			if err != nil || string(out) != "null" {
				t.Fatalf("a null result: %s %v", out, err)
			}
			_, err = c.CallRaw(ctx, "no_suchMethod", nil)
			var re interface{ ErrorCode() int }
			if !errors.As(err, &re) || re.ErrorCode() != -32601 {
				t.Fatalf("the node's error code is kept: %v", err)
			}
		})
	}
	c := evm.New(noRPC{dev.Client()})
	if _, err := c.CallRaw(ctx, "eth_chainId", nil); countersign.ErrorCode(err) != countersign.ChainError {
		t.Fatalf("no JSON-RPC handle: %v", err)
	}
	// GenesisHash falls back to the header without a JSON-RPC handle
	if g, err := c.GenesisHash(ctx); err != nil || len(g) != 66 {
		t.Fatalf("genesis without RPC %q %v", g, err)
	}
}

// Dial against nodes that misbehave: every read fails with ChainError and
// no panic; a broadcast to a node that is gone is ambiguous (it may have
// taken the bytes before dropping), never a refusal.
func TestAdapterDialBadNodes(t *testing.T) {
	ctx := context.Background()
	if _, _, err := evm.Dial(ctx, "ftp://127.0.0.1:1"); err == nil {
		t.Fatal("dialing an unsupported scheme succeeded")
	}
	nodes := map[string]http.HandlerFunc{
		"fail/500": func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", 500) },
		"fail/not JSON": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte("<html>"))
		},
		"fail/JSON-RPC error": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"internal error"}}`))
		},
	}
	dev := startDev(t)
	key, _ := fundedKey(t, dev, 1e18)
	raw := signTx(t, key, 1337, &types.DynamicFeeTx{Value: big.NewInt(1), Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)})
	for name, h := range nodes {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			defer srv.Close()
			c, closeFn, err := evm.Dial(ctx, srv.URL, fastRetry)
			if err != nil {
				t.Fatal(err)
			}
			defer closeFn()
			if _, err := c.ChainID(ctx); countersign.ErrorCode(err) != countersign.ChainError {
				t.Fatalf("chain id: %v", err)
			}
			if _, err := c.BalanceAt(ctx, dead.Hex()); countersign.ErrorCode(err) != countersign.ChainError {
				t.Fatalf("balance: %v", err)
			}
			if _, err := c.BaseFee(ctx); countersign.ErrorCode(err) != countersign.ChainError {
				t.Fatalf("base fee: %v", err)
			}
			if _, err := c.Receipt(ctx, "0x"+strings.Repeat("ab", 32)); countersign.ErrorCode(err) != countersign.ChainError {
				t.Fatalf("receipt: %v", err)
			}
			err = c.SendRawTransaction(ctx, raw)
			if !errors.Is(err, countersign.ErrUnavailable) || errors.Is(err, countersign.ErrRefused) {
				t.Fatalf("broadcast: %v", err)
			}
		})
	}
	t.Run("fail/node gone", func(t *testing.T) {
		srv := httptest.NewServer(dev.Handler())
		c, closeFn, err := evm.Dial(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer closeFn()
		srv.Close()
		err = c.SendRawTransaction(ctx, raw)
		if !errors.Is(err, countersign.ErrUnavailable) || errors.Is(err, countersign.ErrRefused) || countersign.ErrorDetail(err) != "the chain node "+srv.URL+" is unreachable" {
			t.Fatalf("broadcast to a node that is gone: %v (%q)", err, countersign.ErrorDetail(err))
		}
	})
}
