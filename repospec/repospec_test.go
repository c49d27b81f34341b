package repospec

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestValidSpec(t *testing.T) {
	b, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	w := s.OperatorWallet
	if w.AddressEIP55() != "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf" || w.ChainID != 8453 || w.Signer != "keystore" || len(w.Budgets) != 2 || w.Budgets[0].Limit != "50000000" || len(w.LowBalance) != 1 {
		t.Fatalf("read %+v", w)
	}
}

// TestInvalidSpecs: each problem is reported at its line, with its path.
func TestInvalidSpecs(t *testing.T) {
	for name, c := range map[string]struct {
		doc  string
		want []string // "line N" and text each problem line must hold
	}{
		"missing field": {"operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  signer: keystore\n",
			[]string{"line 1: /operator_wallet: missing property 'chain_id'"}},
		"wrong type": {"operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: base\n  signer: keystore\n",
			[]string{"line 3: /operator_wallet/chain_id:", "integer"}},
		"two problems, both reported": {"operator_wallet:\n  address: 0x12\n  chain_id: 0\n  signer: keystore\n",
			[]string{"line 2: /operator_wallet/address:", "line 3: /operator_wallet/chain_id:"}},
		"unknown signer": {"operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: 1\n  signer: ledger\n",
			[]string{"line 4: /operator_wallet/signer:"}},
		"awskms needs a key": {"operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: 1\n  signer: awskms\n",
			[]string{"kms_key_id"}},
		"unknown field (a typo)": {"operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: 1\n  signer: keystore\n  budget: []\n",
			[]string{"line 1", "budget"}},
		"limit as a decimal": {"operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: 1\n  signer: keystore\n  budgets:\n    - asset: native\n      period: day\n      limit: \"0.5\"\n",
			[]string{"line 8: /operator_wallet/budgets/0/limit:"}},
		"bad checksum": {"operator_wallet:\n  address: \"0x7e5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: 1\n  signer: keystore\n",
			[]string{"line 2: /operator_wallet/address: the address's EIP-55 checksum is wrong"}},
		"duplicate budget": {"operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: 1\n  signer: keystore\n  budgets:\n    - {asset: native, period: day, limit: \"1\"}\n    - {asset: native, period: day, limit: \"2\"}\n",
			[]string{"line 7: /operator_wallet/budgets/1: the same asset"}},
		"limit beyond 256 bits": {"operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: 1\n  signer: keystore\n  budgets:\n    - {asset: native, period: day, limit: \"" + strings.Repeat("9", 78) + "\"}\n",
			[]string{"256 bits"}},
		"no section":   {"name: x\n", []string{"missing property 'operator_wallet'"}},
		"empty":        {"", []string{"empty"}},
		"yaml syntax":  {"operator_wallet:\n  address: [\n", []string{"line "}},
		"aliases":      {"a: &x [1]\noperator_wallet: *x\n", []string{"aliases are not allowed"}},
		"not a object": {"- 1\n", []string{"/"}},
	} {
		_, err := Parse([]byte(c.doc))
		var inv *Invalid
		if !errors.As(err, &inv) {
			t.Errorf("%s: %v, want *Invalid", name, err)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", name, err.Error(), w)
			}
		}
	}
}

// The schema file is the one published in docs.
func TestSchemaPublished(t *testing.T) {
	docs, err := os.ReadFile("../docs/repo-spec.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(docs) != string(Schema) {
		t.Fatal("docs/repo-spec.schema.json differs from repospec/schema.json: copy it")
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/valid.yaml")
	f.Add(b)
	f.Add([]byte("operator_wallet:\n  address: 0x12\n"))
	f.Add([]byte("a: &x [1]\nb: *x\n"))
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, err := Parse(doc)
		if err == nil && (s == nil || s.OperatorWallet.Address == "" || s.OperatorWallet.ChainID < 1) {
			t.Fatalf("accepted a spec without address or chain: %q", doc)
		}
		var inv *Invalid
		if err != nil && !errors.As(err, &inv) {
			t.Fatalf("not an *Invalid: %v", err)
		}
	})
}
