package main

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dispatchCommands are the command words of main.go's dispatch switch,
// read from the source so a new command cannot miss the help test.
func dispatchCommands(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "main.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var words []string
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "dispatch" {
			return true
		}
		for _, st := range fn.Body.List {
			sw, ok := st.(*ast.SwitchStmt)
			if !ok {
				continue
			}
			for _, c := range sw.Body.List {
				for _, e := range c.(*ast.CaseClause).List {
					if lit, ok := e.(*ast.BasicLit); ok {
						w, _ := strconv.Unquote(lit.Value)
						words = append(words, w)
					}
				}
			}
			return false // the first switch is the dispatch on args[0]
		}
		return false
	})
	if len(words) < 8 {
		t.Fatalf("found only %v in main.go's dispatch", words)
	}
	return words
}

// TestSurface_EveryCommandHelp: -h (and -help, --help) on every command
// and subcommand exits cleanly (run returns nil, so main exits 0), prints
// that command's own usage on stdout, starts nothing, and only serve's
// lists serve's settings. Before the fix serve -h returned flag.ErrHelp
// (exit 1) and audit verify -h printed serve's flags.
func TestSurface_EveryCommandHelp(t *testing.T) {
	sub := map[string][][]string{ // command → its help invocations
		"serve":             {{"serve", "-h"}, {"serve", "--help"}, {"serve", "-help"}},
		"audit":             {{"audit", "-h"}, {"audit", "verify", "-h"}, {"audit", "checkpoint", "--help"}},
		"wallet":            {{"wallet", "-h"}},
		"sign":              {{"sign", "-h"}, {"sign", "message", "-h"}},
		"load":              {{"load", "-h"}},
		"login":             {{"login", "-h"}},
		"signer":            {{"signer", "-h"}},
		"mcp":               {{"mcp", "-h"}},
		"version":           {{"version", "-h"}},
		"backup":            {{"backup", "-h"}},
		"restore":           {{"restore", "--help"}},
		"rotate-master-key": {{"rotate-master-key", "-h"}},
		"keygen":            {{"keygen", "-h"}},
		"spec":              {{"spec", "-h"}, {"spec", "validate", "-h"}},
		"keystore":          {{"keystore", "-h"}, {"keystore", "import", "-h"}, {"keystore", "export", "--help"}},
		"topup":             {{"topup", "-h"}, {"topup", "list", "-h"}, {"topup", "show", "--help"}},
		"x402":              {{"x402", "-h"}, {"x402", "fetch", "-h"}},
		"bench":             {{"bench", "-h"}, {"bench", "footprint", "-h"}},
		"help":              {{"help"}, {"-h"}, {"--help"}},
	}
	for w := range walletSynopses {
		sub["wallet"] = append(sub["wallet"], []string{"wallet", w, "-h"})
	}
	for _, w := range dispatchCommands(t) {
		switch w {
		case "--version", "-h", "--help":
			continue // spellings of version and help
		}
		if sub[w] == nil {
			t.Errorf("command %q of main.go has no help case in this test", w)
		}
	}
	for _, invocations := range sub {
		for _, args := range invocations {
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				var out, errb bytes.Buffer
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := run(ctx, args, func(string) string { return "" }, &out, &errb); err != nil {
					t.Fatalf("error %v (stderr %q)", err, errb.String())
				}
				words := slices.DeleteFunc(slices.Clone(args), func(a string) bool { return strings.HasPrefix(a, "-") })
				if len(words) == 0 {
					words = []string{"help"}
				}
				want := "countersign " + strings.Join(words, " ")
				if words[0] == "help" {
					want = "countersign serve [flags]" // the overview lists the commands
				}
				if !strings.Contains(out.String(), want) {
					t.Fatalf("stdout does not show %q:\n%s", want, out.String())
				}
				if isServe := words[0] == "serve"; isServe != strings.Contains(out.String(), "PASSWORD_HASH_QUEUE") {
					t.Fatalf("serve's settings in the help of %v: %v\n%s", args, !isServe, out.String())
				}
				if words[0] != "serve" && words[0] != "help" && strings.Contains(out.String(), "-accept-new-chain") {
					t.Fatalf("%v prints serve's flags:\n%s", args, out.String())
				}
			})
		}
	}
	// a wrong flag is still an error, with the command named once
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"audit", "verify", "--addr", "x"}, func(string) string { return "" }, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "audit verify -h") {
		t.Fatalf("audit verify --addr: %v", err)
	}
}

