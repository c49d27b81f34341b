package main

import (
	"context"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	csmcp "github.com/countersign/countersign/mcp"
)

type keyTransport struct{ key string }

func (k keyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if k.key != "" {
		r.Header.Set("Authorization", "Bearer "+k.key)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func mcpConnect(t *testing.T, url, key string) (*sdk.ClientSession, error) {
	c := sdk.NewClient(&sdk.Implementation{Name: "test-client", Version: "1"}, nil)
	return c.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: url + "/mcp",
		HTTPClient: &http.Client{Transport: keyTransport{key}}, DisableStandaloneSSE: true}, nil)
}

func callTool(t *testing.T, s *sdk.ClientSession, name string, args map[string]any) (map[string]any, *sdk.CallToolResult) {
	t.Helper()
	res, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out map[string]any
	if len(res.Content) > 0 {
		_ = json.Unmarshal([]byte(res.Content[0].(*sdk.TextContent).Text), &out)
	}
	return out, res
}

func toolText(res *sdk.CallToolResult) string { return res.Content[0].(*sdk.TextContent).Text }

// mcpFlow is the countersigned flow through MCP tools, with the human
// approving over REST in between.
func mcpFlow(t *testing.T, e *env, s *sdk.ClientSession, u *user, wallet string) {
	tl, err := s.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tl.Tools {
		names = append(names, tool.Name)
		if tool.Description == "" || tool.InputSchema == nil {
			t.Errorf("tool %s lacks a description or schema", tool.Name)
		}
	}
	sort.Strings(names)
	if strings.Join(names, ",") != "budget_remaining,cancel_transaction,execute_transaction,list_transactions,prepare_transaction,simulate_transaction,transaction_status,wallet_info,x402_fetch,x402_mcp_call" {
		t.Fatalf("tools: %v", names)
	}
	info, res := callTool(t, s, "wallet_info", nil)
	if res.IsError || info["address"] != wallet {
		t.Fatalf("wallet_info: %s", toolText(res))
	}
	to := randomAddress()
	prep, res := callTool(t, s, "prepare_transaction", map[string]any{"type": "native", "to_address": to, "amount": "777", "memo": "via MCP"})
	if res.IsError || prep["status"] != "pending" || !strings.Contains(prep["next_step"].(string), "human must approve") {
		t.Fatalf("prepare: %s", toolText(res))
	}
	id := prep["transaction_id"].(string)
	_, res = callTool(t, s, "execute_transaction", map[string]any{"transaction_id": id})
	if !res.IsError || !strings.HasPrefix(toolText(res), "NOT_AUTHORIZED: ") {
		t.Fatalf("execute before approval: %v %s", res.IsError, toolText(res))
	}
	e.do("POST", "/api/authorize_transaction", bearer(u.token), map[string]string{"transaction_id": id, "mfa_code": e.code(u)}).must(t, 200)
	st, _ := callTool(t, s, "transaction_status", map[string]any{"transaction_id": id, "wait_seconds": 5})
	if st["status"] != "authorized" {
		t.Fatalf("status after approval: %v", st)
	}
	ex, res := callTool(t, s, "execute_transaction", map[string]any{"transaction_id": id})
	if res.IsError || ex["tx_hash"] == nil {
		t.Fatalf("execute: %s", toolText(res))
	}
	e.waitStatus(bearer(u.token), id, "confirmed")
	if got := e.balance(bearer(u.token), to, ""); got.Int64() != 777 {
		t.Fatalf("recipient has %s", got)
	}
	// a malformed call is a tool error, and the server keeps serving
	_, res = callTool(t, s, "prepare_transaction", map[string]any{"type": "native", "to_address": "0x12", "amount": "-5"})
	if !res.IsError || !strings.Contains(toolText(res), "BAD_REQUEST") {
		t.Fatalf("bad input: %s", toolText(res))
	}
	res2, err := s.CallTool(context.Background(), &sdk.CallToolParams{Name: "prepare_transaction", Arguments: map[string]any{"type": 5, "bogus": true}})
	if err != nil || !res2.IsError || !strings.Contains(toolText(res2), "type") {
		t.Fatalf("wrongly typed arguments: want a tool error, got %v %+v", err, res2)
	}
	lst, _ := callTool(t, s, "list_transactions", map[string]any{"status": "confirmed"})
	if n := len(lst["transactions"].([]any)); n != 1 {
		t.Fatalf("list: %d", n)
	}
	// cancel
	prep, _ = callTool(t, s, "prepare_transaction", map[string]any{"type": "native", "to_address": to, "amount": "1"})
	c, res := callTool(t, s, "cancel_transaction", map[string]any{"transaction_id": prep["transaction_id"]})
	if res.IsError || c["status"] != "cancelled" {
		t.Fatalf("cancel: %s", toolText(res))
	}
}

func TestMCPStreamableHTTP(t *testing.T) {
	e := newEnv(t)
	u, wallet, _, key := setup(t, e)
	s, err := mcpConnect(t, e.url, key)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mcpFlow(t, e, s, u, wallet)

	// no key, a user's token, a garbage key: no session
	for name, k := range map[string]string{"no key": "", "user token": u.token, "garbage": "csk_nope"} {
		if s, err := mcpConnect(t, e.url, k); err == nil {
			s.Close()
			t.Errorf("%s: connected", name)
		}
	}
}

func TestMCPStdioProxy(t *testing.T) {
	e := newEnv(t)
	u, wallet, _, key := setup(t, e)
	serverT, clientT := sdk.NewInMemoryTransports()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- csmcp.Proxy(ctx, e.url, key, serverT) }()
	c := sdk.NewClient(&sdk.Implementation{Name: "host", Version: "1"}, nil)
	s, err := c.Connect(ctx, clientT, nil)
	if err != nil {
		t.Fatal(err)
	}
	mcpFlow(t, e, s, u, wallet)
	s.Close()
	cancel()
	select {
	case <-errc:
	case <-time.After(5 * time.Second):
		t.Fatal("proxy did not stop")
	}
	if err := csmcp.Proxy(context.Background(), e.url, "", serverT); err == nil || !strings.Contains(err.Error(), "COUNTERSIGN_API_KEY") {
		t.Fatalf("missing key: %v", err)
	}
}
