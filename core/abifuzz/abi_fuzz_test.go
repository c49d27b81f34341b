// Package abifuzz holds the fuzz targets of core's ABI encoder. They live
// outside core because fuzzing instruments every package linked into the
// test binary, and core's own tests link the simulated chain and the
// pure-Go SQLite: there a fuzz target that does nothing runs at ~700
// executions a second and stalls for seconds whenever it minimises a new
// input; here, linking only core, the same target runs ~30 times faster.
package abifuzz

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/contracts"
	"github.com/countersign/countersign/core"
)

const testABI = `[
 {"type":"function","name":"f","stateMutability":"payable","inputs":[
   {"name":"a","type":"address"},{"name":"u8","type":"uint8"},{"name":"i","type":"int256"},{"name":"b","type":"bool"},
   {"name":"s","type":"string"},{"name":"bs","type":"bytes"},{"name":"b32","type":"bytes32"},{"name":"arr","type":"uint256[2]"},
   {"name":"sl","type":"address[]"},
   {"name":"t","type":"tuple","components":[{"name":"x","type":"uint64"},{"name":"y","type":"string"}]}],"outputs":[]},
 {"type":"function","name":"g","stateMutability":"nonpayable","inputs":[{"name":"x","type":"uint256"}],"outputs":[]},
 {"type":"function","name":"g","stateMutability":"nonpayable","inputs":[{"name":"x","type":"uint256"},{"name":"y","type":"uint256"}],"outputs":[]}
]`

const addr = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"

var okArgs = `["` + addr + `", 255, "-5", true, "hi", "0x0102", "0x` + strings.Repeat("ab", 32) + `", ["1","2"], ["` + addr + `"], {"x": "7", "y": "z"}]`

// encodeOrRefuse is the property both targets check: EncodeCall returns a
// BadRequest or calldata that starts with the selector and decodes back.
func encodeOrRefuse(t *testing.T, m abi.Method, args string) {
	data, err := core.EncodeCall(m, json.RawMessage(args))
	if err != nil {
		if countersign.ErrorCode(err) != countersign.BadRequest {
			t.Fatalf("non-BadRequest error: %v", err)
		}
		return
	}
	if len(data) < 4 || string(data[:4]) != string(m.ID) {
		t.Fatalf("calldata does not start with the selector of %s", m.Sig)
	}
	if _, err := m.Inputs.Unpack(data[4:]); err != nil {
		t.Fatalf("encoded calldata does not decode: %v", err)
	}
}

// FuzzEncodeCall feeds arbitrary JSON arguments to the encoder for a
// function with every argument kind: it must return a BadRequest or valid
// calldata that decodes back, never panic.
func FuzzEncodeCall(f *testing.F) {
	a, _, err := core.ParseABI(json.RawMessage(testABI))
	if err != nil {
		f.Fatal(err)
	}
	m := a.Methods["f"]
	f.Add(okArgs)
	f.Add(`[]`)
	f.Add(`[null,null,null,null,null,null,null,null,null,null]`)
	f.Add(`[1,2,3]`)
	f.Add(`["` + addr + `", 1` + strings.Repeat("0", 300) + `, "-5", true, "hi", "0x", "0x", ["1","2"], [], ["7","z"]]`)
	inc := contracts.MustLoad("Counter").ABI.Methods["increment"]
	f.Fuzz(func(t *testing.T, args string) {
		encodeOrRefuse(t, m, args)
		encodeOrRefuse(t, inc, args)
	})
}

// FuzzABI fuzzes what an agent controls in a contract_call: the ABI itself,
// the function name and the arguments, through the same calls Prepare
// makes. Whatever the ABI, parsing is a BadRequest or an ABI whose compact
// form parses again to the same functions, and encoding is a BadRequest
// or calldata that decodes back; never a panic, a hang, or an allocation
// big enough to kill the worker.
func FuzzABI(f *testing.F) {
	// Seeds are short on purpose: the fuzzer minimises every new input by
	// trying to delete each substring, quadratic in its length, and
	// reports no executions meanwhile.
	f.Add(`[{"type":"function","name":"g","inputs":[{"name":"x","type":"uint256"}]},{"type":"function","name":"g","inputs":[{"name":"x","type":"uint256"},{"name":"y","type":"uint256"}]}]`, "g(uint256,uint256)", `["1","2"]`)
	f.Add(`[{"type":"function","name":"increment","inputs":[],"outputs":[]}]`, "increment", `[]`)
	for _, s := range []struct{ typ, args string }{
		{"uint8[1099511627776][1]", `[[[]]]`},
		{"uint8[268435456][1]", `[[[]]]`},
		{"uint256[4611686018427387904]", `[[]]`},
		{"int0", `["0"]`},
		{"uint0", `["0"]`},
		{"uint8[2][]", `[[["1","2"]]]`},
		{"bytes32[3]", `[["0x` + strings.Repeat("00", 32) + `","0x` + strings.Repeat("11", 32) + `","0x` + strings.Repeat("22", 32) + `"]]`},
		{"function", `["0x` + strings.Repeat("11", 24) + `"]`},
	} {
		f.Add(`[{"type":"function","name":"f","inputs":[{"name":"x","type":"`+s.typ+`"}]}]`, "f", s.args)
	}
	f.Add(`[{"type":"function","name":"f","inputs":[{"name":"t","type":"tuple[]","components":[{"name":"x","type":"uint8[1099511627776]"},{"name":"y","type":"string"}]}]}]`, "f", `[[[[], "s"]]]`)
	f.Add(`[{"type":"function","name":"f","inputs":[{"name":"t","type":"tuple","components":[{"name":"a","type":"int16"},{"name":"b","type":"bytes"}]}]}]`, "f", `[{"a":"-3","b":"0x00"}]`)
	f.Fuzz(func(t *testing.T, abiJSON, name, args string) {
		a, compact, err := core.ParseABI(json.RawMessage(abiJSON))
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("ParseABI: non-BadRequest error: %v", err)
			}
			return
		}
		// What is stored is what the reviewer later parses: it must parse
		// the same way again.
		again, _, err := core.ParseABI(json.RawMessage(compact))
		if err != nil {
			t.Fatalf("the compact ABI does not parse again: %v", err)
		}
		for n, m := range a.Methods {
			if again.Methods[n].Sig != m.Sig {
				t.Fatalf("method %s is %s after a round trip", m.Sig, again.Methods[n].Sig)
			}
		}
		var nargs []json.RawMessage
		_ = json.Unmarshal([]byte(args), &nargs)
		m, err := core.FindMethod(a, name, len(nargs))
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("FindMethod: non-BadRequest error: %v", err)
			}
			return
		}
		encodeOrRefuse(t, m, args)
	})
}
