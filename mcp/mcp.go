// Package mcp serves countersign to AI agents over the Model Context
// Protocol (the official Go SDK): the same countersigned flow as the REST
// API, as tools a model can call. Nothing a client sends can skip the human
// approval: the tools call the same core service with the agent's own
// principal.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Name and version the server reports to clients.
const (
	Name    = "countersign"
	Version = "1"
)

// Instructions tell the model how the countersignature works.
const Instructions = `countersign holds a wallet for you, but a human countersigns every spend.
To pay or call a contract: prepare_transaction, then wait with transaction_status (wait_seconds up to 60)
until the status is "authorized", then execute_transaction. A request may also end "rejected" (read the
reason), "expired" or "cancelled"; do not retry a rejected request unchanged. Amounts are integer base
units as decimal strings (wei for ETH: "1000000000000000000" is 1 ETH).`

// MaxBody is the largest /mcp request body, the 256 KiB every API route
// takes (docs/API.md). The SDK's own default is 4 MiB: a prepare_transaction
// call with the biggest ABI and memo the service accepts fits in far less,
// and a smaller bound is less memory an agent key can make the server hold.
const MaxBody = 256 << 10

// Handler returns the Streamable HTTP handler for /mcp. Each request must
// carry an authenticated agent in its context (core.WithPrincipal): the HTTP
// layer's route guard puts it there.
func Handler(svc *core.Service) http.Handler {
	return limitBody(sdk.NewStreamableHTTPHandler(func(r *http.Request) *sdk.Server {
		p := core.PrincipalFrom(r.Context())
		if !p.IsAgent() {
			return nil // 400: the guard should have refused already
		}
		return NewServer(svc, p)
	}, &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true, MaxRequestBodyBytes: MaxBody}))
}

// limitBody reads a request body of at most MaxBody bytes before the SDK
// sees it, whatever its framing (Content-Length, chunked, HTTP/2), and
// answers a larger one with the API's 413 TOO_LARGE error rather than the
// SDK's plain-text one. The SDK's own limit stays set as a second fence.
func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBody {
			tooLarge(w)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			body, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
			if err != nil {
				writeError(w, http.StatusBadRequest, countersign.BadRequest, "cannot read request body")
				return
			}
			if len(body) > MaxBody {
				tooLarge(w)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
		}
		next.ServeHTTP(w, r)
	})
}

func tooLarge(w http.ResponseWriter) {
	writeError(w, http.StatusRequestEntityTooLarge, countersign.TooLarge, fmt.Sprintf("request body is larger than %d KiB", MaxBody>>10))
}

