// Package sim runs the embedded development chain: go-ethereum's simulated
// backend in-process (chain id 1337), with a prefunded faucet account, the
// TEST ERC-20 and the Counter contract deployed at start. Every sent
// transaction is mined at once, like geth --dev. State lives in memory: it
// starts fresh on every run.
package sim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/countersign/countersign/contracts"
)

// FaucetBalance is the faucet's genesis balance: 10^9 ether.
var FaucetBalance = new(big.Int).Mul(big.NewInt(1_000_000_000), big.NewInt(1e18))

// Chain is a running development chain.
type Chain struct {
	backend *simulated.Backend
	client  *Client

	faucetKey *ecdsa.PrivateKey
	Faucet    common.Address
	Token     common.Address // TestToken ("TEST", 18 decimals)
	Counter   common.Address

	mu sync.Mutex // serialises faucet sends (one nonce sequence)
}

// Client is the simulated client with mine-on-send.
type Client struct {
	simulated.Client
	mu      sync.Mutex
	backend *simulated.Backend
}

// RPC returns the in-process JSON-RPC client of the simulated node, so
// read calls can be forwarded verbatim. go-ethereum wraps it in an
// unexported struct whose embedded *ethclient.Client field shadows the
// Client() method, hence the reflection; the e2e tests fail if a
// go-ethereum upgrade changes that shape.
func (c *Client) RPC() *rpc.Client {
	f := reflect.ValueOf(c.Client).FieldByName("Client")
	if !f.IsValid() {
		return nil
	}
	ec, ok := f.Interface().(*ethclient.Client)
	if !ok || ec == nil {
		return nil
	}
	return ec.Client()
}

// SendTransaction sends tx and mines a block containing it.
func (c *Client) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.Client.SendTransaction(ctx, tx); err != nil {
		return err
	}
	c.backend.Commit()
	// The pool resets to the new head on a background goroutine, so a send
	// right after this one could be checked against the old state (a stale
	// balance or nonce). Rollback syncs the pool with the head; it then
	// clears the pool, which is empty because every send is mined at once
	// under c.mu.
	c.backend.Rollback()
	return nil
}

// Start starts a chain whose faucet key is derived from seed, so the faucet
// and the contract addresses are the same on every start with the same seed.
func Start(ctx context.Context, seed []byte) (*Chain, error) {
	kb, err := hkdf.Key(sha256.New, seed, []byte("countersign dev chain"), "faucet key v1", 32)
	if err != nil {
		return nil, err
	}
	key, err := crypto.ToECDSA(kb)
	if err != nil {
		return nil, fmt.Errorf("sim: derive faucet key: %w", err)
	}
	faucet := crypto.PubkeyToAddress(key.PublicKey)
	// Random extra data in the genesis block: each start is a new chain
	// and says so with a new genesis hash, so a server restarted on the
	// embedded chain sees that the transactions its database holds in
	// flight belong to a chain that is gone (core.CheckChain).
	instance := make([]byte, 32)
	if _, err := rand.Read(instance); err != nil {
		return nil, err
	}
	backend := simulated.NewBackend(types.GenesisAlloc{faucet: {Balance: FaucetBalance}},
		func(n *node.Config, e *ethconfig.Config) {
			e.TxPool.Journal = ""
			e.Genesis.ExtraData = instance
		})
	c := &Chain{
		backend:   backend,
		client:    &Client{Client: backend.Client(), backend: backend},
		faucetKey: key,
		Faucet:    faucet,
	}
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if c.Token, err = contracts.Deploy(dctx, c.client, key, "TestToken"); err != nil {
		backend.Close()
		return nil, err
	}
	if c.Counter, err = contracts.Deploy(dctx, c.client, key, "Counter"); err != nil {
		backend.Close()
		return nil, err
	}
	return c, nil
}

// Client returns the chain's client (mine-on-send).
func (c *Chain) Client() *Client { return c.client }

// Close stops the chain.
func (c *Chain) Close() error { return c.backend.Close() }

