package core

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"

	"github.com/countersign/countersign"
)

// Bounds on agent-supplied ABIs. Every type is checked against them before
// go-ethereum parses it and before anything is allocated for it: a fixed
// array type is a promise of that many values, and the encoder allocates
// the whole array up front (uint8[2^40][1] is a terabyte), which kills the
// process with an out-of-memory error no recover can catch.
const (
	// maxABIElements bounds the values one call may carry, so a small
	// request cannot make the encoder build a huge structure.
	maxABIElements = 1024
	// maxABIWords bounds the minimum ABI encoding of any one type, and of a
	// function's inputs together, in 32-byte words: 256 KiB, the largest
	// request body, so no accepted type is larger than a request could
	// ever fill. In Go memory every word is at most 32 bytes (a [32]byte),
	// so allocating any accepted value costs at most 256 KiB.
	maxABIWords = (256 << 10) / 32
	// maxABIDepth bounds the array dimensions plus tuple levels of a type;
	// real contracts stay far below it, and it keeps the recursion (ours
	// and go-ethereum's) shallow.
	maxABIDepth = 8
	// maxABISize, maxABIEntries and maxABIOverloads bound the ABI itself:
	// go-ethereum renames overloads one candidate name at a time, which is
	// quadratic in the number of functions sharing a name.
	maxABISize      = 256 << 10
	maxABIEntries   = 2048
	maxABIOverloads = 32
	maxABITypeLen   = 128
)

func badArg(format string, args ...any) error {
	return countersign.Errorf(countersign.BadRequest, format, args...)
}

// ParseABI parses a contract ABI given as a JSON array (or a JSON string
// holding one). Every type in it is validated and bounded first (see
// checkABIArg), so what go-ethereum then builds is small.
func ParseABI(raw json.RawMessage) (abi.ABI, string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return abi.ABI{}, "", badArg("contract_abi is required")
	}
	if len(raw) > maxABISize {
		return abi.ABI{}, "", badArg("contract_abi is larger than %d KiB", maxABISize>>10)
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return abi.ABI{}, "", badArg("contract_abi must be a JSON array or a string holding one")
		}
		raw = json.RawMessage(s)
	}
	// The same shape go-ethereum decodes (its ArgumentMarshaling, through
	// encoding/json), so both read the same types from the same bytes.
	var entries []struct {
		Type, Name      string
		Inputs, Outputs []abi.ArgumentMarshaling
	}
	if err := json.Unmarshal(raw, &entries); err != nil {
		return abi.ABI{}, "", badArg("contract_abi is not a valid ABI: it must be a JSON array of functions, events and errors")
	}
	if len(entries) > maxABIEntries {
		return abi.ABI{}, "", badArg("contract_abi has %d entries (limit %d)", len(entries), maxABIEntries)
	}
	names := map[string]int{}
	for _, e := range entries {
		if err := checkABIName("the name of an entry", e.Name); err != nil {
			return abi.ABI{}, "", err
		}
		if names[e.Name]++; names[e.Name] > maxABIOverloads {
			return abi.ABI{}, "", badArg("contract_abi has more than %d entries named %q", maxABIOverloads, truncate(e.Name, 64))
		}
		for _, list := range [][]abi.ArgumentMarshaling{e.Inputs, e.Outputs} {
			var total int
			for i, arg := range list {
				w, err := checkABIArg(arg, abiArgPath(e.Name, arg.Name, i), 0)
				if err != nil {
					return abi.ABI{}, "", err
				}
				if total += w; total > maxABIWords {
					return abi.ABI{}, "", badArg("contract_abi: the arguments of %q are too large together: their encoding would exceed %d bytes", truncate(e.Name, 64), maxABIWords*32)
				}
			}
		}
	}
	a, err := parseABIJSON(raw)
	if err != nil {
		return abi.ABI{}, "", badArg("contract_abi is not a valid ABI: %v", err)
	}
	for _, m := range a.Methods {
		if err := checkArgs(m); err != nil {
			return abi.ABI{}, "", err
		}
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return abi.ABI{}, "", badArg("contract_abi is not valid JSON")
	}
	return a, compact.String(), nil
}

