// Package sim runs the embedded development chain: go-ethereum's simulated
// backend in-process (chain id 1337), with a prefunded faucet account, the
// TEST ERC-20 and the Counter contract deployed at start. Every sent
// transaction is mined at once, like geth --dev. State lives in memory: it
// starts fresh on every run.
package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"math/big"
	"reflect"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
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
	backend := simulated.NewBackend(types.GenesisAlloc{faucet: {Balance: FaucetBalance}},
		func(n *node.Config, e *ethconfig.Config) {
			e.TxPool.Journal = ""
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
