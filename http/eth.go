package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// The agents' Ethereum JSON-RPC endpoint (POST /eth): existing tooling
// (ethers, viem, web3.py) points at it as its provider with the agent's API
// key. Reads go to the chain verbatim; everything that spends or signs
// becomes a pending approval a human must countersign.

// ethMethod is one method of /eth: a read forwarded to the node unchanged,
// or a call answered here for the agent's bound wallet (call).
type ethMethod struct {
	Summary string
	Read    bool
	call    func(s *Server, ctx context.Context, p *core.Principal, wallet *countersign.Wallet, ps []json.RawMessage) (json.RawMessage, error)
}

// ethReadSummary is every forwarded read's summary.
const ethReadSummary = "forwarded to the chain unchanged"

// ethMethods is /eth's method table, the one place its methods are listed
// (docs/API.md lists the same, TestEthMethodsDocumented checks). A method
// not in it is answered -32601.
var ethMethods = map[string]ethMethod{
	"eth_chainId": {Summary: ethReadSummary, Read: true}, "eth_blockNumber": {Summary: ethReadSummary, Read: true},
	"eth_getBalance": {Summary: ethReadSummary, Read: true}, "eth_call": {Summary: ethReadSummary, Read: true},
	"eth_estimateGas": {Summary: ethReadSummary, Read: true}, "eth_getTransactionReceipt": {Summary: ethReadSummary, Read: true},
	"eth_getTransactionByHash": {Summary: ethReadSummary, Read: true}, "eth_gasPrice": {Summary: ethReadSummary, Read: true},
	"eth_feeHistory": {Summary: ethReadSummary, Read: true}, "eth_maxPriorityFeePerGas": {Summary: ethReadSummary, Read: true},
	"eth_getTransactionCount": {Summary: ethReadSummary, Read: true}, "eth_getCode": {Summary: ethReadSummary, Read: true},
	"net_version": {Summary: ethReadSummary, Read: true},
	// ethers reads the latest block for fee data and confirmations.
	"eth_getBlockByNumber": {Summary: ethReadSummary, Read: true}, "eth_getBlockByHash": {Summary: ethReadSummary, Read: true},

	"eth_accounts":         {Summary: "the agent's bound wallet", call: ethAccounts},
	"eth_requestAccounts":  {Summary: "the agent's bound wallet", call: ethAccounts},
	"eth_sendTransaction":  {Summary: "a pending request (native, or a contract call with raw data); waits for the human, then executes and returns the hash", call: (*Server).ethSendTransaction},
	"personal_sign":        {Summary: "a pending message request; the signature once a human approves", call: (*Server).ethPersonalSign},
	"eth_signTypedData_v4": {Summary: "a pending typed-data request; the signature once a human approves", call: (*Server).ethSignTypedData},
	"eth_sign":             {Summary: "refused (-32601): it signs raw hashes a human cannot check", call: ethSignRefused},
}

// JSON-RPC error codes: the standard ones, EIP-1193's provider errors, and
// -32002 for "a human has not decided yet".
const (
	rpcParseError     = -32700
	rpcInvalidRequest = -32600
	rpcMethodNotFound = -32601
	rpcInvalidParams  = -32602
	rpcInternal       = -32603
	rpcServerError    = -32000 // node-style: insufficient funds, chain errors
	rpcPending        = -32002 // still waiting for the human: poll transaction_id
	rpcUserRejected   = 4001   // EIP-1193: the human rejected (or let it expire)
	rpcUnauthorized   = 4100   // EIP-1193: not this agent's account
)

// MaxBatch bounds a JSON-RPC batch.
const MaxBatch = 100

type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id,omitempty"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params,omitempty"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return e.Message }

type rpcResponse struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  json.RawMessage `json:"result,omitempty"`
	Error   *rpcError       `json:"error,omitempty"`
}

func (s *Server) eth(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	return s.serveJSONRPC(w, r, func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
		result, err := s.ethCall(ctx, p, method, params)
		s.Log.InfoContext(ctx, "eth rpc", "method", method, "agent_id", p.Agent.ID, "ok", err == nil)
		return result, err
	})
}

// rpcMethod answers one JSON-RPC call.
type rpcMethod func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)

