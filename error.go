// Package countersign holds the domain of the countersigned agent wallet:
// users, agents, wallets, transactions and their state machine, the error
// contract, and the ports (Store, Chain, Clock) that adapters implement.
package countersign

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. Clients switch on it; it
// never changes meaning once published.
type Code string

// The error codes of the public API. The HTTP layer maps each to a status in
// one table (http/error.go).
const (
	BadRequest        Code = "BAD_REQUEST"
	Unauthorized      Code = "UNAUTHORIZED"
	MFARequired       Code = "MFA_REQUIRED"
	MFAInvalid        Code = "MFA_INVALID"
	MFALocked         Code = "MFA_LOCKED"
	Forbidden         Code = "FORBIDDEN"
	NotFound          Code = "NOT_FOUND"
	Conflict          Code = "CONFLICT"
	NotAuthorized     Code = "NOT_AUTHORIZED"
	RateLimit         Code = "RATE_LIMIT"
	BadPassword       Code = "BAD_PASSWORD"
	InsufficientFunds Code = "INSUFFICIENT_FUNDS"
	ChainError        Code = "CHAIN_ERROR"
	TooLarge          Code = "TOO_LARGE"
	UnsupportedMedia  Code = "UNSUPPORTED_MEDIA_TYPE"
	SignerDisabled    Code = "SIGNER_DISABLED" // the derived-key signer is not configured
	FeeTooHigh        Code = "FEE_TOO_HIGH"    // the network fee now exceeds what the approval (or MAX_FEE_PER_GAS) allows
	ChainMismatch     Code = "CHAIN_MISMATCH"  // the approval is for another chain than the one the server is connected to
	Unavailable       Code = "UNAVAILABLE"     // the server is too busy for this now: retry after Retry-After
	WalletLocked      Code = "WALLET_LOCKED"   // the AITBC wallet-daemon design's code for a daemon wallet that must be unlocked first
	PolicyDenied      Code = "POLICY_DENIED"   // a policy rule refuses the request (Error.RuleID names it)
	Frozen            Code = "FROZEN"          // the kill switch is on for the wallet: no new requests, nothing executed (423)

	// Approving a request with a danger warning needs an explicit
	// acknowledgement (the UI's checkbox, acknowledge: true in the API): 422.
	AckRequired Code = "ACKNOWLEDGEMENT_REQUIRED"

	// x402 (x402.go): countersign will not pay what a resource asks (422),
	// or the resource server's answer is unusable (502).
	PaymentRefused Code = "PAYMENT_REFUSED"
	UpstreamError  Code = "UPSTREAM_ERROR"

	Internal Code = "INTERNAL"
)

// ErrUnavailable marks a failure to reach a dependency (a chain node, say)
// as opposed to a refusal by it: the operation may have happened and may be
// retried with the same bytes.
var ErrUnavailable = errors.New("unavailable")

// ErrRefused marks a definite refusal by a dependency: the node answered
// one of its known rejection reasons, so the operation did not happen.
// Only an error that wraps ErrRefused may end a transaction; anything else
// from a broadcast is ambiguous and settled later from the chain.
var ErrRefused = errors.New("refused")

// Error is the only error type that crosses a package boundary with a code.
// Detail is safe to show to a client; Err is the internal cause, which is
// logged and never sent.
type Error struct {
	Code       Code
	Detail     string
	Err        error
	RetryAfter int    // seconds; set for RATE_LIMIT and MFA_LOCKED
	RuleID     string // the deciding policy rule; set for POLICY_DENIED
}

func (e *Error) Error() string {
	if e.Err != nil {
		return string(e.Code) + ": " + e.Detail + ": " + e.Err.Error()
	}
	return string(e.Code) + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with a client-safe formatted detail.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error whose detail is public and whose cause is kept for
// the log only.
func Wrap(code Code, err error, detail string) *Error {
	return &Error{Code: code, Detail: detail, Err: err}
}

// ErrorCode returns the code of err, or Internal when err carries none.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorDetail returns the client-safe detail of err. Errors without a code
// get a generic message so internal causes never leak.
func ErrorDetail(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return "internal error"
}
