// Package repospec reads the operator_wallet section of a repo-spec.yaml:
// the wallet an AI pays its own infrastructure from (its address, chain,
// signer, budgets and low-balance alerts), checked against the published
// JSON Schema (schema.json) and a few rules a schema cannot state, with
// every problem reported at its line.
package repospec

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/ethereum/go-ethereum/common"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
	"gopkg.in/yaml.v3"
)

// Schema is the JSON Schema of the section, as published (schema.json).
//
//go:embed schema.json
var Schema []byte

// Spec is what countersign reads from repo-spec.yaml.
type Spec struct {
	OperatorWallet OperatorWallet `yaml:"operator_wallet"`
}

// OperatorWallet is the operator_wallet section.
type OperatorWallet struct {
	Address      string      `yaml:"address"`
	ChainID      int64       `yaml:"chain_id"`
	Signer       string      `yaml:"signer"`
	KeystorePath string      `yaml:"keystore_path"`
	KMSKeyID     string      `yaml:"kms_key_id"`
	Budgets      []Budget    `yaml:"budgets"`
	LowBalance   []Threshold `yaml:"low_balance"`
}

// Budget is a spending limit in base units per period.
type Budget struct {
	Asset  string `yaml:"asset"`  // native or a token address
	Period string `yaml:"period"` // transaction, day, week, month
	Limit  string `yaml:"limit"`  // base units
	Reason string `yaml:"reason"` // any (default), openrouter_topup, x402, transfer
}

// Threshold is a low-balance alert: below this many base units.
type Threshold struct {
	Asset string `yaml:"asset"`
	Below string `yaml:"below"`
}

// Problem is one thing wrong with a spec, where it is.
type Problem struct {
	Line    int    // 1-based; 0 when the file has no position for it
	Path    string // JSON pointer into the document, e.g. /operator_wallet/chain_id
	Message string
}

func (p Problem) String() string {
	where := p.Path
	if where == "" {
		where = "/"
	}
	if p.Line > 0 {
		return fmt.Sprintf("line %d: %s: %s", p.Line, where, p.Message)
	}
	return fmt.Sprintf("%s: %s", where, p.Message)
}

// Invalid is the error of a spec with problems.
type Invalid struct{ Problems []Problem }

func (e *Invalid) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return "repo-spec is invalid:\n  " + strings.Join(lines, "\n  ")
}

// compiled is the schema, compiled on first use: a server without
// REPO_SPEC never pays for it.
var compiled = sync.OnceValue(func() *jsonschema.Schema {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(Schema))
	if err != nil {
		panic(err)
	}
	c := jsonschema.NewCompiler()
	const url = "https://github.com/countersign/countersign/repospec/schema.json"
	if err := c.AddResource(url, doc); err != nil {
		panic(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		panic(err)
	}
	return s
})

// maxSpec bounds the file: a spec is a few lines.
const maxSpec = 1 << 20

var yamlLine = regexp.MustCompile(`line (\d+)`)

// Parse reads a repo-spec.yaml. A spec with problems returns *Invalid
// listing them all, each at its line.
func Parse(b []byte) (*Spec, error) {
	if len(b) > maxSpec {
		return nil, &Invalid{[]Problem{{Message: fmt.Sprintf("the file is larger than %d bytes", maxSpec)}}}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		p := Problem{Message: strings.TrimPrefix(err.Error(), "yaml: ")}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Message = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(err.Error(), "yaml: "), m[0]+":"))
		}
		return nil, &Invalid{[]Problem{p}}
	}
	if len(root.Content) == 0 {
		return nil, &Invalid{[]Problem{{Message: "the file is empty: it needs an operator_wallet section"}}}
	}
	doc := root.Content[0]
	if err := checkNode(doc, 0); err != nil {
		return nil, &Invalid{[]Problem{{Line: doc.Line, Message: err.Error()}}}
	}
	var generic any
	if err := doc.Decode(&generic); err != nil {
		return nil, &Invalid{[]Problem{{Line: doc.Line, Message: err.Error()}}}
	}
	// through JSON: the validator wants JSON's values (yaml gives ints,
	// and maps keyed by any scalar)
	js, err := json.Marshal(generic)
	if err != nil {
		return nil, &Invalid{[]Problem{{Line: doc.Line, Message: "the document is not JSON-shaped: " + err.Error()}}}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		return nil, &Invalid{[]Problem{{Line: doc.Line, Message: err.Error()}}}
	}
	var problems []Problem
	if err := compiled().Validate(inst); err != nil {
		var verr *jsonschema.ValidationError
		if !errors.As(err, &verr) {
			return nil, err
		}
		problems = leaves(doc, verr, problems)
	}
	var spec Spec
	if len(problems) == 0 {
		if err := doc.Decode(&spec); err != nil {
			problems = append(problems, Problem{Line: doc.Line, Message: err.Error()})
		} else {
			problems = append(problems, rules(doc, &spec.OperatorWallet)...)
		}
	}
	if len(problems) > 0 {
		sort.SliceStable(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
		return nil, &Invalid{problems}
	}
	return &spec, nil
}