// serveJSONRPC reads a JSON-RPC 2.0 request or batch (at most MaxBatch),
// answers each call with call, and writes the response(s). Notifications
// (no id) get no response.
func (s *Server) serveJSONRPC(w http.ResponseWriter, r *http.Request, call rpcMethod) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var batch []json.RawMessage
		if err := json.Unmarshal(trimmed, &batch); err != nil {
			return writeJSON(w, 200, rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"), Error: &rpcError{Code: rpcParseError, Message: "parse error"}})
		}
		if len(batch) == 0 || len(batch) > MaxBatch {
			return writeJSON(w, 200, rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null"),
				Error: &rpcError{Code: rpcInvalidRequest, Message: fmt.Sprintf("a batch holds 1 to %d requests", MaxBatch)}})
		}
		out := make([]rpcResponse, 0, len(batch))
		for _, raw := range batch {
			if resp, ok := rpcOne(r.Context(), raw, call); ok {
				out = append(out, resp)
			}
		}
		if len(out) == 0 {
			w.WriteHeader(http.StatusNoContent) // a batch of notifications
			return nil
		}
		return writeJSON(w, 200, out)
	}
	resp, ok := rpcOne(r.Context(), trimmed, call)
	if !ok {
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	return writeJSON(w, 200, resp)
}

// rpcOne answers one request; ok is false for a notification (no id).
func rpcOne(ctx context.Context, raw json.RawMessage, call rpcMethod) (rpcResponse, bool) {
	resp := rpcResponse{JSONRPC: "2.0", ID: json.RawMessage("null")}
	req, err := DecodeRPCRequest(raw)
	if err != nil {
		resp.Error = err.(*rpcError)
		return resp, true
	}
	if req.ID != nil {
		resp.ID = req.ID
	}
	result, err := call(ctx, req.Method, req.Params)
	if req.ID == nil {
		return resp, false
	}
	if err != nil {
		resp.Error = toRPCError(err)
		return resp, true
	}
	resp.Result = result
	return resp, true
}

// DecodeRPCRequest parses one JSON-RPC 2.0 request object. Errors are
// *rpcError with the standard codes (-32700 parse error, -32600 invalid
// request). It is a fuzz target.
func DecodeRPCRequest(raw []byte) (*rpcRequest, error) {
	var req rpcRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		if json.Valid(raw) {
			return nil, &rpcError{Code: rpcInvalidRequest, Message: "invalid request: " + strings.TrimPrefix(err.Error(), "json: ")}
		}
		return nil, &rpcError{Code: rpcParseError, Message: "parse error"}
	}
	if req.JSONRPC != "2.0" || req.Method == "" {
		return nil, &rpcError{Code: rpcInvalidRequest, Message: `invalid request: need "jsonrpc":"2.0" and a method`}
	}
	if id := bytes.TrimSpace(req.ID); len(id) > 0 && id[0] != '"' && id[0] != '-' && (id[0] < '0' || id[0] > '9') && string(id) != "null" {
		return nil, &rpcError{Code: rpcInvalidRequest, Message: "invalid request: id must be a string, a number or null"}
	}
	return &req, nil
}

// toRPCError maps countersign and node errors to JSON-RPC errors. The
// EIP-1193 answers (4001, 4100, -32002 pending) are built where they arise,
// as *rpcError, and pass through unchanged.
func toRPCError(err error) *rpcError {
	if re, ok := err.(*rpcError); ok {
		return re
	}
	// errors from the node keep their code and data (e.g. a revert, code 3)
	if ce, ok := err.(interface{ ErrorCode() int }); ok {
		e := &rpcError{Code: ce.ErrorCode(), Message: err.Error()}
		if de, ok := err.(interface{ ErrorData() any }); ok {
			e.Data = de.ErrorData()
		}
		return e
	}
	// the code comes from the one error table (error.go), its ETH column
	code := countersign.ErrorCode(err)
	row, ok := errorTable[code]
	if !ok {
		// a code from outside the table (a remote signer can echo its
		// own): answered node-style, as it always was
		row.ETH = rpcServerError
	}
	switch row.ETH {
	case rpcInternal:
		// an internal error's detail is for the log, not for the agent
		return &rpcError{Code: rpcInternal, Message: "internal error"}
	case rpcServerError:
		// -32000 alone does not say what failed: the countersign code goes in data
		data := map[string]string{"code": string(code)}
		if ce := (*countersign.Error)(nil); code == countersign.PolicyDenied && errors.As(err, &ce) {
			data["rule_id"] = ce.RuleID // the deciding policy rule
		}
		return &rpcError{Code: rpcServerError, Message: countersign.ErrorDetail(err), Data: data}
	default:
		return &rpcError{Code: row.ETH, Message: countersign.ErrorDetail(err)}
	}
}

func params(raw json.RawMessage) ([]json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var ps []json.RawMessage
	if err := json.Unmarshal(raw, &ps); err != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "params must be an array"}
	}
	return ps, nil
}

