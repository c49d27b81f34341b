package http

import (
	"fmt"
	"net/http"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// The web UI's approvers page (core/approvers.go, core/freeze.go): for
// each of the user's wallets its approvers, an invite form (a registered
// user's name and the owner's code) and a remove form per approver; the
// invitations the user was sent, each accepted with the user's own code;
// the kill switch's freezes with an unfreeze form each. The freeze button
// itself is on every page (layout.html): POST /freeze, no code, instant.

type approverWallet struct {
	ID, Name, Address string
	Approvers         []core.ApproverView
	Frozen            bool
}

type freezeRow struct {
	WalletID, What, By string
	At                 time.Time
}

type approversData struct {
	Wallets     []approverWallet
	Invitations []*countersign.Invitation
	Freezes     []freezeRow
}

func (s *Server) uiApprovers(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	ctx := r.Context()
	wallets, err := s.Svc.Wallets(ctx, c.p)
	if err != nil {
		return err
	}
	freezes, err := s.Svc.Freezes(ctx, c.p)
	if err != nil {
		return err
	}
	frozen := map[string]bool{}
	names := map[string]string{}
	for _, wl := range wallets {
		names[wl.ID] = wl.Name + " (" + wl.Address + ")"
	}
	d := approversData{}
	for _, f := range freezes {
		what := "every wallet of the owner"
		if f.WalletID != "" {
			what = "wallet " + f.WalletID
			if n, ok := names[f.WalletID]; ok {
				what = "wallet " + n
			}
		}
		frozen[f.WalletID] = true
		d.Freezes = append(d.Freezes, freezeRow{WalletID: f.WalletID, What: what, By: f.By, At: f.At})
	}
	for _, wl := range wallets {
		list, err := s.Svc.WalletApprovers(ctx, c.p, wl.ID)
		if err != nil {
			return err
		}
		d.Wallets = append(d.Wallets, approverWallet{ID: wl.ID, Name: wl.Name, Address: wl.Address, Approvers: list, Frozen: frozen[wl.ID] || frozen[""]})
	}
	if d.Invitations, err = s.Svc.Invitations(ctx, c.p); err != nil {
		return err
	}
	return s.render(w, r, c, 200, "approvers.html", "Approvers", "approvers", d)
}

func (s *Server) uiInviteApprover(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	name := r.PostForm.Get("username")
	_, err := s.Svc.InviteApprover(r.Context(), c.p, r.PathValue("id"), name, r.PostForm.Get("mfa_code"))
	return back(w, r, "/approvers", err, "Invited "+name+": they become an approver when they accept with their own code.")
}

// uiRemoveApprover takes the approver's user id from the form, not the
// path: the route's Back page needs only the wallet's {id}.
func (s *Server) uiRemoveApprover(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	err := s.Svc.RemoveApprover(r.Context(), c.p, r.PathValue("id"), r.PostForm.Get("user_id"), r.PostForm.Get("mfa_code"))
	return back(w, r, "/approvers", err, "Approver removed: their approvals of pending requests no longer count.")
}

func (s *Server) uiAcceptInvitation(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	_, err := s.Svc.AcceptInvitation(r.Context(), c.p, r.PathValue("id"), r.PostForm.Get("mfa_code"))
	return back(w, r, "/approvers", err, "Invitation accepted: the wallet's requests now appear in your inbox.")
}

// uiFreeze is the kill switch of every page: no code, so it is instant.
// Without wallet_id it freezes every wallet of the user.
func (s *Server) uiFreeze(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	_, err := s.Svc.Freeze(r.Context(), c.p, r.PostForm.Get("wallet_id"))
	return back(w, r, "/approvers", err, "Frozen: agents' new requests are refused and nothing is executed until you lift it here with a code.")
}

func (s *Server) uiUnfreeze(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	res, err := s.Svc.Unfreeze(r.Context(), c.p, r.PostForm.Get("wallet_id"), r.PostForm.Get("mfa_code"))
	if err != nil {
		return back(w, r, "/approvers", err, "")
	}
	if !res.Lifted {
		return back(w, r, "/approvers", nil, fmt.Sprintf("Your consent is recorded: %d of %d approvers agreed to lift the freeze.", res.Approvals, res.Needed))
	}
	return back(w, r, "/approvers", nil, "Freeze lifted: agents can work again.")
}
