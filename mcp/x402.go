package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/x402"
)

// addX402Tools adds the x402 payment tools (x402_fetch, x402_mcp_call).
func (t *tools) addX402Tools(s *sdk.Server) {
	sdk.AddTool(s, &sdk.Tool{Name: "x402_fetch",
		Description: "Fetch a URL; if it answers 402 Payment Required (x402 v1 or v2), pay it from your wallet within your policy and fetch it again. max_amount (token base units) is the most you will pay; without it nothing is paid. Returns status, headers, body (text or base64) and the payment with its settlement. If a human must approve, it returns status pending with a transaction_id: wait with transaction_status, then call x402_fetch again with the same arguments and that transaction_id."}, t.x402Fetch)
	sdk.AddTool(s, &sdk.Tool{Name: "x402_mcp_call",
		Description: "Call a tool on a paid MCP server (x402 MCP transport): when the tool answers that payment is required, pay it from your wallet within your policy (at most max_amount, token base units) and call it again with the payment. Returns the tool's result and the payment. Pending approval works as for x402_fetch."}, t.x402MCPCall)
}

type x402FetchIn struct {
	URL           string            `json:"url" jsonschema:"the http(s) URL to fetch"`
	Method        string            `json:"method,omitempty" jsonschema:"GET (default), POST, PUT, PATCH, DELETE or HEAD"`
	Headers       map[string]string `json:"headers,omitempty" jsonschema:"request headers"`
	Body          string            `json:"body,omitempty" jsonschema:"the request body, as text"`
	MaxAmount     string            `json:"max_amount,omitempty" jsonschema:"the most to pay, in base units of the token"`
	TransactionID string            `json:"transaction_id,omitempty" jsonschema:"resume a payment that was pending approval"`
	WaitSeconds   int               `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds (max 60) for a human's approval"`
}

type x402PendingOut struct {
	Status        string                `json:"status"`
	TransactionID string                `json:"transaction_id"`
	Decision      string                `json:"decision"`
	RuleID        string                `json:"rule_id"`
	Payment       *core.X402PaymentView `json:"payment,omitempty"`
	NextStep      string                `json:"next_step"`
}

const x402PendingHint = "A human must approve this payment. Call transaction_status with wait_seconds until it is authorized, then call this tool again with the same arguments and this transaction_id."

func wait(sec int) (time.Duration, *sdk.CallToolResult) {
	if sec < 0 || sec > 60 {
		return 0, toolError(countersign.Errorf(countersign.BadRequest, "wait_seconds must be 0 to 60"))
	}
	return time.Duration(sec) * time.Second, nil
}

func pendingOut(tx *countersign.Transaction, pay *core.X402PaymentView) (*sdk.CallToolResult, any, error) {
	v := core.View(tx)
	return ok(x402PendingOut{Status: v.Status, TransactionID: tx.ID, Decision: v.Decision, RuleID: v.RuleID, Payment: pay, NextStep: x402PendingHint})
}

func (t *tools) x402Fetch(ctx context.Context, _ *sdk.CallToolRequest, in x402FetchIn) (*sdk.CallToolResult, any, error) {
	w, errRes := wait(in.WaitSeconds)
	if errRes != nil {
		return errRes, nil, nil
	}
	res, pending, err := t.svc.X402Fetch(ctx, t.p, &core.X402FetchRequest{URL: in.URL, Method: in.Method, Headers: in.Headers, Body: in.Body,
		MaxAmount: in.MaxAmount, TransactionID: in.TransactionID}, w)
	if err != nil {
		return toolError(err), nil, nil
	}
	if pending != nil {
		return pendingOut(pending, t.svc.X402PaymentOf(ctx, pending))
	}
	return ok(res)
}

type x402MCPIn struct {
	ServerURL     string         `json:"server_url" jsonschema:"the paid MCP server's Streamable HTTP endpoint"`
	Tool          string         `json:"tool" jsonschema:"the tool to call"`
	Arguments     map[string]any `json:"arguments,omitempty" jsonschema:"the tool's arguments"`
	MaxAmount     string         `json:"max_amount,omitempty" jsonschema:"the most to pay, in base units of the token"`
	TransactionID string         `json:"transaction_id,omitempty" jsonschema:"resume a payment that was pending approval"`
	WaitSeconds   int            `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds (max 60) for a human's approval"`
}

type x402MCPOut struct {
	Result        *sdk.CallToolResult   `json:"result"`
	Payment       *core.X402PaymentView `json:"payment"`
	TransactionID string                `json:"transaction_id,omitempty"`
}

