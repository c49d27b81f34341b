package core

import (
	"context"
	"strings"

	"github.com/countersign/countersign"
)

// Severity ranks a warning for the human who decides: info is context
// ("new recipient"), caution asks for a second look (an undecodable call,
// a failing simulation), danger means the request can lose everything it
// touches (the zero address, an unlimited approval) and its approval must
// be acknowledged explicitly (Decide).
type Severity string

// The severities, least to most serious.
const (
	SeverityInfo    Severity = "info"
	SeverityCaution Severity = "caution"
	SeverityDanger  Severity = "danger"
)

func (s Severity) rank() int {
	switch s {
	case SeverityDanger:
		return 3
	case SeverityCaution:
		return 2
	case SeverityInfo:
		return 1
	}
	return 0
}

// Warning is one thing a human should know before deciding: a stable code
// for clients, a severity, and the text shown.
type Warning struct {
	Code     string   `json:"code"`
	Severity Severity `json:"severity"`
	Text     string   `json:"text"`
}

// The warning codes. They are published (API, MCP): a code never changes
// meaning once here.
const (
	WarnZeroAddress       = "zero_address"
	WarnUnlimitedApproval = "unlimited_approval"
	WarnNewRecipient      = "new_recipient"
	WarnUnusualAmount     = "unusual_amount"
	WarnUnknownSelector   = "unknown_selector"
	WarnShortCalldata     = "short_calldata"
	WarnCalldataMismatch  = "calldata_mismatch"
	WarnSimulationFails   = "simulation_fails"
	WarnNoFeeBound        = "no_fee_bound"
	WarnBinaryMessage     = "binary_message"
	WarnPermit            = "permit_signature"
	WarnUnknownToken      = "unknown_token"
	WarnLookalikeToken    = "lookalike_token"
	WarnSIWEMismatch      = "siwe_mismatch"
	WarnBalance           = "insufficient_balance"
	WarnPolicy            = "policy"
)

func (r *Review) warn(code string, sev Severity, text string) {
	r.Warnings = append(r.Warnings, Warning{Code: code, Severity: sev, Text: text})
}

// Highest is the most serious severity among ws, "" when there is none.
func Highest(ws []Warning) Severity {
	var top Severity
	for _, w := range ws {
		if w.Severity.rank() > top.rank() {
			top = w.Severity
		}
	}
	return top
}

// Dangers are the danger warnings of ws.
func Dangers(ws []Warning) []Warning {
	var out []Warning
	for _, w := range ws {
		if w.Severity == SeverityDanger {
			out = append(out, w)
		}
	}
	return out
}

// PolicyWarnings gives the policy's warnings (stored as text with the
// transaction) the API's shape: info, since each says why a request went
// to a human rather than through a rule, which is the safe way.
func PolicyWarnings(ws []string) []Warning {
	out := []Warning{}
	for _, w := range ws {
		out = append(out, Warning{Code: WarnPolicy, Severity: SeverityInfo, Text: w})
	}
	return out
}

// Acknowledgement is the sentence an approver confirms before approving a
// request with danger warnings, naming what is at stake.
func (r *Review) Acknowledgement() string {
	if len(Dangers(r.Warnings)) == 0 {
		return ""
	}
	for _, w := range r.Warnings {
		if w.Code == WarnUnlimitedApproval {
			sym := r.Facts.TokenSymbol
			if sym == "" {
				sym = "tokens of this kind"
			}
			return "I understand the spender can take all my " + sym + "."
		}
	}
	return "I understand that what this request sends is lost."
}

// needsAcknowledgement refuses the approval of t when its review carries
// a danger warning and the approver did not acknowledge it. Every surface
// goes through here (the UI's checkbox, the API's acknowledge: true), so a
// script cannot skip what the page makes a human confirm.
func (s *Service) needsAcknowledgement(ctx context.Context, t *countersign.Transaction) error {
	d := Dangers(s.decodeReview(ctx, t).Warnings)
	if len(d) == 0 {
		return nil
	}
	codes := make([]string, 0, len(d))
	for _, w := range d {
		codes = append(codes, w.Code)
	}
	return countersign.Errorf(countersign.AckRequired, "transaction %s carries a danger warning (%s): approve it again acknowledging it (the page's checkbox; acknowledge: true in the API)", t.ID, strings.Join(codes, ", "))
}
