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

// Templates parses every page template with funcs.
func Templates(funcs template.FuncMap) (*template.Template, error) {
	return template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html")
}

// Static is the file system served under /static/.
func Static() fs.FS {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // fixed at build time
	}
	return sub
}
