package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The deployment samples in deploy/ name settings by hand; a renamed or
// misspelt one would be silently ignored by the server (unknown variables
// are not read), so every name they set must be a serve setting.
func TestDeploySamplesNameRealSettings(t *testing.T) {
	known := map[string]bool{}
	for _, s := range serveSettings {
		known[s.Env] = true
	}
	patterns := map[string]*regexp.Regexp{
		"countersign.service":              regexp.MustCompile(`(?m)^Environment=([A-Z_]+)=`),
		"replicas/countersign@.service":    regexp.MustCompile(`(?m)^Environment=([A-Z_]+)=`),
		"replicas/countersign.env.example": regexp.MustCompile(`(?m)^#? ?([A-Z][A-Z0-9_]+)=`),
		"replicas/compose.yaml":            regexp.MustCompile(`(?m)^    ([A-Z][A-Z0-9_]+): `),
		"Dockerfile":                       regexp.MustCompile(`([A-Z][A-Z0-9_]+)=[^ ]+`),
	}
	// names that are not the server's: the image's build argument and
	// PostgreSQL's own variables in the compose file
	foreign := map[string]bool{"VERSION": true, "POSTGRES_USER": true, "POSTGRES_PASSWORD": true, "POSTGRES_DB": true}
	for file, re := range patterns {
		b, err := os.ReadFile(filepath.Join("..", "..", "deploy", file))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range re.FindAllStringSubmatch(string(b), -1) {
			name := m[1]
			if foreign[name] || strings.HasPrefix(name, "AWS_") {
				continue
			}
			n++
			if !known[name] {
				t.Errorf("deploy/%s sets %s, which is not a serve setting", file, name)
			}
		}
		if n == 0 {
			t.Errorf("deploy/%s: no settings found (pattern out of date?)", file)
		}
	}
}
