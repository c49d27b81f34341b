package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/countersign/countersign"
)

// node is one JSON value with its object keys in document order. Parse
// builds the tree itself (rather than decoding into structs) so that it
// can refuse duplicate keys, which encoding/json silently resolves to the
// last one, and name the exact path of every problem.
type node struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	keys []string
	vals []*node
	arr  []*node
	s    string // string value, or a number's text
	b    bool
}

func (n *node) typeName() string {
	switch n.kind {
	case 'o':
		return "an object"
	case 'a':
		return "a list"
	case 's':
		return "a string"
	case 'n':
		return "a number"
	case 'b':
		return "a boolean"
	}
	return "null"
}

func bad(path, format string, args ...any) *countersign.Error {
	msg := fmt.Sprintf(format, args...)
	if path == "" {
		return countersign.Errorf(countersign.BadRequest, "policy: %s", msg)
	}
	return countersign.Errorf(countersign.BadRequest, "%s: %s", path, msg)
}

func readNode(dec *json.Decoder, path string, depth int) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, bad("", "not valid JSON (at byte %d): %v", dec.InputOffset(), err)
	}
	return readValue(dec, tok, path, depth)
}

func readValue(dec *json.Decoder, tok json.Token, path string, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, bad(path, "nested too deeply")
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			n := &node{kind: 'o'}
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, bad("", "not valid JSON (at byte %d): %v", dec.InputOffset(), err)
				}
				k, _ := kt.(string)
				kp := join(path, k)
				if seen[k] {
					return nil, bad(kp, "duplicate key")
				}
				seen[k] = true
				child, err := readNode(dec, kp, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, child)
			}
			if _, err := dec.Token(); err != nil {
				return nil, bad("", "not valid JSON (at byte %d): %v", dec.InputOffset(), err)
			}
			return n, nil
		case '[':
			n := &node{kind: 'a'}
			for dec.More() {
				child, err := readNode(dec, fmt.Sprintf("%s[%d]", path, len(n.arr)), depth+1)
				if err != nil {
					return nil, err
				}
				n.arr = append(n.arr, child)
			}
			if _, err := dec.Token(); err != nil {
				return nil, bad("", "not valid JSON (at byte %d): %v", dec.InputOffset(), err)
			}
			return n, nil
		}
	case string:
		return &node{kind: 's', s: v}, nil
	case json.Number:
		return &node{kind: 'n', s: string(v)}, nil
	case bool:
		return &node{kind: 'b', b: v}, nil
	case nil:
		return &node{kind: 'z'}, nil
	}
	return nil, bad(path, "unexpected JSON token")
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// fields walks an object's keys, refusing any that is not in known: a
// misspelt matcher must never silently match everything.
func fields(n *node, path, what string, known map[string]bool, f func(key string, v *node, path string) error) error {
	if n.kind != 'o' {
		return bad(path, "must be an object, not %s", n.typeName())
	}
	for i, k := range n.keys {
		kp := join(path, k)
		if !known[k] {
			return bad(kp, "unknown %s", what)
		}
		if err := f(k, n.vals[i], kp); err != nil {
			return err
		}
	}
	return nil
}

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

var (
	topFields    = set("rules", "default")
	ruleFields   = set("id", "when", "then", "quorum", "delay", "budget", "overflow")
	whenFields   = set("kind", "asset", "min_amount", "max_amount", "to", "not_to", "selectors", "chain_id", "typed_data", "new_recipient", "hours")
	budgetFields = set("max", "window", "scope")
	typedFields  = set("primary_type", "verifying_contract")
	hoursFields  = set("tz", "days", "from", "to")
)