func (s *Server) ethCall(ctx context.Context, p *core.Principal, method string, rawParams json.RawMessage) (json.RawMessage, error) {
	ps, err := params(rawParams)
	if err != nil {
		return nil, err
	}
	m, known := ethMethods[method]
	if known && m.Read {
		res, ok, err := s.Svc.ForwardRead(ctx, method, ps)
		if !ok {
			return nil, &rpcError{Code: rpcInternal, Message: "this chain adapter cannot forward reads"}
		}
		return res, err
	}
	wallet, err := s.Svc.AgentWallet(ctx, p.Agent)
	if err != nil {
		return nil, err
	}
	if !known {
		return nil, &rpcError{Code: rpcMethodNotFound, Message: fmt.Sprintf("method %s is not available on countersign's agent endpoint", truncateStr(method, 64))}
	}
	return m.call(s, ctx, p, wallet, ps)
}

func ethAccounts(_ *Server, _ context.Context, _ *core.Principal, wallet *countersign.Wallet, _ []json.RawMessage) (json.RawMessage, error) {
	return json.Marshal([]string{wallet.Address})
}

func ethSignRefused(*Server, context.Context, *core.Principal, *countersign.Wallet, []json.RawMessage) (json.RawMessage, error) {
	return nil, &rpcError{Code: rpcMethodNotFound, Message: "eth_sign is refused: it signs raw hashes a human cannot check; use personal_sign or eth_signTypedData_v4"}
}

func (s *Server) ethPersonalSign(ctx context.Context, p *core.Principal, wallet *countersign.Wallet, ps []json.RawMessage) (json.RawMessage, error) {
	if len(ps) < 2 {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "personal_sign takes [message, address]"}
	}
	var msg, addr string
	if json.Unmarshal(ps[0], &msg) != nil || json.Unmarshal(ps[1], &addr) != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "personal_sign takes [message, address] as strings"}
	}
	if err := sameAccount(addr, wallet.Address); err != nil {
		return nil, err
	}
	return s.requestAndWait(ctx, p, &core.PrepareRequest{Type: string(countersign.TxPersonalSign), Message: ps[0], Memo: "personal_sign via JSON-RPC"})
}

func (s *Server) ethSignTypedData(ctx context.Context, p *core.Principal, wallet *countersign.Wallet, ps []json.RawMessage) (json.RawMessage, error) {
	if len(ps) < 2 {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "eth_signTypedData_v4 takes [address, typedData]"}
	}
	var addr string
	if json.Unmarshal(ps[0], &addr) != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "eth_signTypedData_v4 takes [address, typedData]"}
	}
	if err := sameAccount(addr, wallet.Address); err != nil {
		return nil, err
	}
	return s.requestAndWait(ctx, p, &core.PrepareRequest{Type: string(countersign.TxTypedData), Message: ps[1], Memo: "eth_signTypedData_v4 via JSON-RPC"})
}

func truncateStr(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func sameAccount(addr, wallet string) error {
	if !strings.EqualFold(addr, wallet) {
		return &rpcError{Code: rpcUnauthorized, Message: "this API key can only use account " + wallet}
	}
	return nil
}

// ethTx is the transaction object of eth_sendTransaction. Gas, fee and
// nonce fields are accepted and ignored: the server estimates gas, picks
// fees and allocates the nonce when it executes the approved request.
type ethTx struct {
	From                 string          `json:"from"`
	To                   *string         `json:"to"`
	Value                string          `json:"value"`
	Data                 string          `json:"data"`
	Input                string          `json:"input"`
	ChainID              string          `json:"chainId"`
	Gas                  json.RawMessage `json:"gas"`
	GasPrice             json.RawMessage `json:"gasPrice"`
	MaxFeePerGas         json.RawMessage `json:"maxFeePerGas"`
	MaxPriorityFeePerGas json.RawMessage `json:"maxPriorityFeePerGas"`
	Nonce                json.RawMessage `json:"nonce"`
	Type                 json.RawMessage `json:"type"`
	AccessList           json.RawMessage `json:"accessList"`
}

func hexQuantity(field, s string) (*big.Int, error) {
	if s == "" {
		return new(big.Int), nil
	}
	h, ok := strings.CutPrefix(strings.ToLower(s), "0x")
	// Hex digits only: big.Int.SetString also takes a sign, so "0x-1"
	// became -1, which a contract call then silently sent as value 0.
	if !ok || h == "" || len(h) > 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return nil, &rpcError{Code: rpcInvalidParams, Message: field + " must be a 0x-hex quantity"}
	}
	v, ok := new(big.Int).SetString(h, 16)
	if !ok {
		return nil, &rpcError{Code: rpcInvalidParams, Message: field + " must be a 0x-hex quantity"}
	}
	return v, nil
}

