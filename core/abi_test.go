package core

import (
	"encoding/hex"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/countersign/countersign"
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

func TestEncodeCall(t *testing.T) {
	a, _, err := ParseABI(json.RawMessage(testABI))
	if err != nil {
		t.Fatal(err)
	}
	addr := "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
	okArgs := `["` + addr + `", 255, "-5", true, "hi", "0x0102", "0x` + strings.Repeat("ab", 32) + `", ["1","2"], ["` + addr + `"], {"x": "7", "y": "z"}]`
	m, err := FindMethod(a, "f", 10)
	if err != nil {
		t.Fatal(err)
	}
	data, err := EncodeCall(m, json.RawMessage(okArgs))
	if err != nil {
		t.Fatal(err)
	}
	// decode back and compare
	vals, err := m.Inputs.Unpack(data[4:])
	if err != nil {
		t.Fatal(err)
	}
	if vals[0].(common.Address).Hex() != addr || vals[1].(uint8) != 255 || vals[2].(*big.Int).Int64() != -5 || vals[4].(string) != "hi" {
		t.Fatalf("round trip: %v", vals)
	}
	if hex.EncodeToString(data[:4]) != hex.EncodeToString(m.ID) {
		t.Fatal("selector missing")
	}
	replace := func(i int, v string) string {
		var xs []json.RawMessage
		_ = json.Unmarshal([]byte(okArgs), &xs)
		xs[i] = json.RawMessage(v)
		b, _ := json.Marshal(xs)
		return string(b)
	}
	tests := map[string]string{
		"fail/bad checksum":          replace(0, `"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"`),
		"fail/short address":         replace(0, `"0x1234"`),
		"fail/uint8 overflow":        replace(1, `256`),
		"fail/uint8 negative":        replace(1, `"-1"`),
		"fail/fraction":              replace(1, `1.5`),
		"fail/number above 2^53":     replace(2, `9007199254740993`),
		"fail/int256 overflow":       replace(2, `"57896044618658097711785492504343953926634992332820282019728792003956564819968"`),
		"fail/bool as string":        replace(3, `"true"`),
		"fail/string as number":      replace(4, `5`),
		"fail/bytes not hex":         replace(5, `"zz"`),
		"fail/bytes32 short":         replace(6, `"0x01"`),
		"fail/fixed array length":    replace(7, `["1"]`),
		"fail/slice not array":       replace(8, `"x"`),
		"fail/tuple missing field":   replace(9, `{"x":"1","q":"2"}`),
		"fail/tuple wrong arity":     replace(9, `["1"]`),
		"fail/too few args":          `["` + addr + `"]`,
		"fail/not an array":          `{"a":1}`,
		"fail/trailing":              okArgs + " []",
		"fail/huge slice":            replace(8, "["+strings.Repeat(`"`+addr+`",`, 1100)+`"`+addr+`"]`),
		"ok/tuple as array":          replace(9, `["7","z"]`),
		"ok/empty bytes":             replace(5, `"0x"`),
		"ok/max uint8 as string":     replace(1, `"255"`),
		"ok/lowercase address":       replace(0, `"`+strings.ToLower(addr)+`"`),
		"ok/int256 min":              replace(2, `"-57896044618658097711785492504343953926634992332820282019728792003956564819968"`),
		"fail/empty string for uint": replace(1, `""`),
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := EncodeCall(m, json.RawMessage(args))
			if strings.HasPrefix(name, "ok/") {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestFindMethod(t *testing.T) {
	a, _, _ := ParseABI(json.RawMessage(testABI))
	if m, err := FindMethod(a, "g", 2); err != nil || len(m.Inputs) != 2 {
		t.Fatalf("overload by arity: %v", err)
	}
	if m, err := FindMethod(a, "g(uint256)", 0); err != nil || len(m.Inputs) != 1 {
		t.Fatalf("by signature: %v", err)
	}
	if _, err := FindMethod(a, "g", 3); err == nil {
		t.Fatal("ambiguous overload accepted")
	}
	if _, err := FindMethod(a, "nope", 0); err == nil {
		t.Fatal("unknown function accepted")
	}
	// the ABI may come as a JSON string too
	if _, _, err := ParseABI(json.RawMessage(`"[]"`)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{``, `null`, `{}`, `[{"type":"function","name":"h","inputs":[{"type":"nonsense"}]}]`, `"not json"`} {
		if _, _, err := ParseABI(json.RawMessage(bad)); err == nil {
			t.Errorf("ParseABI(%s) accepted", bad)
		}
	}
}

func TestParseAddress(t *testing.T) {
	for in, ok := range map[string]bool{
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed": true,
		"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed": true,
		"0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED": true,
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD": false,
		"5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed":   false,
		"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeA":   false,
		"0xZZZeb6053F3E94C9b9A09f33669435E7Ef1BeAed": false,
		"": false,
	} {
		if _, err := ParseAddress("to_address", in); (err == nil) != ok {
			t.Errorf("ParseAddress(%q) err = %v", in, err)
		}
	}
}

// The fuzz targets of this file's functions (FuzzEncodeCall, FuzzABI) are
// in core/abifuzz: fuzzing instruments every package in the test binary,
// and this package's tests link the simulated chain and SQLite, which made
// fuzzing here crawl (see the package comment there).