// writeError answers in the API's error envelope (http.ErrorBody), which
// agents already parse; the request id is in the X-Request-Id header.
func writeError(w http.ResponseWriter, status int, code countersign.Code, detail string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": string(code), "detail": detail}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// NewServer returns an MCP server whose tools act as agent p.
func NewServer(svc *core.Service, p *core.Principal) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: Name, Version: Version}, &sdk.ServerOptions{Instructions: Instructions})
	t := &tools{svc: svc, p: p}
	sdk.AddTool(s, &sdk.Tool{Name: "wallet_info",
		Description: "Your wallet: address, chain id and native balance (and an ERC-20 balance if you give token_address)."}, t.walletInfo)
	sdk.AddTool(s, &sdk.Tool{Name: "prepare_transaction",
		Description: "Ask to send a transaction: type native (to_address, amount in wei), erc20 (token_address, to_address, amount in token base units) or contract_call (contract_address, contract_abi, function_name, function_args, value). Returns a transaction_id in status pending: a human must approve it before execute_transaction works. Put your reason in memo: the human reads it."}, t.prepare)
	sdk.AddTool(s, &sdk.Tool{Name: "transaction_status",
		Description: "The status of a transaction you prepared: pending (waiting for the human), authorized (execute it now), rejected (see reason), expired, cancelled, submitted, confirmed or failed. With wait_seconds (max 60) it waits until the status changes."}, t.status)
	sdk.AddTool(s, &sdk.Tool{Name: "execute_transaction",
		Description: "Sign and broadcast a transaction the human has authorized. Safe to repeat: it never sends twice and returns the same tx_hash once sent. Fails with NOT_AUTHORIZED while the request is still pending, FEE_TOO_HIGH when the network now needs a higher fee than the human approved (retry later or prepare again), and CONFLICT when the transaction already failed."}, t.execute)
	sdk.AddTool(s, &sdk.Tool{Name: "cancel_transaction",
		Description: "Withdraw a transaction you prepared that is still pending, or authorized but not yet executed (an auto-approved one you no longer want: its budget comes back at once)."}, t.cancel)
	sdk.AddTool(s, &sdk.Tool{Name: "list_transactions",
		Description: "Your transactions, newest first, optionally only those with one status."}, t.list)
	sdk.AddTool(s, &sdk.Tool{Name: "budget_remaining",
		Description: "Your policy budgets now: for each budgeted rule of your policy and your wallet's, max, spent, reserved and remaining (base units) in its rolling window."}, t.budgetRemaining)
	sdk.AddTool(s, &sdk.Tool{Name: "simulate_transaction",
		Description: "Dry run of prepare_transaction (same arguments): what the policy would decide now — decision (deny, human, quorum, delay, auto), the deciding rule_id, its budget and warnings. Changes nothing."}, t.simulate)
	t.addX402Tools(s) // x402.go
	return s
}

type tools struct {
	svc *core.Service
	p   *core.Principal
}

// toolError turns an error into an MCP tool error the model can read and
// act on: the countersign code and its public detail, never an internal
// cause.
func toolError(err error) *sdk.CallToolResult {
	code, detail := countersign.ErrorCode(err), countersign.ErrorDetail(err)
	res := &sdk.CallToolResult{IsError: true, Content: []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("%s: %s", code, detail)}}}
	e := map[string]string{"code": string(code), "detail": detail}
	if ce := (*countersign.Error)(nil); code == countersign.PolicyDenied && errors.As(err, &ce) {
		e["rule_id"] = ce.RuleID // the policy rule that refused
		res.Content = []sdk.Content{&sdk.TextContent{Text: fmt.Sprintf("%s: %s (rule_id %s)", code, detail, ce.RuleID)}}
	}
	res.StructuredContent = map[string]any{"error": e}
	return res
}

func ok(v any) (*sdk.CallToolResult, any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, nil, err
	}
	return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(b)}}}, v, nil
}

type walletInfoIn struct {
	TokenAddress string `json:"token_address,omitempty" jsonschema:"an ERC-20 token address to include its balance"`
}

type walletInfoOut struct {
	Address    string `json:"address"`
	ChainID    int64  `json:"chain_id"`
	BalanceWei string `json:"balance_wei"`
	Balance    string `json:"balance"`
	Token      any    `json:"token,omitempty"`
}

func (t *tools) walletInfo(ctx context.Context, _ *sdk.CallToolRequest, in walletInfoIn) (*sdk.CallToolResult, any, error) {
	w, err := t.svc.AgentWallet(ctx, t.p.Agent)
	if err != nil {
		return toolError(err), nil, nil
	}
	b, err := t.svc.Balance(ctx, w.Address, "")
	if err != nil {
		return toolError(err), nil, nil
	}
	out := walletInfoOut{Address: w.Address, ChainID: t.svc.ChainID().Int64(), BalanceWei: b.Balance.String(),
		Balance: countersign.FormatUnits(b.Balance, 18) + " " + core.NativeSymbol}
	if in.TokenAddress != "" {
		tb, err := t.svc.Balance(ctx, w.Address, in.TokenAddress)
		if err != nil {
			return toolError(err), nil, nil
		}
		out.Token = map[string]any{"token_address": tb.Token, "symbol": tb.Symbol, "decimals": tb.Decimals,
			"balance_base_units": tb.Balance.String(), "balance": countersign.FormatUnits(tb.Balance, int(tb.Decimals))}
	}
	return ok(out)
}

