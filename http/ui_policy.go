package http

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/url"
	"strings"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/policy"
)

// The web UI's policy pages (docs/POLICY.md): the list of the user's
// wallets and agents with their policies and the loosening changes that
// wait for a quorum; one editor per wallet and per agent that shows the
// rules as a readable list with bars of each budget's spent, reserved and
// remaining, and takes the JSON document back with a TOTP code. The
// services decide everything (core/policy.go): the page only shows and
// forwards, so a document refused here is refused for the same reason as
// through PUT /api/…/policy, naming the same field.

// ruleRow is one rule of a document, as the editor lists it.
type ruleRow struct {
	ID, When, Then, Budget string
	Bars                   []budgetBar
}

// budgetBar is one budget as it stands now. Pct values are whole percent
// of Max, for <progress>/<meter> (the CSP allows no inline style).
type budgetBar struct {
	Who                             string // whose spending: "every agent" or one agent's name
	Max, Spent, Reserved, Remaining string
	SpentPct, ReservedPct, UsedPct  int
	RemainingPct                    int
	Window                          string
}

// readableKeys is the order in which a rule's matchers are shown: the
// document's own order (policy/marshal.go).
var readableKeys = []string{"kind", "asset", "min_amount", "max_amount", "to", "not_to", "selectors", "chain_id", "typed_data", "new_recipient", "hours"}

