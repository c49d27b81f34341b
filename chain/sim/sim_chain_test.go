package sim_test

import (
	"context"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign/chain/sim"
	"github.com/countersign/countersign/contracts"
)

func start(t *testing.T, seed string) *sim.Chain {
	t.Helper()
	c, err := sim.Start(context.Background(), []byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// genesisHash reads block 0 through the in-process client.
func genesisHash(t *testing.T, c *sim.Chain) common.Hash {
	t.Helper()
	h, err := c.Client().HeaderByNumber(context.Background(), big.NewInt(0))
	if err != nil {
		t.Fatal(err)
	}
	return h.Hash()
}

// The same seed gives the same faucet and contract addresses (the dev
// chain's documented addresses stay put across restarts), another seed
// other ones; every start is a new chain with its own genesis hash, so a
// server restarted on the embedded chain can tell its in-flight
// transactions belong to a chain that is gone.
func TestStartDeterministicAddressesFreshGenesis(t *testing.T) {
	a, b, other := start(t, "seed a"), start(t, "seed a"), start(t, "seed b")
	if a.Faucet != b.Faucet || a.Token != b.Token || a.Counter != b.Counter {
		t.Fatalf("same seed, different addresses: %s/%s/%s vs %s/%s/%s", a.Faucet, a.Token, a.Counter, b.Faucet, b.Token, b.Counter)
	}
	if a.Faucet == other.Faucet || a.Token == other.Token {
		t.Fatalf("another seed, same addresses: %s %s", a.Faucet, a.Token)
	}
	if a.Token == a.Counter || a.Token == (common.Address{}) || a.Counter == (common.Address{}) {
		t.Fatalf("contracts not deployed: token %s counter %s", a.Token, a.Counter)
	}
	if genesisHash(t, a) == genesisHash(t, b) {
		t.Fatal("two starts share a genesis hash: a restarted dev chain would look like the old one")
	}
	ctx := context.Background()
	id, err := a.Client().ChainID(ctx)
	if err != nil || id.Int64() != 1337 {
		t.Fatalf("chain id %v %v, want 1337", id, err)
	}
	for name, addr := range map[string]common.Address{"token": a.Token, "counter": a.Counter} {
		code, err := a.Client().CodeAt(ctx, addr, nil)
		if err != nil || len(code) == 0 {
			t.Fatalf("%s has no code: %v", name, err)
		}
	}
	bal, err := a.Client().BalanceAt(ctx, a.Faucet, nil)
	if err != nil || bal.Sign() <= 0 || bal.Cmp(sim.FaucetBalance) > 0 {
		t.Fatalf("faucet balance %v %v (genesis %v less the deployments' gas)", bal, err, sim.FaucetBalance)
	}
}

// Fund and Mint move exactly the amount asked, and each send is mined at
// once: its receipt is there when the call returns.
func TestFundMintMinedAtOnce(t *testing.T) {
	c := start(t, "fund mint")
	ctx := context.Background()
	to := common.HexToAddress("0x00000000000000000000000000000000000000F1")
	before, err := c.Client().BlockNumber(ctx)
	if err != nil {
		t.Fatal(err)
	}
	amount := new(big.Int).Mul(big.NewInt(3), big.NewInt(1e18))
	h, err := c.Fund(ctx, to, amount)
	if err != nil {
		t.Fatal(err)
	}
	r, err := c.Client().TransactionReceipt(ctx, h)
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("fund receipt %+v %v", r, err)
	}
	after, _ := c.Client().BlockNumber(ctx)
	if after != before+1 {
		t.Fatalf("block %d → %d: a send is one mined block", before, after)
	}
	if bal, _ := c.Client().BalanceAt(ctx, to, nil); bal.Cmp(amount) != 0 {
		t.Fatalf("balance %v, want %v", bal, amount)
	}

	minted := big.NewInt(123456789)
	if _, err := c.Mint(ctx, to, minted); err != nil {
		t.Fatal(err)
	}
	abi := contracts.MustLoad("TestToken").ABI
	data, _ := abi.Pack("balanceOf", to)
	out, err := c.Client().CallContract(ctx, ethereum.CallMsg{To: &c.Token, Data: data}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := new(big.Int).SetBytes(out); got.Cmp(minted) != 0 {
		t.Fatalf("token balance %v, want %v", got, minted)
	}

	// Many sends in a row: each is checked against the state the previous
	// one left (the pool resync), so none fails on a stale nonce.
	for i := range 5 {
		if _, err := c.Fund(ctx, to, big.NewInt(1)); err != nil {
			t.Fatalf("send %d: %v", i, err)
		}
	}
	if bal, _ := c.Client().BalanceAt(ctx, to, nil); bal.Cmp(new(big.Int).Add(amount, big.NewInt(5))) != 0 {
		t.Fatalf("balance after 5 more sends %v", bal)
	}
}

// Mine seals a block with what the pool holds.
func TestMineSealsPool(t *testing.T) {
	c := start(t, "mine")
	ctx := context.Background()
	n0, _ := c.Client().BlockNumber(ctx)
	c.Mine()
	n1, _ := c.Client().BlockNumber(ctx)
	if n1 != n0+1 {
		t.Fatalf("Mine: block %d → %d", n0, n1)
	}
}

func TestRPCClientExposed(t *testing.T) {
	c := start(t, "rpc")
	rc := c.Client().RPC()
	if rc == nil {
		t.Fatal("RPC() is nil: a go-ethereum upgrade changed the simulated client's shape")
	}
	var id hexutil.Big
	if err := rc.Call(&id, "eth_chainId"); err != nil || id.ToInt().Int64() != 1337 {
		t.Fatalf("eth_chainId %v %v", id.ToInt(), err)
	}
}

type rpcResp struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func post(t *testing.T, url, body string) (int, []byte) {
	t.Helper()
	res, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// signedTransfer returns a signed 1-wei transfer from a fresh funded key.
func signedTransfer(t *testing.T, c *sim.Chain) *types.Transaction {
	t.Helper()
	key, _ := crypto.GenerateKey()
	from := crypto.PubkeyToAddress(key.PublicKey)
	if _, err := c.Fund(context.Background(), from, big.NewInt(1e18)); err != nil {
		t.Fatal(err)
	}
	to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(big.NewInt(1337)), &types.DynamicFeeTx{ChainID: big.NewInt(1337),
		To: &to, Value: big.NewInt(1), Gas: 21000, GasTipCap: big.NewInt(1e9), GasFeeCap: big.NewInt(100e9)})
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

// The JSON-RPC handler: single calls and batches answered in order with
// their ids, eth_sendRawTransaction mined at once, node errors with their
// JSON-RPC code, malformed requests refused.
func TestHandlerJSONRPC(t *testing.T) {
	c := start(t, "handler")
	srv := httptest.NewServer(c.Handler())
	t.Cleanup(srv.Close)

	t.Run("ok/single call", func(t *testing.T) {
		st, b := post(t, srv.URL, `{"jsonrpc":"2.0","id":7,"method":"eth_chainId","params":[]}`)
		var r rpcResp
		if st != 200 || json.Unmarshal(b, &r) != nil || string(r.ID) != "7" || string(r.Result) != `"0x539"` || r.Error != nil {
			t.Fatalf("%d %s", st, b)
		}
	})
	t.Run("ok/batch in order", func(t *testing.T) {
		st, b := post(t, srv.URL, `[{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]},{"jsonrpc":"2.0","id":"two","method":"eth_getBalance","params":["`+c.Faucet.Hex()+`","latest"]}]`)
		var rs []rpcResp
		if st != 200 || json.Unmarshal(b, &rs) != nil || len(rs) != 2 || string(rs[0].ID) != "1" || string(rs[1].ID) != `"two"` {
			t.Fatalf("%d %s", st, b)
		}
		var bal hexutil.Big
		if err := json.Unmarshal(rs[1].Result, &bal); err != nil || bal.ToInt().Sign() <= 0 {
			t.Fatalf("faucet balance %s", rs[1].Result)
		}
	})
	t.Run("ok/null result is null", func(t *testing.T) {
		st, b := post(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"eth_getTransactionReceipt","params":["0x`+strings.Repeat("ab", 32)+`"]}`)
		var r rpcResp
		if st != 200 || json.Unmarshal(b, &r) != nil || string(r.Result) != "null" || r.Error != nil {
			t.Fatalf("%d %s", st, b)
		}
	})
	t.Run("ok/send raw mined at once", func(t *testing.T) {
		tx := signedTransfer(t, c)
		raw, _ := tx.MarshalBinary()
		st, b := post(t, srv.URL, `{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["`+hexutil.Encode(raw)+`"]}`)
		var r rpcResp
		if st != 200 || json.Unmarshal(b, &r) != nil || r.Error != nil {
			t.Fatalf("%d %s", st, b)
		}
		var h common.Hash
		if json.Unmarshal(r.Result, &h) != nil || h != tx.Hash() {
			t.Fatalf("hash %s, want %s", r.Result, tx.Hash())
		}
		rc, err := c.Client().TransactionReceipt(context.Background(), h)
		if err != nil || rc.Status != types.ReceiptStatusSuccessful {
			t.Fatalf("not mined at once: %+v %v", rc, err)
		}
		// the same bytes again: the node's own error, as a JSON-RPC error
		st, b = post(t, srv.URL, `{"jsonrpc":"2.0","id":2,"method":"eth_sendRawTransaction","params":["`+hexutil.Encode(raw)+`"]}`)
		if json.Unmarshal(b, &r) != nil || r.Error == nil || r.Error.Code == 0 || !strings.Contains(r.Error.Message, "nonce too low") {
			t.Fatalf("a resend: %d %s", st, b)
		}
	})
	fails := map[string]struct {
		body   string
		status int
		code   int
	}{
		"fail/send raw without params":   {`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[]}`, 200, -32602},
		"fail/send raw not hex":          {`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":[12]}`, 200, -32602},
		"fail/send raw not a tx":         {`{"jsonrpc":"2.0","id":1,"method":"eth_sendRawTransaction","params":["0x01"]}`, 200, -32000},
		"fail/unknown method keeps code": {`{"jsonrpc":"2.0","id":1,"method":"no_suchMethod","params":[]}`, 200, -32601},
		"fail/not JSON":                  {`{"jsonrpc":`, 400, 0},
		"fail/bad batch":                 {`[{"id":1},`, 400, 0},
	}
	for name, tt := range fails {
		t.Run(name, func(t *testing.T) {
			st, b := post(t, srv.URL, tt.body)
			if st != tt.status {
				t.Fatalf("status %d, want %d: %s", st, tt.status, b)
			}
			if tt.code == 0 {
				return
			}
			var r rpcResp
			if json.Unmarshal(b, &r) != nil || r.Error == nil || r.Error.Code != tt.code {
				t.Fatalf("want error %d: %s", tt.code, b)
			}
		})
	}
	t.Run("fail/oversized body is cut, not buffered whole", func(t *testing.T) {
		big := `{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[],"pad":"` + strings.Repeat("x", 17<<20) + `"}`
		st, _ := post(t, srv.URL, big)
		if st != http.StatusBadRequest {
			t.Fatalf("a 17 MiB request: %d, want 400 (read stops at 16 MiB)", st)
		}
	})
}
