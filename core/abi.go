package core

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"reflect"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/countersign/countersign"
)

// maxABIElements bounds the values one call may carry, so a small request
// cannot make the encoder build a huge structure.
const maxABIElements = 1024

func badArg(format string, args ...any) error {
	return countersign.Errorf(countersign.BadRequest, format, args...)
}

// ParseABI parses a contract ABI given as a JSON array (or a JSON string
// holding one).
func ParseABI(raw json.RawMessage) (abi.ABI, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return abi.ABI{}, "", badArg("contract_abi is required")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return abi.ABI{}, "", badArg("contract_abi must be a JSON array or a string holding one")
		}
		raw = json.RawMessage(s)
	}
	a, err := abi.JSON(bytes.NewReader(raw))
	if err != nil {
		return abi.ABI{}, "", badArg("contract_abi is not a valid ABI: %v", err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return abi.ABI{}, "", badArg("contract_abi is not valid JSON")
	}
	return a, compact.String(), nil
}

// FindMethod finds a function by name ("transfer") or signature
// ("transfer(address,uint256)"). An overloaded name is resolved by the
// number of arguments; if that is still ambiguous the caller must use the
// signature.
func FindMethod(a abi.ABI, name string, nargs int) (abi.Method, error) {
	if name == "" {
		return abi.Method{}, badArg("function_name is required")
	}
	var found []abi.Method
	for _, m := range a.Methods {
		if strings.Contains(name, "(") {
			if m.Sig == strings.ReplaceAll(name, " ", "") {
				return m, nil
			}
			continue
		}
		if m.RawName == name {
			found = append(found, m)
		}
	}
	if len(found) == 0 {
		return abi.Method{}, badArg("function %q is not in contract_abi", name)
	}
	if len(found) == 1 {
		return found[0], nil
	}
	var match []abi.Method
	for _, m := range found {
		if len(m.Inputs) == nargs {
			match = append(match, m)
		}
	}
	if len(match) != 1 {
		return abi.Method{}, badArg("function %q is overloaded: give its signature, e.g. %q", name, found[0].Sig)
	}
	return match[0], nil
}

// EncodeCall ABI-encodes a call of m with arguments given as JSON values:
// integers as decimal strings (or JSON numbers within 2^53), addresses and
// bytes as 0x-hex, bools, strings, arrays, and tuples as objects or arrays.
func EncodeCall(m abi.Method, rawArgs json.RawMessage) ([]byte, error) {
	var args []any
	if len(bytes.TrimSpace(rawArgs)) > 0 && string(bytes.TrimSpace(rawArgs)) != "null" {
		dec := json.NewDecoder(bytes.NewReader(rawArgs))
		dec.UseNumber()
		if err := dec.Decode(&args); err != nil {
			return nil, badArg("function_args must be a JSON array")
		}
		if dec.More() {
			return nil, badArg("function_args must be a single JSON array")
		}
	}
	if len(args) != len(m.Inputs) {
		return nil, badArg("%s takes %d arguments, got %d", m.Sig, len(m.Inputs), len(args))
	}
	budget := maxABIElements
	vals := make([]any, len(args))
	for i, in := range m.Inputs {
		name := in.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i)
		}
		v, err := toABI(in.Type, args[i], "argument "+name, &budget)
		if err != nil {
			return nil, err
		}
		vals[i] = v.Interface()
	}
	packed, err := m.Inputs.Pack(vals...)
	if err != nil {
		return nil, badArg("cannot encode arguments for %s: %v", m.Sig, err)
	}
	return append(append([]byte{}, m.ID...), packed...), nil
}

