package core

import (
	"encoding/hex"
	"testing"

	"github.com/countersign/countersign/contracts"
)

// The production ERC-20 interface has every standard method and event, with
// the selectors and topics EIP-20 fixes, and the TEST token agrees with it
// (so the dev chain exercises the same calls production makes).
func TestERC20ABI(t *testing.T) {
	selectors := map[string]string{
		"name": "06fdde03", "symbol": "95d89b41", "decimals": "313ce567", "totalSupply": "18160ddd",
		"balanceOf": "70a08231", "allowance": "dd62ed3e", "transfer": "a9059cbb", "approve": "095ea7b3", "transferFrom": "23b872dd",
	}
	test := contracts.MustLoad("TestToken").ABI
	for name, want := range selectors {
		t.Run("ok/"+name, func(t *testing.T) {
			m, ok := erc20ABI.Methods[name]
			if !ok {
				t.Fatalf("missing %s", name)
			}
			if got := hex.EncodeToString(m.ID); got != want {
				t.Fatalf("%s selector = %s, want %s", name, got, want)
			}
			tm, ok := test.Methods[name]
			if !ok || tm.Sig != m.Sig || len(tm.Outputs) != len(m.Outputs) {
				t.Fatalf("TEST token's %s = %v, production's %s", name, tm.Sig, m.Sig)
			}
		})
	}
	topics := map[string]string{
		"Transfer": "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
		"Approval": "8c5be1e5ebec7d5bd14f71427d1e84f3dd0314c0f7b2291e5b200ac8c7c3b925",
	}
	for name, want := range topics {
		t.Run("ok/event/"+name, func(t *testing.T) {
			if got := hex.EncodeToString(erc20ABI.Events[name].ID.Bytes()); got != want {
				t.Fatalf("%s topic = %s, want %s", name, got, want)
			}
		})
	}
	// the names a review shows for decoded calldata are the TEST token's
	for _, name := range knownSelectors {
		t.Run("ok/names/"+name, func(t *testing.T) {
			a, b := erc20ABI.Methods[name].Inputs, test.Methods[name].Inputs
			for i := range a {
				if a[i].Name != b[i].Name {
					t.Fatalf("%s input %d named %q, TEST token %q", name, i, a[i].Name, b[i].Name)
				}
			}
		})
	}
	t.Run("fail/not-in-erc20", func(t *testing.T) {
		if _, ok := erc20ABI.Methods["mint"]; ok {
			t.Fatal("mint is the TEST token's, not ERC-20's")
		}
	})
}
