package http

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/countersign/countersign"
)

// wireAnswer is what clients see for one error code on each surface. The
// values are published (docs/API.md, docs/DAEMON.md, docs/AGENTS.md) and
// clients switch on them, so this list is written out by hand on purpose:
// a change to the error table that moves any of them fails here.
type wireAnswer struct {
	status int // REST and the web UI
	rpc    int // the daemon's JSON-RPC mirror, /rpc
	eth    int // /eth (and every other serveJSONRPC caller that returns plain errors)
}

var publishedAnswers = map[countersign.Code]wireAnswer{
	countersign.BadRequest:        {400, -32602, -32602},
	countersign.Unauthorized:      {401, -32603, -32000},
	countersign.MFARequired:       {403, -32603, -32000},
	countersign.MFAInvalid:        {403, -32603, -32000},
	countersign.MFALocked:         {429, -32603, -32000},
	countersign.Forbidden:         {403, -32003, -32000},
	countersign.NotFound:          {404, -32004, -32000},
	countersign.Conflict:          {409, -32009, -32000},
	countersign.NotAuthorized:     {409, -32603, -32000},
	countersign.RateLimit:         {429, -32029, -32000},
	countersign.BadPassword:       {403, -32002, -32000},
	countersign.InsufficientFunds: {422, -32010, -32000},
	countersign.ChainError:        {502, -32603, -32000},
	countersign.TooLarge:          {413, -32603, -32000},
	countersign.UnsupportedMedia:  {415, -32603, -32000},
	countersign.SignerDisabled:    {503, -32603, -32000},
	countersign.FeeTooHigh:        {409, -32603, -32000},
	countersign.ChainMismatch:     {409, -32603, -32000},
	countersign.Unavailable:       {503, -32603, -32000},
	countersign.WalletLocked:      {423, -32001, -32000},
	countersign.PolicyDenied:      {403, -32003, -32000},
	countersign.Frozen:            {423, -32603, -32000},
	countersign.AckRequired:       {422, -32603, -32000},
	countersign.PaymentRefused:    {422, -32603, -32000},
	countersign.UpstreamError:     {502, -32603, -32000},
	countersign.Internal:          {500, -32603, -32603},
}

