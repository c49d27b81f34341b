package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeSpec(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "repo-spec.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSpecValidateCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	good := writeSpec(t, dir, "operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: 8453\n  signer: keystore\n")
	if err := specCmd([]string{"validate", good}, &out, &errb); err != nil || !strings.Contains(out.String(), "valid: operator wallet 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf on chain 8453") {
		t.Fatalf("valid spec: %v %q", err, out.String())
	}
	out.Reset()
	bad := writeSpec(t, dir, "operator_wallet:\n  address: \"0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf\"\n  chain_id: \"8453\"\n  signer: keystore\n  budgets:\n    - {asset: native, period: year, limit: \"1\"}\n")
	err := specCmd([]string{"validate", bad}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "2 problem(s)") {
		t.Fatalf("invalid spec: %v", err)
	}
	for _, want := range []string{bad + ":3: /operator_wallet/chain_id:", bad + ":6: /operator_wallet/budgets/0/period:"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output %q lacks %q", out.String(), want)
		}
	}
}

// TestOperatorSpecAtStart: a server with REPO_SPEC starts only when the
// operator signer's address and the chain are the spec's, and says which
// two addresses differ when they do not.
func TestOperatorSpecAtStart(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "operator.json")
	var out, errb bytes.Buffer
	if err := keygenCmd([]string{"--kdf", "light"}, keygenEnv(map[string]string{"OPERATOR_KEYSTORE_PATH": key, "OPERATOR_WALLET_PASSPHRASE": keygenPass}), &out, &errb); err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSpace(out.String())
	// the embedded chain's id, from a first start without a spec
	e := newEnv(t)
	chainID := e.app.Svc.ChainID().Int64()
	spec := func(address string, chain int64, signer string) envOption {
		p := writeSpec(t, t.TempDir(), fmt.Sprintf("operator_wallet:\n  address: %q\n  chain_id: %d\n  signer: %s\n", address, chain, signer))
		return func(c *Config) { c.RepoSpec, c.OperatorKeystore, c.OperatorPassphrase = p, key, keygenPass }
	}
	e2, _, err := startAt(t, t.TempDir(), restartClock(), spec(addr, chainID, "keystore"))
	if err != nil {
		t.Fatalf("matching spec refused: %v", err)
	}
	if e2.app.Operator == nil || e2.app.Operator.Address() != addr {
		t.Fatal("the operator signer is not loaded")
	}
	if strings.Contains(e2.logs.String(), keygenPass) {
		t.Fatal("the passphrase reached the log")
	}
	const other = "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf"
	for name, c := range map[string]struct {
		opt  envOption
		want []string
	}{
		"another address": {spec(other, chainID, "keystore"), []string{"holds " + addr, "operator_wallet.address is " + other}},
		"another chain":   {spec(addr, 8453, "keystore"), []string{"chain_id is 8453", fmt.Sprintf("chain %d", chainID)}},
		"wrong passphrase": {func(c *Config) {
			spec(addr, chainID, "keystore")(c)
			c.OperatorPassphrase = "not the passphrase"
		}, []string{"passphrase (OPERATOR_WALLET_PASSPHRASE) is wrong"}},
		"sealed wallet it does not hold": {spec(addr, chainID, "sealed"), []string{"holds no wallet " + addr}},
		"invalid spec": {func(c *Config) {
			c.RepoSpec = writeSpec(t, t.TempDir(), "operator_wallet:\n  chain_id: 1\n")
		}, []string{"missing properties", "address"}},
	} {
		_, _, err := startAt(t, t.TempDir(), restartClock(), c.opt)
		if err == nil {
			t.Errorf("%s: started", name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", name, err.Error(), w)
			}
		}
		if strings.Contains(err.Error(), keygenPass) {
			t.Errorf("%s: the passphrase is in the error", name)
		}
	}
}