type prepareIn struct {
	Type            string `json:"type" jsonschema:"native, erc20 or contract_call"`
	ToAddress       string `json:"to_address,omitempty" jsonschema:"recipient (native, erc20)"`
	Amount          string `json:"amount,omitempty" jsonschema:"integer base units as a decimal string (wei for native)"`
	TokenAddress    string `json:"token_address,omitempty" jsonschema:"ERC-20 token contract (erc20)"`
	ContractAddress string `json:"contract_address,omitempty" jsonschema:"contract to call (contract_call)"`
	ContractABI     any    `json:"contract_abi,omitempty" jsonschema:"the contract's JSON ABI, an array (contract_call)"`
	FunctionName    string `json:"function_name,omitempty" jsonschema:"function name or full signature (contract_call)"`
	FunctionArgs    []any  `json:"function_args,omitempty" jsonschema:"arguments in order; integers as decimal strings (contract_call)"`
	Value           string `json:"value,omitempty" jsonschema:"wei sent with a contract call"`
	Memo            string `json:"memo,omitempty" jsonschema:"why: shown to the human who approves"`
	IdempotencyKey  string `json:"idempotency_key,omitempty" jsonschema:"repeat a call with the same key to get the same transaction"`
}

type prepareOut struct {
	TransactionID  string    `json:"transaction_id"`
	Status         string    `json:"status"`
	ExpiresAt      time.Time `json:"expires_at"`
	ApprovalDigest string    `json:"approval_digest"`
	NextStep       string    `json:"next_step"`
	// What the human is warned of ({code, severity, text}), the policy's
	// and the review's, as prepare_transaction's REST answer has them.
	Warnings []core.Warning `json:"warnings"`
}

const pendingHint = "A human must approve this request before it can be executed. Call transaction_status with wait_seconds to wait for the decision, then execute_transaction once it is authorized."

// prepareRequest is the PrepareRequest of prepare_transaction's (and
// simulate_transaction's) arguments.
func prepareRequest(in prepareIn) (*core.PrepareRequest, *sdk.CallToolResult) {
	req := &core.PrepareRequest{Type: in.Type, ToAddress: in.ToAddress, Amount: in.Amount, TokenAddress: in.TokenAddress,
		ContractAddress: in.ContractAddress, FunctionName: in.FunctionName, Value: in.Value, Memo: in.Memo}
	if in.ContractABI != nil {
		b, err := json.Marshal(in.ContractABI)
		if err != nil {
			return nil, toolError(countersign.Errorf(countersign.BadRequest, "contract_abi is not JSON"))
		}
		req.ContractABI = b
	}
	if in.FunctionArgs != nil {
		b, _ := json.Marshal(in.FunctionArgs)
		req.FunctionArgs = b
	}
	return req, nil
}

func (t *tools) prepare(ctx context.Context, _ *sdk.CallToolRequest, in prepareIn) (*sdk.CallToolResult, any, error) {
	req, errRes := prepareRequest(in)
	if errRes != nil {
		return errRes, nil, nil
	}
	tx, err := t.svc.Prepare(ctx, t.p, req, in.IdempotencyKey)
	if err != nil {
		return toolError(err), nil, nil
	}
	v := core.View(tx)
	warnings := core.PolicyWarnings(tx.PolicyWarnings)
	if rv, err := t.svc.Review(ctx, t.p, tx.ID); err == nil {
		warnings = append(warnings, rv.Warnings...)
	}
	return ok(prepareOut{TransactionID: tx.ID, Status: string(tx.Status), ExpiresAt: tx.ExpiresAt, ApprovalDigest: v.Digest, NextStep: pendingHint, Warnings: warnings})
}

type idIn struct {
	TransactionID string `json:"transaction_id" jsonschema:"the id prepare_transaction returned"`
}

