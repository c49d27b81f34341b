package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// The examples in examples/ run here against a test server, with the human
// approving in the test while the example waits.

const examplesDir = "../../examples"

// needTool finds a program the examples need; under CI its absence fails.
func needTool(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err == nil && (name != "node" || fileExists(filepath.Join(examplesDir, "node_modules", "ethers"))) {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s or the examples' npm packages are missing: scripts/ensure-tools.sh installs them", name)
	}
	t.Skipf("%s or examples/node_modules missing: run scripts/ensure-tools.sh", name)
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// runExample runs an example with the agent's environment and returns its
// standard output; it fails the test if the example fails.
func runExample(t *testing.T, e *env, key string, extraEnv []string, name string, args ...string) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = examplesDir
	cmd.Env = append(os.Environ(), append([]string{"COUNTERSIGN_URL=" + e.url, "COUNTERSIGN_API_KEY=" + key}, extraEnv...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\nstdout: %s\nstderr: %s", name, args, err, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

func TestExamplePythonAgent(t *testing.T) {
	py := needTool(t, "python3")
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	to := randomAddress()
	approved := e.approveNext(u, "approve")
	out := runExample(t, e, key, nil, py, "python_agent.py", "--to", to, "--amount", "31337", "--memo", "python example", "--timeout", "60")
	<-approved
	var res map[string]string
	if err := json.Unmarshal(out, &res); err != nil || res["status"] != "confirmed" || res["tx_hash"] == "" {
		t.Fatalf("python agent: %s", out)
	}
	if got := e.balance(bearer(u.token), to, ""); got.Int64() != 31337 {
		t.Fatalf("recipient has %s", got)
	}
	// a rejection ends the example with exit status 2 and the reason
	rejected := e.approveNext(u, "reject")
	cmd := exec.Command(py, "python_agent.py", "--to", to, "--amount", "1", "--timeout", "60")
	cmd.Dir = examplesDir
	cmd.Env = append(os.Environ(), "COUNTERSIGN_URL="+e.url, "COUNTERSIGN_API_KEY="+key)
	out, err := cmd.Output()
	<-rejected
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), `"rejected"`) {
		t.Fatalf("rejected run: %v %s", err, out)
	}
}

func TestExampleEthersAgent(t *testing.T) {
	node := needTool(t, "node")
	e := newEnv(t)
	u, wallet, _, key := setup(t, e)
	to := randomAddress()
	// the human approves the transaction, then the message signature
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2 {
			<-e.approveNext(u, "approve")
		}
	}()
	out := runExample(t, e, key, []string{"TO=" + to, "AMOUNT_GWEI=1500"}, node, "ethers_agent.mjs")
	<-done
	var res struct {
		From, Hash, Signature, Recovered string
		Status                           int
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if res.From != wallet || res.Status != 1 || !strings.HasPrefix(res.Hash, "0x") || !strings.EqualFold(res.Recovered, wallet) {
		t.Fatalf("ethers agent: %s", out)
	}
	if got := e.balance(bearer(u.token), to, ""); got.String() != "1500000000000" {
		t.Fatalf("recipient has %s", got)
	}

	// what ethers sees for refused calls, and from another agent's key
	other := e.newUser(true)
	otherWallet := e.createWallet(other)
	_, otherKey := e.createAgent(other, otherWallet)
	out = runExample(t, e, key, []string{"OTHER_API_KEY=" + otherKey}, node, "checks/ethers_checks.mjs")
	var chk struct {
		ChainID         int  `json:"chainId"`
		EthSign         any  `json:"eth_sign"`
		Unknown         any  `json:"unknown"`
		OtherSpends     any  `json:"otherSpends"`
		OtherSigns      any  `json:"otherSigns"`
		OtherSeesWallet bool `json:"otherSeesWallet"`
	}
	if err := json.Unmarshal(out, &chk); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if chk.ChainID != 1337 || chk.EthSign != float64(-32601) || chk.Unknown != float64(-32601) || chk.OtherSeesWallet ||
		chk.OtherSpends != float64(4100) || chk.OtherSigns != float64(4100) {
		t.Fatalf("ethers checks: %s", out)
	}
	if n := len(e.do("GET", "/api/transactions", bearer(u.token), nil).must(t, 200).body["transactions"].([]any)); n != 2 {
		t.Fatalf("the refused calls created transactions: %d", n)
	}
}

func TestExampleMCPClientNpm(t *testing.T) {
	node := needTool(t, "node")
	e := newEnv(t)
	u, _, _, key := setup(t, e)
	to := randomAddress()
	approved := e.approveNext(u, "approve")
	out := runExample(t, e, key, []string{"TO=" + to, "AMOUNT=4242"}, node, "mcp_client.mjs")
	id := <-approved
	var res struct {
		Tools         []string
		TransactionID string `json:"transaction_id"`
		Statuses      []string
		Executed      map[string]any
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res.Tools) != 10 || res.TransactionID != id || res.Statuses[0] != "pending" || res.Statuses[len(res.Statuses)-1] != "authorized" || res.Executed["tx_hash"] == nil {
		t.Fatalf("npm MCP client: %s", out)
	}
	e.waitStatus(bearer(u.token), id, "confirmed")
	if got := e.balance(bearer(u.token), to, ""); got.Int64() != 4242 {
		t.Fatalf("recipient has %s", got)
	}
}

// TestExampleMCPHostConfig starts the server the way the host config says
// (countersign mcp with its env) and talks to it over stdio.
func TestExampleMCPHostConfig(t *testing.T) {
	var cfg struct {
		MCPServers map[string]struct {
			Command string
			Args    []string
			Env     map[string]string
		} `json:"mcpServers"`
	}
	b, err := os.ReadFile(filepath.Join(examplesDir, "mcp-host-config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	srv, ok := cfg.MCPServers["countersign"]
	if !ok || srv.Command != "countersign" || strings.Join(srv.Args, " ") != "mcp" || srv.Env["COUNTERSIGN_API_KEY"] == "" || srv.Env["COUNTERSIGN_URL"] == "" {
		t.Fatalf("host config: %s", b)
	}
	bin := filepath.Join(t.TempDir(), "countersign")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v %s", err, out)
	}
	e := newEnv(t)
	_, _, _, key := setup(t, e)
	cmd := exec.Command(bin, srv.Args...)
	cmd.Env = append(os.Environ(), "COUNTERSIGN_URL="+e.url, "COUNTERSIGN_API_KEY="+key)
	c := sdk.NewClient(&sdk.Implementation{Name: "host", Version: "1"}, nil)
	s, err := c.Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prep, res := callTool(t, s, "prepare_transaction", map[string]any{"type": "native", "to_address": randomAddress(), "amount": "5", "memo": "from an MCP host"})
	if res.IsError || prep["status"] != "pending" {
		t.Fatalf("prepare over stdio: %s", toolText(res))
	}
}
