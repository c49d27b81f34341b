package policy

import (
	"strings"
	"testing"
)

func TestLoosens(t *testing.T) {
	const (
		deny    = `{"id":"no-burn","when":{"to":["0x0000000000000000000000000000000000000000"]},"then":"deny"}`
		auto    = `{"id":"inference","when":{"kind":["native"],"max_amount":"1000"},"then":"auto","budget":{"max":"10000","window":"24h"}}`
		big     = `{"id":"big","when":{"min_amount":"100000"},"then":"quorum","quorum":2}`
		payee   = `{"id":"new-payee","when":{"new_recipient":true},"then":"delay","delay":"15m"}`
		human   = `{"id":"hum","when":{"kind":["erc20"]},"then":"human"}`
		catchQ3 = `{"id":"all","then":"quorum","quorum":3}`
	)
	doc := func(def string, rules ...string) string {
		return `{"rules":[` + strings.Join(rules, ",") + `],"default":"` + def + `"}`
	}
	base := doc("human", deny, auto, big, payee)
	tests := map[string]struct {
		old, new string
		loosens  bool
		why      string // a reason must contain it
	}{
		"ok/identical":                         {base, base, false, ""},
		"ok/same meaning, other spelling":      {base, strings.ReplaceAll(base, `"window":"24h"}`, `"window":"24h","scope":"agent"},"overflow":"human"`), false, ""},
		"ok/default human to deny":             {base, doc("deny", deny, auto, big, payee), false, ""},
		"ok/a deny inserted first":             {base, doc("human", `{"id":"x","then":"deny"}`, deny, auto, big, payee), false, ""},
		"ok/a deny inserted in the middle":     {base, doc("human", deny, auto, `{"id":"x","when":{"kind":["erc20"]},"then":"deny"}`, big, payee), false, ""},
		"ok/budget lowered":                    {base, strings.Replace(base, `"max":"10000"`, `"max":"9999"`, 1), false, ""},
		"ok/window lengthened":                 {base, strings.Replace(base, `"window":"24h"`, `"window":"48h"`, 1), false, ""},
		"ok/quorum raised":                     {base, strings.Replace(base, `"quorum":2`, `"quorum":3`, 1), false, ""},
		"ok/delay lengthened":                  {base, strings.Replace(base, `"15m"`, `"1h"`, 1), false, ""},
		"ok/auto made human":                   {base, strings.Replace(base, `"then":"auto","budget":{"max":"10000","window":"24h"}`, `"then":"human"`, 1), false, ""},
		"ok/overflow made deny":                {base, strings.Replace(base, `"window":"24h"}`, `"window":"24h"},"overflow":"deny"`, 1), false, ""},
		"ok/delay made quorum":                 {base, strings.Replace(base, `"then":"delay","delay":"15m"`, `"then":"quorum","quorum":2`, 1), false, ""},
		"ok/an auto rule removed before human": {doc("human", auto, human), doc("human", human), false, ""},
		"ok/a quorum catch-all appended":       {doc("human", human), doc("human", human, catchQ3), false, ""},
		"ok/from no policy to a strict one":    {"", doc("deny"), false, ""},

		"fail/default deny to human":                    {doc("deny", deny), doc("human", deny), true, "default"},
		"fail/auto rule added":                          {doc("human", deny, big), doc("human", deny, auto, big), true, "added rule"},
		"fail/delay rule added":                         {doc("human", deny), doc("human", deny, payee), true, "added rule"},
		"fail/human rule added before a quorum rule":    {doc("human", big), doc("human", human, big), true, "added rule"},
		"fail/budget raised":                            {base, strings.Replace(base, `"max":"10000"`, `"max":"10001"`, 1), true, "budget.max raised"},
		"fail/window shortened":                         {base, strings.Replace(base, `"window":"24h"`, `"window":"1h"`, 1), true, "budget.window shortened"},
		"fail/scope changed":                            {base, strings.Replace(base, `"window":"24h"`, `"window":"24h","scope":"wallet"`, 1), true, "budget.scope"},
		"fail/matcher widened":                          {base, strings.Replace(base, `"max_amount":"1000"`, `"max_amount":"2000"`, 1), true, "when changed"},
		"fail/matcher narrowed (requests fall further)": {base, strings.Replace(base, `"min_amount":"100000"`, `"min_amount":"200000"`, 1), true, "when changed"},
		"fail/deny removed":                             {base, doc("human", auto, big, payee), true, "removed rule \"no-burn\""},
		"fail/deny made human":                          {base, strings.Replace(base, `"then":"deny"`, `"then":"human"`, 1), true, "then human is looser than deny"},
		"fail/quorum lowered":                           {base, strings.Replace(base, `"quorum":2`, `"quorum":1`, 1), true, "quorum 1 is looser than quorum 2"},
		"fail/delay shortened":                          {base, strings.Replace(base, `"15m"`, `"5m"`, 1), true, "delay"},
		"fail/human made auto":                          {doc("human", human), doc("human", `{"id":"hum","when":{"kind":["erc20"],"asset":"native"},"then":"auto","budget":{"max":"1","window":"1h"}}`), true, ""},
		"fail/overflow loosened":                        {strings.Replace(base, `"window":"24h"}`, `"window":"24h"},"overflow":"deny"`, 1), base, true, "overflow"},
		"fail/budget removed from auto":                 {base, strings.Replace(base, `,"budget":{"max":"10000","window":"24h"}`, ``, 1), true, "budget removed"},
		"fail/budget added to an unbudgeted auto": {doc("human", `{"id":"s","when":{"kind":["native"]},"then":"auto"}`),
			doc("human", `{"id":"s","when":{"kind":["native"]},"then":"auto","budget":{"max":"1","window":"1h"}}`), true, "budget"},
		"fail/rules reordered":                      {base, doc("human", auto, deny, big, payee), true, ""},
		"fail/budgeted rule renamed (fresh budget)": {base, strings.Replace(base, `"inference"`, `"inference2"`, 1), true, ""},
		"fail/removing the only auto rule before another auto": {doc("human", auto, `{"id":"a2","when":{"asset":"native"},"then":"auto","budget":{"max":"999999","window":"24h"}}`),
			doc("human", `{"id":"a2","when":{"asset":"native"},"then":"auto","budget":{"max":"999999","window":"24h"}}`), true, "removed rule"},
		"fail/from no policy to an auto one": {"", doc("human", auto), true, "added rule"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			var old, new *Policy
			if tt.old != "" {
				old = mustParse(t, tt.old)
			}
			new = mustParse(t, tt.new)
			got, why := Loosens(old, new)
			if got != tt.loosens {
				t.Fatalf("Loosens = %v %v, want %v", got, why, tt.loosens)
			}
			if got && len(why) == 0 {
				t.Fatal("loosens without a reason")
			}
			if tt.why != "" && !strings.Contains(strings.Join(why, "\n"), tt.why) {
				t.Fatalf("reasons %v lack %q", why, tt.why)
			}
		})
	}
}