// parseABIJSON is go-ethereum's parser behind a recover: the types are
// already bounded, but a panic on some input nobody foresaw must be a 400,
// not a 500.
func parseABIJSON(raw []byte) (a abi.ABI, err error) {
	defer func() {
		if r := recover(); r != nil {
			a, err = abi.ABI{}, errors.New("unsupported type")
		}
	}()
	return abi.JSON(bytes.NewReader(raw))
}

// checkABIName applies the rules of all approver-facing text (CheckText) to
// a name from the ABI: names reach the approver's screen in the decoded
// call, so control, bidirectional and invisible characters never get in.
func checkABIName(what, name string) error {
	return CheckText("contract_abi: "+what, name, maxABITypeLen, false)
}

func abiArgPath(fn, arg string, i int) string {
	if arg == "" {
		arg = fmt.Sprintf("#%d", i)
	}
	return fmt.Sprintf("%q argument %q", truncate(fn, 64), truncate(arg, 64))
}

// checkABIArg validates one ABI type as written, before go-ethereum sees
// it, and returns the words of its smallest encoding. The grammar is
// strict: go-ethereum's own parser is lenient ("uint8[ 5]" is an array of
// 5, "uint8abc" is a uint8, "bytes0" is bytes) and would compute a
// selector from the odd spelling.
func checkABIArg(arg abi.ArgumentMarshaling, path string, depth int) (int, error) {
	typ := arg.Type
	if err := checkABIName("the name of "+path, arg.Name); err != nil {
		return 0, err
	}
	if len(typ) > maxABITypeLen {
		return 0, badArg("contract_abi: %s has a type longer than %d characters", path, maxABITypeLen)
	}
	base, dims, err := splitABIType(typ)
	if errors.Is(err, errABIArrayLength) {
		return 0, badArg("contract_abi: %s has type %q, which is too large: %v", path, truncate(typ, 64), err)
	}
	if err != nil {
		return 0, badArg("contract_abi is not a valid ABI: %s has type %q: %v", path, truncate(typ, 64), err)
	}
	depth += len(dims)
	if base == "tuple" {
		depth++
	}
	if depth > maxABIDepth {
		return 0, badArg("contract_abi: %s has type %q, nested more than %d deep", path, truncate(typ, 64), maxABIDepth)
	}
	var w int
	switch base {
	case "address", "bool", "function":
		w = 1
	case "string", "bytes":
		w = 2 // offset and length
	case "tuple":
		if len(arg.Components) == 0 {
			return 0, badArg("contract_abi: %s is a tuple without components", path)
		}
		for i, c := range arg.Components {
			cw, err := checkABIArg(c, path+fmt.Sprintf(" component %q", abiArgName(c.Name, i)), depth)
			if err != nil {
				return 0, err
			}
			if w += cw; w > maxABIWords {
				return 0, abiTooLarge(path, typ)
			}
		}
	default:
		if err := checkElementary(base); err != nil {
			return 0, badArg("contract_abi is not a valid ABI: %s has type %q: %v", path, truncate(typ, 64), err)
		}
		w = 1
	}
	for _, k := range dims { // innermost first: uint8[2][3] is 3 of uint8[2]
		if k == 0 {
			w = 2 // a dynamic array's smallest encoding is empty: offset and length
			continue
		}
		if k > maxABIWords || w > maxABIWords/k { // both bounded, so w*k cannot overflow
			return 0, abiTooLarge(path, typ)
		}
		w *= k
	}
	return w, nil
}

func abiTooLarge(path, typ string) error {
	return badArg("contract_abi: %s has type %q, which is too large: its encoding would exceed %d bytes, more than a request can carry", path, truncate(typ, 64), maxABIWords*32)
}

var errABIArrayLength = errors.New("array length")

