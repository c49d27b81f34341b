package core

import (
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// Findings of an independent review of the policy engine, each performed
// as an attack and pinned here.

// TestSecurity_FrozenWalletDelayWaits: a freeze stops the clock too — a
// delayed request of a frozen wallet is not authorized when its delay
// passes, and the dry run answers FROZEN like prepare.
func TestSecurity_FrozenWalletDelayWaits(t *testing.T) {
	l := newLifecycle(t)
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, `{"rules":[{"id":"wait","when":{"kind":["native"]},"then":"delay","delay":"15m"}]}`)
	a, err := l.prepareAs(l.agent, l.native("1"))
	if err != nil || a.Decision != "delay" {
		t.Fatalf("prepare: %+v %v", a, err)
	}
	if _, err := l.svc.Freeze(l.ctx, l.human, l.wallet.ID); err != nil {
		t.Fatal(err)
	}
	l.clock.Advance(16 * time.Minute)
	if err := l.svc.AuthorizeDelayed(l.ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.row(a.ID); got.Status != countersign.StatusPending {
		t.Fatalf("a frozen wallet's delayed request became %s", got.Status)
	}
	if _, err := l.svc.Simulate(l.ctx, l.agent, "", l.native("1")); countersign.ErrorCode(err) != countersign.Frozen {
		t.Fatalf("dry run on a frozen wallet: %v, want FROZEN like prepare", err)
	}
	if res, err := l.svc.Unfreeze(l.ctx, l.human, l.wallet.ID, l.code()); err != nil || !res.Lifted {
		t.Fatalf("unfreeze: %+v %v", res, err)
	}
	if err := l.svc.AuthorizeDelayed(l.ctx); err != nil {
		t.Fatal(err)
	}
	if got := l.row(a.ID); got.Status != countersign.StatusAuthorized || got.DecidedBy != "policy:wait" {
		t.Fatalf("after the freeze was lifted: %s by %s", got.Status, got.DecidedBy)
	}
}

// TestSecurity_RevokingAnAgentKeepsTheQuorum: the owner alone cannot drop
// a wallet's quorum (and with it the gate on loosening changes) by
// revoking the agent whose policy asked for it.
func TestSecurity_RevokingAnAgentKeepsTheQuorum(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	l.setPolicy(countersign.PolicyAgent, l.agent.Agent.ID, quorum2)
	if err := l.svc.RevokeAgent(l.ctx, l.human, l.agent.Agent.ID, l.code()); err != nil {
		t.Fatal(err)
	}
	n, err := l.svc.walletQuorum(l.ctx, l.wallet)
	if err != nil || n != 2 {
		t.Fatalf("quorum after revoking the agent whose policy asked for 2: %d %v", n, err)
	}
	other := l.newAgent()
	loose := `{"rules":[{"id":"free","when":{"kind":["native"]},"then":"auto","budget":{"max":"1000000000000000000","window":"24h"}}]}`
	v, err := l.svc.SetPolicy(l.ctx, l.human, countersign.PolicyAgent, other.Agent.ID, []byte(loose), l.code())
	if err == nil && v != nil && v.Pending == nil {
		t.Fatalf("a loosening change applied at once on a quorum wallet: %+v", v)
	}
}

// TestSecurity_OwnerWideUnfreezeKeepsQuorumWalletsFrozen: lifting an
// owner-wide freeze with one code leaves every wallet that needs a quorum
// frozen on its own, for its quorum to lift.
func TestSecurity_OwnerWideUnfreezeKeepsQuorumWalletsFrozen(t *testing.T) {
	l := newLifecycle(t)
	bob := l.newMFAUser("bob")
	l.addApprover(l.wallet.ID, bob)
	l.setWalletPolicy(l.wallet.ID, quorum2)
	if _, err := l.svc.Freeze(l.ctx, l.human, ""); err != nil {
		t.Fatal(err)
	}
	res, err := l.svc.Unfreeze(l.ctx, l.human, "", l.code())
	if err != nil || !res.Lifted || len(res.StillFrozen) != 1 || res.StillFrozen[0] != l.wallet.ID {
		t.Fatalf("owner-wide unfreeze: %+v %v", res, err)
	}
	if _, err := l.svc.Prepare(l.ctx, l.agent, l.native("1"), ""); countersign.ErrorCode(err) != countersign.Frozen {
		t.Fatalf("the quorum wallet is not frozen after the owner-wide lift: %v", err)
	}
	if res, err := l.svc.Unfreeze(l.ctx, l.human, l.wallet.ID, l.code()); err != nil || res.Lifted {
		t.Fatalf("one code lifted a quorum wallet's freeze: %+v %v", res, err)
	}
	if res, err := l.svc.Unfreeze(l.ctx, bob.p, l.wallet.ID, l.codeOf(bob)); err != nil || !res.Lifted {
		t.Fatalf("the quorum's second code: %+v %v", res, err)
	}
}

// TestSecurity_UnlimitedAllowancesInEveryForm: the hard rule sees an
// unlimited allowance however it is granted — approve, increaseAllowance,
// Permit2's approve — and at any value no supply could need.
func TestSecurity_UnlimitedAllowancesInEveryForm(t *testing.T) {
	word := func(v *big.Int) string { return hex.EncodeToString(common32(v)) }
	addr := strings.Repeat("0", 24) + "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
	max256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	max255 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1))
	max160 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 160), big.NewInt(1))
	big1e30, _ := new(big.Int).SetString("1000000000000000000000000000000", 10)
	for _, c := range []struct {
		name, data string
		want       bool
	}{
		{"ok/approve-max", "095ea7b3" + addr + word(max256), true},
		{"ok/approve-2^255-1", "095ea7b3" + addr + word(max255), true},
		{"ok/increaseAllowance-max", "39509351" + addr + word(max256), true},
		{"ok/permit2-approve-uint160-max", "87517c45" + addr + addr + word(max160) + word(big.NewInt(1e9)), true},
		{"fail/approve-1e30", "095ea7b3" + addr + word(big1e30), false},
		{"fail/transfer-max", "a9059cbb" + addr + word(max256), false},
		{"fail/short", "095ea7b3" + addr, false},
		{"fail/permit2-short", "87517c45" + addr + addr, false},
	} {
		data, _ := hex.DecodeString(c.data)
		if got := unlimitedApprove(data); got != c.want {
			t.Errorf("%s: unlimited = %v, want %v", c.name, got, c.want)
		}
	}
}

func common32(v *big.Int) []byte {
	b := make([]byte, 32)
	return v.FillBytes(b)
}
