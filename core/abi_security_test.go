package core

import (
	"context"
	"encoding/json"
	"errors"
	"math/big"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/abi"

	"github.com/countersign/countersign"
)

// abiStubChain answers ChainID only: every refusal under test happens while
// the request is validated, before the chain is asked anything, so a
// request that got through fails the assertion instead of reaching a node.
type abiStubChain struct{ countersign.Chain }

var errABIUnreached = errors.New("stub chain: validation should have refused this request")

func (abiStubChain) ChainID(context.Context) (*big.Int, error)      { return big.NewInt(31337), nil }
func (abiStubChain) CodeAt(context.Context, string) ([]byte, error) { return nil, errABIUnreached }

// newABIAgent returns a service and an agent principal that may prepare.
func newABIAgent(t *testing.T) (*Service, *Principal, context.Context) {
	t.Helper()
	svc, ctx := newStubService(t, abiStubChain{})
	const pw = "correct horse battery staple"
	u, err := svc.Register(ctx, "abi-owner", pw)
	if err != nil {
		t.Fatal(err)
	}
	w, err := svc.CreateWallet(ctx, &Principal{User: u}, pw, "w")
	if err != nil {
		t.Fatal(err)
	}
	a := &countersign.Agent{ID: "7a1c1e5e-0a55-4a55-9d55-0000000000ab", OwnerID: u.ID, Name: "agent", WalletID: w.ID,
		KeyHash: make([]byte, 32), KeyPrefix: "cs_test", CreatedAt: time.Unix(1_800_000_000, 0)}
	if err := svc.store.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	return svc, &Principal{User: u, Agent: a}, ctx
}

// abiCall is a contract_call prepare request calling f with the given
// inputs (a JSON array of ABI parameters) and arguments.
func abiCall(inputs, args string) *PrepareRequest {
	return &PrepareRequest{Type: "contract_call", ContractAddress: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
		ContractABI:  json.RawMessage(`[{"type":"function","name":"f","stateMutability":"nonpayable","inputs":` + inputs + `,"outputs":[]}]`),
		FunctionName: "f", FunctionArgs: json.RawMessage(args)}
}

// prepareRefused runs one prepare and asserts a BadRequest, quickly, that
// allocated less than 64 MiB, and that no transaction was stored.
func prepareRefused(t *testing.T, svc *Service, agent *Principal, ctx context.Context, req *PrepareRequest, detail string) {
	t.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	start := time.Now()
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = errors.New("panic") // the HTTP layer answers 500
			}
		}()
		_, err = svc.Prepare(ctx, agent, req, "")
	}()
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<20 {
		t.Fatalf("refusing it allocated %d MiB (err = %v)", grew>>20, err)
	}
	if elapsed > 2*time.Second {
		t.Fatalf("refusing it took %v (err = %v)", elapsed, err)
	}
	if countersign.ErrorCode(err) != countersign.BadRequest || !strings.Contains(countersign.ErrorDetail(err), detail) {
		t.Fatalf("err = %v, want BAD_REQUEST mentioning %q", err, detail)
	}
	if list, err := svc.Transactions(ctx, &Principal{User: agent.User}, countersign.TxFilter{Limit: 10}); err != nil || len(list) != 0 {
		t.Fatalf("a refused request stored %d transactions (%v)", len(list), err)
	}
}

// TestSecurity_ABIHugeArrays performs finding 13 through Prepare, the path
// of an agent's contract_call: fixed-array types far larger than any
// request are refused with a clear BadRequest before anything is
// allocated. On the old code the 2^40 cases died of a fatal out-of-memory
// error (no recover catches it), the 2^28 case allocated 256 MiB before it
// was refused, and uint256[2^62] panicked.
func TestSecurity_ABIHugeArrays(t *testing.T) {
	svc, agent, ctx := newABIAgent(t)
	for name, c := range map[string]struct{ inputs, args string }{
		"uint8[2^40][1]":          {`[{"name":"x","type":"uint8[1099511627776][1]"}]`, `[[[]]]`},
		"tuple of uint8[2^40]":    {`[{"name":"t","type":"tuple","components":[{"name":"x","type":"uint8[1099511627776]"}]}]`, `[[[]]]`},
		"tuple[1] of uint8[2^40]": {`[{"name":"t","type":"tuple[1]","components":[{"name":"x","type":"uint8[1099511627776]"}]}]`, `[[[[]]]]`},
		"uint8[2^28][1]":          {`[{"name":"x","type":"uint8[268435456][1]"}]`, `[[[]]]`},
		"uint256[2^62]":           {`[{"name":"x","type":"uint256[4611686018427387904]"}]`, `[[]]`},
		"uint256[2^62] in tuple":  {`[{"name":"t","type":"tuple","components":[{"name":"x","type":"uint256[4611686018427387904]"}]}]`, `[[[]]]`},
		"product of small arrays": {`[{"name":"x","type":"uint256[4096][4096][4096]"}]`, `[[[[]]]]`},
		"beyond int64":            {`[{"name":"x","type":"uint8[99999999999999999999999]"}]`, `[[]]`},
	} {
		t.Run(name, func(t *testing.T) {
			prepareRefused(t, svc, agent, ctx, abiCall(c.inputs, c.args), "too large")
		})
	}
}

