package http

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/countersign/countersign"
)

// declaredCodes parses every non-test Go file of the module and returns
// the value of each constant of type countersign.Code, with where it is
// declared. Reading the declarations, not a list kept by hand, is the
// point: a code added to error.go (or to any package) without a row in
// errorTable fails TestErrorTableCoversEveryCode.
func declaredCodes(t *testing.T) map[countersign.Code]string {
	t.Helper()
	codes := map[countersign.Code]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != ".." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		root := f.Name.Name == "countersign"
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				typed := isCodeType(vs.Type, root)
				for i, v := range vs.Values {
					lit := v
					// countersign.Code("X") or Code("X")
					if call, ok := v.(*ast.CallExpr); ok && len(call.Args) == 1 && isCodeType(call.Fun, root) {
						lit, typed = call.Args[0], true
					}
					bl, ok := lit.(*ast.BasicLit)
					if !typed || !ok || bl.Kind != token.STRING {
						continue
					}
					s, err := strconv.Unquote(bl.Value)
					if err != nil {
						t.Fatalf("%s: %v", path, err)
					}
					codes[countersign.Code(s)] = path + ": " + vs.Names[i].Name
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// the parser must see the codes it is meant to, or the test is vacuous
	for _, c := range []countersign.Code{countersign.BadRequest, countersign.Internal, countersign.Unavailable, "WALLET_LOCKED"} {
		if _, ok := codes[c]; !ok {
			t.Fatalf("declaredCodes did not find %s (found %v)", c, codes)
		}
	}
	return codes
}

func isCodeType(e ast.Expr, root bool) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return root && e.Name == "Code"
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		return ok && x.Name == "countersign" && e.Sel.Name == "Code"
	}
	return false
}

// TestErrorTableCoversEveryCode: every declared code has a full row (an
// HTTP status and both JSON-RPC codes), and every row is a declared code.
func TestErrorTableCoversEveryCode(t *testing.T) {
	codes := declaredCodes(t)
	for code, where := range codes {
		row, ok := errorTable[code]
		switch {
		case !ok:
			t.Errorf("%s (%s) has no row in errorTable", code, where)
		case http.StatusText(row.Status) == "" || row.Status < 400:
			t.Errorf("%s: HTTP status %d", code, row.Status)
		case row.RPC == 0 || row.ETH == 0:
			t.Errorf("%s: JSON-RPC codes %d (/rpc) %d (/eth)", code, row.RPC, row.ETH)
		}
	}
	for code := range errorTable {
		if _, ok := codes[code]; !ok {
			t.Errorf("errorTable has a row for %s, which no package declares", code)
		}
	}
}

// TestErrorSurfacesUseTheTable: REST, the UI, /rpc and /eth take their
// answer for a code from errorTable, not from a table of their own.
func TestErrorSurfacesUseTheTable(t *testing.T) {
	for code, row := range errorTable {
		err := countersign.Errorf(code, "detail")
		if c, r := errorRowOf(err); c != code || r != row {
			t.Errorf("errorRowOf(%s) = %s %+v", code, c, r)
		}
		if got := daemonRPCError(err).(*rpcError).Code; got != row.RPC {
			t.Errorf("/rpc %s: %d, table says %d", code, got, row.RPC)
		}
		if got := toRPCError(err).Code; got != row.ETH {
			t.Errorf("/eth %s: %d, table says %d", code, got, row.ETH)
		}
	}
	// the EIP-1193 answers are built in eth.go and are no row's code on
	// /eth, so a wallet can tell them from a countersign error
	for _, row := range errorTable {
		if row.ETH == rpcUserRejected || row.ETH == rpcUnauthorized || row.ETH == rpcPending {
			t.Errorf("a table row uses EIP-1193 / pending code %d on /eth", row.ETH)
		}
	}
	if _, row := errorRowOf(countersign.Errorf("NO_SUCH_CODE", "x")); row != errorTable[countersign.Internal] {
		t.Errorf("a code without a row is not answered as Internal: %+v", row)
	}
}
