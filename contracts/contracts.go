// Package contracts embeds the compiled test contracts (TestToken, the
// ERC-20 the dev chain deploys, and Counter, for contract calls) and deploys
// them. Sources are in src/, artifacts are rebuilt by compile.sh.
package contracts

import (
	"context"
	"crypto/ecdsa"
	"embed"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
)

//go:embed artifacts/*.json
var artifacts embed.FS

// Artifact is a compiled contract.
type Artifact struct {
	Name     string
	ABIJSON  string
	ABI      abi.ABI
	Bytecode []byte
}

// Load returns the artifact of a contract by name ("TestToken", "Counter").
func Load(name string) (*Artifact, error) {
	b, err := artifacts.ReadFile("artifacts/" + name + ".json")
	if err != nil {
		return nil, err
	}
	var raw struct {
		ABI      json.RawMessage `json:"abi"`
		Bytecode string          `json:"bytecode"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	a, err := abi.JSON(strings.NewReader(string(raw.ABI)))
	if err != nil {
		return nil, err
	}
	code, err := hexutil.Decode(raw.Bytecode)
	if err != nil {
		return nil, err
	}
	return &Artifact{Name: name, ABIJSON: string(raw.ABI), ABI: a, Bytecode: code}, nil
}

// MustLoad is Load for the fixed embedded artifacts.
func MustLoad(name string) *Artifact {
	a, err := Load(name)
	if err != nil {
		panic(err)
	}
	return a
}

// Backend is what deploying and transacting needs from a chain client.
type Backend interface {
	ChainID(ctx context.Context) (*big.Int, error)
	PendingNonceAt(ctx context.Context, account common.Address) (uint64, error)
	SuggestGasTipCap(ctx context.Context) (*big.Int, error)
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	EstimateGas(ctx context.Context, call ethereum.CallMsg) (uint64, error)
	SendTransaction(ctx context.Context, tx *types.Transaction) error
	TransactionReceipt(ctx context.Context, txHash common.Hash) (*types.Receipt, error)
}

// Send signs and sends a transaction from key and waits for its receipt.
// to == nil deploys data as a contract.
func Send(ctx context.Context, b Backend, key *ecdsa.PrivateKey, to *common.Address, value *big.Int, data []byte) (*types.Receipt, error) {
	from := crypto.PubkeyToAddress(key.PublicKey)
	chainID, err := b.ChainID(ctx)
	if err != nil {
		return nil, err
	}
	nonce, err := b.PendingNonceAt(ctx, from)
	if err != nil {
		return nil, err
	}
	tip, err := b.SuggestGasTipCap(ctx)
	if err != nil {
		return nil, err
	}
	head, err := b.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	if value == nil {
		value = new(big.Int)
	}
	gas, err := b.EstimateGas(ctx, ethereum.CallMsg{From: from, To: to, Value: value, Data: data})
	if err != nil {
		return nil, fmt.Errorf("estimate gas: %w", err)
	}
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: gas * 5 / 4, To: to, Value: value, Data: data,
	})
	if err != nil {
		return nil, err
	}
	if err := b.SendTransaction(ctx, tx); err != nil {
		return nil, err
	}
	return WaitReceipt(ctx, b, tx.Hash())
}

// WaitReceipt polls for a receipt until ctx ends.
func WaitReceipt(ctx context.Context, b Backend, h common.Hash) (*types.Receipt, error) {
	for {
		r, err := b.TransactionReceipt(ctx, h)
		if err == nil {
			if r.Status != types.ReceiptStatusSuccessful {
				return r, fmt.Errorf("transaction %s reverted", h.Hex())
			}
			return r, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Deploy deploys the named contract from key and returns its address.
func Deploy(ctx context.Context, b Backend, key *ecdsa.PrivateKey, name string) (common.Address, error) {
	a, err := Load(name)
	if err != nil {
		return common.Address{}, err
	}
	r, err := Send(ctx, b, key, nil, nil, a.Bytecode)
	if err != nil {
		return common.Address{}, fmt.Errorf("deploy %s: %w", name, err)
	}
	return r.ContractAddress, nil
}

// DeployWith deploys the named contract with constructor arguments.
func DeployWith(ctx context.Context, b Backend, key *ecdsa.PrivateKey, name string, args ...any) (common.Address, error) {
	a, err := Load(name)
	if err != nil {
		return common.Address{}, err
	}
	packed, err := a.ABI.Pack("", args...)
	if err != nil {
		return common.Address{}, err
	}
	r, err := Send(ctx, b, key, nil, nil, append(append([]byte{}, a.Bytecode...), packed...))
	if err != nil {
		return common.Address{}, fmt.Errorf("deploy %s: %w", name, err)
	}
	return r.ContractAddress, nil
}
