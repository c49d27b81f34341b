package main

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	cshttp "github.com/countersign/countersign/http"
)

// uiAuthorizationMatrix is TestAuthorizationMatrix's part for the web UI's
// routes (Access Web and WebMFA in the one route table). Without a browser
// session a page redirects to /login and a form or the event stream is a
// 401, and an API session token or an agent key is not a session: both are
// refused the same way. A user without MFA is refused every WebMFA form
// (back to its page with MFA_REQUIRED's message, nothing done), while a
// Web page answers them: the refusal is the route's, not the page's. It
// returns the routes it covered.
func uiAuthorizationMatrix(t *testing.T, e *env, agentKey, agentID string, owner, noMFA *user) map[string]bool {
	t.Helper()
	covered := map[string]bool{}
	path := func(p string) string {
		return strings.NewReplacer("{id}", agentID).Replace(p)
	}
	noSession := map[string][]string{
		"anonymous":               nil,
		"user session token":      {"Authorization", "Bearer " + owner.token},
		"agent key":               {"X-API-KEY", agentKey},
		"agent key as bearer":     {"Authorization", "Bearer " + agentKey},
		"token as session cookie": {"Cookie", "cs_session=" + owner.token},
		"key as session cookie":   {"Cookie", "cs_session=" + agentKey},
	}
	client := noRedirectClient(nil)
	for _, rt := range cshttp.Routes() {
		if !rt.UI || rt.Access == cshttp.Anonymous {
			continue
		}
		covered[rt.Method+" "+rt.Path] = true
		for name, hdr := range noSession {
			t.Run("UI "+rt.Method+" "+rt.Path+"/"+name, func(t *testing.T) {
				var body io.Reader
				if rt.Method == "POST" {
					body = strings.NewReader(url.Values{"csrf": {"x"}, "mfa_code": {"123456"}, "name": {"x"}, "password": {testPassword}}.Encode())
				}
				req, _ := http.NewRequest(rt.Method, e.url+path(rt.Path), body)
				if body != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				for i := 0; i+1 < len(hdr); i += 2 {
					req.Header.Set(hdr[i], hdr[i+1])
				}
				res, err := client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if rt.Method == "GET" && rt.Path != "/ui/events" {
					if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login?next=") {
						t.Fatalf("got %d (Location %q), want a redirect to the login form: %s", res.StatusCode, loc, b)
					}
					return
				}
				if res.StatusCode != http.StatusUnauthorized || !strings.Contains(string(b), "not logged in") {
					t.Fatalf("got %d %q, want 401 not logged in", res.StatusCode, b)
				}
			})
		}
	}

	// a real browser session without MFA: Web pages answer, WebMFA forms
	// go back to their page with the refusal
	jar, _ := cookiejar.New(nil)
	c := noRedirectClient(jar)
	csrf := uiLogin(t, e, c, noMFA)
	for _, rt := range cshttp.Routes() {
		if !rt.UI {
			continue
		}
		switch {
		case rt.Access == cshttp.Web && rt.Method == "GET" && rt.Path != "/ui/events" && !strings.Contains(rt.Path, "{"):
			res, err := c.Get(e.url + path(rt.Path))
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode >= 400 || res.StatusCode == http.StatusSeeOther && strings.HasPrefix(res.Header.Get("Location"), "/login") {
				t.Errorf("UI %s %s: a session without MFA got %d %q", rt.Method, rt.Path, res.StatusCode, res.Header.Get("Location"))
			}
		case rt.Access == cshttp.WebMFA:
			form := url.Values{"csrf": {csrf}, "mfa_code": {"123456"}, "name": {"by a user without MFA"}, "decision": {"approve"}}
			res, err := c.PostForm(e.url+path(rt.Path), form)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			flash := ""
			for _, ck := range res.Cookies() {
				if ck.Name == "cs_flash" {
					v, _ := base64.RawURLEncoding.DecodeString(ck.Value)
					flash = string(v)
				}
			}
			if want := path(rt.Back); res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != want || !strings.Contains(flash, "MFA is not set up") {
				t.Errorf("UI %s %s without MFA: %d to %q with %q, want back to %s with the MFA refusal", rt.Method, rt.Path, res.StatusCode, res.Header.Get("Location"), flash, want)
			}
		}
	}
	// nothing a refused form asked for happened
	if n := len(e.do("GET", "/api/agents", bearer(noMFA.token), nil).must(t, 200).body["agents"].([]any)); n != 0 {
		t.Errorf("a user without MFA created %d agents through the UI", n)
	}
	for _, a := range e.do("GET", "/api/agents", bearer(owner.token), nil).must(t, 200).body["agents"].([]any) {
		if m := a.(map[string]any); m["agent_id"] == agentID && m["revoked_at"] != nil {
			t.Errorf("another user revoked the owner's agent through the UI")
		}
	}
	return covered
}

func noRedirectClient(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// uiLogin logs u in through the login form on c and returns the session's
// CSRF token.
func uiLogin(t *testing.T, e *env, c *http.Client, u *user) string {
	t.Helper()
	page := func(p string) string {
		res, err := c.Get(e.url + p)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		m := csrfRE.FindStringSubmatch(string(b))
		if m == nil {
			t.Fatalf("no CSRF token on %s (%d): %s", p, res.StatusCode, b)
		}
		return m[1]
	}
	res, err := c.PostForm(e.url+"/login", url.Values{"csrf": {page("/login")}, "username": {u.name}, "password": {u.password}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("UI login: %d", res.StatusCode)
	}
	return page("/wallets")
}
