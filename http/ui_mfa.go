package http

import (
	"html/template"
	"net/http"

	"github.com/countersign/countersign/core"
)

// The web UI's MFA pages: enrol, replace, confirm, recover.

type mfaData struct {
	Enrolment *core.MFAEnrolment
	QR        template.URL
	Codes     []string
	Replacing bool // MFA is on: confirming needs a current code too
}

func (s *Server) uiMFA(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	d := mfaData{}
	if e, err := s.Svc.PendingMFA(r.Context(), c.p); err == nil {
		d.Enrolment, d.QR = e, template.URL("data:image/png;base64,"+e.QRPNGBase64)
	}
	return s.render(w, r, c, 200, "mfa.html", "MFA", "mfa", d)
}

func (s *Server) uiMFABegin(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	e, err := s.Svc.BeginMFA(r.Context(), c.p, r.PostForm.Get("mfa_code"))
	if err != nil || !c.p.User.MFAEnabled {
		return back(w, r, "/mfa", err, "Scan the code, then confirm with the first code your app shows.")
	}
	// Replacing an active secret: the new one is shown in this answer only
	// (GET /mfa never shows a pending secret while MFA is on).
	return s.render(w, r, c, 200, "mfa.html", "MFA", "mfa", mfaData{Enrolment: e, QR: template.URL("data:image/png;base64," + e.QRPNGBase64), Replacing: true})
}

func (s *Server) uiMFAConfirm(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	codes, err := s.Svc.ConfirmMFA(r.Context(), c.p, r.PostForm.Get("mfa_code"), r.PostForm.Get("current_code"))
	if err != nil {
		return back(w, r, "/mfa", err, "")
	}
	c.p.User.MFAEnabled = true
	return s.render(w, r, c, 200, "mfa.html", "MFA", "mfa", mfaData{Codes: codes})
}

func (s *Server) uiMFARecover(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	err := s.Svc.RecoverMFA(r.Context(), c.p, r.PostForm.Get("recovery_code"))
	return back(w, r, "/mfa", err, "Recovery code accepted: MFA is off. Set up your new authenticator now.")
}