// TestSurface_ServeHelpListsEverySetting: every environment variable
// parseServeConfig reads is in serveSettings, every setting there is read,
// and serve -h prints each one. The names read are recorded through the
// getenv parseServeConfig is given, so a variable added to the parser
// without a line in the table fails here. Before the fix about 30
// variables appeared nowhere in -h.
func TestSurface_ServeHelpListsEverySetting(t *testing.T) {
	read := map[string]bool{}
	if _, err := parseServeConfig(nil, func(k string) string { read[k] = true; return "" }, io.Discard); err != nil {
		t.Fatal(err)
	}
	table := map[string]bool{}
	for _, s := range serveSettings {
		if table[s.Env] {
			t.Errorf("%s is twice in serveSettings", s.Env)
		}
		table[s.Env] = true
		if s.Help == "" {
			t.Errorf("%s has no help", s.Env)
		}
	}
	var missing, stale []string
	for k := range read {
		if !table[k] {
			missing = append(missing, k)
		}
	}
	for k := range table {
		if !read[k] {
			stale = append(stale, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 || len(stale) > 0 {
		t.Fatalf("read but not in serveSettings: %v; in serveSettings but never read: %v", missing, stale)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"serve", "-h"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for k := range read {
		if !strings.Contains(out.String(), "  "+k) {
			t.Errorf("serve -h does not list %s", k)
		}
	}
}

// TestSurface_VersionAgreesWithAbout: `countersign version` and GET /about
// print the same version, from the build info ("dev" under go test, where
// the main module is "(devel)"). Before the fix one said "dev" and the
// other "".
func TestSurface_VersionAgreesWithAbout(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	v := strings.TrimPrefix(strings.TrimSpace(out.String()), "countersign ")
	if v == "" || v != buildVersion() || v != "dev" {
		t.Fatalf("version %q, buildVersion %q (want dev under go test)", v, buildVersion())
	}
	e := newEnv(t, fastDaemon)
	if got := e.do("GET", "/about", anon, nil).must(t, 200).str("version"); got != v {
		t.Fatalf("/about says %q, countersign version %q", got, v)
	}
}

// TestSecurity_RefusedStartCreatesNothing: a configuration serve refuses
// stops it before anything is written — no data directory, master key,
// wallet token or database. Before the fix `serve --db postgres://…`
// (then unsupported; now a postgres:// URL that does not parse)
// generated a master key (and wallet token) and then refused; an operator
// who then fixed the setting ran on a key nobody had backed up.
func TestSecurity_RefusedStartCreatesNothing(t *testing.T) {
	for name, tt := range map[string]struct {
		args []string
		env  map[string]string
		want string
	}{
		"fail/postgres flag":         {args: []string{"--db", "postgres://u:%zz@h/db"}, want: "DATABASE_URL"},
		"fail/postgresql env":        {env: map[string]string{"DATABASE_URL": "postgresql://u@h:notaport/db"}, want: "DATABASE_URL"},
		"fail/mixed-case scheme":     {args: []string{"--db", "Postgres://cs:s3cretpw@db.internal:5432/cs"}, want: "DATABASE_URL"},
		"fail/unknown scheme":        {env: map[string]string{"DATABASE_URL": "pg://cs:s3cretpw@db.internal/cs"}, want: "DATABASE_URL"},
		"fail/keystore kind":         {env: map[string]string{"KEYSTORE": "cloud"}, want: "KEYSTORE"},
		"fail/wallet chain":          {env: map[string]string{"WALLET_CHAIN": "aitbc"}, want: "WALLET_CHAIN"},
		"fail/ledger db elsewhere":   {env: map[string]string{"LEDGER_DB": "./data/ledger.db"}, want: "LEDGER_DB"},
		"fail/weak wallet token":     {env: map[string]string{"WALLET_TOKEN": "short"}, want: "WALLET_TOKEN"},
		"fail/weak metrics token":    {env: map[string]string{"METRICS_TOKEN": "short"}, want: "METRICS_TOKEN"},
		"fail/oidc login no aud":     {env: map[string]string{"OIDC_LOGIN_ISSUER": "https://issuer.example"}, want: "OIDC_LOGIN_CLIENT_ID"},
		"fail/signer without token":  {env: map[string]string{"DEV_KEY_SERVICE_MASTER_SECRET": strings.Repeat("ab", 32)}, want: "SIGNER_TOKEN"},
		"fail/signer bad secret":     {env: map[string]string{"DEV_KEY_SERVICE_MASTER_SECRET": "nothex", "SIGNER_TOKEN": strings.Repeat("s", 16)}, want: "DEV_KEY_SERVICE_MASTER_SECRET"},
		"fail/webhook allow nets":    {env: map[string]string{"WEBHOOK_ALLOW_NETS": "not-a-cidr"}, want: ""},
		"fail/wallet allow":          {env: map[string]string{"WALLET_ALLOW": "not an address"}, want: ""},
		"fail/wallet allowed origin": {env: map[string]string{"WALLET_ALLOWED_ORIGINS": "not an origin"}, want: ""},
	} {
		t.Run(name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "data")
			env := map[string]string{"EVENTS_SOCKET": "off"}
			for k, v := range tt.env {
				env[k] = v
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data-dir", dir}, tt.args...)
			err := run(ctx, args, func(k string) string { return env[k] }, io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("serve %v: %v (want an error naming %q)", tt.args, err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cretpw") {
				t.Fatalf("the refusal quotes the password: %v", err)
			}
			left, _ := os.ReadDir(parent)
			if len(left) != 0 {
				var names []string
				_ = filepath.Walk(parent, func(p string, _ os.FileInfo, _ error) error { names = append(names, p); return nil })
				t.Fatalf("a refused start left %v behind", names)
			}
		})
	}
	// LEDGER_DB naming the main database is the same thing, and accepted
	c, err := parseServeConfig([]string{"--data-dir", t.TempDir()}, func(k string) string { return "" }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c.LedgerDB = c.DB
	if err := c.validate(); err != nil {
		t.Fatalf("LEDGER_DB = the database: %v", err)
	}
}

// TestSurface_WalletsListCurves: GET /v1/wallets names each wallet's
// curves, as the wallet-daemon design's WalletMeta does: both for an HD
// wallet, the key's for a single-key one.
func TestSurface_WalletsListCurves(t *testing.T) {
	e := newEnv(t, fastDaemon)
	hd := e.do("POST", "/v1/wallet/create", anon, map[string]any{"name": "hd", "password": "pw-123456", "mnemonic_len": 12}).must(t, 201).str("wallet_id")
	key := e.do("POST", "/v1/wallet/import-key", anon, map[string]string{"name": "k", "password": "pw-123456", "curve": "secp256k1", "private_key_hex": surfaceSignTxKey}).must(t, 201).str("wallet_id")
	r := e.do("GET", "/v1/wallets", anon, nil).must(t, 200)
	got := map[string]string{}
	list, _ := r.body["wallets"].([]any)
	for _, w := range list {
		m, _ := w.(map[string]any)
		var curves []string
		cs, ok := m["curves"].([]any)
		if !ok {
			t.Fatalf("no curves list: %s", r.raw)
		}
		for _, c := range cs {
			s, _ := c.(string)
			curves = append(curves, s)
		}
		id, _ := m["wallet_id"].(string)
		got[id] = strings.Join(curves, ",")
	}
	if got[hd] != "ed25519,secp256k1" || got[key] != "secp256k1" {
		t.Fatalf("curves %v: %s", got, r.raw)
	}
}