// splitABIType splits "uint8[2][]" into "uint8" and [2, 0] (0: dynamic).
// Lengths are decimal without leading zeros, from 1 to maxABIWords.
func splitABIType(typ string) (string, []int, error) {
	i := strings.IndexByte(typ, '[')
	if i < 0 {
		return typ, nil, nil
	}
	base, rest := typ[:i], typ[i:]
	var dims []int
	for rest != "" {
		end := strings.IndexByte(rest, ']')
		if rest[0] != '[' || end < 0 {
			return "", nil, errors.New("malformed array brackets")
		}
		digits := rest[1:end]
		rest = rest[end+1:]
		if digits == "" {
			dims = append(dims, 0)
			continue
		}
		if digits[0] == '0' || strings.Trim(digits, "0123456789") != "" {
			return "", nil, errors.New("array lengths must be positive decimal integers without leading zeros")
		}
		k, err := strconv.Atoi(digits)
		if err != nil || k > maxABIWords { // err: beyond the range of int
			return "", nil, fmt.Errorf("%w: %s is more than %d", errABIArrayLength, truncate(digits, 24), maxABIWords)
		}
		dims = append(dims, k)
	}
	return base, dims, nil
}

// checkElementary accepts intN/uintN (N a multiple of 8 from 8 to 256) and
// bytesN (N from 1 to 32), spelled canonically.
func checkElementary(base string) error {
	num := func(prefix string, lo, hi, step int) bool {
		d, ok := strings.CutPrefix(base, prefix)
		if !ok || d == "" || len(d) > 3 || d[0] == '0' || strings.Trim(d, "0123456789") != "" {
			return false
		}
		n, _ := strconv.Atoi(d)
		return n >= lo && n <= hi && n%step == 0
	}
	switch {
	case strings.HasPrefix(base, "uint"):
		if !num("uint", 8, 256, 8) {
			return errors.New("uint sizes are multiples of 8 from 8 to 256 (uint8 … uint256)")
		}
	case strings.HasPrefix(base, "int"):
		if !num("int", 8, 256, 8) {
			return errors.New("int sizes are multiples of 8 from 8 to 256 (int8 … int256)")
		}
	case strings.HasPrefix(base, "bytes"):
		if !num("bytes", 1, 32, 1) {
			return errors.New("fixed bytes sizes are from 1 to 32 (bytes1 … bytes32)")
		}
	default:
		return errors.New("unsupported type")
	}
	return nil
}

// checkArgs validates the parsed inputs of m (as checkType) before any of
// them is allocated. ParseABI has already checked the text; this guards
// EncodeCall against a method from anywhere else.
func checkArgs(m abi.Method) error {
	var total int
	for i, in := range m.Inputs {
		w, err := checkType(in.Type, 0)
		if err != nil {
			return badArg("%q: argument %q: %v", truncate(m.Sig, 64), abiArgName(in.Name, i), err)
		}
		if total += w; total > maxABIWords {
			return badArg("%q: the arguments are too large together: their encoding would exceed %d bytes", truncate(m.Sig, 64), maxABIWords*32)
		}
	}
	return nil
}

func abiArgName(name string, i int) string {
	if name == "" {
		return fmt.Sprintf("#%d", i)
	}
	return truncate(name, 64)
}