// ParseAddress parses a 0x-hex address. Mixed case must carry a valid
// EIP-55 checksum; all-lower and all-upper are accepted as unchecksummed.
func ParseAddress(field, s string) (common.Address, error) {
	if s == "" {
		return common.Address{}, badArg("%s is required", field)
	}
	if !common.IsHexAddress(s) || !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return common.Address{}, badArg("%s is not a 0x-prefixed 20-byte hex address: %q", field, truncate(s, 64))
	}
	a := common.HexToAddress(s)
	body := s[2:]
	if body != strings.ToLower(body) && body != strings.ToUpper(body) && a.Hex() != s {
		return common.Address{}, badArg("%s has an invalid EIP-55 checksum (did you mean %s?)", field, a.Hex())
	}
	return a, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func toABI(t abi.Type, v any, path string, budget *int) (reflect.Value, error) {
	*budget--
	if *budget < 0 {
		return reflect.Value{}, badArg("function_args has too many values (limit %d)", maxABIElements)
	}
	switch t.T {
	case abi.AddressTy:
		s, ok := v.(string)
		if !ok {
			return reflect.Value{}, badArg("%s: %s must be a 0x-hex string", path, t)
		}
		a, err := ParseAddress(path, s)
		return reflect.ValueOf(a), err
	case abi.BoolTy:
		b, ok := v.(bool)
		if !ok {
			return reflect.Value{}, badArg("%s: bool must be true or false", path)
		}
		return reflect.ValueOf(b), nil
	case abi.StringTy:
		s, ok := v.(string)
		if !ok {
			return reflect.Value{}, badArg("%s: string expected", path)
		}
		return reflect.ValueOf(s), nil
	case abi.IntTy, abi.UintTy:
		return toInt(t, v, path)
	case abi.BytesTy:
		b, err := hexArg(v, path)
		return reflect.ValueOf(b), err
	case abi.FixedBytesTy, abi.FunctionTy:
		size := t.Size
		if t.T == abi.FunctionTy {
			size = 24
		}
		b, err := hexArg(v, path)
		if err != nil {
			return reflect.Value{}, err
		}
		if len(b) != size {
			return reflect.Value{}, badArg("%s: %s needs exactly %d bytes, got %d", path, t, size, len(b))
		}
		arr := reflect.New(t.GetType()).Elem()
		reflect.Copy(arr, reflect.ValueOf(b))
		return arr, nil
	case abi.SliceTy, abi.ArrayTy:
		list, ok := v.([]any)
		if !ok {
			return reflect.Value{}, badArg("%s: %s must be a JSON array", path, t)
		}
		var out reflect.Value
		if t.T == abi.ArrayTy {
			if len(list) != t.Size {
				return reflect.Value{}, badArg("%s: %s needs %d elements, got %d", path, t, t.Size, len(list))
			}
			out = reflect.New(t.GetType()).Elem()
		} else {
			if len(list) > maxABIElements {
				return reflect.Value{}, badArg("%s: too many elements", path)
			}
			out = reflect.MakeSlice(t.GetType(), len(list), len(list))
		}
		for i, e := range list {
			ev, err := toABI(*t.Elem, e, fmt.Sprintf("%s[%d]", path, i), budget)
			if err != nil {
				return reflect.Value{}, err
			}
			out.Index(i).Set(ev)
		}
		return out, nil
	case abi.TupleTy:
		out := reflect.New(t.GetType()).Elem()
		var get func(i int) (any, bool)
		switch x := v.(type) {
		case []any:
			if len(x) != len(t.TupleElems) {
				return reflect.Value{}, badArg("%s: tuple needs %d elements, got %d", path, len(t.TupleElems), len(x))
			}
			get = func(i int) (any, bool) { return x[i], true }
		case map[string]any:
			if len(x) != len(t.TupleElems) {
				return reflect.Value{}, badArg("%s: tuple needs the fields %s", path, strings.Join(t.TupleRawNames, ", "))
			}
			get = func(i int) (any, bool) { e, ok := x[t.TupleRawNames[i]]; return e, ok }
		default:
			return reflect.Value{}, badArg("%s: tuple must be a JSON object or array", path)
		}
		for i, et := range t.TupleElems {
			e, ok := get(i)
			if !ok {
				return reflect.Value{}, badArg("%s: missing tuple field %q", path, t.TupleRawNames[i])
			}
			ev, err := toABI(*et, e, path+"."+t.TupleRawNames[i], budget)
			if err != nil {
				return reflect.Value{}, err
			}
			out.Field(i).Set(ev)
		}
		return out, nil
	default:
		return reflect.Value{}, badArg("%s: type %s is not supported", path, t)
	}
}

func hexArg(v any, path string) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, badArg("%s: bytes must be a 0x-hex string", path)
	}
	b, err := hexutil.Decode(s)
	if err != nil {
		if s == "0x" {
			return []byte{}, nil
		}
		return nil, badArg("%s: invalid hex: %v", path, err)
	}
	return b, nil
}

func toInt(t abi.Type, v any, path string) (reflect.Value, error) {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
		if strings.ContainsAny(s, ".eE") {
			return reflect.Value{}, badArg("%s: %s must be an integer", path, t)
		}
		if n, ok := new(big.Int).SetString(s, 10); ok && n.BitLen() > 53 {
			return reflect.Value{}, badArg("%s: integers above 2^53 must be given as decimal strings", path)
		}
	default:
		return reflect.Value{}, badArg("%s: %s must be a decimal string", path, t)
	}
	if len(s) > 80 {
		return reflect.Value{}, badArg("%s: %s is out of range", path, t)
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return reflect.Value{}, badArg("%s: %q is not a decimal integer", path, truncate(s, 40))
	}
	lo, hi := new(big.Int), new(big.Int).Lsh(big.NewInt(1), uint(t.Size)) // [0, 2^size)
	if t.T == abi.IntTy {
		hi = new(big.Int).Lsh(big.NewInt(1), uint(t.Size-1))
		lo = new(big.Int).Neg(hi)
	}
	if n.Cmp(lo) < 0 || n.Cmp(hi) >= 0 {
		return reflect.Value{}, badArg("%s: %s is out of range for %s", path, truncate(s, 40), t)
	}
	rt := t.GetType()
	switch rt.Kind() {
	case reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return reflect.ValueOf(n.Int64()).Convert(rt), nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return reflect.ValueOf(n.Uint64()).Convert(rt), nil
	default:
		return reflect.ValueOf(n), nil
	}
}

// erc1271ABI is the contract-wallet signature check of ERC-1271.
var erc1271ABI = mustABI(`[{"type":"function","name":"isValidSignature","stateMutability":"view","inputs":[{"name":"hash","type":"bytes32"},{"name":"signature","type":"bytes"}],"outputs":[{"name":"magic","type":"bytes4"}]}]`)

func mustABI(s string) abi.ABI {
	a, err := abi.JSON(strings.NewReader(s))
	if err != nil {
		panic(err)
	}
	return a
}