// Fund sends amount wei from the faucet to addr.
func (c *Chain) Fund(ctx context.Context, addr common.Address, amount *big.Int) (common.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := contracts.Send(ctx, c.client, c.faucetKey, &addr, amount, nil)
	if err != nil {
		return common.Hash{}, err
	}
	return r.TxHash, nil
}

// Mint mints amount TEST base units to addr.
func (c *Chain) Mint(ctx context.Context, addr common.Address, amount *big.Int) (common.Hash, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	data, err := contracts.MustLoad("TestToken").ABI.Pack("mint", addr, amount)
	if err != nil {
		return common.Hash{}, err
	}
	r, err := contracts.Send(ctx, c.client, c.faucetKey, &c.Token, nil, data)
	if err != nil {
		return common.Hash{}, err
	}
	return r.TxHash, nil
}

// Mine seals a block with whatever the pool holds and resyncs the pool to
// the new head (as SendTransaction does after each send). Tests that put
// transactions into the pool without mining them use it.
func (c *Chain) Mine() {
	c.client.mu.Lock()
	defer c.client.mu.Unlock()
	c.backend.Commit()
	c.backend.Rollback()
}

type rpcRequest struct {
	JSONRPC string            `json:"jsonrpc"`
	ID      json.RawMessage   `json:"id"`
	Method  string            `json:"method"`
	Params  []json.RawMessage `json:"params"`
}

type rpcErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcErrorBody   `json:"error,omitempty"`
}

// Handler serves the chain's JSON-RPC over HTTP, so the server (and a
// fault-injecting proxy in front of it, in tests) can use the dev chain as
// an external node. eth_sendRawTransaction mines at once, as the
// in-process client does; every other method goes to the node as is.
func (c *Chain) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 16<<20))
		if err != nil {
			http.Error(w, "cannot read the request", http.StatusBadRequest)
			return
		}
		body = bytes.TrimSpace(body)
		var out any
		if len(body) > 0 && body[0] == '[' {
			var reqs []rpcRequest
			if err := json.Unmarshal(body, &reqs); err != nil {
				http.Error(w, "bad JSON-RPC batch", http.StatusBadRequest)
				return
			}
			resps := make([]rpcResponse, len(reqs))
			for i := range reqs {
				resps[i] = c.serve(r.Context(), &reqs[i])
			}
			out = resps
		} else {
			var req rpcRequest
			if err := json.Unmarshal(body, &req); err != nil {
				http.Error(w, "bad JSON-RPC request", http.StatusBadRequest)
				return
			}
			out = c.serve(r.Context(), &req)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	})
}

func (c *Chain) serve(ctx context.Context, req *rpcRequest) rpcResponse {
	resp := rpcResponse{JSONRPC: "2.0", ID: req.ID}
	fail := func(err error) rpcResponse {
		e := &rpcErrorBody{Code: -32000, Message: err.Error()}
		var re rpc.Error
		if errors.As(err, &re) {
			e.Code = re.ErrorCode()
		}
		var de rpc.DataError
		if errors.As(err, &de) {
			e.Data = de.ErrorData()
		}
		resp.Error = e
		return resp
	}
	if req.Method == "eth_sendRawTransaction" {
		var raw hexutil.Bytes
		if len(req.Params) != 1 || json.Unmarshal(req.Params[0], &raw) != nil {
			resp.Error = &rpcErrorBody{Code: -32602, Message: "eth_sendRawTransaction takes one hex string"}
			return resp
		}
		var tx types.Transaction
		if err := tx.UnmarshalBinary(raw); err != nil {
			return fail(err)
		}
		if err := c.client.SendTransaction(ctx, &tx); err != nil {
			return fail(err)
		}
		resp.Result, _ = json.Marshal(tx.Hash())
		return resp
	}
	rc := c.client.RPC()
	if rc == nil {
		resp.Error = &rpcErrorBody{Code: -32603, Message: "the dev chain has no JSON-RPC client"}
		return resp
	}
	args := make([]any, len(req.Params))
	for i, p := range req.Params {
		args[i] = p
	}
	var result json.RawMessage
	if err := rc.CallContext(ctx, &result, req.Method, args...); err != nil {
		return fail(err)
	}
	if result == nil {
		result = json.RawMessage("null")
	}
	resp.Result = result
	return resp
}
