package mcp_test

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/chain/evm"
	"github.com/countersign/countersign/chain/sim"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/envelope"
	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/mcp"
	"github.com/countersign/countersign/signer/local"
	"github.com/countersign/countersign/store/sqlite"
)

// fixture is a service on the embedded dev chain with one user, MFA on,
// one funded wallet and an agent on it, built through the service's
// public API only.
type fixture struct {
	svc    *core.Service
	dev    *sim.Chain
	user   *core.Principal
	agent  *core.Principal
	wallet *countersign.Wallet
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	dev, err := sim.Start(ctx, []byte("mcp tools test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kek := make([]byte, 32)
	_, _ = rand.Read(kek)
	sealer, err := envelope.New(kek)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := core.New(ctx, st, evm.New(dev.Client()), local.New(sealer, keystore.Dir{Path: filepath.Join(t.TempDir(), "ks")}), sealer,
		nil, slog.New(slog.NewTextHandler(io.Discard, nil)), core.Config{Argon2: auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	const password = "correct horse battery staple"
	if _, err := svc.Register(ctx, "alice", password); err != nil {
		t.Fatal(err)
	}
	tok, _, err := svc.Login(ctx, "alice", password, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.AuthenticateUser(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	enr, err := svc.SetupMFA(ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	secret, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(enr.Secret)
	if err != nil {
		t.Fatal(err)
	}
	if p, err = svc.AuthenticateUser(ctx, tok); err != nil { // MFA is on now
		t.Fatal(err)
	}
	w, err := svc.CreateWallet(ctx, p, password, "main")
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := svc.CreateAgent(ctx, p, "bot", w.Address, auth.TOTPCode(secret, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	ap, err := svc.AuthenticateAgent(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Fund(ctx, common.HexToAddress(w.Address), new(big.Int).Mul(big.NewInt(2), big.NewInt(1e18))); err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, dev: dev, user: p, agent: ap, wallet: w}
}

// connect opens an MCP client session to the tools acting as p, over the
// SDK's in-memory transport.
func connect(t *testing.T, svc *core.Service, p *core.Principal) *sdk.ClientSession {
	t.Helper()
	ctx := context.Background()
	ct, st := sdk.NewInMemoryTransports()
	ss, err := mcp.NewServer(svc, p).Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// call runs tool name with args and returns the result and its text
// content decoded as JSON.
func call(t *testing.T, cs *sdk.ClientSession, name string, args map[string]any) (*sdk.CallToolResult, map[string]any) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error %v", name, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: %d content items", name, len(res.Content))
	}
	text, ok := res.Content[0].(*sdk.TextContent)
	if !ok {
		t.Fatalf("%s: content %T", name, res.Content[0])
	}
	var out map[string]any
	if !res.IsError {
		if err := json.Unmarshal([]byte(text.Text), &out); err != nil {
			t.Fatalf("%s: text is not JSON: %q", name, text.Text)
		}
	}
	return res, out
}

// toolErr returns the code and detail of a tool error, checking its
// shape: IsError, text "CODE: detail", and the same in structured content.
func toolErr(t *testing.T, res *sdk.CallToolResult) (countersign.Code, string) {
	t.Helper()
	if !res.IsError {
		t.Fatalf("not an error: %+v", res)
	}
	b, _ := json.Marshal(res.StructuredContent)
	var sc struct {
		Error struct{ Code, Detail string } `json:"error"`
	}
	if err := json.Unmarshal(b, &sc); err != nil || sc.Error.Code == "" {
		t.Fatalf("structured content %s, text %q", b, res.Content[0].(*sdk.TextContent).Text)
	}
	text := res.Content[0].(*sdk.TextContent).Text
	if text != sc.Error.Code+": "+sc.Error.Detail {
		t.Fatalf("text %q, structured %s", text, b)
	}
	return countersign.Code(sc.Error.Code), sc.Error.Detail
}

// The tool list is the documented one, each with a description and an
// input schema, and the server tells the model how the countersignature
// works.
func TestMCPToolList(t *testing.T) {
	cs := connect(t, nil, &core.Principal{}) // listing calls no service
	list, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range list.Tools {
		names = append(names, tool.Name)
		if tool.Description == "" || tool.InputSchema == nil {
			t.Fatalf("%s: no description or input schema", tool.Name)
		}
	}
	sort.Strings(names)
	// the countersigned flow's tools (others may be added beside them)
	for _, want := range []string{"cancel_transaction", "execute_transaction", "list_transactions", "prepare_transaction", "transaction_status", "wallet_info"} {
		if !slices.Contains(names, want) {
			t.Fatalf("tools %v: %s is missing", names, want)
		}
	}
	init := cs.InitializeResult()
	if init == nil || init.ServerInfo.Name != mcp.Name || !strings.Contains(init.Instructions, "human countersigns every spend") {
		t.Fatalf("initialize %+v", init)
	}
}

// The flow as an agent sees it over MCP: its wallet, a prepared transfer
// left pending for the human, execution refused until approval, cancel,
// and the list; bad arguments are tool errors the model can read.
func TestMCPToolsAsAgent(t *testing.T) {
	f := newFixture(t)
	cs := connect(t, f.svc, f.agent)

	t.Run("ok/wallet_info", func(t *testing.T) {
		_, out := call(t, cs, "wallet_info", nil)
		if out["address"] != f.wallet.Address || out["chain_id"] != float64(1337) || out["balance_wei"] != "2000000000000000000" ||
			!strings.HasPrefix(out["balance"].(string), "2") {
			t.Fatalf("%v", out)
		}
	})
	t.Run("ok/wallet_info with a token", func(t *testing.T) {
		if _, err := f.dev.Mint(context.Background(), common.HexToAddress(f.wallet.Address), big.NewInt(5e18)); err != nil {
			t.Fatal(err)
		}
		_, out := call(t, cs, "wallet_info", map[string]any{"token_address": f.dev.Token.Hex()})
		tok, _ := out["token"].(map[string]any)
		if tok["symbol"] != "TEST" || tok["balance_base_units"] != "5000000000000000000" || tok["decimals"] != float64(18) {
			t.Fatalf("%v", out)
		}
	})

	var txID string
	t.Run("ok/prepare_transaction is pending", func(t *testing.T) {
		_, out := call(t, cs, "prepare_transaction", map[string]any{"type": "native", "to_address": "0x000000000000000000000000000000000000dEaD",
			"amount": "1000", "memo": "test payment", "idempotency_key": "k1"})
		txID, _ = out["transaction_id"].(string)
		if txID == "" || out["status"] != "pending" || out["approval_digest"] == "" || !strings.Contains(out["next_step"].(string), "human must approve") {
			t.Fatalf("%v", out)
		}
		// the same idempotency key: the same transaction
		_, again := call(t, cs, "prepare_transaction", map[string]any{"type": "native", "to_address": "0x000000000000000000000000000000000000dEaD",
			"amount": "1000", "memo": "test payment", "idempotency_key": "k1"})
		if again["transaction_id"] != txID {
			t.Fatalf("idempotent prepare: %v, want %s", again["transaction_id"], txID)
		}
	})
	t.Run("ok/transaction_status", func(t *testing.T) {
		_, out := call(t, cs, "transaction_status", map[string]any{"transaction_id": txID})
		if out["status"] != "pending" || out["next_step"] == "" {
			t.Fatalf("%v", out)
		}
	})
	t.Run("fail/execute before approval", func(t *testing.T) {
		res, _ := call(t, cs, "execute_transaction", map[string]any{"transaction_id": txID})
		if code, _ := toolErr(t, res); code != countersign.NotAuthorized {
			t.Fatalf("code %s, want NOT_AUTHORIZED: an agent executed without the human", code)
		}
	})
	t.Run("ok/list_transactions", func(t *testing.T) {
		_, out := call(t, cs, "list_transactions", map[string]any{"status": "pending"})
		txs, _ := out["transactions"].([]any)
		if len(txs) != 1 || txs[0].(map[string]any)["transaction_id"] != txID {
			t.Fatalf("%v", out)
		}
	})
	t.Run("ok/cancel_transaction", func(t *testing.T) {
		_, out := call(t, cs, "cancel_transaction", map[string]any{"transaction_id": txID})
		if out["transaction_id"] != txID || out["status"] != "cancelled" {
			t.Fatalf("%v", out)
		}
		_, out = call(t, cs, "list_transactions", map[string]any{"status": "pending"})
		if txs, _ := out["transactions"].([]any); len(txs) != 0 {
			t.Fatalf("still pending after cancel: %v", out)
		}
	})

	fails := map[string]struct {
		tool string
		args map[string]any
		code countersign.Code
	}{
		"fail/prepare a bad amount":     {"prepare_transaction", map[string]any{"type": "native", "to_address": "0x000000000000000000000000000000000000dEaD", "amount": "-1"}, countersign.BadRequest},
		"fail/prepare a bad recipient":  {"prepare_transaction", map[string]any{"type": "native", "to_address": "0x12", "amount": "1"}, countersign.BadRequest},
		"fail/status wait over 60 s":    {"transaction_status", map[string]any{"transaction_id": "x", "wait_seconds": 61}, countersign.BadRequest},
		"fail/status negative wait":     {"transaction_status", map[string]any{"transaction_id": "x", "wait_seconds": -1}, countersign.BadRequest},
		"fail/status unknown id":        {"transaction_status", map[string]any{"transaction_id": "00000000-0000-0000-0000-000000000000"}, countersign.NotFound},
		"fail/list limit over 100":      {"list_transactions", map[string]any{"limit": 101}, countersign.BadRequest},
		"fail/execute unknown id":       {"execute_transaction", map[string]any{"transaction_id": "00000000-0000-0000-0000-000000000000"}, countersign.NotFound},
		"fail/wallet_info bad token":    {"wallet_info", map[string]any{"token_address": "not-an-address"}, countersign.BadRequest},
		"fail/cancel a cancelled again": {"cancel_transaction", map[string]any{"transaction_id": "00000000-0000-0000-0000-000000000000"}, countersign.NotFound},
	}
	// Arguments that break the input schema are refused by the SDK before
	// a tool runs: a tool error naming the field (not in countersign's
	// envelope), and nothing is prepared.
	t.Run("fail/prepare without a type (schema)", func(t *testing.T) {
		res, _ := call(t, cs, "prepare_transaction", map[string]any{"to_address": "0x000000000000000000000000000000000000dEaD", "amount": "1"})
		if text := res.Content[0].(*sdk.TextContent).Text; !res.IsError || !strings.Contains(text, `"type"`) {
			t.Fatalf("%v %q", res.IsError, text)
		}
		_, out := call(t, cs, "list_transactions", nil)
		if txs, _ := out["transactions"].([]any); len(txs) != 1 {
			t.Fatalf("a refused call prepared something: %v", out)
		}
	})
	for name, tt := range fails {
		t.Run(name, func(t *testing.T) {
			res, _ := call(t, cs, tt.tool, tt.args)
			code, detail := toolErr(t, res)
			if code != tt.code || detail == "" || detail == "internal error" {
				t.Fatalf("%s %q, want %s with a readable detail", code, detail, tt.code)
			}
		})
	}
}

// TestSecurity_MCPToolsActAsTheirAgent: the tools act as the principal
// they were built for: a second agent of the same owner cannot see,
// execute or cancel the first one's transaction, and an error detail
// never carries an internal cause.
func TestSecurity_MCPToolsActAsTheirAgent(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cs := connect(t, f.svc, f.agent)
	_, out := call(t, cs, "prepare_transaction", map[string]any{"type": "native", "to_address": "0x000000000000000000000000000000000000dEaD", "amount": "1"})
	txID := out["transaction_id"].(string)

	// another user with their own agent
	const password = "another long password"
	if _, err := f.svc.Register(ctx, "mallory", password); err != nil {
		t.Fatal(err)
	}
	tok, _, err := f.svc.Login(ctx, "mallory", password, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	mp, _ := f.svc.AuthenticateUser(ctx, tok)
	enr, err := f.svc.SetupMFA(ctx, mp, "")
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(enr.Secret)
	mp, _ = f.svc.AuthenticateUser(ctx, tok)
	mw, err := f.svc.CreateWallet(ctx, mp, password, "m")
	if err != nil {
		t.Fatal(err)
	}
	_, key, err := f.svc.CreateAgent(ctx, mp, "evil", mw.Address, auth.TOTPCode(secret, time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.svc.AuthenticateAgent(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	ocs := connect(t, f.svc, other)
	for _, tool := range []string{"transaction_status", "execute_transaction", "cancel_transaction"} {
		res, _ := call(t, ocs, tool, map[string]any{"transaction_id": txID})
		if code, _ := toolErr(t, res); code != countersign.NotFound {
			t.Fatalf("%s on another owner's transaction: %s, want NOT_FOUND", tool, code)
		}
	}
	_, list := call(t, ocs, "list_transactions", nil)
	if txs, _ := list["transactions"].([]any); len(txs) != 0 {
		t.Fatalf("another owner's agent lists %v", list)
	}
	_, info := call(t, ocs, "wallet_info", nil)
	if info["address"] != mw.Address {
		t.Fatalf("wallet_info as the other agent: %v", info)
	}
	// the first agent's transaction is untouched
	_, st := call(t, cs, "transaction_status", map[string]any{"transaction_id": txID})
	if st["status"] != "pending" {
		t.Fatalf("status %v", st)
	}
}
