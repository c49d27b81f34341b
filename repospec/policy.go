package repospec

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// The budgets of operator_wallet become the operator wallet's policy: for
// each asset and reason, one rule that approves a request at once while
// it stays within the budget ("auto"), with the per-transaction limit as
// the rule's max_amount and the day, week or month limit as its rolling
// budget; anything else — over a limit, another asset, a request no
// budget covers — goes to the owner ("default": "human"). A budget for a
// specific reason comes before one for "any", so an x402 payment is held
// to the x402 budget.

// ReasonKinds are the policy request kinds each budget reason covers. A
// top-up is a contract call to the Transfers contract (which the rule
// pins with "to"), paying the native coin as its value: a top-up paid in
// a token is an approve and a call that carry no value the policy could
// hold to a budget, so a token budget for top-ups is refused.
var ReasonKinds = map[string][]string{
	"any":              nil, // every kind that moves the asset
	"transfer":         {"native", "erc20"},
	"x402":             {"x402"},
	"openrouter_topup": {"contract_call"},
}

var periodWindow = map[string]string{"day": "24h", "week": "168h", "month": "720h"}

// PolicyDocument is the policy document (the JSON PUT /api/wallets/{id}/policy
// takes, without mfa_code) that enforces w's budgets; nil when w has none.
// transfers is the Commerce Transfers contract top-ups pay ("" when top-ups
// are not configured: a top-up budget is then refused). Two rolling
// budgets (say day and week) for one asset and reason cannot both be held
// by one rule and are refused, naming them.
func (w *OperatorWallet) PolicyDocument(transfers string) ([]byte, error) {
	if len(w.Budgets) == 0 {
		return nil, nil
	}
	type group struct {
		asset, reason     string
		perTx, window     string
		limit, windowFrom string
	}
	groups := map[string]*group{}
	var order []string
	for i, b := range w.Budgets {
		reason := b.Reason
		if reason == "" {
			reason = "any"
		}
		if _, ok := ReasonKinds[reason]; !ok {
			return nil, fmt.Errorf("operator_wallet.budgets[%d]: unknown reason %q", i, reason)
		}
		asset := strings.ToLower(b.Asset)
		if reason == "openrouter_topup" && asset != "native" {
			return nil, fmt.Errorf("operator_wallet.budgets[%d]: a top-up paid in a token is an approve and a contract call with no value a budget could hold; budget top-ups in native, or leave token top-ups to a human", i)
		}
		key := asset + "|" + reason
		g := groups[key]
		if g == nil {
			g = &group{asset: asset, reason: reason}
			groups[key] = g
			order = append(order, key)
		}
		if b.Period == "transaction" {
			g.perTx = b.Limit
			continue
		}
		win, ok := periodWindow[b.Period]
		if !ok {
			return nil, fmt.Errorf("operator_wallet.budgets[%d]: unknown period %q", i, b.Period)
		}
		if g.window != "" {
			return nil, fmt.Errorf("operator_wallet.budgets[%d]: a %s budget for %s (%s) beside the %s one: one rolling budget per asset and reason is enforced; keep the tighter", i, b.Period, asset, reason, g.windowFrom)
		}
		g.window, g.limit, g.windowFrom = win, b.Limit, b.Period
	}
	// specific reasons first (their order in the file), then "any"
	sort.SliceStable(order, func(i, j int) bool {
		return groups[order[i]].reason != "any" && groups[order[j]].reason == "any"
	})
	type when struct {
		Kind      []string `json:"kind,omitempty"`
		Asset     string   `json:"asset"`
		MaxAmount string   `json:"max_amount,omitempty"`
		To        []string `json:"to,omitempty"`
	}
	type budget struct {
		Max    string `json:"max"`
		Window string `json:"window"`
	}
	type rule struct {
		ID     string  `json:"id"`
		When   when    `json:"when"`
		Then   string  `json:"then"`
		Budget *budget `json:"budget,omitempty"`
	}
	doc := struct {
		Rules   []rule `json:"rules"`
		Default string `json:"default"`
	}{Default: "human"}
	for _, k := range order {
		g := groups[k]
		r := rule{ID: "spec-" + g.reason + "-" + assetName(g.asset), When: when{Kind: ReasonKinds[g.reason], Asset: g.asset, MaxAmount: g.perTx}, Then: "auto"}
		if g.reason == "openrouter_topup" {
			if transfers == "" {
				return nil, fmt.Errorf("operator_wallet.budgets: a top-up budget, but no Transfers contract is known for this chain (set TOPUP_TRANSFERS_CONTRACT)")
			}
			r.When.To = []string{strings.ToLower(transfers)}
		}
		if g.window != "" {
			r.Budget = &budget{Max: g.limit, Window: g.window}
		}
		doc.Rules = append(doc.Rules, r)
	}
	return json.Marshal(doc)
}

// assetName is a short rule-id part for an asset.
func assetName(asset string) string {
	if asset == "native" {
		return "native"
	}
	return asset[:10] // 0x + 8 hex digits
}
