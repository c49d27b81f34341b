package contracts

import (
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

// TestArtifacts: every committed artifact loads, its ABI parses, it has
// bytecode, and the test token keeps the standard ERC-20 selectors the
// end-to-end tests and the dev chain rely on.
func TestArtifacts(t *testing.T) {
	for _, name := range []string{"TestToken", "Counter", "SmartWallet"} {
		a, err := Load(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(a.Bytecode) == 0 || len(a.ABI.Methods) == 0 || a.ABIJSON == "" {
			t.Errorf("%s: empty artifact", name)
		}
	}
	tok := MustLoad("TestToken")
	for sig, m := range map[string]string{"transfer(address,uint256)": "transfer", "approve(address,uint256)": "approve", "balanceOf(address)": "balanceOf"} {
		want := crypto.Keccak256([]byte(sig))[:4]
		got, ok := tok.ABI.Methods[m]
		if !ok || string(got.ID) != string(want) {
			t.Errorf("TestToken.%s: selector %x, want %x", m, got.ID, want)
		}
	}
	if _, err := Load("NoSuchContract"); err == nil {
		t.Error("an unknown artifact loaded")
	}
	if _, err := Load("../contracts"); err == nil {
		t.Error("a path outside artifacts/ loaded")
	}
}
