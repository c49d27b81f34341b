package http

import (
	"bytes"
	"net/http"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Approvers, invitations, withdrawing an approval, the kill switch and the
// users' own webhooks (core/approvers.go, core/freeze.go).

type inviteApproverReq struct {
	Username string `json:"username"`
	MFACode  string `json:"mfa_code"`
}

type invitationJSON struct {
	InvitationID  string    `json:"invitation_id"`
	WalletID      string    `json:"wallet_id"`
	WalletName    string    `json:"wallet_name,omitempty"`
	WalletAddress string    `json:"wallet_address,omitempty"`
	OwnerID       string    `json:"owner_id,omitempty"`
	OwnerUsername string    `json:"owner_username,omitempty"` // who invited
	Username      string    `json:"username,omitempty"`       // the invitee
	Status        string    `json:"status"`                   // "open" or "accepted"
	CreatedAt     time.Time `json:"created_at"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// describedInvitation is an invitation with its wallet, owner and invitee
// named (core.InvitationInfo).
func describedInvitation(i core.InvitationInfo) invitationJSON {
	v := invitationView(i.Invitation, i.InviteeUsername)
	v.WalletName, v.WalletAddress, v.OwnerUsername = i.WalletName, i.WalletAddress, i.OwnerUsername
	return v
}

func invitationView(inv *countersign.Invitation, username string) invitationJSON {
	st := "open"
	if !inv.AcceptedAt.IsZero() {
		st = "accepted"
	}
	return invitationJSON{InvitationID: inv.ID, WalletID: inv.WalletID, OwnerID: inv.OwnerID, Username: username, Status: st, CreatedAt: inv.CreatedAt, ExpiresAt: inv.ExpiresAt}
}

func (s *Server) inviteApprover(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req inviteApproverReq
	if err := decode(r, &req); err != nil {
		return err
	}
	inv, err := s.Svc.InviteApprover(r.Context(), p, r.PathValue("id"), req.Username, req.MFACode)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, invitationView(inv, req.Username))
}

type approversResp struct {
	WalletID  string              `json:"wallet_id"`
	Approvers []core.ApproverView `json:"approvers"`
	// Invitations are the open invitations the owner sent (only in the
	// owner's answer; an approver's has none).
	Invitations []invitationJSON `json:"invitations,omitempty"`
}

func (s *Server) walletApprovers(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.WalletApprovers(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	sent, err := s.Svc.SentInvitations(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := approversResp{WalletID: r.PathValue("id"), Approvers: list}
	if sent != nil {
		out.Invitations = []invitationJSON{}
		for _, i := range sent {
			out.Invitations = append(out.Invitations, describedInvitation(i))
		}
	}
	return writeJSON(w, 200, out)
}

type revokeInvitationResp struct {
	InvitationID string `json:"invitation_id"`
	Revoked      bool   `json:"revoked"`
}

func (s *Server) revokeInvitation(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	if err := s.Svc.RevokeInvitation(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	return writeJSON(w, 200, revokeInvitationResp{InvitationID: r.PathValue("id"), Revoked: true})
}

type deleteWebhookResp struct {
	WebhookID string `json:"webhook_id"`
	Deleted   bool   `json:"deleted"`
}

func (s *Server) deleteUserWebhook(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	if err := s.Svc.DeleteUserWebhook(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	return writeJSON(w, 200, deleteWebhookResp{WebhookID: r.PathValue("id"), Deleted: true})
}

type removeApproverResp struct {
	WalletID string `json:"wallet_id"`
	UserID   string `json:"user_id"`
	Removed  bool   `json:"removed"`
}

func (s *Server) removeApprover(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req mfaReq
	if err := decode(r, &req); err != nil {
		return err
	}
	if err := s.Svc.RemoveApprover(r.Context(), p, r.PathValue("id"), r.PathValue("user_id"), req.MFACode); err != nil {
		return err
	}
	return writeJSON(w, 200, removeApproverResp{WalletID: r.PathValue("id"), UserID: r.PathValue("user_id"), Removed: true})
}

type invitationsResp struct {
	Invitations []invitationJSON `json:"invitations"`
}

func (s *Server) invitations(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.DescribedInvitations(r.Context(), p)
	if err != nil {
		return err
	}
	out := invitationsResp{Invitations: []invitationJSON{}}
	for _, i := range list {
		out.Invitations = append(out.Invitations, describedInvitation(i))
	}
	return writeJSON(w, 200, out)
}

type acceptResp struct {
	WalletID string    `json:"wallet_id"`
	UserID   string    `json:"user_id"`
	Role     string    `json:"role"`
	AddedAt  time.Time `json:"added_at"`
}

func (s *Server) acceptInvitation(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req mfaReq
	if err := decode(r, &req); err != nil {
		return err
	}
	a, err := s.Svc.AcceptInvitation(r.Context(), p, r.PathValue("id"), req.MFACode)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, acceptResp{WalletID: a.WalletID, UserID: a.UserID, Role: "approver", AddedAt: a.AddedAt})
}

type withdrawReq struct {
	TransactionID string `json:"transaction_id"`
	MFACode       string `json:"mfa_code"`
}

func (s *Server) withdrawApproval(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req withdrawReq
	if err := decode(r, &req); err != nil {
		return err
	}
	t, err := s.Svc.WithdrawApproval(r.Context(), p, req.TransactionID, req.MFACode)
	if err != nil {
		return err
	}
	v, err := s.Svc.ViewOf(r.Context(), t)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, v)
}

type freezeReq struct {
	WalletID string `json:"wallet_id,omitempty"`
}

type unfreezeReq struct {
	WalletID string `json:"wallet_id,omitempty"`
	MFACode  string `json:"mfa_code"`
}

type freezeResp struct {
	FreezeID        string    `json:"freeze_id"`
	WalletID        string    `json:"wallet_id"` // "" : every wallet of the owner
	Frozen          bool      `json:"frozen"`
	By              string    `json:"by,omitempty"`
	At              time.Time `json:"at"`
	Approvals       int       `json:"approvals,omitempty"`        // unfreeze: distinct approvers who agreed
	ApprovalsNeeded int       `json:"approvals_needed,omitempty"` // unfreeze: how many must
	// StillFrozen: lifting an owner-wide freeze leaves the wallets with a
	// quorum frozen on their own, for their quorum to lift
	StillFrozen []string `json:"still_frozen,omitempty"`
}

func (s *Server) freeze(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	// No body freezes everything of the caller: in a hurry nobody should
	// have to get a JSON body right.
	body, err := readBody(r)
	if err != nil {
		return err
	}
	var req freezeReq
	if len(bytes.TrimSpace(body)) > 0 {
		if err := DecodeJSON(body, &req); err != nil {
			return err
		}
	}
	f, err := s.Svc.Freeze(r.Context(), p, req.WalletID)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, freezeResp{FreezeID: f.ID, WalletID: f.WalletID, Frozen: true, By: f.By, At: f.At})
}

func (s *Server) unfreeze(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req unfreezeReq
	if err := decode(r, &req); err != nil {
		return err
	}
	res, err := s.Svc.Unfreeze(r.Context(), p, req.WalletID, req.MFACode)
	if err != nil {
		return err
	}
	f := res.Freeze
	return writeJSON(w, 200, freezeResp{FreezeID: f.ID, WalletID: f.WalletID, Frozen: !res.Lifted, By: f.By, At: f.At, Approvals: res.Approvals, ApprovalsNeeded: res.Needed, StillFrozen: res.StillFrozen})
}

type freezesResp struct {
	Freezes []freezeResp `json:"freezes"`
}

func (s *Server) freezes(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.Freezes(r.Context(), p)
	if err != nil {
		return err
	}
	out := freezesResp{Freezes: []freezeResp{}}
	for _, f := range list {
		out.Freezes = append(out.Freezes, freezeResp{FreezeID: f.ID, WalletID: f.WalletID, Frozen: true, By: f.By, At: f.At})
	}
	return writeJSON(w, 200, out)
}

type userWebhookJSON struct {
	WebhookID string    `json:"webhook_id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedAt time.Time `json:"created_at"`
}

type userWebhooksResp struct {
	Webhooks []userWebhookJSON `json:"webhooks"`
}

func (s *Server) createUserWebhook(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	var req webhookReq
	if err := decode(r, &req); err != nil {
		return err
	}
	wh, secret, err := s.Svc.CreateUserWebhook(r.Context(), p, req.URL, req.Events)
	if err != nil {
		return err
	}
	return writeJSON(w, 201, webhookResp{WebhookID: wh.ID, URL: wh.URL, Events: wh.Events, Secret: secret})
}

func (s *Server) userWebhooks(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.UserWebhooks(r.Context(), p)
	if err != nil {
		return err
	}
	out := userWebhooksResp{Webhooks: []userWebhookJSON{}}
	for _, wh := range list {
		out.Webhooks = append(out.Webhooks, userWebhookJSON{WebhookID: wh.ID, URL: wh.URL, Events: wh.Events, CreatedAt: wh.CreatedAt})
	}
	return writeJSON(w, 200, out)
}

func (s *Server) userDeliveries(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.UserDeliveries(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	out := deliveriesResp{Deliveries: []deliveryJSON{}}
	for _, d := range list {
		out.Deliveries = append(out.Deliveries, deliveryJSON{DeliveryID: d.ID, EventID: d.EventID, EventType: d.EventType, Status: d.Status,
			Attempts: d.Attempts, LastStatus: d.LastStatus, LastError: d.LastError, NextAttemptAt: d.NextAttemptAt, CreatedAt: d.CreatedAt, DeliveredAt: d.DeliveredAt})
	}
	return writeJSON(w, 200, out)
}

type policyChangesResp struct {
	Changes []*core.PendingPolicyChange `json:"changes"`
}

func (s *Server) policyChanges(w http.ResponseWriter, r *http.Request, p *core.Principal) error {
	list, err := s.Svc.PolicyChanges(r.Context(), p)
	if err != nil {
		return err
	}
	return writeJSON(w, 200, policyChangesResp{Changes: list})
}

func decidePolicyChange(d core.Decision) handlerFunc {
	return func(s *Server, w http.ResponseWriter, r *http.Request, p *core.Principal) error {
		var req mfaReq
		if err := decode(r, &req); err != nil {
			return err
		}
		c, err := s.Svc.DecidePolicyChange(r.Context(), p, r.PathValue("id"), req.MFACode, d)
		if err != nil {
			return err
		}
		return writeJSON(w, 200, c)
	}
}
