package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// The canonical form's shapes: fields in a fixed order, defaults written
// out (scope, overflow, default), addresses and selectors lower-case,
// amounts as decimal strings. Parse(Marshal(p)) equals p, and two
// documents that mean the same after normalisation hash the same.
type docJSON struct {
	Rules   []ruleJSON `json:"rules"`
	Default Outcome    `json:"default"`
}

type ruleJSON struct {
	ID       string      `json:"id"`
	When     whenJSON    `json:"when"`
	Then     Outcome     `json:"then"`
	Quorum   int         `json:"quorum,omitempty"`
	Delay    string      `json:"delay,omitempty"`
	Budget   *budgetJSON `json:"budget,omitempty"`
	Overflow Outcome     `json:"overflow,omitempty"`
}

type budgetJSON struct {
	Max    string `json:"max"`
	Window string `json:"window"`
	Scope  Scope  `json:"scope"`
}

type whenJSON struct {
	Kind         []Kind     `json:"kind,omitempty"`
	Asset        string     `json:"asset,omitempty"`
	MinAmount    string     `json:"min_amount,omitempty"`
	MaxAmount    string     `json:"max_amount,omitempty"`
	To           []string   `json:"to,omitempty"`
	NotTo        []string   `json:"not_to,omitempty"`
	Selectors    []string   `json:"selectors,omitempty"`
	ChainID      []int64    `json:"chain_id,omitempty"`
	TypedData    *typedJSON `json:"typed_data,omitempty"`
	NewRecipient *bool      `json:"new_recipient,omitempty"`
	Hours        *hoursJSON `json:"hours,omitempty"`
}

type typedJSON struct {
	PrimaryType       string `json:"primary_type,omitempty"`
	VerifyingContract string `json:"verifying_contract,omitempty"`
}

type hoursJSON struct {
	TZ   string   `json:"tz"`
	Days []string `json:"days,omitempty"`
	From string   `json:"from,omitempty"`
	To   string   `json:"to,omitempty"`
}

// Marshal returns p's canonical JSON.
func (p *Policy) Marshal() []byte {
	doc := docJSON{Rules: make([]ruleJSON, len(p.Rules)), Default: p.Default}
	for i := range p.Rules {
		r := &p.Rules[i]
		rj := ruleJSON{ID: r.ID, When: r.When.json(), Then: r.Then, Quorum: r.Quorum, Delay: r.delayText, Overflow: r.Overflow}
		if b := r.Budget; b != nil {
			rj.Budget = &budgetJSON{Max: b.Max.String(), Window: b.windowText, Scope: b.Scope}
		}
		doc.Rules[i] = rj
	}
	out, err := json.Marshal(doc)
	if err != nil {
		panic("policy: marshal: " + err.Error()) // only strings, ints and bools: cannot fail
	}
	return out
}

// MarshalJSON makes a Policy encode as its canonical form.
func (p *Policy) MarshalJSON() ([]byte, error) { return p.Marshal(), nil }

// Hash is the hex SHA-256 of p's canonical JSON: what the audit log
// records for a policy change, old and new.
func (p *Policy) Hash() string {
	sum := sha256.Sum256(p.Marshal())
	return hex.EncodeToString(sum[:])
}

func (w *When) json() whenJSON {
	j := whenJSON{Kind: w.Kind, Asset: w.Asset, To: w.To, NotTo: w.NotTo, Selectors: w.Selectors, ChainID: w.ChainID, NewRecipient: w.NewRecipient}
	if w.MinAmount != nil {
		j.MinAmount = w.MinAmount.String()
	}
	if w.MaxAmount != nil {
		j.MaxAmount = w.MaxAmount.String()
	}
	if td := w.TypedData; td != nil {
		j.TypedData = &typedJSON{PrimaryType: td.PrimaryType, VerifyingContract: td.VerifyingContract}
	}
	if h := w.Hours; h != nil {
		hj := &hoursJSON{TZ: h.TZ}
		for _, d := range h.Days {
			hj.Days = append(hj.Days, dayText[d])
		}
		if h.hasSpan {
			hj.From, hj.To = hhmm(h.From), hhmm(h.To)
		}
		j.Hours = hj
	}
	return j
}

func hhmm(m int) string { return fmt.Sprintf("%02d:%02d", m/60, m%60) }
