package main

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestReviewSettings: CHAIN_NAMES and TOKENS_FILE are read and checked;
// a malformed value stops the server at start instead of showing known
// tokens as unknown (or worse).
func TestReviewSettings(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "tokens.json")
	os.WriteFile(good, []byte(`[{"chain_id":31337,"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","symbol":"USDC","name":"Local USD","decimals":6}]`), 0o644)
	env := map[string]string{"CHAIN_NAMES": "31337=Anvil, 8453=Base mainnet", "TOKENS_FILE": good}
	cfg, err := parseServeConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	rc := reviewConfig(cfg)
	if rc.ChainNames[31337] != "Anvil" || rc.ChainNames[8453] != "Base mainnet" || len(rc.Tokens) != 1 ||
		rc.Tokens[0].Address != "0x5FbDB2315678afecb367f032d93F642f64180aa3" || rc.Tokens[0].Symbol != "USDC" {
		t.Fatalf("review settings: %+v", rc)
	}
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o644)
		return p
	}
	for name, bad := range map[string]map[string]string{
		"chain without a name":      {"CHAIN_NAMES": "31337="},
		"chain not a number":        {"CHAIN_NAMES": "anvil=Anvil"},
		"chain name with a newline": {"CHAIN_NAMES": "1=a\nb"},
		"missing tokens file":       {"TOKENS_FILE": filepath.Join(dir, "nope.json")},
		"tokens not JSON":           {"TOKENS_FILE": write("a.json", "USDC")},
		"token bad address":         {"TOKENS_FILE": write("b.json", `[{"chain_id":1,"address":"0x12","symbol":"X"}]`)},
		"token unknown field":       {"TOKENS_FILE": write("c.json", `[{"chain_id":1,"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3","symbol":"X","logo":"x"}]`)},
		"token without symbol":      {"TOKENS_FILE": write("d.json", `[{"chain_id":1,"address":"0x5fbdb2315678afecb367f032d93f642f64180aa3"}]`)},
	} {
		if _, err := parseServeConfig(nil, func(k string) string { return bad[k] }, io.Discard); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
