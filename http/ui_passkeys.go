package http

import (
	"encoding/base64"
	"net/http"

	"github.com/countersign/countersign/core"
)

// The web UI's passkeys (core/passkeys.go): the page that registers and
// removes them, and the ceremony endpoints the page's script calls. The
// ceremony endpoints answer JSON to the script but are UI routes: the
// session cookie and the form's CSRF token admit them, as every form.

func passkeyRoutes() []Route {
	return []Route{
		uiRoute("GET", "/passkeys", Web, "The user's passkeys: register, remove", (*Server).uiPasskeys),
		uiRoute("POST", "/passkeys/begin", Web, "Start registering a passkey (a TOTP code); answers the WebAuthn options as JSON", (*Server).uiPasskeyBegin),
		uiRoute("POST", "/passkeys/finish", Web, "Finish registering a passkey with the browser's answer (JSON)", (*Server).uiPasskeyFinish),
		uiRoute("POST", "/passkeys/delete", Web, "Remove a passkey", (*Server).uiPasskeyDelete),
		uiRoute("POST", "/tx/{id}/passkey", Web, "Start approving a request with a passkey: WebAuthn options whose challenge commits to its digest (JSON)", (*Server).uiPasskeyApproveBegin),
	}
}

func (s *Server) uiPasskeys(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	keys, err := s.Svc.Passkeys(r.Context(), c.p)
	if err != nil {
		return err
	}
	return s.render(w, r, c, 200, "passkeys.html", "Passkeys", "passkeys", map[string]any{"Keys": keys, "Origin": s.Svc.PasskeyOrigin(r.Host)})
}

// writeRawJSON answers the script with JSON the service built.
func writeRawJSON(w http.ResponseWriter, status int, b []byte) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err := w.Write(b)
	return err
}

func (s *Server) uiPasskeyBegin(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	opts, err := s.Svc.BeginPasskeyRegistration(r.Context(), c.p, r.PostForm.Get("mfa_code"), r.Host)
	if err != nil {
		return err
	}
	return writeRawJSON(w, 200, opts)
}

func (s *Server) uiPasskeyFinish(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	k, err := s.Svc.FinishPasskeyRegistration(r.Context(), c.p, r.PostForm.Get("name"), []byte(r.PostForm.Get("credential")), r.Host)
	if err != nil {
		return err
	}
	setFlash(w, r, "Passkey “"+k.Name+"” added: you can approve with it now.")
	return writeJSON(w, 201, map[string]string{"id": k.ID, "name": k.Name})
}

func (s *Server) uiPasskeyDelete(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	err := s.Svc.DeletePasskey(r.Context(), c.p, r.PostForm.Get("id"))
	return back(w, r, "/passkeys", err, "Passkey removed.")
}

func (s *Server) uiPasskeyApproveBegin(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	opts, err := s.Svc.BeginPasskeyApproval(r.Context(), c.p, r.PathValue("id"), r.Host)
	if err != nil {
		return err
	}
	return writeRawJSON(w, 200, opts)
}

// hasPasskey reports whether p can approve with a passkey.
func (s *Server) hasPasskey(r *http.Request, p *core.Principal) bool {
	keys, err := s.Svc.Passkeys(r.Context(), p)
	return err == nil && len(keys) > 0
}

// setFlash sets the one-time message the next page shows (as back does,
// for answers that are not redirects).
func setFlash(w http.ResponseWriter, r *http.Request, msg string) {
	setCookie(w, r, flashCookie, base64.RawURLEncoding.EncodeToString([]byte("ok\n"+msg)), 60)
}