// TestSecurity_ABIIntZero performs finding 15: int0 and uint0 parse in
// go-ethereum, and the old toInt computed 2^(Size-1) with Size-1
// underflowed and panicked (a 500).
func TestSecurity_ABIIntZero(t *testing.T) {
	svc, agent, ctx := newABIAgent(t)
	for _, typ := range []string{"int0", "uint0", "int7", "uint264", "int300", "bytes0", "bytes33", "uint008"} {
		t.Run(typ, func(t *testing.T) {
			prepareRefused(t, svc, agent, ctx, abiCall(`[{"name":"x","type":"`+typ+`"}]`, `["0"]`), typ)
		})
	}
	// toInt on its own refuses them too, whoever calls it.
	for _, size := range []int{0, 7, 264} {
		m := abiMethodOfType(t, "uint8")
		m.Inputs[0].Type.Size = size
		if _, err := toInt(m.Inputs[0].Type, "0", "x"); countersign.ErrorCode(err) != countersign.BadRequest {
			t.Fatalf("toInt with size %d: %v", size, err)
		}
	}
}

// TestSecurity_ABIDeepNesting: a type nested tens of thousands deep is a
// small request, but go-ethereum's parser is quadratic in it and every
// level's reflect type carries the whole name, so building the value type
// needs gigabytes (on the old code the 60000-bracket case died of a fatal
// out-of-memory error). Depth is bounded before parsing.
func TestSecurity_ABIDeepNesting(t *testing.T) {
	svc, agent, ctx := newABIAgent(t)
	deep := `[{"name":"x","type":"uint8` + strings.Repeat("[]", 60000) + `"}]`
	prepareRefused(t, svc, agent, ctx, abiCall(deep, `[[]]`), "longer than")
	comps := `{"name":"x","type":"uint8[]"}`
	for range 3000 {
		comps = `{"name":"t","type":"tuple[]","components":[` + comps + `]}`
	}
	prepareRefused(t, svc, agent, ctx, abiCall(`[`+comps+`]`, `[[]]`), "nested")
	nested := `[{"name":"x","type":"uint8[1][1][1][1][1][1][1][1][1]"}]`
	prepareRefused(t, svc, agent, ctx, abiCall(nested, `[[[[[[[[[["1"]]]]]]]]]]`), "nested")
	comps = `{"name":"x","type":"uint8"}`
	for range 9 { // nine tuple levels

		comps = `{"name":"t","type":"tuple","components":[` + comps + `]}`
	}
	prepareRefused(t, svc, agent, ctx, abiCall(`[`+comps+`]`, `[[[[[[[[["1"]]]]]]]]]`), "nested")
}

// TestSecurity_ABIOverloads: go-ethereum names the n-th overload of f by
// trying f0, f1, … in turn, quadratic in the number of overloads; an ABI
// with thousands of them is refused before parsing.
func TestSecurity_ABIOverloads(t *testing.T) {
	svc, agent, ctx := newABIAgent(t)
	var fns []string
	for range 6000 {
		fns = append(fns, `{"type":"function","name":"f","inputs":[]}`)
	}
	req := abiCall(`[]`, `[]`)
	req.ContractABI = json.RawMessage("[" + strings.Join(fns, ",") + "]")
	prepareRefused(t, svc, agent, ctx, req, "entries")
}

func abiMethodOfType(t *testing.T, typ string) abi.Method {
	t.Helper()
	a, _, err := ParseABI(json.RawMessage(`[{"type":"function","name":"f","inputs":[{"name":"x","type":"` + typ + `"}],"outputs":[]}]`))
	if err != nil {
		t.Fatal(err)
	}
	return a.Methods["f"]
}