func (t *tools) x402MCPCall(ctx context.Context, _ *sdk.CallToolRequest, in x402MCPIn) (*sdk.CallToolResult, any, error) {
	w, errRes := wait(in.WaitSeconds)
	if errRes != nil {
		return errRes, nil, nil
	}
	if err := t.svc.X402CheckURL(ctx, "server_url", in.ServerURL); err != nil {
		return toolError(err), nil, nil
	}
	if in.Tool == "" || len(in.Tool) > 128 {
		return toolError(countersign.Errorf(countersign.BadRequest, "tool must be a tool name of at most 128 bytes")), nil, nil
	}
	tr := &mcpTransport{svc: t.svc, url: in.ServerURL, tool: in.Tool, args: in.Arguments}
	defer tr.close()
	out, err := t.svc.X402Pay(ctx, t.p, tr, core.X402PayRequest{Resource: "mcp:" + in.ServerURL + "#" + in.Tool, Method: "tools/call",
		MaxAmount: in.MaxAmount, TransactionID: in.TransactionID}, w)
	if err != nil {
		return toolError(err), nil, nil
	}
	if out.Pending != nil {
		return pendingOut(out.Pending, out.Payment)
	}
	res, _ := out.Response.Answer.(*sdk.CallToolResult)
	o := x402MCPOut{Result: res, Payment: out.Payment}
	if out.Payment != nil {
		o.TransactionID = out.Payment.TransactionID
	}
	return ok(o)
}

// mcpTransport is x402's MCP transport (the x402 v2 MCP spec): a tool
// result with isError whose structuredContent (or first text content) is
// a PaymentRequired asks for payment; the payment goes in the call's
// params._meta["x402/payment"]; the settlement comes back in the result's
// _meta["x402/payment-response"]. It connects through the fetch address
// policy (core.X402Client).
type mcpTransport struct {
	svc     *core.Service
	url     string
	tool    string
	args    map[string]any
	session *sdk.ClientSession
}

func (m *mcpTransport) close() {
	if m.session != nil {
		m.session.Close()
	}
}

func upstream(err error, format string, args ...any) error {
	return countersign.Wrap(countersign.UpstreamError, err, fmt.Sprintf(format, args...))
}

func (m *mcpTransport) Do(ctx context.Context, payment *x402.PaymentPayload) (*core.X402Response, error) {
	if m.session == nil {
		c := sdk.NewClient(&sdk.Implementation{Name: Name + "-x402", Version: Version}, nil)
		s, err := c.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: m.url, HTTPClient: m.svc.X402Client(), DisableStandaloneSSE: true, MaxRetries: -1}, nil)
		if err != nil {
			return nil, upstream(err, "the MCP server cannot be reached")
		}
		m.session = s
	}
	params := &sdk.CallToolParams{Name: m.tool, Arguments: m.args}
	if payment != nil {
		b, err := json.Marshal(payment)
		if err != nil {
			return nil, err
		}
		var obj map[string]any
		_ = json.Unmarshal(b, &obj)
		params.Meta = sdk.Meta{x402.MetaPayment: obj}
	}
	res, err := m.session.CallTool(ctx, params)
	if err != nil {
		return nil, upstream(err, "the MCP tool call failed")
	}
	out := &core.X402Response{Answer: res}
	if v, ok := res.Meta[x402.MetaPaymentResponse]; ok {
		b, _ := json.Marshal(v)
		st, err := x402.ParseSettlement(b)
		if err != nil {
			return nil, upstream(err, "the MCP server's %s is not a settlement (%s)", x402.MetaPaymentResponse, strings.TrimPrefix(err.Error(), "x402: invalid message: "))
		}
		out.Settlement = st
	}
	if !res.IsError {
		return out, nil
	}
	// a payment demand: structuredContent, else the JSON text of content[0]
	var raw []byte
	if res.StructuredContent != nil {
		raw, _ = json.Marshal(res.StructuredContent)
	} else if len(res.Content) > 0 {
		if tc, ok := res.Content[0].(*sdk.TextContent); ok {
			raw = []byte(tc.Text)
		}
	}
	if !looksRequired(raw) {
		return out, nil // an ordinary tool error
	}
	pr, err := x402.ParsePaymentRequired(raw)
	if err != nil {
		return nil, upstream(err, "the MCP tool asks for payment with unreadable requirements (%s)", strings.TrimPrefix(err.Error(), "x402: invalid message: "))
	}
	out.Required = pr
	return out, nil
}

// looksRequired reports whether a tool error carries a PaymentRequired:
// an object with x402Version and accepts.
func looksRequired(b []byte) bool {
	var probe map[string]json.RawMessage
	if len(b) == 0 || len(b) > x402.MaxEncoded || json.Unmarshal(b, &probe) != nil {
		return false
	}
	_, v := probe["x402Version"]
	_, a := probe["accepts"]
	return v && a
}
