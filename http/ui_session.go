package http

import (
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/countersign/countersign/core"
)

// The web UI's session pages: home, log in, sign up, log out.

func (s *Server) uiHome(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	if c.p != nil {
		http.Redirect(w, r, "/inbox", http.StatusSeeOther)
	} else {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	}
	return nil
}

func (s *Server) uiLoginPage(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	return s.render(w, r, c, 200, "login.html", "Log in", "", nil)
}

func (s *Server) uiSignupPage(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	return s.render(w, r, c, 200, "signup.html", "Sign up", "", nil)
}

func (s *Server) startSession(w http.ResponseWriter, r *http.Request, username, password string) error {
	tok, _, err := s.Svc.WebLogin(r.Context(), username, password, clientAddr(r))
	if err != nil {
		return err
	}
	setCookie(w, r, sessionCookie, tok, int(core.WebSessionTTL.Seconds()))
	setCookie(w, r, csrfCookie, "", -1)
	return nil
}

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	if err := s.startSession(w, r, r.PostForm.Get("username"), r.PostForm.Get("password")); err != nil {
		return back(w, r, "/login", err, "")
	}
	http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
	return nil
}

// safeNext returns next when it is a path on this site, and /inbox
// otherwise: one leading '/' not followed by another, and no backslash,
// control, format or space character anywhere. Browsers read "//evil",
// "/\evil" and "/\t/evil" (they drop tabs and newlines and treat '\' as
// '/') as another host, so a crafted login link would send the user there
// after a real login: an open redirect for phishing. Percent-encoded bytes
// are left alone: a browser does not decode "%5C" or "%2F" before it finds
// the host, so "/%5Cevil" is a path on this site.
func safeNext(next string) string {
	const home = "/inbox"
	if len(next) > 2048 || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || !utf8.ValidString(next) {
		return home
	}
	for _, r := range next {
		if r == '\\' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.IsSpace(r) {
			return home
		}
	}
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" || u.User != nil {
		return home
	}
	return next
}

func (s *Server) uiSignup(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	u, p := r.PostForm.Get("username"), r.PostForm.Get("password")
	if _, err := s.Svc.Register(r.Context(), u, p); err != nil {
		return back(w, r, "/signup", err, "")
	}
	if err := s.startSession(w, r, u, p); err != nil {
		return back(w, r, "/login", err, "")
	}
	return back(w, r, "/mfa", nil, "Welcome. Set up MFA next: you need it to approve your agents' requests.")
}

func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	if err := s.Svc.WebLogout(r.Context(), c.p, c.tok); err != nil {
		return err
	}
	setCookie(w, r, sessionCookie, "", -1)
	return back(w, r, "/login", nil, "You are logged out.")
}
