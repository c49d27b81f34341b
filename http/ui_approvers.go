package http

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
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
	Owner             bool   // the user owns it (else approves it)
	OwnerName         string // the owner, for a wallet the user approves
	Approvers         []core.ApproverView
	Invitations       []core.InvitationInfo // open invitations the owner sent
	Frozen            bool
}

type freezeRow struct {
	WalletID, What, By string
	At                 time.Time
}

type approversData struct {
	Wallets     []approverWallet
	Invitations []core.InvitationInfo
	Freezes     []freezeRow
}

func (s *Server) uiApprovers(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	ctx := r.Context()
	// The wallets the user owns, then those they approve: an approver can
	// freeze a wallet they approve from here as well.
	wallets, err := s.Svc.ApprovedWallets(ctx, c.p)
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
		frozen[f.OwnerID+"/"+f.WalletID] = true
		d.Freezes = append(d.Freezes, freezeRow{WalletID: f.WalletID, What: what, By: f.By, At: f.At})
	}
	for _, wl := range wallets {
		list, err := s.Svc.WalletApprovers(ctx, c.p, wl.ID)
		if err != nil {
			return err
		}
		aw := approverWallet{ID: wl.ID, Name: wl.Name, Address: wl.Address, Owner: wl.Owner, Approvers: list,
			Frozen: frozen[wl.OwnerID+"/"+wl.ID] || frozen[wl.OwnerID+"/"]}
		if len(list) > 0 {
			aw.OwnerName = list[0].Username // the owner comes first
		}
		if wl.Owner {
			if aw.Invitations, err = s.Svc.SentInvitations(ctx, c.p, wl.ID); err != nil {
				return err
			}
		}
		d.Wallets = append(d.Wallets, aw)
	}
	if d.Invitations, err = s.Svc.DescribedInvitations(ctx, c.p); err != nil {
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

// uiRevokeInvitation revokes an open invitation (its owner) or declines
// it (the invitee).
func (s *Server) uiRevokeInvitation(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	err := s.Svc.RevokeInvitation(r.Context(), c.p, r.PathValue("id"))
	return back(w, r, "/approvers", err, "Invitation withdrawn.")
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

// canWithdraw reports whether p has an approval of the reviewed request
// that counts and the request can still be taken back (pending or
// authorized, not being executed). The service decides again on submit.
func canWithdraw(rv *core.Review, p *core.Principal) bool {
	t := rv.Tx
	if p.IsAgent() || (t.Status != countersign.StatusPending && t.Status != countersign.StatusAuthorized) || t.TxHash != "" || len(t.Signature) > 0 {
		return false
	}
	return slices.ContainsFunc(rv.View.Approvals, func(a core.TxApproval) bool { return a.User == p.User.Username })
}

// uiWithdraw takes back the user's approval of a request with their code
// (POST /api/withdraw_approval's page form).
func (s *Server) uiWithdraw(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	id := r.PathValue("id")
	t, err := s.Svc.WithdrawApproval(r.Context(), c.p, id, r.PostForm.Get("mfa_code"))
	msg := "Approval withdrawn."
	if err == nil && t.Status == countersign.StatusPending {
		msg = "Approval withdrawn: the request waits for approvals again and cannot be executed."
	}
	return back(w, r, "/tx/"+url.PathEscape(id), err, msg)
}