// Parse parses and validates a policy document. Every error is a
// *countersign.Error with code BadRequest whose detail starts with the
// path of the offending field ("rules[2].budget.window: …").
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxDocument {
		return nil, bad("", "the document is larger than %d KiB", MaxDocument>>10)
	}
	// encoding/json would turn invalid bytes into U+FFFD: the stored
	// document and the one evaluated must be the same text.
	if !utf8.Valid(data) {
		return nil, bad("", "the document is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	root, err := readNode(dec, "", 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, bad("", "the document must be one JSON object with nothing after it")
	}
	p := &Policy{Default: Human}
	sawRules := false
	err = fields(root, "", "field", topFields, func(k string, v *node, path string) error {
		switch k {
		case "rules":
			sawRules = true
			return parseRules(v, path, p)
		case "default":
			o, err := parseOutcome(v, path)
			if err != nil {
				return err
			}
			// A default applies to requests no rule thought about: only a
			// human or a refusal is safe there. An owner who wants quorum
			// for everything else writes a last rule with an empty "when".
			if o != Human && o != Deny {
				return bad(path, "must be \"human\" or \"deny\" (write a last rule with an empty \"when\" for anything else)")
			}
			p.Default = o
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !sawRules {
		return nil, bad("rules", "is required (it may be an empty list)")
	}
	p.parsed = true
	return p, nil
}

func parseRules(v *node, path string, p *Policy) error {
	if v.kind != 'a' {
		return bad(path, "must be a list, not %s", v.typeName())
	}
	if len(v.arr) > MaxRules {
		return bad(path, "at most %d rules, not %d", MaxRules, len(v.arr))
	}
	ids := map[string]int{}
	p.Rules = make([]Rule, 0, len(v.arr))
	for i, rn := range v.arr {
		rp := fmt.Sprintf("%s[%d]", path, i)
		r, err := parseRule(rn, rp)
		if err != nil {
			return err
		}
		if j, dup := ids[r.ID]; dup {
			return bad(rp+".id", "duplicate rule id %q (also rules[%d])", r.ID, j)
		}
		ids[r.ID] = i
		p.Rules = append(p.Rules, r)
	}
	return nil
}

func parseRule(n *node, path string) (Rule, error) {
	var r Rule
	var sawID, sawThen, sawQuorum, sawOverflow bool
	err := fields(n, path, "field", ruleFields, func(k string, v *node, kp string) error {
		var err error
		switch k {
		case "id":
			sawID = true
			r.ID, err = ruleID(v, kp)
		case "when":
			r.When, err = parseWhen(v, kp)
		case "then":
			sawThen = true
			r.Then, err = parseOutcome(v, kp)
		case "quorum":
			sawQuorum = true
			r.Quorum, err = quorum(v, kp)
		case "delay":
			r.delayText, r.Delay, err = duration(v, kp)
		case "budget":
			r.Budget, err = parseBudget(v, kp)
		case "overflow":
			sawOverflow = true
			r.Overflow, err = parseOutcome(v, kp)
		}
		return err
	})
	if err != nil {
		return r, err
	}
	switch {
	case !sawID:
		return r, bad(path+".id", "is required")
	case !sawThen:
		return r, bad(path+".then", "is required")
	}
	if r.Then == Delay && r.delayText == "" {
		return r, bad(path+".delay", "is required when then is \"delay\" (e.g. \"15m\")")
	}
	if r.Then != Delay && r.delayText != "" {
		return r, bad(path+".delay", "is only allowed when then is \"delay\"")
	}
	if r.Budget != nil && r.Then == Deny {
		return r, bad(path+".budget", "a deny rule has nothing to budget")
	}
	if sawOverflow && r.Budget == nil {
		return r, bad(path+".overflow", "needs a budget")
	}
	if r.Budget != nil {
		if !sawOverflow {
			r.Overflow = Human
		}
		// Going over a budget must never be less guarded than staying in it.
		if r.Overflow != Deny && r.Overflow != Human && r.Overflow != Quorum {
			return r, bad(path+".overflow", "must be \"deny\", \"human\" or \"quorum\"")
		}
		// A budget counts base units of one asset: 10^16 is a cent's worth
		// of ether but ten billion USDC, so a budget that any token could
		// draw on would be no cap at all.
		if r.When.Asset == "" && !(len(r.When.Kind) == 1 && r.When.Kind[0] == KindNative) {
			return r, bad(path+".budget", "a budget counts base units of one asset: add \"asset\" to when (or \"kind\": [\"native\"])")
		}
	}
	needsQuorum := r.Then == Quorum || r.Overflow == Quorum
	if needsQuorum && !sawQuorum {
		return r, bad(path+".quorum", "is required when the rule can decide \"quorum\"")
	}
	if !needsQuorum && sawQuorum {
		return r, bad(path+".quorum", "is only allowed when then or overflow is \"quorum\"")
	}
	return r, nil
}

func ruleID(v *node, path string) (string, error) {
	if v.kind != 's' {
		return "", bad(path, "must be a string")
	}
	id := v.s
	if id == "" || len(id) > 64 {
		return "", bad(path, "must be 1 to 64 characters")
	}
	for i, c := range id {
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return "", bad(path, "may hold only a-z, 0-9, '-' and '_', starting with a letter or digit: %q", id)
		}
	}
	if id == DefaultRuleID {
		return "", bad(path, "%q is reserved for the document's default", id)
	}
	return id, nil
}

func parseOutcome(v *node, path string) (Outcome, error) {
	if v.kind != 's' {
		return "", bad(path, "must be a string")
	}
	switch o := Outcome(v.s); o {
	case Deny, Human, Quorum, Delay, Auto:
		return o, nil
	}
	return "", bad(path, "must be one of deny, human, quorum, delay, auto: %q", v.s)
}

func quorum(v *node, path string) (int, error) {
	if v.kind != 'n' || !isDigits(v.s) {
		return 0, bad(path, "must be a whole number")
	}
	q, err := strconv.Atoi(v.s)
	if err != nil || q < 1 || q > MaxQuorum {
		return 0, bad(path, "must be between 1 and %d", MaxQuorum)
	}
	return q, nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// duration parses "30s", "15m", "24h", "30d": one positive whole number
// and one unit. Windows are rolling, so "1d" is 24 hours back from now,
// never "since midnight".
func duration(v *node, path string) (string, time.Duration, error) {
	if v.kind != 's' {
		return "", 0, bad(path, "must be a string like \"15m\", \"24h\" or \"30d\"")
	}
	s := v.s
	if len(s) < 2 || len(s) > 12 {
		return "", 0, bad(path, "must be a number and a unit (s, m, h, d), like \"24h\": %q", s)
	}
	num, unit := s[:len(s)-1], s[len(s)-1]
	var u time.Duration
	switch unit {
	case 's':
		u = time.Second
	case 'm':
		u = time.Minute
	case 'h':
		u = time.Hour
	case 'd':
		u = 24 * time.Hour
	default:
		return "", 0, bad(path, "must end in a unit s, m, h or d: %q", s)
	}
	if !isDigits(num) || (len(num) > 1 && num[0] == '0') {
		return "", 0, bad(path, "must be a whole number and a unit, like \"24h\": %q", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return "", 0, bad(path, "must be greater than 0: %q", s)
	}
	if n > int64(MaxDuration/u) {
		return "", 0, bad(path, "must be at most 365 days: %q", s)
	}
	return s, time.Duration(n) * u, nil
}

func amount(v *node, path string) (*big.Int, error) {
	if v.kind != 's' {
		return nil, bad(path, "must be a decimal string of base units, e.g. \"1000000000000000000\"")
	}
	a, err := countersign.ParseAmount(path, v.s)
	if err != nil {
		return nil, err // already names path
	}
	return a, nil
}

func parseBudget(n *node, path string) (*Budget, error) {
	b := &Budget{Scope: ScopeAgent}
	err := fields(n, path, "field", budgetFields, func(k string, v *node, kp string) error {
		var err error
		switch k {
		case "max":
			b.Max, err = amount(v, kp)
		case "window":
			b.windowText, b.Window, err = duration(v, kp)
		case "scope":
			if v.kind != 's' || (v.s != string(ScopeAgent) && v.s != string(ScopeWallet)) {
				return bad(kp, "must be \"agent\" or \"wallet\"")
			}
			b.Scope = Scope(v.s)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	if b.Max == nil {
		return nil, bad(path+".max", "is required")
	}
	if b.windowText == "" {
		return nil, bad(path+".window", "is required (e.g. \"24h\")")
	}
	return b, nil
}

func list(v *node, path string) ([]*node, error) {
	if v.kind != 'a' {
		return nil, bad(path, "must be a list, not %s", v.typeName())
	}
	if len(v.arr) == 0 {
		// An empty list would match nothing; that is never what was meant.
		return nil, bad(path, "must not be empty (leave the matcher out to match anything)")
	}
	if len(v.arr) > maxList {
		return nil, bad(path, "at most %d entries", maxList)
	}
	return v.arr, nil
}

func address(v *node, path string) (string, error) {
	if v.kind != 's' || !isAddress(v.s) {
		return "", bad(path, "must be an address: \"0x\" and 40 hex digits")
	}
	return checkedAddress(v.s, path)
}

// checkedAddress lower-cases an address after checking its EIP-55
// checksum when it has one (mixed case): a typo in a deny list must not
// quietly deny nobody. All-lower and all-upper carry no checksum.
func checkedAddress(s, path string) (string, error) {
	lower := strings.ToLower(s)
	digits := s[2:]
	if digits != strings.ToLower(digits) && digits != strings.ToUpper(digits) {
		if want := checksumAddress(lower); s[2:] != want[2:] {
			return "", bad(path, "has an invalid EIP-55 checksum (did you mean %s?)", want)
		}
	}
	return "0x" + lower[2:], nil
}

func isAddress(s string) bool {
	return len(s) == 42 && (s[:2] == "0x" || s[:2] == "0X") && isHex(s[2:])
}

func isHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

func addresses(v *node, path string) ([]string, map[string]struct{}, error) {
	items, err := list(v, path)
	if err != nil {
		return nil, nil, err
	}
	out := make([]string, 0, len(items))
	m := make(map[string]struct{}, len(items))
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", path, i)
		a, err := address(it, ip)
		if err != nil {
			return nil, nil, err
		}
		if _, dup := m[a]; dup {
			return nil, nil, bad(ip, "duplicate %s", a)
		}
		m[a] = struct{}{}
		out = append(out, a)
	}
	return out, m, nil
}

func parseWhen(n *node, path string) (When, error) {
	var w When
	err := fields(n, path, "matcher", whenFields, func(k string, v *node, kp string) error {
		var err error
		switch k {
		case "kind":
			err = parseKinds(v, kp, &w)
		case "asset":
			if v.kind == 's' && v.s == AssetNative {
				w.Asset = AssetNative
				return nil
			}
			if v.kind != 's' || !isAddress(v.s) {
				return bad(kp, "must be \"native\" or a token address")
			}
			w.Asset, err = checkedAddress(v.s, kp)
		case "min_amount":
			w.MinAmount, err = amount(v, kp)
		case "max_amount":
			w.MaxAmount, err = amount(v, kp)
		case "to":
			w.To, w.to, err = addresses(v, kp)
		case "not_to":
			w.NotTo, w.notTo, err = addresses(v, kp)
		case "selectors":
			err = parseSelectors(v, kp, &w)
		case "chain_id":
			err = parseChainIDs(v, kp, &w)
		case "typed_data":
			w.TypedData, err = parseTypedDataMatch(v, kp)
		case "new_recipient":
			if v.kind != 'b' {
				return bad(kp, "must be true or false")
			}
			b := v.b
			w.NewRecipient = &b
		case "hours":
			w.Hours, err = parseHours(v, kp)
		}
		return err
	})
	if err != nil {
		return w, err
	}
	if w.MinAmount != nil && w.MaxAmount != nil && w.MinAmount.Cmp(w.MaxAmount) > 0 {
		return w, bad(path+".min_amount", "is greater than max_amount: the rule could never match")
	}
	return w, nil
}

// parseKinds reads the kind matcher into w.
func parseKinds(v *node, kp string, w *When) error {
	items, err := list(v, kp)
	if err != nil {
		return err
	}
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", kp, i)
		bit := kindBit(Kind(it.s))
		if it.kind != 's' || bit == 0 {
			return bad(ip, "must be one of native, erc20, contract_call, personal_sign, typed_data, x402")
		}
		if w.kinds&bit != 0 {
			return bad(ip, "duplicate %s", it.s)
		}
		w.kinds |= bit
		w.Kind = append(w.Kind, Kind(it.s))
	}
	return nil
}

// parseSelectors reads the selectors matcher into w.
func parseSelectors(v *node, kp string, w *When) error {
	items, err := list(v, kp)
	if err != nil {
		return err
	}
	w.selectors = make(map[string]struct{}, len(items))
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", kp, i)
		if it.kind != 's' || len(it.s) != 10 || it.s[:2] != "0x" || !isHex(it.s[2:]) {
			return bad(ip, "must be a 4-byte selector: \"0x\" and 8 hex digits, like \"0xa9059cbb\"")
		}
		s := strings.ToLower(it.s)
		if _, dup := w.selectors[s]; dup {
			return bad(ip, "duplicate %s", s)
		}
		w.selectors[s] = struct{}{}
		w.Selectors = append(w.Selectors, s)
	}
	return nil
}

// parseChainIDs reads the chain_id matcher into w.
func parseChainIDs(v *node, kp string, w *When) error {
	items, err := list(v, kp)
	if err != nil {
		return err
	}
	for i, it := range items {
		ip := fmt.Sprintf("%s[%d]", kp, i)
		if it.kind != 'n' || !isDigits(it.s) || it.s[0] == '0' {
			return bad(ip, "must be a positive whole number")
		}
		id, err := strconv.ParseInt(it.s, 10, 64)
		if err != nil {
			return bad(ip, "is too large")
		}
		for _, seen := range w.ChainID {
			if seen == id {
				return bad(ip, "duplicate %d", id)
			}
		}
		w.ChainID = append(w.ChainID, id)
	}
	return nil
}

// parseTypedDataMatch reads the typed_data matcher.
func parseTypedDataMatch(v *node, kp string) (*TypedDataMatch, error) {
	td := &TypedDataMatch{}
	err := fields(v, kp, "field", typedFields, func(k string, v *node, tp string) error {
		switch k {
		case "primary_type":
			if v.kind != 's' || !isIdentifier(v.s) {
				return bad(tp, "must be a type name like \"Permit\" (letters, digits, _ and $)")
			}
			td.PrimaryType = v.s
		case "verifying_contract":
			a, err := address(v, tp)
			if err != nil {
				return err
			}
			td.VerifyingContract = a
		}
		return nil
	})
	if err == nil && *td == (TypedDataMatch{}) {
		err = bad(kp, "needs primary_type or verifying_contract (use \"kind\": [\"typed_data\"] to match all typed data)")
	}
	return td, err
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

var dayText = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

func parseHours(n *node, path string) (*Hours, error) {
	h := &Hours{To: 24 * 60}
	var sawFrom, sawTo bool
	err := fields(n, path, "field", hoursFields, func(k string, v *node, kp string) error {
		switch k {
		case "tz":
			// "" and "Local" would mean the server's zone, which the owner
			// neither sees nor controls.
			if v.kind != 's' || v.s == "" || v.s == "Local" {
				return bad(kp, "must be an IANA time zone like \"Europe/Berlin\" or \"UTC\"")
			}
			loc, err := time.LoadLocation(v.s)
			if err != nil {
				return bad(kp, "unknown time zone %q", v.s)
			}
			h.TZ, h.loc = v.s, loc
		case "days":
			items, err := list(v, kp)
			if err != nil {
				return err
			}
			for i, it := range items {
				ip := fmt.Sprintf("%s[%d]", kp, i)
				d, ok := dayNames[it.s]
				if it.kind != 's' || !ok {
					return bad(ip, "must be one of mon, tue, wed, thu, fri, sat, sun")
				}
				if h.dayMask&(1<<d) != 0 {
					return bad(ip, "duplicate %s", it.s)
				}
				h.dayMask |= 1 << d
				h.Days = append(h.Days, d)
			}
		case "from", "to":
			m, ok := clock(v)
			if !ok || (k == "from" && m == 24*60) {
				return bad(kp, "must be a time \"HH:MM\" from 00:00 to 23:59 (\"24:00\" allowed for to)")
			}
			if k == "from" {
				h.From, sawFrom = m, true
			} else {
				h.To, sawTo = m, true
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if h.loc == nil {
		return nil, bad(path+".tz", "is required")
	}
	if sawFrom != sawTo {
		return nil, bad(path, "needs both from and to, or neither (the whole day)")
	}
	h.hasSpan = sawFrom
	if h.From == h.To || h.From == 0 && h.To == 0 {
		return nil, bad(path+".to", "equals from: write neither for the whole day")
	}
	if h.dayMask == 0 {
		h.dayMask = 0x7f
	}
	return h, nil
}

// clock parses "HH:MM" into minutes after midnight.
func clock(v *node) (int, bool) {
	s := v.s
	if v.kind != 's' || len(s) != 5 || s[2] != ':' || !isDigits(s[:2]) || !isDigits(s[3:]) {
		return 0, false
	}
	hh, _ := strconv.Atoi(s[:2])
	mm, _ := strconv.Atoi(s[3:])
	if hh == 24 && mm == 0 {
		return 24 * 60, true
	}
	if hh > 23 || mm > 59 {
		return 0, false
	}
	return hh*60 + mm, true
}

// isIdentifier: an EIP-712 struct name is a Solidity identifier.
func isIdentifier(s string) bool {
	if s == "" || len(s) > 256 || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '$') {
			return false
		}
	}
	return true
}
