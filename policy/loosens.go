package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
)

// Loosens says whether new could decide any request more permissively
// than old (auto or delay where old asked a human, a higher budget, a
// smaller quorum, a shorter delay, a wider matcher, a removed deny…), with
// the reasons. It is conservative: whatever it cannot prove no looser
// counts as loosening. What it proves no looser:
//
//   - the default stays or gets stricter (human → deny);
//   - a rule keeps its id, its place relative to the other kept rules
//     and its exact "when", and its outcomes only get stricter: then,
//     overflow, a larger quorum, a longer delay, a budget kept or added
//     with a lower max, a longer window and the same scope;
//   - a deny rule is inserted anywhere;
//   - another rule is inserted or removed where every rule after it (and
//     the default) decides at least as strictly as it could, and neither
//     side involves auto or delay.
//
// A nil old is no policy: everything waits for a human.
func Loosens(old, new *Policy) (bool, []string) {
	if old == nil {
		old = &Policy{Default: Human}
	}
	if new == nil {
		new = &Policy{Default: Human}
	}
	if bytes.Equal(old.Marshal(), new.Marshal()) {
		return false, nil
	}
	var why []string
	if !geq(outcomeOf(new.Default, 0, 0), outcomeOf(old.Default, 0, 0)) {
		why = append(why, fmt.Sprintf("default: %s is looser than %s", new.Default, old.Default))
	}
	oldAt := make(map[string]int, len(old.Rules))
	for i := range old.Rules {
		oldAt[old.Rules[i].ID] = i
	}
	newIDs := make(map[string]bool, len(new.Rules))
	for i := range new.Rules {
		newIDs[new.Rules[i].ID] = true
	}
	last := -1 // old index of the previous kept rule
	for i := range new.Rules {
		n := &new.Rules[i]
		where := fmt.Sprintf("rules[%d] (%s)", i, n.ID)
		j, kept := oldAt[n.ID]
		if !kept {
			if n.Then == Deny {
				continue
			}
			// Requests n now catches used to fall to the rules after it.
			if !coversAfter(n, new.Rules[i+1:], new.Default) {
				why = append(why, where+": added rule may decide more permissively than the rules after it")
			}
			continue
		}
		if j < last {
			why = append(why, where+": moved before a rule it used to follow")
		}
		last = max(last, j)
		why = append(why, ruleLoosens(&old.Rules[j], n, where)...)
	}
	for j := range old.Rules {
		o := &old.Rules[j]
		if newIDs[o.ID] {
			continue
		}
		// Requests o caught now fall to the rules after its old place.
		var after []Rule
		for k := j + 1; k < len(old.Rules); k++ {
			if r := new.Rule(old.Rules[k].ID); r != nil {
				after = append(after, *r)
			}
		}
		if !afterCovers(o, after, new.Default) {
			why = append(why, fmt.Sprintf("removed rule %q: its requests may now be decided more permissively", o.ID))
		}
	}
	return len(why) > 0, why
}

// outcome is an outcome with the parameter that orders it within its kind.
type outcome struct {
	o      Outcome
	quorum int
	delay  int64
}

func outcomeOf(o Outcome, q int, d int64) outcome { return outcome{o, q, d} }

// geq says a is at least as strict as b.
func geq(a, b outcome) bool {
	if a.o.rank() != b.o.rank() {
		return a.o.rank() > b.o.rank()
	}
	switch a.o {
	case Quorum:
		return a.quorum >= b.quorum
	case Delay:
		return a.delay >= b.delay
	}
	return true
}

// outcomes lists what a rule can decide: then (and, for auto without a
// budget, human for value), and overflow.
func outcomes(r *Rule) []outcome {
	then := outcome{r.Then, 0, int64(r.Delay)}
	if r.Then == Quorum {
		then.quorum = r.Quorum
	}
	out := []outcome{then}
	if r.Budget != nil {
		of := outcome{r.Overflow, 0, 0}
		if r.Overflow == Quorum {
			of.quorum = r.Quorum
		}
		out = append(out, of)
	}
	return out
}

