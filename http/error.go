package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/countersign/countersign"
)

// errorRow is how one error code answers on every surface that reports
// errors: REST and the web UI by HTTP status, the daemon's JSON-RPC mirror
// (/rpc) and /eth by JSON-RPC code. The two JSON-RPC columns differ because
// their clients do: /rpc speaks the daemon's application codes (documented
// in docs/DAEMON.md), /eth looks like an Ethereum node to wallets and
// libraries, which know only the standard codes and node-style -32000.
// /eth's EIP-1193 answers (4001 rejected, 4100 unauthorized account, -32002
// pending) are not countersign codes: eth.go returns them as *rpcError.
type errorRow struct {
	Status int // HTTP status (REST, UI)
	RPC    int // JSON-RPC code on /rpc
	ETH    int // JSON-RPC code on /eth
}

// errorTable is the one table from error code to status and JSON-RPC codes.
// Every code the API can return has a row (TestErrorTableCoversEveryCode
// parses the declarations); the values are published, so a row never
// changes meaning (TestErrorAnswersArePublished pins them).
var errorTable = map[countersign.Code]errorRow{
	countersign.BadRequest:        {http.StatusBadRequest, rpcInvalidParams, rpcInvalidParams},
	countersign.Unauthorized:      {http.StatusUnauthorized, rpcInternal, rpcServerError},
	countersign.MFARequired:       {http.StatusForbidden, rpcInternal, rpcServerError},
	countersign.MFAInvalid:        {http.StatusForbidden, rpcInternal, rpcServerError},
	countersign.MFALocked:         {http.StatusTooManyRequests, rpcInternal, rpcServerError},
	countersign.Forbidden:         {http.StatusForbidden, -32003, rpcServerError},
	countersign.NotFound:          {http.StatusNotFound, -32004, rpcServerError},
	countersign.Conflict:          {http.StatusConflict, -32009, rpcServerError},
	countersign.NotAuthorized:     {http.StatusConflict, rpcInternal, rpcServerError},
	countersign.RateLimit:         {http.StatusTooManyRequests, -32029, rpcServerError},
	countersign.BadPassword:       {http.StatusForbidden, -32002, rpcServerError},
	countersign.InsufficientFunds: {http.StatusUnprocessableEntity, -32010, rpcServerError},
	countersign.ChainError:        {http.StatusBadGateway, rpcInternal, rpcServerError},
	countersign.TooLarge:          {http.StatusRequestEntityTooLarge, rpcInternal, rpcServerError},
	countersign.UnsupportedMedia:  {http.StatusUnsupportedMediaType, rpcInternal, rpcServerError},
	countersign.SignerDisabled:    {http.StatusServiceUnavailable, rpcInternal, rpcServerError},
	countersign.FeeTooHigh:        {http.StatusConflict, rpcInternal, rpcServerError},
	countersign.ChainMismatch:     {http.StatusConflict, rpcInternal, rpcServerError},
	countersign.Unavailable:       {http.StatusServiceUnavailable, rpcInternal, rpcServerError},
	countersign.WalletLocked:      {http.StatusLocked, -32001, rpcServerError},
	countersign.PolicyDenied:      {http.StatusForbidden, -32003, rpcServerError},
	countersign.Frozen:            {http.StatusLocked, rpcInternal, rpcServerError},
	countersign.AckRequired:       {http.StatusUnprocessableEntity, rpcInternal, rpcServerError},
	countersign.PaymentRefused:    {http.StatusUnprocessableEntity, rpcInternal, rpcServerError},
	countersign.UpstreamError:     {http.StatusBadGateway, rpcInternal, rpcServerError},
	countersign.Internal:          {http.StatusInternalServerError, rpcInternal, rpcInternal},
}

// errorRowOf returns err's code and its row. A code without a row is
// answered as Internal (fail closed: a 500, never a made-up status).
func errorRowOf(err error) (countersign.Code, errorRow) {
	code := countersign.ErrorCode(err)
	if row, ok := errorTable[code]; ok {
		return code, row
	}
	return countersign.Internal, errorTable[countersign.Internal]
}

// ErrorBody is the one error envelope of the API.
type ErrorBody struct {
	Error struct {
		Code      string `json:"code"`
		Detail    string `json:"detail"`
		RequestID string `json:"request_id,omitempty"`
		// RuleID names the policy rule that refused the request
		// (POLICY_DENIED); absent otherwise, so older clients see the
		// same envelope.
		RuleID string `json:"rule_id,omitempty"`
	} `json:"error"`
}

// writeError renders err. Anything that is not a *countersign.Error is an
// internal error: its cause is logged with the request id and never sent.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code, row := errorRowOf(err)
	status := row.Status
	var body ErrorBody
	body.Error.Code = string(code)
	body.Error.Detail = countersign.ErrorDetail(err)
	body.Error.RequestID = requestID(r.Context())
	var ce *countersign.Error
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ce.RetryAfter))
	}
	if ce != nil && code == countersign.PolicyDenied {
		body.Error.RuleID = ce.RuleID
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// the client went away: nothing failed on our side
		log.InfoContext(r.Context(), "client closed the request", "err", err)
		return
	}
	if status >= 500 {
		log.ErrorContext(r.Context(), "request failed", "code", code, "err", err)
	} else if ce != nil && ce.Err != nil {
		log.InfoContext(r.Context(), "request refused", "code", code, "err", ce.Err)
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	return enc.Encode(v)
}
