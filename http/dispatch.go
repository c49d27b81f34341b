package http

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
)

// Access says who may call a route. It is the only place a "who may call"
// rule is written: the dispatcher enforces it before any handler runs, and
// the services behind the handlers check only what a route cannot know
// (that the object belongs to the caller). Every entry point that reaches
// the same service method declares the same rule on its own route (REST,
// the web UI, /eth, /mcp).
type Access int

const (
	Anonymous   Access = iota // no credentials (UI pages: a session is read if present, never required)
	User                      // a user session token
	UserMFA                   // a user session token, and the user has MFA set up
	Agent                     // an agent API key
	UserOrAgent               // either
	Service                   // a service credential (SIGNER_TOKEN), for the derived-key signer
	Omni                      // an omni_account session (session_jwt from /v1/auth/…)
	Daemon                    // the local wallet daemon: X-Auth-Token (the wallet token), never from a web page or an agent
	// UserMFAOrAgent is an agent API key, or a user session token of a
	// user who has MFA set up (a user proves password and code as well).
	UserMFAOrAgent
	// Web is the browser session cookie of the web UI, with a CSRF token
	// on every POST; without a session a page redirects to /login. An API
	// token or agent key is not a session: it is not even read.
	Web
	// WebMFA is Web, and the user has MFA set up; a form posted without
	// MFA goes back to its page (Route.Back) with the refusal as message.
	WebMFA
)

func (a Access) String() string {
	return [...]string{"anonymous", "user", "user with MFA", "agent", "user or agent", "service", "omni session", "wallet daemon",
		"user with MFA, or agent", "web session", "web session with MFA"}[a]
}

// web reports whether a is one of the browser-session rules.
func (a Access) web() bool { return a == Web || a == WebMFA }

type handlerFunc func(s *Server, w http.ResponseWriter, r *http.Request, p *core.Principal) error

// uiHandlerFunc serves a page or form action of the web UI.
type uiHandlerFunc func(s *Server, w http.ResponseWriter, r *http.Request, c *uiCtx) error

// Route is one entry of the route table: an API route (h) or a page or
// form action of the web UI (UI, ui).
type Route struct {
	Method  string
	Path    string
	Access  Access
	Summary string
	Status  int      // success status (API routes)
	Req     any      // request body shape (nil: none)
	Resp    any      // response body shape
	Query   []string // query parameters
	DevOnly bool     // exists only on the embedded chain
	// UI marks a page or form action of the web UI: served through the
	// UI's guard (CSP, cookies, CSRF) and left out of the OpenAPI document.
	UI bool
	// Back is where a refused UI form goes back to with its message
	// ({id} is the request's id path value), for WebMFA form actions.
	Back string
	// RPC is the route's JSON-RPC method on /rpc (daemon routes), and
	// RPCParams the positional order of its parameters.
	RPC       string
	RPCParams []string
	h         handlerFunc
	ui        uiHandlerFunc
}

// uiRoute is a UI route of the table.
func uiRoute(method, path string, a Access, summary string, h uiHandlerFunc) Route {
	return Route{Method: method, Path: path, Access: a, Summary: summary, UI: true, ui: h}
}

// Errors are the error codes a route answers with before its handler runs:
// those of its Access (authentication, the principal's kind, MFA) and, with
// a request body, those of the strict decoder. The OpenAPI document lists
// them (x-errors); TestRouteTable checks each is a code of errorTable.
func (rt Route) Errors() []countersign.Code {
	var codes []countersign.Code
	switch rt.Access {
	case User, Agent:
		codes = []countersign.Code{countersign.Unauthorized, countersign.Forbidden, countersign.BadRequest}
	case UserMFA:
		codes = []countersign.Code{countersign.Unauthorized, countersign.Forbidden, countersign.BadRequest, countersign.MFARequired}
	case UserOrAgent:
		codes = []countersign.Code{countersign.Unauthorized, countersign.BadRequest}
	case UserMFAOrAgent:
		codes = []countersign.Code{countersign.Unauthorized, countersign.BadRequest, countersign.MFARequired}
	case Service:
		codes = []countersign.Code{countersign.SignerDisabled, countersign.Unauthorized}
	case Omni:
		codes = []countersign.Code{countersign.Unauthorized}
	case Daemon:
		codes = []countersign.Code{countersign.NotFound, countersign.Unauthorized, countersign.Forbidden, countersign.BadRequest, countersign.RateLimit, countersign.UnsupportedMedia}
	case Web:
		codes = []countersign.Code{countersign.Unauthorized, countersign.Forbidden, countersign.BadRequest} // no session, CSRF, bad form
	case WebMFA:
		codes = []countersign.Code{countersign.Unauthorized, countersign.Forbidden, countersign.BadRequest, countersign.MFARequired}
	}
	if rt.Req != nil {
		for _, c := range []countersign.Code{countersign.BadRequest, countersign.TooLarge, countersign.UnsupportedMedia} {
			if !slices.Contains(codes, c) {
				codes = append(codes, c)
			}
		}
	}
	return codes
}