// TestErrorAnswersArePublished drives every surface with an error of each
// code and checks the status / JSON-RPC code, message and data clients get.
func TestErrorAnswersArePublished(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s := &Server{Log: log}
	for code, want := range publishedAnswers {
		err := countersign.Wrap(code, errors.New("secret cause 7f3a"), "public detail of "+string(code))

		// REST
		rec := httptest.NewRecorder()
		writeError(rec, httptest.NewRequest("GET", "/api/x", nil), log, err)
		var body ErrorBody
		if json.Unmarshal(rec.Body.Bytes(), &body) != nil || rec.Code != want.status || body.Error.Code != string(code) {
			t.Errorf("REST %s: status %d body %s, want %d", code, rec.Code, rec.Body, want.status)
		}

		// web UI: a handler's error answers with the same status and the public detail only
		rt := uiRoute("GET", "/x", Anonymous, "test", func(*Server, http.ResponseWriter, *http.Request, *uiCtx) error { return err })
		rec = httptest.NewRecorder()
		s.uiGuard(rt).ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		if rec.Code != want.status || !strings.Contains(rec.Body.String(), "public detail of "+string(code)) || strings.Contains(rec.Body.String(), "7f3a") {
			t.Errorf("UI %s: status %d body %q, want %d", code, rec.Code, rec.Body, want.status)
		}

		// /rpc: the daemon's codes, the detail as message, the countersign code in data
		re, ok := daemonRPCError(err).(*rpcError)
		if !ok || re.Code != want.rpc || re.Message != countersign.ErrorDetail(err) || !hasDataCode(re, code) {
			t.Errorf("/rpc %s: %+v, want code %d", code, re, want.rpc)
		}
		// what /rpc's serveJSONRPC does with the mirror's error keeps it as is
		if got := toRPCError(re); got != re {
			t.Errorf("/rpc %s: serveJSONRPC remapped the daemon's error to %+v", code, got)
		}

		// /eth: node-style -32000 with the code in data; bad params -32602; internal -32603 with no detail
		ee := toRPCError(err)
		if ee.Code != want.eth {
			t.Errorf("/eth %s: code %d, want %d", code, ee.Code, want.eth)
		}
		switch want.eth {
		case rpcServerError:
			if ee.Message != countersign.ErrorDetail(err) || !hasDataCode(ee, code) {
				t.Errorf("/eth %s: %+v", code, ee)
			}
		case rpcInvalidParams:
			if ee.Message != countersign.ErrorDetail(err) || ee.Data != nil {
				t.Errorf("/eth %s: %+v", code, ee)
			}
		case rpcInternal:
			if ee.Message != "internal error" || ee.Data != nil {
				t.Errorf("/eth %s: %+v leaks the detail", code, ee)
			}
		}
		for _, m := range []string{re.Message, ee.Message} {
			if strings.Contains(m, "7f3a") {
				t.Errorf("%s: the internal cause reached a JSON-RPC client: %q", code, m)
			}
		}
	}

	for code := range errorTable {
		if _, ok := publishedAnswers[code]; !ok {
			t.Errorf("%s has a row but no published answer here: add it", code)
		}
	}

	// a code from outside the table (signer/remote echoes the signer's
	// code): REST and /rpc answer it as internal, /eth node-style
	foreign := countersign.Errorf("SIGNER_SPECIFIC", "signer: no")
	rec0 := httptest.NewRecorder()
	writeError(rec0, httptest.NewRequest("GET", "/api/x", nil), log, foreign)
	if rec0.Code != 500 || !strings.Contains(rec0.Body.String(), `"code":"INTERNAL"`) {
		t.Errorf("REST foreign code: %d %s", rec0.Code, rec0.Body)
	}
	if re := daemonRPCError(foreign).(*rpcError); re.Code != rpcInternal || !hasDataCode(re, "SIGNER_SPECIFIC") {
		t.Errorf("/rpc foreign code: %+v", re)
	}
	if ee := toRPCError(foreign); ee.Code != rpcServerError || ee.Message != "signer: no" || !hasDataCode(ee, "SIGNER_SPECIFIC") {
		t.Errorf("/eth foreign code: %+v", ee)
	}

	// an error without a code is internal everywhere, and its cause is never sent
	plain := errors.New("db exploded at /var/secret 7f3a")
	rec := httptest.NewRecorder()
	writeError(rec, httptest.NewRequest("GET", "/api/x", nil), log, plain)
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "7f3a") {
		t.Errorf("REST plain error: %d %s", rec.Code, rec.Body)
	}
	if re := daemonRPCError(plain).(*rpcError); re.Code != rpcInternal || strings.Contains(re.Message, "7f3a") {
		t.Errorf("/rpc plain error: %+v", re)
	}
	if ee := toRPCError(plain); ee.Code != rpcInternal || strings.Contains(ee.Message, "7f3a") {
		t.Errorf("/eth plain error: %+v", ee)
	}
}

func hasDataCode(e *rpcError, code countersign.Code) bool {
	m, ok := e.Data.(map[string]string)
	return ok && m["code"] == string(code)
}

// TestUIGuardRefusals: the guard's own refusals (no session, bad form,
// CSRF) keep their statuses and messages.
func TestUIGuardRefusals(t *testing.T) {
	s := &Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	called := false
	h := func(*Server, http.ResponseWriter, *http.Request, *uiCtx) error { called = true; return nil }
	cases := []struct {
		name   string
		rt     Route
		req    *http.Request
		status int
		body   string
	}{
		{"POST without a session", uiRoute("POST", "/x", Web, "test", h),
			httptest.NewRequest("POST", "/x", strings.NewReader("csrf=a")), 401, "not logged in"},
		{"events without a session", uiRoute("GET", "/ui/events", Web, "test", h),
			httptest.NewRequest("GET", "/ui/events", nil), 401, "not logged in"},
		{"CSRF missing", uiRoute("POST", "/x", Anonymous, "test", h),
			formReq("a=b"), 403, "CSRF token is missing or wrong"},
		{"bad form", uiRoute("POST", "/x", Anonymous, "test", h),
			formReq("a=%zz"), 400, "bad form"},
	}
	for _, c := range cases {
		called = false
		rec := httptest.NewRecorder()
		s.uiGuard(c.rt).ServeHTTP(rec, c.req)
		if rec.Code != c.status || !strings.Contains(rec.Body.String(), c.body) || called {
			t.Errorf("%s: %d %q (handler called: %v), want %d %q", c.name, rec.Code, rec.Body, called, c.status, c.body)
		}
	}
	// without a session a page redirects to the login form
	rec := httptest.NewRecorder()
	s.uiGuard(uiRoute("GET", "/inbox", Web, "test", h)).ServeHTTP(rec, httptest.NewRequest("GET", "/inbox?a=1", nil))
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/login?next=%2Finbox%3Fa%3D1" || called {
		t.Errorf("page without a session: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}

func formReq(body string) *http.Request {
	r := httptest.NewRequest("POST", "/x", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}
