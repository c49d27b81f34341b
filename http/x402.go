package http

import (
	"net/http"
	"time"

	"github.com/countersign/countersign/core"
)

// x402Routes are the x402 payment routes.
func x402Routes() []Route {
	return []Route{
		{Method: "POST", Path: "/api/x402/fetch", Access: Agent, Summary: "Fetch a URL and pay for it with x402 within the policy (202 while a human decides)",
			Status: 200, Req: core.X402FetchRequest{}, Resp: core.X402FetchResult{}, h: (*Server).x402Fetch},
	}
}

// x402Pending is the 202 answer of a payment that waits for a decision:
// the agent polls the transaction and calls again with its id.
type x402Pending struct {
	Status          string                `json:"status"` // pending
	TransactionID   string                `json:"transaction_id"`
	Decision        string                `json:"decision"`
	RuleID          string                `json:"rule_id"`
	ApprovalsNeeded int                   `json:"approvals_needed"`
	AuthorizeAt     *time.Time            `json:"authorize_at"`
	ExpiresAt       time.Time             `json:"expires_at"`
	Payment         *core.X402PaymentView `json:"payment"`
	Detail          string                `json:"detail"`
}

func (s *Server) x402Fetch(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req core.X402FetchRequest
	if err := decode(r, &req); err != nil {
		return err
	}
	res, pending, err := s.Svc.X402Fetch(r.Context(), p, &req, s.ApprovalWait)
	if err != nil {
		return err
	}
	if pending != nil {
		v := core.View(pending)
		return writeJSON(w, http.StatusAccepted, x402Pending{Status: v.Status, TransactionID: v.TransactionID, Decision: v.Decision, RuleID: v.RuleID,
			ApprovalsNeeded: v.ApprovalsNeeded, AuthorizeAt: v.AuthorizeAt, ExpiresAt: v.ExpiresAt, Payment: s.Svc.X402PaymentOf(r.Context(), pending),
			Detail: "the payment waits for approval: poll GET /api/transaction_status?transaction_id=" + v.TransactionID +
				" and, once it is authorized, POST /api/x402/fetch again with the same request and this transaction_id"})
	}
	return writeJSON(w, http.StatusOK, res)
}