// TestABITypeBounds: the grammar is strict and the bounds are where the
// comments say; ABIs of real contracts (nested tuples, dynamic arrays,
// the largest allowed static array) still work end to end.
func TestABITypeBounds(t *testing.T) {
	ok := map[string]struct{ inputs, args string }{
		"ok/max static array": {`[{"name":"x","type":"bool[8192]"}]`, ""},
		"ok/nested tuples": {`[{"name":"o","type":"tuple[]","components":[{"name":"a","type":"address"},{"name":"i","type":"tuple","components":[{"name":"v","type":"uint256[2]"},{"name":"b","type":"bytes"}]}]}]`,
			`[[{"a":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","i":{"v":["1","2"],"b":"0x01"}}]]`},
		"ok/depth 8":         {`[{"name":"x","type":"uint8[1][1][1][1][1][1][1][]"}]`, `[[[[[[[[["1"]]]]]]]]]`},
		"ok/contract type":   {`[{"name":"x","type":"address","internalType":"contract IERC20"}]`, `["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"]`},
		"ok/function as 24B": {`[{"name":"x","type":"function"}]`, `["0x` + strings.Repeat("11", 24) + `"]`},
	}
	for name, c := range ok {
		t.Run(name, func(t *testing.T) {
			a, _, err := ParseABI(abiCall(c.inputs, "").ContractABI)
			if err != nil {
				t.Fatal(err)
			}
			if c.args == "" {
				return
			}
			data, err := EncodeCall(a.Methods["f"], json.RawMessage(c.args))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Methods["f"].Inputs.Unpack(data[4:]); err != nil {
				t.Fatal(err)
			}
		})
	}
	for name, typ := range map[string]string{
		"fail/array 8193":         "bool[8193]",
		"fail/words 8193":         "uint256[4097][2]",
		"fail/zero length":        "uint8[0]",
		"fail/leading zero":       "uint8[01]",
		"fail/space":              "uint8[ 5]",
		"fail/suffix":             "uint8abc",
		"fail/sign":               "uint8[-1]",
		"fail/unclosed":           "uint8[2",
		"fail/stray bracket":      "uint8]2[",
		"fail/uint":               "uint",
		"fail/fixed":              "fixed128x18",
		"fail/empty":              "",
		"fail/tuple no comps":     "tuple",
		"fail/bytes leading zero": "bytes08",
		"fail/unknown":            "nonsense",
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := ParseABI(abiCall(`[{"name":"x","type":"`+typ+`"}]`, "").ContractABI); countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("ParseABI(%s): %v", typ, err)
			}
		})
	}
	// two inputs, each within bounds, too large together
	if _, _, err := ParseABI(abiCall(`[{"name":"x","type":"uint256[5000]"},{"name":"y","type":"uint256[5000]"}]`, "").ContractABI); countersign.ErrorCode(err) != countersign.BadRequest {
		t.Fatalf("inputs too large together: %v", err)
	}
	// EncodeCall checks a method that did not come from ParseABI too.
	m := abiMethodOfType(t, "uint8[2][1]")
	m.Inputs[0].Type.Elem.Size = 1 << 40
	if _, err := EncodeCall(m, json.RawMessage(`[[[]]]`)); countersign.ErrorCode(err) != countersign.BadRequest {
		t.Fatalf("EncodeCall of a huge method: %v", err)
	}
}

// TestSecurity_ABINamesRefuseBidi: function, argument and component names
// from the agent's ABI are shown to the approver in the decoded call, so a
// bidi override or an invisible character in them is refused like one in a
// memo. On the old code they were stored and displayed.
func TestSecurity_ABINamesRefuseBidi(t *testing.T) {
	svc, agent, ctx := newABIAgent(t)
	for name, c := range map[string]struct{ abi, fn string }{
		"function rlo":   {`[{"type":"function","name":"safe\u202eelfsnart","inputs":[]}]`, "safe\u202eelfsnart"},
		"argument zwsp":  {`[{"type":"function","name":"f","inputs":[{"name":"amo\u200bunt","type":"uint8"}]}]`, "f"},
		"component nul":  {`[{"type":"function","name":"f","inputs":[{"name":"t","type":"tuple","components":[{"name":"x\u0000","type":"uint8"}]}]}]`, "f"},
		"event tag char": {`[{"type":"function","name":"f","inputs":[]},{"type":"event","name":"E\U000E0041","inputs":[]}]`, "f"},
	} {
		t.Run(name, func(t *testing.T) {
			req := abiCall(`[]`, `[]`)
			req.ContractABI, req.FunctionName = json.RawMessage(c.abi), c.fn
			prepareRefused(t, svc, agent, ctx, req, "contract_abi")
		})
	}
}
