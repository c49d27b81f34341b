// Package policy is the pure policy language and evaluator that decides, for each agent request, whether it is denied, waits for humans, waits out a delay, or goes through within a budget.
package policy

import (
	"math/big"
	"time"

	// The zone database ships inside the binary: an hours matcher must mean
	// the same on a distroless image without /usr/share/zoneinfo as on a
	// laptop, and a policy that parsed once must parse again after a move.
	_ "time/tzdata"
)

// Outcome is what a decision does with a request. The values are part of
// the API (the document's "then", "overflow", "default"; the answer's
// "decision").
type Outcome string

const (
	Deny   Outcome = "deny"   // refused at prepare with POLICY_DENIED
	Human  Outcome = "human"  // one approver's TOTP approval (today's behaviour)
	Quorum Outcome = "quorum" // N distinct approvers' approvals
	Delay  Outcome = "delay"  // authorized after a cooling-off period unless rejected
	Auto   Outcome = "auto"   // authorized at once, only within a budget
)

// rank orders outcomes from the most permissive to the strictest; Loosens
// and the hard rules compare with it.
func (o Outcome) rank() int {
	switch o {
	case Auto:
		return 0
	case Delay:
		return 1
	case Human:
		return 2
	case Quorum:
		return 3
	default: // deny, and anything unknown, is the strictest
		return 4
	}
}

// Scope says whose spending a budget counts.
type Scope string

const (
	ScopeAgent  Scope = "agent"  // this agent's requests on this wallet (the default)
	ScopeWallet Scope = "wallet" // every agent of the wallet together
)

// DefaultRuleID is the RuleID of a decision no rule made: the document's
// "default". It is reserved and cannot be a rule's id.
const DefaultRuleID = "default"

// Limits of a document. They bound the work of parsing and evaluating an
// owner-supplied document, not what a sensible policy needs.
const (
	MaxDocument = 64 << 10 // bytes
	MaxRules    = 256
	MaxQuorum   = 64                   // approvers a quorum may require
	MaxDuration = 365 * 24 * time.Hour // longest window or delay
	maxList     = 256                  // entries in one matcher list
	maxDepth    = 8                    // JSON nesting; the schema needs 5
)

// Policy is a parsed, validated policy document. It is immutable once
// parsed: Evaluate may be called on it from many goroutines.
//
// Build one only with Parse: the matchers keep precomputed sets that a
// hand-built Policy lacks, and Evaluate sends every request of a Policy
// that Parse did not make to a human.
type Policy struct {
	Rules   []Rule
	Default Outcome // Human or Deny

	parsed bool
}

// Rule is one entry of the ordered rule list: the first rule whose When
// holds decides.
type Rule struct {
	ID       string
	When     When
	Then     Outcome
	Quorum   int           // approvals needed when Then or Overflow is Quorum; else 0
	Delay    time.Duration // cooling-off when Then is Delay; else 0
	Budget   *Budget       // nil: no budget
	Overflow Outcome       // outcome when the request would exceed Budget; "" without a budget

	delayText string // as written ("15m"), for the canonical form
}

// DelayText is the delay as written in the document ("15m"), "" when none.
func (r *Rule) DelayText() string { return r.delayText }

// Budget caps what a rule lets through within a rolling window.
type Budget struct {
	Max    *big.Int // base units of the rule's asset
	Window time.Duration
	Scope  Scope

	windowText string
}

// WindowText is the window as written in the document ("24h").
func (b *Budget) WindowText() string { return b.windowText }

// When holds the matchers of a rule; a nil or empty field does not
// constrain. All present matchers must hold.
type When struct {
	Kind         []Kind
	Asset        string // "native" or a lower-case token address
	MinAmount    *big.Int
	MaxAmount    *big.Int
	To           []string // lower-case addresses
	NotTo        []string
	Selectors    []string // "0x" + 8 lower-case hex digits
	ChainID      []int64
	TypedData    *TypedDataMatch
	NewRecipient *bool
	Hours        *Hours

	kinds     uint16              // bit set of Kind, for speed
	to, notTo map[string]struct{} // sets of To and NotTo
	selectors map[string]struct{}
}

// TypedDataMatch matches EIP-712 requests by primary type and verifying
// contract; an empty field does not constrain, but one must be set.
type TypedDataMatch struct {
	PrimaryType       string // exact, case-sensitive as in the typed data
	VerifyingContract string // lower-case address
}

// Hours is a weekly time window in a time zone. From and To are minutes
// after local midnight; To may be before From, in which case the window
// starts on a listed day and ends on the next day ("22:00"–"06:00" on fri
// is Friday 22:00 to Saturday 06:00). To is exclusive; "24:00" is the end
// of the day.
type Hours struct {
	TZ       string
	Days     []time.Weekday // empty: every day
	From, To int            // minutes; 0 and 1440 when not written

	loc     *time.Location
	dayMask uint8
	hasSpan bool // from/to were written
}

// MaxQuorum returns the largest quorum any rule of p needs (0 if none).
// The wiring checks it against the wallet's approver count: a quorum no
// set of approvers can reach would leave requests pending forever.
func (p *Policy) MaxQuorum() int {
	n := 0
	for i := range p.Rules {
		n = max(n, p.Rules[i].Quorum)
	}
	return n
}

// Rule returns the rule with id, or nil.
func (p *Policy) Rule(id string) *Rule {
	for i := range p.Rules {
		if p.Rules[i].ID == id {
			return &p.Rules[i]
		}
	}
	return nil
}
