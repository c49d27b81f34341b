package http

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	qrcode "github.com/skip2/go-qrcode"

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

// UIRoute is one page or form action of the web UI. Public routes need no
// session; every other route redirects to /login without one. Every POST
// checks a CSRF token.
type UIRoute struct {
	Method, Path string
	Public       bool
	h            func(s *Server, w http.ResponseWriter, r *http.Request, c *uiCtx) error
}

// UIRoutes is the web UI's route table.
func UIRoutes() []UIRoute {
	return []UIRoute{
		{"GET", "/{$}", true, (*Server).uiHome},
		{"GET", "/login", true, (*Server).uiLoginPage},
		{"POST", "/login", true, (*Server).uiLogin},
		{"GET", "/signup", true, (*Server).uiSignupPage},
		{"POST", "/signup", true, (*Server).uiSignup},
		{"POST", "/logout", false, (*Server).uiLogout},
		{"GET", "/inbox", false, (*Server).uiInbox},
		{"GET", "/tx/{id}", false, (*Server).uiTx},
		{"POST", "/tx/{id}/decide", false, (*Server).uiDecide},
		{"GET", "/activity", false, (*Server).uiActivity},
		{"GET", "/wallets", false, (*Server).uiWallets},
		{"POST", "/wallets", false, (*Server).uiCreateWallet},
		{"POST", "/wallets/faucet", false, (*Server).uiFaucet},
		{"GET", "/agents", false, (*Server).uiAgents},
		{"POST", "/agents", false, (*Server).uiCreateAgent},
		{"POST", "/agents/{id}/revoke", false, (*Server).uiRevokeAgent},
		{"GET", "/audit", false, (*Server).uiAudit},
		{"GET", "/mfa", false, (*Server).uiMFA},
		{"POST", "/mfa/begin", false, (*Server).uiMFABegin},
		{"POST", "/mfa/confirm", false, (*Server).uiMFAConfirm},
		{"POST", "/mfa/recover", false, (*Server).uiMFARecover},
		{"GET", "/ui/events", false, (*Server).uiEvents},
	}
}