// checkNode refuses YAML features a spec has no use for and that make a
// small file large: aliases (billion laughs) and deep nesting.
func checkNode(n *yaml.Node, depth int) error {
	if depth > 32 {
		return errors.New("the document nests more than 32 levels deep")
	}
	if n.Kind == yaml.AliasNode {
		return fmt.Errorf("line %d: aliases are not allowed in a repo-spec", n.Line)
	}
	for _, c := range n.Content {
		if err := checkNode(c, depth+1); err != nil {
			return err
		}
	}
	return nil
}

var printer = message.NewPrinter(language.English)

// leaves turns the schema's error tree into one problem per failed
// keyword, each at the line of the value it concerns.
func leaves(doc *yaml.Node, e *jsonschema.ValidationError, out []Problem) []Problem {
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			out = leaves(doc, c, out)
		}
		return out
	}
	path := "/" + strings.Join(e.InstanceLocation, "/")
	if len(e.InstanceLocation) == 0 {
		path = ""
	}
	return append(out, Problem{Line: lineOf(doc, e.InstanceLocation), Path: path, Message: e.ErrorKind.LocalizedString(printer)})
}

// lineOf finds the line of the value at path (a mapping's key line for a
// field), or of its nearest ancestor that exists.
func lineOf(n *yaml.Node, path []string) int {
	line := n.Line
	for _, seg := range path {
		switch n.Kind {
		case yaml.MappingNode:
			var next *yaml.Node
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == seg {
					line, next = n.Content[i].Line, n.Content[i+1]
					break
				}
			}
			if next == nil {
				return line
			}
			n = next
		case yaml.SequenceNode:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(n.Content) {
				return line
			}
			n = n.Content[i]
			line = n.Line
		default:
			return line
		}
	}
	return line
}

// rules are the checks a JSON Schema cannot make.
func rules(doc *yaml.Node, w *OperatorWallet) []Problem {
	var out []Problem
	at := func(msg string, path ...string) {
		out = append(out, Problem{Line: lineOf(doc, path), Path: "/" + strings.Join(path, "/"), Message: msg})
	}
	if a := w.Address; strings.ToLower(a) != a && strings.ToUpper(a[2:]) != a[2:] && common.HexToAddress(a).Hex() != a {
		at(fmt.Sprintf("the address's EIP-55 checksum is wrong (did you mean %s?)", common.HexToAddress(a).Hex()), "operator_wallet", "address")
	}
	tooBig := func(v string) bool { n, _ := new(big.Int).SetString(v, 10); return n == nil || n.BitLen() > 256 }
	seen := map[string]int{}
	for i, b := range w.Budgets {
		idx := strconv.Itoa(i)
		if tooBig(b.Limit) {
			at("limit does not fit in 256 bits", "operator_wallet", "budgets", idx, "limit")
		}
		reason := b.Reason
		if reason == "" {
			reason = "any"
		}
		key := strings.ToLower(b.Asset) + "|" + b.Period + "|" + reason
		if j, dup := seen[key]; dup {
			at(fmt.Sprintf("the same asset, period and reason as budget %d", j), "operator_wallet", "budgets", idx)
		}
		seen[key] = i
	}
	if len(out) == 0 {
		if _, err := w.PolicyDocument(validateTransfers); err != nil { // policy.go: what the server can enforce
			at(err.Error(), "operator_wallet", "budgets")
		}
	}
	for i, th := range w.LowBalance {
		if tooBig(th.Below) {
			at("below does not fit in 256 bits", "operator_wallet", "low_balance", strconv.Itoa(i), "below")
		}
	}
	return out
}

// validateTransfers stands in for the Transfers contract when a spec is
// validated without a server (the address only needs to be well formed).
const validateTransfers = "0x0000000000000000000000000000000000000001"

// AddressEIP55 is the spec's address in EIP-55 form.
func (w *OperatorWallet) AddressEIP55() string { return common.HexToAddress(w.Address).Hex() }
