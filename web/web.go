// Package web holds the approval UI's embedded templates and static assets
// (no CDN, no runtime download, no Node at run time). http/ serves them.
package web

import (
	"embed"
	"html/template"
	"io/fs"
)

//go:embed templates/*.html
var templates embed.FS

//go:embed static
var static embed.FS

// FuncNames are the helpers the templates call (http/ui_approver.go
// defines them). Templates declares each so the pages parse without them
// (TestTemplatesParse); a real server passes every one.
var FuncNames = []string{"addr", "label", "short", "icon", "sevIcon", "sevLabel", "clamp", "isAddr", "utc", "utcsec"}

// Templates parses every page template with funcs.
func Templates(funcs template.FuncMap) (*template.Template, error) {
	all := template.FuncMap{}
	for _, n := range FuncNames {
		all[n] = func(...any) string { return "" }
	}
	for n, f := range funcs {
		all[n] = f
	}
	return template.New("").Funcs(all).ParseFS(templates, "templates/*.html")
}

// Static is the file system served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // fixed at build time
	}
	return sub
}