type statusIn struct {
	TransactionID string `json:"transaction_id" jsonschema:"the id prepare_transaction returned"`
	WaitSeconds   int    `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds (max 60) for the status to change"`
}

type statusOut struct {
	core.TxView
	NextStep string `json:"next_step,omitempty"`
}

func nextStep(s countersign.Status) string {
	switch s {
	case countersign.StatusPending:
		return pendingHint
	case countersign.StatusAuthorized:
		return "The human approved it: call execute_transaction now."
	case countersign.StatusRejected:
		return "The human rejected it; see reason. Do not retry it unchanged."
	case countersign.StatusExpired:
		return "Nobody approved it in time. Prepare it again only if it is still needed."
	case countersign.StatusSubmitted:
		return "Broadcast; waiting for it to be mined."
	}
	return ""
}

func (t *tools) status(ctx context.Context, _ *sdk.CallToolRequest, in statusIn) (*sdk.CallToolResult, any, error) {
	if in.WaitSeconds < 0 || in.WaitSeconds > 60 {
		return toolError(countersign.Errorf(countersign.BadRequest, "wait_seconds must be 0 to 60")), nil, nil
	}
	tx, err := t.svc.Status(ctx, t.p, in.TransactionID, time.Duration(in.WaitSeconds)*time.Second)
	if err != nil {
		return toolError(err), nil, nil
	}
	return ok(statusOut{TxView: core.View(tx), NextStep: nextStep(tx.Status)})
}

func (t *tools) execute(ctx context.Context, _ *sdk.CallToolRequest, in idIn) (*sdk.CallToolResult, any, error) {
	tx, err := t.svc.Execute(ctx, t.p, in.TransactionID)
	if err != nil {
		return toolError(err), nil, nil
	}
	v := core.View(tx)
	return ok(map[string]any{"transaction_id": tx.ID, "status": tx.Status, "tx_hash": v.TxHash, "signature": v.Signature})
}

func (t *tools) cancel(ctx context.Context, _ *sdk.CallToolRequest, in idIn) (*sdk.CallToolResult, any, error) {
	tx, err := t.svc.Cancel(ctx, t.p, in.TransactionID)
	if err != nil {
		return toolError(err), nil, nil
	}
	return ok(map[string]any{"transaction_id": tx.ID, "status": tx.Status})
}

type listIn struct {
	Status string `json:"status,omitempty" jsonschema:"only transactions in this status"`
	Limit  int    `json:"limit,omitempty" jsonschema:"at most this many (default 20, max 100)"`
}

func (t *tools) list(ctx context.Context, _ *sdk.CallToolRequest, in listIn) (*sdk.CallToolResult, any, error) {
	if in.Limit == 0 {
		in.Limit = 20
	}
	if in.Limit < 1 || in.Limit > 100 {
		return toolError(countersign.Errorf(countersign.BadRequest, "limit must be 1 to 100")), nil, nil
	}
	list, err := t.svc.Transactions(ctx, t.p, countersign.TxFilter{Status: countersign.Status(in.Status), Limit: in.Limit})
	if err != nil {
		return toolError(err), nil, nil
	}
	views := []core.TxView{}
	for _, tx := range list {
		views = append(views, core.View(tx))
	}
	return ok(map[string]any{"transactions": views})
}

type budgetOut struct {
	Budgets []core.BudgetState `json:"budgets"`
}

func (t *tools) budgetRemaining(ctx context.Context, _ *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, any, error) {
	b, err := t.svc.Budgets(ctx, t.p)
	if err != nil {
		return toolError(err), nil, nil
	}
	return ok(budgetOut{Budgets: b})
}

func (t *tools) simulate(ctx context.Context, _ *sdk.CallToolRequest, in prepareIn) (*sdk.CallToolResult, any, error) {
	req, errRes := prepareRequest(in)
	if errRes != nil {
		return errRes, nil, nil
	}
	res, err := t.svc.Simulate(ctx, t.p, "", req)
	if err != nil {
		return toolError(err), nil, nil
	}
	return ok(res)
}
