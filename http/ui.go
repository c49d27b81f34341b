package http

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/web"
)

// The approval web UI: server-rendered pages (html/template escapes every
// value, so nothing an agent sends can become markup), plain forms that work
// without JavaScript, a cookie session separate from API tokens, a CSRF
// token on every state-changing form, and a strict Content-Security-Policy.

const (
	sessionCookie = "cs_session"
	csrfCookie    = "cs_csrf" // double-submit token for the forms before login
	flashCookie   = "cs_flash"
	uiCSP         = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
	inboxPage     = 50
	maxForm       = 64 << 10
)

type uiCtx struct {
	p    *core.Principal
	ws   *countersign.WebSession
	tok  string
	csrf string
}

func (s *Server) uiTemplates() *template.Template {
	s.tmplOnce.Do(func() {
		t, err := web.Templates(uiFuncs()) // ui_approver.go
		if err != nil {
			panic(err) // the templates are embedded: a parse error is a build bug
		}
		s.tmpl = t
	})
	return s.tmpl
}

// secureKey marks a UI request whose cookies must be Secure (see uiGuard).
type secureKey struct{}

// publicHTTPS reports whether PUBLIC_URL, the address users reach this
// server at, is https. Behind a TLS-terminating proxy r.TLS is nil although
// the browser speaks https, so the request alone cannot tell.
func (s *Server) publicHTTPS() bool {
	if s.Svc == nil {
		return false
	}
	u, err := url.Parse(s.Svc.OmniSettings().PublicURL)
	return err == nil && u.Scheme == "https" // url.Parse lowercases the scheme
}

// secure reports whether r's cookies are Secure: it came over TLS, or
// PUBLIC_URL is https.
func secure(r *http.Request) bool {
	on, _ := r.Context().Value(secureKey{}).(bool)
	return r.TLS != nil || on
}

// cookieName is a UI cookie's name on r. Secure cookies carry the __Host-
// prefix: the browser then keeps them only if set over https by this very
// host with Path=/ and no Domain, so neither a sibling subdomain nor a
// plain-http answer (a network attacker) can plant or overwrite the session
// or the CSRF double-submit cookie. Plain-http development keeps the bare
// names, which browsers would refuse with the prefix.
func cookieName(r *http.Request, name string) string {
	if secure(r) {
		return "__Host-" + name
	}
	return name
}

// readCookie returns the value of the UI cookie name on r.
func readCookie(r *http.Request, name string) (string, bool) {
	ck, err := r.Cookie(cookieName(r, name))
	if err != nil {
		return "", false
	}
	return ck.Value, true
}

func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(r, name), Value: value, Path: "/", MaxAge: maxAge, HttpOnly: true,
		Secure: secure(r), SameSite: http.SameSiteStrictMode})
}

// uiGuard serves a UI route of the table: the strict CSP and no-store on
// every answer, the session cookie read (an API token or agent key is never
// looked at), the route's Access applied (dispatch.go), and the CSRF token
// checked on every POST before the handler runs.
func (s *Server) uiGuard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", uiCSP)
		w.Header().Set("Cache-Control", "no-store")
		if r.TLS == nil && s.publicHTTPS() {
			r = r.WithContext(context.WithValue(r.Context(), secureKey{}, true))
		}
		c := &uiCtx{}
		if tok, ok := readCookie(r, sessionCookie); ok {
			if p, ws, err := s.Svc.WebAuthenticate(r.Context(), tok); err == nil {
				c.p, c.ws, c.tok, c.csrf = p, ws, tok, ws.CSRF
			}
		}
		if !s.admitWebSession(w, r, rt, c) {
			return
		}
		if c.p == nil { // anonymous forms: double-submit cookie
			if v, ok := readCookie(r, csrfCookie); ok && len(v) >= 32 {
				c.csrf = v
			} else if r.Method == "GET" {
				c.csrf = base64.RawURLEncoding.EncodeToString([]byte(newRequestID() + newRequestID()))
				setCookie(w, r, csrfCookie, c.csrf, 3600)
			}
		}
		if r.Method == "POST" {
			r.Body = http.MaxBytesReader(w, r.Body, maxForm)
			if err := r.ParseForm(); err != nil {
				s.uiError(w, r, countersign.Wrap(countersign.BadRequest, err, "bad form"))
				return
			}
			form := r.PostForm.Get("csrf")
			if c.csrf == "" || form == "" || subtle.ConstantTimeCompare([]byte(c.csrf), []byte(form)) != 1 {
				s.Log.WarnContext(r.Context(), "csrf token missing or wrong", "path", r.URL.Path)
				s.uiError(w, r, countersign.Errorf(countersign.Forbidden, "The form's CSRF token is missing or wrong: reload the page and try again."))
				return
			}
		}
		if !s.admitWebMFA(w, r, rt, c) {
			return
		}
		if err := rt.ui(s, w, r, c); err != nil {
			s.uiError(w, r, err)
		}
	})
}

// uiError answers a UI request that has no page to go back to: the status
// from the one error table (error.go), the same as REST's for the code, and
// the error's public detail as plain text. The guard's own refusals and a
// handler's error answer alike; forms that can show a message redirect with
// back() instead.
func (s *Server) uiError(w http.ResponseWriter, r *http.Request, err error) {
	_, row := errorRowOf(err)
	if row.Status >= 500 {
		s.Log.ErrorContext(r.Context(), "ui request failed", "err", err)
	}
	http.Error(w, countersign.ErrorDetail(err), row.Status)
}

// page is what every template gets.
type page struct {
	Title, Nav       string
	User             *countersign.User
	CSRF             string
	Flash, FlashKind string
	PendingCount     int
	Labels           map[string]string // the user's address book (ui_approver.go's addr)
	Data             any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, c *uiCtx, status int, name, title, nav string, data any) error {
	pg := page{Title: title, Nav: nav, CSRF: c.csrf, Data: data}
	if c.p != nil {
		pg.User = c.p.User
		pg.PendingCount, pg.Labels = s.Svc.PendingCount(r.Context(), c.p), s.Svc.AddressLabels(r.Context(), c.p) // the badge; labels
	}
	if v, ok := readCookie(r, flashCookie); ok {
		if b, err := base64.RawURLEncoding.DecodeString(v); err == nil {
			kind, msg, _ := strings.Cut(string(b), "\n")
			pg.Flash, pg.FlashKind = msg, kind
		}
		setCookie(w, r, flashCookie, "", -1)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	return s.uiTemplates().ExecuteTemplate(w, name, pg)
}

// back redirects to path with a one-time message: err's public detail, or ok.
func back(w http.ResponseWriter, r *http.Request, path string, err error, ok string) error {
	kind, msg := "ok", ok
	if err != nil {
		kind, msg = "error", countersign.ErrorDetail(err)
	}
	setCookie(w, r, flashCookie, base64.RawURLEncoding.EncodeToString([]byte(kind+"\n"+msg)), 60)
	http.Redirect(w, r, path, http.StatusSeeOther)
	return nil
}

func timeLeft(d time.Duration) string {
	if d <= 0 {
		return "expired"
	}
	d = d.Round(time.Second)
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60)
	}
}

func qrDataURI(text string) template.URL {
	qr, err := core.QRPNGBase64(text, 200)
	if err != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + qr)
}
