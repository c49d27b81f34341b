package countersign_test

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/countersign/countersign"

// allowed lists, per package, the project packages it may import. The root
// holds the domain and its ports and imports only the standard library;
// value packages (ethsig, netguard: no I/O of their own beyond a resolver,
// no services) import at most the root; adapters import the root and value
// packages, never core and never each other; only cmd/ wires. There is no
// list of exceptions: a port an adapter needs moves to the root.
var allowed = map[string][]string{
	"":                {},
	"ethsig":          {""},
	"policy":          {""},
	"netguard":        {""},
	"x402":            {}, // the x402 protocol: stdlib and go-ethereum only
	"auth":            {""},
	"keys/envelope":   {""},
	"keys/hd":         {},
	"keys/keystore":   {""},
	"contracts":       {},
	"store/storetest": {""},
	"core":            {"", "auth", "ethsig", "netguard", "policy", "x402"},
	"daemon":          {"", "ethsig"},
	"store/sqlite":    {""},
	"store/postgres":  {""},
	"ledger/mock":     {""},
	"chain/evm":       {""},
	"chain/sim":       {"contracts"},
	"signer/local":    {"", "ethsig", "keys/keystore"},
	"signer/derived":  {"", "ethsig", "keys/keystore"},
	"signer/remote":   {""},
	"signer/keyfile":  {"", "ethsig", "keys/keystore"},
	"signer/hd":       {"", "ethsig", "keys/hd", "keys/keystore"},
	"signer/audited":  {"", "ethsig"},
	"http":            {"", "core", "daemon", "ethsig", "policy", "web"},
	"web":             {},
	"mailer":          {""},
	"notify":          {"", "netguard"},
	"cloud/aws":       {},
	"cloud/awskms":    {"", "ethsig", "keys/envelope"}, // implements envelope.KEK (returns envelope.ErrOpen) and the wallet signer port
	"oidc":            {""},
	"repospec":        {},
	"mcp":             {"", "core", "x402"},
	"cmd/countersign": {"*"},

	// credit top-up providers (adapters of countersign.TopupProvider)
	"topup/openrouter": {""},

	// test support (a PostgreSQL server for tests), imported by tests only
	"store/postgres/pgtest": {},
	"cloud/awskms/kmstest":  {},
}

func TestImportRules(t *testing.T) {
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		pkg := filepath.ToSlash(filepath.Dir(path))
		if pkg == "." {
			pkg = ""
		}
		rules, ok := allowed[pkg]
		if !ok {
			t.Errorf("package %q has no import rule: add it to layout_test.go", pkg)
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			p := strings.Trim(imp.Path.Value, `"`)
			if pkg == "" && strings.Contains(strings.Split(p, "/")[0], ".") {
				t.Errorf("%s: the domain package imports %s (stdlib only)", path, p)
			}
			if p != module && !strings.HasPrefix(p, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(strings.TrimPrefix(p, module), "/")
			ok := false
			for _, r := range rules {
				ok = ok || r == "*" || r == dep
			}
			if !ok {
				t.Errorf("%s imports %s, which package %q may not", path, p, pkg)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