// withBack sets a UI form's Back page.
func withBack(rt Route, back string) Route {
	rt.Back = back
	return rt
}

// backTo returns a refused form's page for r.
func (rt Route) backTo(r *http.Request) string {
	return strings.Replace(rt.Back, "{id}", url.PathEscape(r.PathValue("id")), 1)
}

// dispatch is the one dispatcher of every route: the caller is admitted by
// the route's Access, then the handler runs. UI routes go through the UI's
// guard (uiGuard), which admits by the same Access.
func (s *Server) dispatch(rt Route) http.Handler {
	if rt.UI {
		return s.uiGuard(rt)
	}
	return s.guard(rt)
}

// guard authenticates the caller as the route's Access requires, then runs
// the handler and renders its error.
func (s *Server) guard(rt Route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var p *core.Principal
		var err error
		if rt.Access == Omni {
			r, err = s.authenticateOmni(r)
		} else {
			p, err = s.authenticate(r, rt.Access)
		}
		if err == nil {
			if rt.Access == Daemon && r.Method != http.MethodGet {
				// a wallet created, imported or signed for stays done (and
				// audited) when its client hangs up halfway: no orphans
				// answered as 500s
				r = r.WithContext(context.WithoutCancel(r.Context()))
			}
			err = rt.h(s, w, r, p)
		}
		if err != nil {
			writeError(w, r, s.Log, err)
		}
	})
}

// admitWebSession applies a UI route's Access to the session the UI guard
// found (c.p is nil without one). It answers the refusal itself and
// reports whether the request may go on: a page without a session
// redirects to the login form, a form action or the event stream is a 401.
func (s *Server) admitWebSession(w http.ResponseWriter, r *http.Request, rt Route, c *uiCtx) bool {
	if c.p != nil || !rt.Access.web() {
		return true
	}
	if r.Method == "GET" && r.URL.Path != "/ui/events" {
		http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return false
	}
	s.uiError(w, r, countersign.Errorf(countersign.Unauthorized, "not logged in"))
	return false
}

// admitWebMFA applies WebMFA once the session and the form's CSRF token are
// checked: a form goes back to its page with the refusal as message (as
// the REST route answers 403 MFA_REQUIRED), anything else is answered 403.
func (s *Server) admitWebMFA(w http.ResponseWriter, r *http.Request, rt Route, c *uiCtx) bool {
	if rt.Access != WebMFA || c.p.User.MFAEnabled {
		return true
	}
	if r.Method == "POST" && rt.Back != "" {
		_ = back(w, r, rt.backTo(r), errNeedsMFA(), "")
		return false
	}
	s.uiError(w, r, errNeedsMFA())
	return false
}

// errNeedsMFA is the refusal of a user without MFA on a route that needs it.
func errNeedsMFA() error {
	return countersign.Errorf(countersign.MFARequired, "MFA is not set up: call POST /api/setup_mfa first")
}

// authenticate admits the caller of an API route by its Access: the
// credential it must present, and what the principal must be.
func (s *Server) authenticate(r *http.Request, a Access) (*core.Principal, error) {
	switch {
	case a == Anonymous:
		return nil, nil
	case a == Service:
		return nil, s.checkService(r)
	case a == Daemon:
		return nil, s.checkDaemon(r)
	case a.web() || a == Omni:
		// never reached: UI routes and omni routes have guards of their own
		return nil, countersign.Errorf(countersign.Internal, "route access %s is not an API credential", a)
	}
	bearer := ""
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return nil, countersign.Errorf(countersign.Unauthorized, "Authorization must be \"Bearer <token>\"")
		}
		bearer = strings.TrimSpace(tok)
	}
	apiKey := r.Header.Get("X-API-KEY")
	if bearer != "" && apiKey != "" {
		return nil, countersign.Errorf(countersign.BadRequest, "send either a session token or an API key, not both")
	}
	if apiKey == "" && strings.HasPrefix(bearer, "csk_") {
		apiKey, bearer = bearer, "" // agents may send their key as a bearer token
	}
	ctx := r.Context()
	switch {
	case bearer != "":
		if a == Agent {
			return nil, countersign.Errorf(countersign.Forbidden, "this route is for agents: send X-API-KEY")
		}
		p, err := s.Svc.AuthenticateUser(ctx, bearer)
		if err != nil {
			return nil, err
		}
		if (a == UserMFA || a == UserMFAOrAgent) && !p.User.MFAEnabled {
			return nil, errNeedsMFA()
		}
		return p, nil
	case apiKey != "":
		p, err := s.Svc.AuthenticateAgent(ctx, apiKey)
		if err != nil {
			return nil, err
		}
		if a == User || a == UserMFA {
			return nil, countersign.Errorf(countersign.Forbidden, "this route needs a user session, not an agent key")
		}
		return p, nil
	default:
		if a == Agent {
			return nil, countersign.Errorf(countersign.Unauthorized, "X-API-KEY header is required")
		}
		return nil, countersign.Errorf(countersign.Unauthorized, "Authorization: Bearer <token> is required")
	}
}
