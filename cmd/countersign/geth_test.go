package main

import (
	"context"
	"crypto/ecdsa"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/countersign/countersign/contracts"
)

const gethVersion = "v1.16.9"

// gethBinary finds the geth the test command built (scripts/ensure-tools.sh).
// Under CI a missing geth fails the test rather than skipping it.
func gethBinary(t *testing.T) string {
	candidates := []string{os.Getenv("GETH_BIN")}
	if dir, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "countersign", "geth-"+gethVersion, "geth"))
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if info, err := os.Stat(c); err == nil && info.Mode()&0o111 != 0 {
			return c
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("geth is not built: run scripts/ensure-tools.sh (the test command does)")
	}
	t.Skip("geth not found: run scripts/ensure-tools.sh or set GETH_BIN")
	return ""
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startGeth runs a real geth --dev node on loopback and returns its URL.
func startGeth(t *testing.T) string {
	bin := gethBinary(t)
	port := freePort(t)
	cmd := exec.Command(bin, "--dev", "--datadir", t.TempDir(), "--http", "--http.addr", "127.0.0.1",
		"--http.port", strconv.Itoa(port), "--http.api", "eth,net,web3,txpool", "--port", "0", "--maxpeers", "0",
		"--nodiscover", "--ipcdisable", "--authrpc.port", "0", "--verbosity", "2")
	logf, err := os.Create(filepath.Join(t.TempDir(), "geth.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		logf.Close()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := ethclient.Dial(url)
		if err == nil {
			_, err = c.ChainID(context.Background())
			c.Close()
			if err == nil {
				return url
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("geth did not start: %v\n%s", err, b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// deployRetrying deploys name, sending again while the node's pool has
// not caught up with the deployer's funding ("insufficient funds": the
// pool refused the bytes, so nothing was sent and the nonce is unused).
func deployRetrying(ctx context.Context, ec *ethclient.Client, key *ecdsa.PrivateKey, name string) (common.Address, error) {
	for {
		addr, err := contracts.Deploy(ctx, ec, key, name)
		if err == nil || !strings.Contains(err.Error(), "insufficient funds") {
			return addr, err
		}
		select {
		case <-ctx.Done():
			return addr, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// gethFixture funds from geth's unlocked dev account and deploys the test
// contracts with a deployer key funded from it.
func gethFixture(t *testing.T, url string) fixture {
	ctx := context.Background()
	rc, err := rpc.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rc.Close)
	ec := ethclient.NewClient(rc)
	var accounts []common.Address
	if err := rc.Call(&accounts, "eth_accounts"); err != nil || len(accounts) == 0 {
		t.Fatalf("eth_accounts: %v %v", accounts, err)
	}
	dev := accounts[0]
	fund := func(t testing.TB, addr string, wei *big.Int) {
		var h common.Hash
		err := rc.Call(&h, "eth_sendTransaction", map[string]any{"from": dev, "to": common.HexToAddress(addr), "value": (*hexutil.Big)(wei)})
		if err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := contracts.WaitReceipt(wctx, ec, h); err != nil {
			t.Fatal(err)
		}
		// geth updates its transaction pool's state after the block, not
		// with it: a transaction sent the moment the receipt is there can
		// be checked against the balance before the funding. Wait until the
		// pool sees the money.
		to := common.HexToAddress(addr)
		for {
			bal, err := ec.PendingBalanceAt(wctx, to)
			if err != nil {
				t.Fatal(err)
			}
			if bal.Cmp(wei) >= 0 {
				return
			}
			select {
			case <-wctx.Done():
				t.Fatalf("the pool never saw %s's funding", addr)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	deployer, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	fund(t, crypto.PubkeyToAddress(deployer.PublicKey).Hex(), ether(10))
	dctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	token, err := deployRetrying(dctx, ec, deployer, "TestToken")
	if err != nil {
		t.Fatal(err)
	}
	counter, err := deployRetrying(dctx, ec, deployer, "Counter")
	if err != nil {
		t.Fatal(err)
	}
	return fixture{
		fund:    fund,
		mint:    func(t testing.TB, addr string, units *big.Int) { mint(t, ec, deployer, token, addr, units) },
		token:   token.Hex(),
		counter: counter.Hex(),
		chain:   ec,
	}
}

func mint(t testing.TB, ec *ethclient.Client, key *ecdsa.PrivateKey, token common.Address, addr string, units *big.Int) {
	data, err := contracts.MustLoad("TestToken").ABI.Pack("mint", common.HexToAddress(addr), units)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := contracts.Send(ctx, ec, key, &token, nil, data); err != nil {
		t.Fatal(err)
	}
}

// TestCountersignedFlowGethDev runs the whole flow against a real geth
// --dev node over JSON-RPC, through the same wiring main uses.
func TestCountersignedFlowGethDev(t *testing.T) {
	url := startGeth(t)
	fx := gethFixture(t, url)
	e := newEnv(t, func(c *Config) { c.ChainURL = url })
	if e.app.Dev != nil {
		t.Fatal("the embedded chain runs although --chain was given")
	}
	e.do("GET", "/api/dev/info", anon, nil).refused(t, 404, "NOT_FOUND")
	if id := e.do("GET", "/readyz", anon, nil).must(t, 200).body["chain_id"].(float64); id != 1337 {
		t.Fatalf("chain id %v", id)
	}
	u := e.newUser(true)
	runFlow(t, e, u, fx)
}
