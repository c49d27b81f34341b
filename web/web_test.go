package web

import (
	"html/template"
	"io/fs"
	"strings"
	"testing"
)

// TestTemplatesParse: every page the UI renders is defined, and the
// embedded templates parse (a parse error would be a build bug that only a
// page view would otherwise find).
func TestTemplatesParse(t *testing.T) {
	tmpl, err := Templates(template.FuncMap{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"login.html", "signup.html", "mfa.html", "inbox.html", "inbox_fragment.html", "tx.html",
		"activity.html", "wallets.html", "agents.html", "audit.html", "policies.html", "policy.html", "approvers.html", "addressbook.html", "passkeys.html", "head", "foot"} {
		if tmpl.Lookup(name) == nil {
			t.Errorf("template %q is not defined", name)
		}
	}
}

// TestStaticAssets: the script and stylesheet the pages link are embedded,
// and the script holds no eval-like constructs the CSP (script-src 'self')
// would block. (It does set innerHTML once: to the server-rendered inbox
// fragment, escaped by html/template, fetched from the same origin.)
func TestStaticAssets(t *testing.T) {
	for _, name := range []string{"app.js", "app.css"} {
		b, err := fs.ReadFile(Static(), name)
		if err != nil || len(b) == 0 {
			t.Fatalf("%s: %v (%d bytes)", name, err, len(b))
		}
		if name == "app.js" {
			for _, bad := range []string{"eval(", "new Function(", "setTimeout(\"", "setInterval(\""} {
				if strings.Contains(string(b), bad) {
					t.Errorf("app.js uses %q", bad)
				}
			}
		}
	}
	if _, err := fs.ReadFile(Static(), "../templates/layout.html"); err == nil {
		t.Error("the static file system reaches outside static/")
	}
}