func permissive(r *Rule) bool { return r.Then == Auto || r.Then == Delay }

// coversAfter: n, inserted before after, is no looser than any of them
// for the requests it now takes.
func coversAfter(n *Rule, after []Rule, def Outcome) bool {
	if permissive(n) {
		return false
	}
	for _, a := range outcomes(n) {
		if !geq(a, outcome{def, 0, 0}) {
			return false
		}
		for k := range after {
			for _, b := range outcomes(&after[k]) {
				if !geq(a, b) {
					return false
				}
			}
		}
	}
	return true
}

// afterCovers: every rule in after (and the default), which now gets o's
// requests, is at least as strict as anything o could decide.
func afterCovers(o *Rule, after []Rule, def Outcome) bool {
	if permissive(o) {
		// Budgets and delays of different rules do not compare: the
		// requests could land on a bigger budget.
		for k := range after {
			if permissive(&after[k]) {
				return false
			}
		}
	}
	for _, a := range outcomes(o) {
		if !geq(outcome{def, 0, 0}, a) {
			return false
		}
		for k := range after {
			for _, b := range outcomes(&after[k]) {
				if !geq(b, a) {
					return false
				}
			}
		}
	}
	return true
}

func ruleLoosens(o, n *Rule, where string) []string {
	var why []string
	ow, _ := json.Marshal(o.When.json())
	nw, _ := json.Marshal(n.When.json())
	if !bytes.Equal(ow, nw) {
		// Narrowing a matcher sends requests to later rules, widening one
		// takes requests from them: either can loosen.
		why = append(why, where+": when changed")
	}
	then := func(r *Rule) outcome { return outcomes(r)[0] }
	if !geq(then(n), then(o)) {
		why = append(why, fmt.Sprintf("%s: then %s is looser than %s", where, describe(then(n)), describe(then(o))))
	}
	ob, nb := o.Budget, n.Budget
	switch {
	case ob == nil && nb == nil:
	case ob != nil && nb == nil:
		if !geq(then(n), outcome{o.Overflow, o.Quorum, 0}) {
			why = append(why, where+": budget removed")
		}
	case ob == nil && o.Then == Auto:
		// Auto without a budget let no value through; with one it does.
		why = append(why, where+": a budget on an auto rule lets value through that went to a human")
	default:
		if ob == nil {
			ob = nb // budget added: compare it only with itself, overflow with old's then
		}
		if nb.Max.Cmp(ob.Max) > 0 {
			why = append(why, fmt.Sprintf("%s: budget.max raised from %s to %s", where, ob.Max, nb.Max))
		}
		if nb.Window < ob.Window {
			why = append(why, fmt.Sprintf("%s: budget.window shortened from %s to %s", where, ob.windowText, nb.windowText))
		}
		if nb.Scope != ob.Scope {
			why = append(why, fmt.Sprintf("%s: budget.scope changed from %s to %s", where, ob.Scope, nb.Scope))
		}
		nof := outcome{n.Overflow, 0, 0}
		if n.Overflow == Quorum {
			nof.quorum = n.Quorum
		}
		// Requests the new, smaller budget turns away used to get then
		// (or old's overflow): the new overflow must be as strict as both.
		for _, a := range outcomes(o) {
			if !geq(nof, a) && !(o.Budget != nil && a == then(o) && nb.Max.Cmp(ob.Max) == 0 && nb.Window == ob.Window) {
				why = append(why, fmt.Sprintf("%s: overflow %s is looser than %s", where, describe(nof), describe(a)))
				break
			}
		}
	}
	return why
}

func describe(o outcome) string {
	switch o.o {
	case Quorum:
		return fmt.Sprintf("quorum %d", o.quorum)
	case Delay:
		return fmt.Sprintf("delay %s", fmtDur(o.delay))
	}
	return string(o.o)
}

func fmtDur(ns int64) string { return time.Duration(ns).String() }
