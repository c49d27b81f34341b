package core

import (
	"context"
	"strings"

	"github.com/countersign/countersign"
)

// DecideRequest is one human decision on one or more pending requests
// (Decide).
type DecideRequest struct {
	IDs      []string
	Code     string // the approver's TOTP code
	Decision Decision
	Reason   string
	// Acknowledge confirms the danger warnings of the requests (the UI's
	// checkbox, the API's acknowledge: true): without it an approval of a
	// request with one is refused (ACKNOWLEDGEMENT_REQUIRED).
	Acknowledge bool
	// SessionReject is a rejection confirmed in the web session: no code.
	// Backing out must not cost as much as approving; a reject moves no
	// money, and anyone who holds the session could freeze the wallet
	// without a code anyway. Approvals always need the factor.
	SessionReject bool
	// Passkey is a WebAuthn assertion (the browser's JSON) as the factor
	// instead of Code (passkeys.go): it approves only the request its
	// ceremony was started for.
	Passkey []byte
	Host    string // the request's Host, for a passkey's origin (passkeys.go)
}

// verifyDecisionFactor checks the factor a decision needs: a TOTP code,
// except for a session's confirmed reject.
func (s *Service) verifyDecisionFactor(ctx context.Context, p *Principal, req DecideRequest) error {
	if req.SessionReject {
		if req.Decision != Reject {
			return countersign.Errorf(countersign.BadRequest, "only a rejection can be made without a code")
		}
		return nil
	}
	if len(req.Passkey) > 0 {
		return s.verifyPasskeyApproval(ctx, p, req.IDs, req.Passkey, req.Host)
	}
	return s.VerifyMFA(ctx, p.User.ID, req.Code)
}

// NextPending is the id of the oldest request other than id still waiting
// for p, "" when there is none: after a decision the page offers it.
func (s *Service) NextPending(ctx context.Context, p *Principal, id string) string {
	list, err := s.Transactions(ctx, p, countersign.TxFilter{Status: countersign.StatusPending, Limit: 50})
	if err != nil {
		return ""
	}
	next := ""
	for _, t := range list { // newest first: the last one seen is the oldest
		if t.ID != id && t.Status == countersign.StatusPending {
			next = t.ID
		}
	}
	return next
}

// PendingCount is how many requests wait for p (the UI's badge), capped at
// the inbox page size.
func (s *Service) PendingCount(ctx context.Context, p *Principal) int {
	list, err := s.Transactions(ctx, p, countersign.TxFilter{Status: countersign.StatusPending, Limit: 50})
	if err != nil {
		return 0
	}
	n := 0
	for _, t := range list {
		if t.Status == countersign.StatusPending {
			n++
		}
	}
	return n
}

// ActorNames names the audit log's actors for p: "user:<id>" by username,
// "agent:<id>" by p's agent's name; anything else (operator, daemon,
// policy) as it is. The page keeps the id on hover.
func (s *Service) ActorNames(ctx context.Context, p *Principal, actors []string) map[string]string {
	agents := map[string]string{}
	if list, err := s.Agents(ctx, p); err == nil {
		for _, a := range list {
			agents[a.ID] = a.Name
		}
	}
	out := map[string]string{}
	for _, a := range actors {
		if _, ok := out[a]; ok {
			continue
		}
		name := a
		if id, ok := strings.CutPrefix(a, "user:"); ok {
			if u := s.username(ctx, id); u != "" {
				name = u
			}
		} else if id, ok := strings.CutPrefix(a, "agent:"); ok {
			if n, ok := agents[id]; ok {
				name = "agent " + n
			}
		}
		out[a] = name
	}
	return out
}