// readableRules renders pol's rules from its canonical JSON, so the list
// shows exactly what is stored and evaluated.
func readableRules(pol *policy.Policy, amount func(*big.Int, string) string) []ruleRow {
	var doc struct {
		Rules []struct {
			ID       string         `json:"id"`
			When     map[string]any `json:"when"`
			Then     string         `json:"then"`
			Quorum   int            `json:"quorum"`
			Delay    string         `json:"delay"`
			Overflow string         `json:"overflow"`
			Budget   *struct {
				Max, Window, Scope string
			} `json:"budget"`
		} `json:"rules"`
	}
	if err := json.Unmarshal(pol.Marshal(), &doc); err != nil {
		return nil // the canonical form always decodes; an empty list is the safe answer
	}
	rows := make([]ruleRow, 0, len(doc.Rules))
	for i, r := range doc.Rules {
		var when []string
		for _, k := range readableKeys {
			v, ok := r.When[k]
			if !ok {
				continue
			}
			when = append(when, k+" "+readableValue(v))
		}
		row := ruleRow{ID: r.ID, When: strings.Join(when, "; "), Then: r.Then}
		if row.When == "" {
			row.When = "every request"
		}
		switch r.Then {
		case "quorum":
			row.Then = fmt.Sprintf("quorum of %d", r.Quorum)
		case "delay":
			row.Then = "delay " + r.Delay
		}
		if r.Budget != nil {
			asset := pol.Rules[i].When.Asset
			row.Budget = fmt.Sprintf("at most %s per %s (%s scope)", amount(pol.Rules[i].Budget.Max, asset), r.Budget.Window, r.Budget.Scope)
			if r.Overflow != "" {
				over := r.Overflow
				if over == "quorum" {
					over = fmt.Sprintf("quorum of %d", r.Quorum)
				}
				row.Budget += "; over it: " + over
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func readableValue(v any) string {
	switch x := v.(type) {
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = readableValue(e)
		}
		return strings.Join(parts, ", ")
	case string:
		return x
	case bool, float64:
		return fmt.Sprint(x)
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

func pct(part, whole *big.Int) int {
	if whole == nil || whole.Sign() <= 0 || part == nil || part.Sign() <= 0 {
		return 0
	}
	p := new(big.Int).Mul(part, big.NewInt(100))
	p.Quo(p, whole)
	if p.Cmp(big.NewInt(100)) > 0 {
		return 100
	}
	return int(p.Int64())
}

func bigOf(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return new(big.Int)
	}
	return v
}

func barOf(who string, b core.BudgetState, amount func(*big.Int, string) string) budgetBar {
	max, spent, reserved, remaining := bigOf(b.Max), bigOf(b.Spent), bigOf(b.Reserved), bigOf(b.Remaining)
	bar := budgetBar{Who: who, Max: amount(max, b.Asset), Spent: amount(spent, b.Asset), Reserved: amount(reserved, b.Asset),
		Remaining: amount(remaining, b.Asset), Window: b.Window,
		SpentPct: pct(spent, max), ReservedPct: pct(reserved, max), RemainingPct: pct(remaining, max)}
	bar.UsedPct = min(100, bar.SpentPct+bar.ReservedPct)
	return bar
}

// budgetBars fills rows' budget bars for the policy of (level, subject)
// from the owner's view of the wallet's budgets (core's WalletBudgets:
// each budget as it stands for each live agent it covers, a wallet-scope
// budget of the wallet's policy once). Amounts are in the asset's units
// (a token's decimals and symbol when the chain answers).
func (s *Server) budgetBars(r *http.Request, c *uiCtx, target policyTarget, rows []ruleRow) {
	list, err := s.Svc.WalletBudgets(r.Context(), c.p, target.WalletID)
	if err != nil {
		return // the page still shows the rules; the bars are a view
	}
	amount := s.amountIn(r)
	for _, b := range list {
		if b.Level != target.Level || (target.Level == countersign.PolicyAgent && b.AgentID != target.ID) {
			continue
		}
		who := b.AgentName
		if b.Shared {
			who = "every agent of the wallet"
		}
		for i := range rows {
			if rows[i].ID == b.RuleID {
				rows[i].Bars = append(rows[i].Bars, barOf(who, b.BudgetState, amount))
			}
		}
	}
}

// amountIn renders base units of a policy asset for people (core's
// AssetUnits).
func (s *Server) amountIn(r *http.Request) func(*big.Int, string) string {
	return func(v *big.Int, asset string) string { return s.Svc.AssetUnits(r.Context(), v, asset) }
}

// policyTarget names what a policy page is about.
type policyTarget struct {
	Level             countersign.PolicyLevel
	ID, Name, Address string // Address: the wallet's (the agent's wallet for an agent)
	WalletID          string // the wallet (the agent's wallet for an agent)
	Path              string // the editor's own path
}

// changeRow is a pending change with the page's CSRF token, for the
// decide form the "policychange" template renders.
type changeRow struct {
	C    *core.PendingPolicyChange
	CSRF string
}

type policyListData struct {
	Targets []policyTarget
	Changes []changeRow
}

func (s *Server) policyTargets(r *http.Request, c *uiCtx) ([]policyTarget, error) {
	wallets, err := s.Svc.Wallets(r.Context(), c.p)
	if err != nil {
		return nil, err
	}
	addr := map[string]string{}
	var out []policyTarget
	for _, w := range wallets {
		addr[w.ID] = w.Address
		out = append(out, policyTarget{Level: countersign.PolicyWallet, ID: w.ID, Name: w.Name, Address: w.Address, WalletID: w.ID, Path: editorPath(countersign.PolicyWallet, w.ID)})
	}
	agents, err := s.Svc.Agents(r.Context(), c.p)
	if err != nil {
		return nil, err
	}
	for _, a := range agents {
		if !a.Revoked() {
			out = append(out, policyTarget{Level: countersign.PolicyAgent, ID: a.ID, Name: a.Name, Address: addr[a.WalletID], WalletID: a.WalletID, Path: editorPath(countersign.PolicyAgent, a.ID)})
		}
	}
	return out, nil
}

func (s *Server) uiPolicies(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	targets, err := s.policyTargets(r, c)
	if err != nil {
		return err
	}
	changes, err := s.Svc.PolicyChanges(r.Context(), c.p)
	if err != nil {
		return err
	}
	d := policyListData{Targets: targets}
	for _, ch := range changes {
		d.Changes = append(d.Changes, changeRow{C: ch, CSRF: c.csrf})
	}
	return s.render(w, r, c, 200, "policies.html", "Policies", "policies", d)
}

type policyEditData struct {
	Target  policyTarget
	Policy  *core.PolicyView
	Rules   []ruleRow
	Default string
	Text    string // the textarea: the stored document, or the refused one as typed
	Error   string // why the document was refused (names the field)
	Pending []changeRow
}

// examplePolicy fills the textarea when no policy is set: the document's
// shape, changing nothing until saved.
const examplePolicy = `{"rules": [
  {"id": "small", "when": {"kind": ["native"], "max_amount": "1000000000000000"},
   "then": "auto", "budget": {"max": "10000000000000000", "window": "24h"}}
], "default": "human"}`

func (s *Server) policyPage(w http.ResponseWriter, r *http.Request, c *uiCtx, level countersign.PolicyLevel, status int, text, refusal string) error {
	id := r.PathValue("id")
	targets, err := s.policyTargets(r, c)
	if err != nil {
		return err
	}
	d := policyEditData{Text: text, Error: refusal, Default: string(policy.Human)}
	found := false
	for _, t := range targets {
		if t.Level == level && t.ID == id {
			d.Target, found = t, true
		}
	}
	if !found {
		return countersign.Errorf(countersign.NotFound, "%s not found", level)
	}
	if d.Policy, err = s.Svc.Policy(r.Context(), c.p, level, id); err != nil {
		return err
	}
	if d.Policy != nil && d.Policy.Document != nil {
		d.Rules, d.Default = readableRules(d.Policy.Document, s.amountIn(r)), string(d.Policy.Document.Default)
		s.budgetBars(r, c, d.Target, d.Rules)
		if d.Text == "" {
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, d.Policy.Document.Marshal(), "", "  "); err == nil {
				d.Text = pretty.String()
			}
		}
	}
	if d.Text == "" {
		d.Text = examplePolicy
	}
	if changes, err := s.Svc.PolicyChanges(r.Context(), c.p); err == nil {
		for _, ch := range changes {
			if ch.Level == level && ch.SubjectID == id {
				d.Pending = append(d.Pending, changeRow{C: ch, CSRF: c.csrf})
			}
		}
	}
	title := "Policy of " + d.Target.Name
	return s.render(w, r, c, status, "policy.html", title, "policies", d)
}

func uiPolicyPage(level countersign.PolicyLevel) uiHandlerFunc {
	return func(s *Server, w http.ResponseWriter, r *http.Request, c *uiCtx) error {
		return s.policyPage(w, r, c, level, 200, "", "")
	}
}

// uiSetPolicy saves the textarea's document with the form's code. A
// refused document is shown again as typed, with the refusal (which names
// the field, rules[2].budget.window) beside it, and nothing changed; the
// MFA and ownership refusals are the service's own.
func uiSetPolicy(level countersign.PolicyLevel) uiHandlerFunc {
	return func(s *Server, w http.ResponseWriter, r *http.Request, c *uiCtx) error {
		id := r.PathValue("id")
		text := r.PostForm.Get("document")
		self := editorPath(level, id)
		v, err := s.Svc.SetPolicy(r.Context(), c.p, level, id, []byte(text), r.PostForm.Get("mfa_code"))
		if err != nil {
			if countersign.ErrorCode(err) == countersign.BadRequest {
				_, row := errorRowOf(err)
				return s.policyPage(w, r, c, level, row.Status, text, countersign.ErrorDetail(err))
			}
			return back(w, r, self, err, "")
		}
		if v.Pending != nil {
			return back(w, r, self, nil, fmt.Sprintf("This change loosens the policy of a quorum wallet: it applies once %d approvers approve it.", v.Pending.ApprovalsNeeded))
		}
		return back(w, r, self, nil, "Policy saved.")
	}
}

// editorPath is the policy editor's page of (level, id).
func editorPath(level countersign.PolicyLevel, id string) string {
	if level == countersign.PolicyAgent {
		return "/agents/" + url.PathEscape(id) + "/policy"
	}
	return "/wallets/" + url.PathEscape(id) + "/policy"
}

// uiDecidePolicyChange approves or rejects a pending loosening change with
// the caller's own code (owner or approver).
func (s *Server) uiDecidePolicyChange(w http.ResponseWriter, r *http.Request, c *uiCtx) error {
	d := core.Decision(r.PostForm.Get("decision"))
	if d != core.Approve && d != core.Reject {
		return back(w, r, "/policies", countersign.Errorf(countersign.BadRequest, "decision must be approve or reject"), "")
	}
	ch, err := s.Svc.DecidePolicyChange(r.Context(), c.p, r.PathValue("id"), r.PostForm.Get("mfa_code"), d)
	if err != nil {
		return back(w, r, "/policies", err, "")
	}
	msg := fmt.Sprintf("Change %s: %d of %d approvals.", ch.Status, len(ch.Approvals), ch.ApprovalsNeeded)
	return back(w, r, "/policies", nil, msg)
}
