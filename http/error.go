package http

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// statusOf maps every error code to its HTTP status, in one place.
var statusOf = map[countersign.Code]int{
	countersign.BadRequest:        http.StatusBadRequest,
	countersign.Unauthorized:      http.StatusUnauthorized,
	countersign.MFARequired:       http.StatusForbidden,
	countersign.MFAInvalid:        http.StatusForbidden,
	countersign.MFALocked:         http.StatusTooManyRequests,
	countersign.Forbidden:         http.StatusForbidden,
	countersign.NotFound:          http.StatusNotFound,
	countersign.Conflict:          http.StatusConflict,
	countersign.NotAuthorized:     http.StatusConflict,
	countersign.RateLimit:         http.StatusTooManyRequests,
	countersign.BadPassword:       http.StatusForbidden,
	countersign.InsufficientFunds: http.StatusUnprocessableEntity,
	countersign.ChainError:        http.StatusBadGateway,
	countersign.TooLarge:          http.StatusRequestEntityTooLarge,
	countersign.UnsupportedMedia:  http.StatusUnsupportedMediaType,
	countersign.SignerDisabled:    http.StatusServiceUnavailable,
	countersign.FeeTooHigh:        http.StatusConflict,
	countersign.ChainMismatch:     http.StatusConflict,
	countersign.Unavailable:       http.StatusServiceUnavailable,
	core.WalletLocked:             http.StatusLocked,
	countersign.Internal:          http.StatusInternalServerError,
}

// ErrorBody is the one error envelope of the API.
type ErrorBody struct {
	Error struct {
		Code      string `json:"code"`
		Detail    string `json:"detail"`
		RequestID string `json:"request_id,omitempty"`
	} `json:"error"`
}

// writeError renders err. Anything that is not a *countersign.Error is an
// internal error: its cause is logged with the request id and never sent.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := countersign.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		code, status = countersign.Internal, http.StatusInternalServerError
	}
	var body ErrorBody
	body.Error.Code = string(code)
	body.Error.Detail = countersign.ErrorDetail(err)
	body.Error.RequestID = requestID(r.Context())
	var ce *countersign.Error
	if errors.As(err, &ce) && ce.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(ce.RetryAfter))
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