func (s *Server) ethSendTransaction(ctx context.Context, p *core.Principal, wallet *countersign.Wallet, ps []json.RawMessage) (json.RawMessage, error) {
	if len(ps) != 1 {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "eth_sendTransaction takes one transaction object"}
	}
	var tx ethTx
	dec := json.NewDecoder(bytes.NewReader(ps[0]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&tx); err != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "invalid transaction object: " + strings.TrimPrefix(err.Error(), "json: ")}
	}
	if tx.From != "" {
		if err := sameAccount(tx.From, wallet.Address); err != nil {
			return nil, err
		}
	}
	if tx.To == nil || *tx.To == "" {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "contract creation is not supported: give a to address"}
	}
	if tx.ChainID != "" {
		id, err := hexQuantity("chainId", tx.ChainID)
		if err != nil {
			return nil, err
		}
		if id.Cmp(s.Svc.ChainID()) != 0 {
			return nil, &rpcError{Code: rpcInvalidParams, Message: fmt.Sprintf("chainId %s does not match this chain (%s)", id, s.Svc.ChainID())}
		}
	}
	value, err := hexQuantity("value", tx.Value)
	if err != nil {
		return nil, err
	}
	data := tx.Data
	if data == "" {
		data = tx.Input
	} else if tx.Input != "" && !strings.EqualFold(tx.Input, tx.Data) {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "data and input differ"}
	}
	req := &core.PrepareRequest{Memo: "eth_sendTransaction via JSON-RPC"}
	if data == "" || data == "0x" {
		req.Type, req.ToAddress, req.Amount = string(countersign.TxNative), *tx.To, value.String()
	} else {
		req.Type, req.ContractAddress, req.Data = string(countersign.TxContractCall), *tx.To, data
		if value.Sign() > 0 {
			req.Value = value.String()
		}
	}
	return s.requestAndWait(ctx, p, req)
}

// requestAndWait prepares a request, waits up to ApprovalWait for the
// human, and on approval executes it: the transaction hash, or the
// signature for message requests.
func (s *Server) requestAndWait(ctx context.Context, p *core.Principal, req *core.PrepareRequest) (json.RawMessage, error) {
	t, err := s.Svc.Prepare(ctx, p, req, "")
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(s.ApprovalWait)
	for t.Status == countersign.StatusPending {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return nil, pendingError(t)
		}
		if left > MaxWait {
			left = MaxWait
		}
		if t, err = s.Svc.Status(ctx, p, t.ID, left); err != nil {
			return nil, err
		}
	}
	if t.Status != countersign.StatusAuthorized {
		return nil, &rpcError{Code: rpcUserRejected, Message: "the request was " + string(t.Status) + " by countersign",
			Data: map[string]string{"transaction_id": t.ID, "status": string(t.Status), "reason": t.Reason}}
	}
	t, err = s.Svc.Execute(ctx, p, t.ID)
	if err != nil {
		return nil, err
	}
	if t.Type.IsMessage() {
		return json.Marshal(fmt.Sprintf("0x%x", t.Signature))
	}
	return json.Marshal(t.TxHash)
}

// pendingError is the -32002 answer for a request still pending after the
// wait. It says what it waits for — the policy's quorum, its delay, or one
// human — so an agent knows whether to poll for minutes or for a person.
func pendingError(t *countersign.Transaction) *rpcError {
	data := map[string]any{"transaction_id": t.ID, "status": string(t.Status)}
	if t.Decision != "" {
		data["decision"], data["rule_id"] = t.Decision, t.RuleID
	}
	wait := "waiting for a human to approve"
	switch {
	case t.Decision == "quorum" && t.ApprovalsNeeded > 1:
		wait = fmt.Sprintf("waiting for %d approvers to approve (policy rule %s)", t.ApprovalsNeeded, t.RuleID)
		data["approvals_needed"] = t.ApprovalsNeeded
	case t.Decision == "delay" && !t.AuthorizeAt.IsZero():
		at := t.AuthorizeAt.UTC().Format(time.RFC3339)
		wait = "authorizes automatically at " + at + " unless an approver rejects it first (policy rule " + t.RuleID + ")"
		data["authorize_at"] = at
	}
	return &rpcError{Code: rpcPending, Message: wait + ": poll GET /api/transaction_status?transaction_id=" + t.ID + " and then call execute_transaction", Data: data}
}