func (s *Server) uiTemplates() *template.Template {
	s.tmplOnce.Do(func() {
		t, err := web.Templates(template.FuncMap{})
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

func (s *Server) uiGuard(rt UIRoute) http.Handler {
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
		if c.p == nil && !rt.Public {
			if r.Method == "GET" && r.URL.Path != "/ui/events" {
				http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.uiError(w, r, countersign.Errorf(countersign.Unauthorized, "not logged in"))
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
		if err := rt.h(s, w, r, c); err != nil {
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
	Data             any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, c *uiCtx, status int, name, title, nav string, data any) error {
	pg := page{Title: title, Nav: nav, CSRF: c.csrf, Data: data}
	if c.p != nil {
		pg.User = c.p.User
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
	png, err := qrcode.Encode(text, qrcode.Medium, 200)
	if err != nil {
		return ""
	}
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
}

// ---- pages

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

type txRow struct {
	View          core.TxView
	AgentName     string
	Amount        string
	TimeLeft      string
	Explorer      string
	Confirmations uint64
}

func (s *Server) agentNames(ctx context.Context, p *core.Principal) map[string]string {
	names := map[string]string{"": "you"}
	if agents, err := s.Svc.Agents(ctx, p); err == nil {
		for _, a := range agents {
			names[a.ID] = a.Name
		}
	}
	return names
}

func (s *Server) rows(ctx context.Context, p *core.Principal, list []*countersign.Transaction, head uint64) []txRow {
	names := s.agentNames(ctx, p)
	now := s.Svc.Now()
	rows := make([]txRow, 0, len(list))
	for _, t := range list {
		row := txRow{View: core.View(t), AgentName: names[t.AgentID], Amount: s.Svc.HumanAmount(ctx, t), TimeLeft: timeLeft(t.ExpiresAt.Sub(now))}
		if t.TxHash != "" && s.Explorer != "" {
			row.Explorer = strings.TrimRight(s.Explorer, "/") + "/tx/" + t.TxHash
		}
		if t.BlockNumber != nil && head >= *t.BlockNumber {
			row.Confirmations = head - *t.BlockNumber + 1
		}
		rows = append(rows, row)
	}
	return rows
}

type inboxData struct {
	Rows []txRow
	Next string
}

func (s *Server) uiInbox(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	f := countersign.TxFilter{Status: countersign.StatusPending, Limit: inboxPage}
	if b := r.URL.Query().Get("before"); b != "" {
		t, err := parseBefore(b)
		if err != nil {
			return err
		}
		f.Before = t
	}
	list, err := s.Svc.Transactions(r.Context(), c.p, f)
	if err != nil {
		return err
	}
	// expired requests drop out (Transactions expires them lazily)
	pending := list[:0]
	for _, t := range list {
		if t.Status == countersign.StatusPending {
			pending = append(pending, t)
		}
	}
	data := inboxData{Rows: s.rows(r.Context(), c.p, pending, 0)}
	if len(list) == inboxPage {
		data.Next = url.QueryEscape(list[len(list)-1].CreatedAt.Format(time.RFC3339Nano))
	}
	if r.URL.Query().Get("fragment") == "1" {
		return s.render(w, r, c, 200, "inbox_fragment.html", "", "", data)
	}
	return s.render(w, r, c, 200, "inbox.html", "Inbox", "inbox", data)
}

type txData struct {
	Review     *core.Review
	TimeLeft   string
	ExplorerTx string
}

func (s *Server) uiTx(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	rv, err := s.Svc.Review(r.Context(), c.p, r.PathValue("id"))
	if err != nil {
		return err
	}
	d := txData{Review: rv, TimeLeft: timeLeft(rv.Tx.ExpiresAt.Sub(s.Svc.Now())), ExplorerTx: "#"}
	if rv.Tx.TxHash != "" && s.Explorer != "" {
		d.ExplorerTx = strings.TrimRight(s.Explorer, "/") + "/tx/" + rv.Tx.TxHash
	}
	return s.render(w, r, c, 200, "tx.html", rv.Summary, "inbox", d)
}

func (s *Server) uiDecide(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	id := r.PathValue("id")
	d := core.Decision(r.PostForm.Get("decision"))
	_, err := s.Svc.Authorize(r.Context(), c.p, []string{id}, r.PostForm.Get("mfa_code"), d, strings.TrimSpace(r.PostForm.Get("reason")))
	ok := "Approved: the agent can execute it now."
	if d == core.Reject {
		ok = "Rejected: the agent has been told."
	}
	return back(w, r, "/tx/"+url.PathEscape(id), err, ok)
}

type activityData struct {
	Rows                    []txRow
	Agents                  []*countersign.Agent
	Statuses                []countersign.Status
	Agent, Status, From, To string
	Next                    string
}

func (s *Server) uiActivity(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	q := r.URL.Query()
	d := activityData{Statuses: countersign.Statuses, Agent: q.Get("agent"), Status: q.Get("status"), From: q.Get("from"), To: q.Get("to")}
	f := countersign.TxFilter{AgentID: d.Agent, Status: countersign.Status(d.Status), Limit: 100}
	if d.From != "" {
		t, err := time.Parse("2006-01-02", d.From)
		if err != nil {
			return countersign.Errorf(countersign.BadRequest, "from must be a date")
		}
		f.After = t
	}
	if d.To != "" {
		t, err := time.Parse("2006-01-02", d.To)
		if err != nil {
			return countersign.Errorf(countersign.BadRequest, "to must be a date")
		}
		f.Before = t.Add(24 * time.Hour)
	}
	if b := q.Get("before"); b != "" {
		t, err := parseBefore(b)
		if err != nil {
			return err
		}
		if f.Before.IsZero() || t.Before(f.Before) {
			f.Before = t
		}
	}
	list, err := s.Svc.Transactions(r.Context(), c.p, f)
	if err != nil {
		return err
	}
	head, _ := s.Svc.BlockNumber(r.Context())
	d.Rows = s.rows(r.Context(), c.p, list, head)
	d.Agents, _ = s.Svc.Agents(r.Context(), c.p)
	if len(list) == f.Limit {
		q.Set("before", list[len(list)-1].CreatedAt.Format(time.RFC3339Nano))
		d.Next = "/activity?" + q.Encode()
	}
	return s.render(w, r, c, 200, "activity.html", "Activity", "activity", d)
}

type walletView struct {
	Name, Address string
	Balances      []string
	QR            template.URL
}

func (s *Server) uiWallets(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	ctx := r.Context()
	wallets, err := s.Svc.Wallets(ctx, c.p)
	if err != nil {
		return err
	}
	// known tokens: the dev chain's TEST and every token this user has moved
	tokens := []string{}
	seen := map[string]bool{}
	if s.Dev != nil {
		_, tok, _ := s.Dev.Info()
		tokens, seen[strings.ToLower(tok)] = append(tokens, tok), true
	}
	if txs, err := s.Svc.Transactions(ctx, c.p, countersign.TxFilter{Limit: 500}); err == nil {
		for _, t := range txs {
			if t.TokenAddress != "" && !seen[strings.ToLower(t.TokenAddress)] {
				tokens, seen[strings.ToLower(t.TokenAddress)] = append(tokens, t.TokenAddress), true
			}
		}
	}
	var views []walletView
	for _, wl := range wallets {
		v := walletView{Name: wl.Name, Address: wl.Address, QR: qrDataURI(wl.Address)}
		if b, err := s.Svc.Balance(ctx, wl.Address, ""); err == nil {
			v.Balances = append(v.Balances, countersign.FormatUnits(b.Balance, 18)+" "+b.Symbol)
		}
		for _, tok := range tokens {
			if b, err := s.Svc.Balance(ctx, wl.Address, tok); err == nil {
				v.Balances = append(v.Balances, countersign.FormatUnits(b.Balance, int(b.Decimals))+" "+b.Symbol)
			}
		}
		views = append(views, v)
	}
	return s.render(w, r, c, 200, "wallets.html", "Wallets", "wallets", map[string]any{"Wallets": views, "Dev": s.Dev != nil})
}

func (s *Server) uiCreateWallet(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	wl, err := s.Svc.CreateWallet(r.Context(), c.p, r.PostForm.Get("password"), r.PostForm.Get("name"))
	if err != nil {
		return back(w, r, "/wallets", err, "")
	}
	return back(w, r, "/wallets", nil, "Wallet "+wl.Name+" created: "+wl.Address)
}

func (s *Server) uiFaucet(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	if s.Dev == nil {
		return countersign.Errorf(countersign.NotFound, "the faucet exists only on the embedded dev chain")
	}
	addr := r.PostForm.Get("address")
	wallets, err := s.Svc.Wallets(r.Context(), c.p)
	if err != nil {
		return err
	}
	mine := false
	for _, wl := range wallets {
		mine = mine || strings.EqualFold(wl.Address, addr)
	}
	if !mine {
		return back(w, r, "/wallets", countersign.Errorf(countersign.NotFound, "wallet not found"), "")
	}
	one := new(big.Int).Exp(big.NewInt(10), big.NewInt(18), nil)
	if _, err := s.Dev.Fund(r.Context(), addr, one); err != nil {
		return back(w, r, "/wallets", countersign.Wrap(countersign.ChainError, err, "faucet failed"), "")
	}
	if _, err := s.Dev.Mint(r.Context(), addr, new(big.Int).Mul(one, big.NewInt(100))); err != nil {
		return back(w, r, "/wallets", countersign.Wrap(countersign.ChainError, err, "faucet failed"), "")
	}
	return back(w, r, "/wallets", nil, "Sent 1 ETH and 100 TEST to "+addr)
}

type agentRow struct {
	ID, Name, Wallet, KeyPrefix, LastUsed string
	Revoked                               bool
}

type createdAgent struct{ Name, Key, Curl string }

func (s *Server) agentsPage(w http.ResponseWriter, r *http.Request, c *uiCtx, status int, created *createdAgent) error {
	ctx := r.Context()
	wallets, err := s.Svc.Wallets(ctx, c.p)
	if err != nil {
		return err
	}
	addr := map[string]string{}
	for _, wl := range wallets {
		addr[wl.ID] = wl.Address
	}
	agents, err := s.Svc.Agents(ctx, c.p)
	if err != nil {
		return err
	}
	var rows []agentRow
	for _, a := range agents {
		last := "never"
		if !a.LastUsedAt.IsZero() {
			last = a.LastUsedAt.UTC().Format("2006-01-02 15:04")
		}
		rows = append(rows, agentRow{ID: a.ID, Name: a.Name, Wallet: addr[a.WalletID], KeyPrefix: a.KeyPrefix, LastUsed: last, Revoked: a.Revoked()})
	}
	return s.render(w, r, c, status, "agents.html", "Agents", "agents", map[string]any{"Agents": rows, "Wallets": wallets, "Created": created})
}

func (s *Server) uiAgents(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	return s.agentsPage(w, r, c, 200, nil)
}

func (s *Server) uiCreateAgent(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	a, key, err := s.Svc.CreateAgent(r.Context(), c.p, r.PostForm.Get("name"), r.PostForm.Get("wallet_address"), r.PostForm.Get("mfa_code"))
	if err != nil {
		return back(w, r, "/agents", err, "")
	}
	base := "http://" + r.Host
	if secure(r) {
		base = "https://" + r.Host
	}
	curl := fmt.Sprintf(`curl -s --json '{"type":"native","to_address":"0x000000000000000000000000000000000000dEaD","amount":"1000000000000000","memo":"first test"}' \
  -H "X-API-KEY: %s" %s/api/prepare_transaction`, key, base)
	// Rendered, not redirected: the key must never travel in a cookie or URL.
	return s.agentsPage(w, r, c, http.StatusCreated, &createdAgent{Name: a.Name, Key: key, Curl: curl})
}

func (s *Server) uiRevokeAgent(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	err := s.Svc.RevokeAgent(r.Context(), c.p, r.PathValue("id"), r.PostForm.Get("mfa_code"))
	return back(w, r, "/agents", err, "Agent revoked: its key stopped working.")
}

func (s *Server) uiAudit(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	after := int64(0)
	if a := r.URL.Query().Get("after"); a != "" {
		n, err := parseSeq("after", a)
		if err != nil {
			return err
		}
		after = n
	}
	entries, err := s.Svc.AuditLog(r.Context(), c.p.User.ID, after, 200)
	if err != nil {
		return err
	}
	d := map[string]any{"Entries": entries}
	if len(entries) == 200 {
		d["Next"] = entries[len(entries)-1].Seq
	}
	return s.render(w, r, c, 200, "audit.html", "Audit log", "audit", d)
}

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

func (s *Server) uiEvents(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	return s.events(w, r, c.p)
}
