package countersign

import (
	"strings"
	"testing"
)

// CheckText is the one validator of text an approver or operator reads
// (core's memos and names, the daemon's wallet names, tags and ledger
// memos): a refusal names the field, and what it accepts is stored byte
// for byte.
func TestCheckText(t *testing.T) {
	for name, c := range map[string]struct {
		s         string
		max       int
		multiline bool
		ok        bool
	}{
		"ok/plain":             {"payout wallet", 64, false, true},
		"ok/emoji zwj":         {"dev 👩\u200d💻", 64, false, true},
		"ok/newline multiline": {"a\nb\tc", 64, true, true},
		"ok/max runes":         {strings.Repeat("é", 64), 64, false, true},
		"fail/too long":        {strings.Repeat("é", 65), 64, false, false},
		"fail/newline":         {"a\nb", 64, false, false},
		"fail/nul":             {"a\x00", 64, true, false},
		"fail/esc":             {"a\x1b[8m", 64, true, false},
		"fail/nel":             {"a\u0085b", 64, true, false},
		"fail/line separator":  {"a\u2028b", 64, true, false},
		"fail/rlo":             {"pay\u202etuo", 64, false, false},
		"fail/isolate":         {"a\u2066b", 64, false, false},
		"fail/zero width":      {"ali\u200bce", 64, false, false},
		"fail/bom":             {"\ufeffx", 64, false, false},
		"fail/tag char":        {"x\U000E0041", 64, false, false},
		"fail/hangul filler":   {"a\u3164", 64, false, false},
		"fail/bad utf8":        {"w\xfe", 64, false, false},
	} {
		err := CheckText("name", c.s, c.max, c.multiline)
		if c.ok != (err == nil) {
			t.Errorf("%s: err = %v", name, err)
		}
		if err != nil && (ErrorCode(err) != BadRequest || !strings.Contains(ErrorDetail(err), "name")) {
			t.Errorf("%s: %v is not a BadRequest naming the field", name, err)
		}
	}
}