// checkType checks a parsed type: kinds and sizes the encoder supports,
// canonical spelling (what the selector was computed from), depth and the
// words of its smallest encoding, which it returns.
func checkType(t abi.Type, depth int) (int, error) {
	if depth > maxABIDepth {
		return 0, fmt.Errorf("type nested more than %d deep", maxABIDepth)
	}
	bad := func() (int, error) {
		return 0, fmt.Errorf("type %s is not supported", truncate(t.String(), 64))
	}
	var w int
	var canon string
	switch t.T {
	case abi.IntTy, abi.UintTy:
		if t.Size < 8 || t.Size > 256 || t.Size%8 != 0 {
			return bad()
		}
		canon, w = fmt.Sprintf("int%d", t.Size), 1
		if t.T == abi.UintTy {
			canon = "u" + canon
		}
	case abi.FixedBytesTy:
		if t.Size < 1 || t.Size > 32 {
			return bad()
		}
		canon, w = fmt.Sprintf("bytes%d", t.Size), 1
	case abi.AddressTy, abi.BoolTy, abi.FunctionTy:
		canon, w = map[byte]string{abi.AddressTy: "address", abi.BoolTy: "bool", abi.FunctionTy: "function"}[t.T], 1
	case abi.StringTy, abi.BytesTy:
		canon, w = map[byte]string{abi.StringTy: "string", abi.BytesTy: "bytes"}[t.T], 2
	case abi.SliceTy, abi.ArrayTy:
		if t.Elem == nil {
			return bad()
		}
		ew, err := checkType(*t.Elem, depth+1)
		if err != nil {
			return 0, err
		}
		if t.T == abi.SliceTy {
			canon, w = t.Elem.String()+"[]", 2
			break
		}
		if t.Size < 1 || t.Size > maxABIWords || ew > maxABIWords/t.Size {
			return 0, fmt.Errorf("type %s is too large: its encoding would exceed %d bytes", truncate(t.String(), 64), maxABIWords*32)
		}
		canon, w = t.Elem.String()+"["+strconv.Itoa(t.Size)+"]", ew*t.Size
	case abi.TupleTy:
		if len(t.TupleElems) == 0 || len(t.TupleElems) != len(t.TupleRawNames) {
			return bad()
		}
		parts := make([]string, len(t.TupleElems))
		for i, e := range t.TupleElems {
			ew, err := checkType(*e, depth+1)
			if err != nil {
				return 0, err
			}
			if w += ew; w > maxABIWords {
				return 0, fmt.Errorf("type %s is too large: its encoding would exceed %d bytes", truncate(t.String(), 64), maxABIWords*32)
			}
			parts[i] = e.String()
		}
		canon = "(" + strings.Join(parts, ",") + ")"
	default:
		return bad()
	}
	if t.String() != canon {
		return bad()
	}
	return w, nil
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
	if err := checkArgs(m); err != nil {
		return nil, err
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

// toABI converts one decoded JSON value to the Go value go-ethereum packs
// for type t, naming path in every error. budget counts the values still
// allowed in the whole call, so nesting cannot multiply the work.
func toABI(t abi.Type, v any, path string, budget *int) (reflect.Value, error) {
	*budget--
	if *budget < 0 {
		return reflect.Value{}, badArg("function_args has too many values (limit %d)", maxABIElements)
	}
	switch t.T {
	case abi.AddressTy, abi.BoolTy, abi.StringTy:
		return toABIScalar(t, v, path)
	case abi.IntTy, abi.UintTy:
		return toInt(t, v, path)
	case abi.BytesTy:
		b, err := hexArg(v, path)
		return reflect.ValueOf(b), err
	case abi.FixedBytesTy, abi.FunctionTy:
		return toABIFixedBytes(t, v, path)
	case abi.SliceTy, abi.ArrayTy:
		return toABIList(t, v, path, budget)
	case abi.TupleTy:
		return toABITuple(t, v, path, budget)
	default:
		return reflect.Value{}, badArg("%s: type %s is not supported", path, t)
	}
}

// toABIScalar is an address (0x-hex, EIP-55 checked), a bool or a string.
func toABIScalar(t abi.Type, v any, path string) (reflect.Value, error) {
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
	default: // abi.StringTy
		s, ok := v.(string)
		if !ok {
			return reflect.Value{}, badArg("%s: string expected", path)
		}
		return reflect.ValueOf(s), nil
	}
}

// toABIFixedBytes is bytesN, or a function (24 bytes: address ‖ selector),
// given as 0x-hex of exactly that length.
func toABIFixedBytes(t abi.Type, v any, path string) (reflect.Value, error) {
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
}

// toABIList is a fixed-size array (exactly t.Size elements) or a slice (at
// most maxABIElements), given as a JSON array.
func toABIList(t abi.Type, v any, path string, budget *int) (reflect.Value, error) {
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
}

// toABITuple is a tuple (struct), given as a JSON array of its elements in
// order or as an object with exactly its field names.
func toABITuple(t abi.Type, v any, path string, budget *int) (reflect.Value, error) {
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
	// int0 and uint0 parse, and Size-1 would underflow below; checkType
	// refuses them earlier, this keeps toInt safe on its own.
	if t.Size < 8 || t.Size > 256 || t.Size%8 != 0 {
		return reflect.Value{}, badArg("%s: type %s is not supported", path, t)
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case json.Number:
		s = x.String()
		// Length first: decimal parsing is quadratic, and a request may
		// hold a 256 KiB number.
		if len(s) > 80 {
			return reflect.Value{}, badArg("%s: %s is out of range", path, t)
		}
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
