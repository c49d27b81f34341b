package core

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/countersign/countersign"
)

// Text a human reads before deciding passes one validator, the root's
// countersign.CheckText (the daemon uses the same one); these names keep
// core's callers short.

// MaxName is the longest wallet, agent or daemon wallet name, in
// characters.
const MaxName = countersign.MaxName

// CheckText is countersign.CheckText.
func CheckText(field, s string, max int, multiline bool) error {
	return countersign.CheckText(field, s, max, multiline)
}

// Usernames. A username is shown to the people a user shares an approval
// flow with and is the key of the login limiter, so two names that look
// the same must not be two accounts: a name is NFKC-normalised (fullwidth
// "ａｌｉｃｅ" and ligatures fold into "alice") and refused when its letters come
// from more than one script (a Cyrillic "а" inside a Latin "alice").
const (
	minUsername = 3
	maxUsername = 64 // bytes, after normalisation
)

// NormalizeUsername returns the NFKC form of name, or a BadRequest unless
// that form is 3 to 64 bytes of letters, digits and . _ - @ + whose
// letters all come from one script. Digits and the punctuation are
// script-neutral; Han, Hiragana, Katakana, Bopomofo and Hangul count as
// one script, so Japanese, Chinese and Korean names work. Registration
// stores and login looks up the normalised form.
func NormalizeUsername(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", countersign.Errorf(countersign.BadRequest, "username must be valid UTF-8")
	}
	name = norm.NFKC.String(name)
	return name, checkUsername(name)
}

// checkUsername validates a username already in NFKC form (see
// NormalizeUsername); a name that is not in that form is refused, so an
// unnormalised spelling of an existing name can never be stored.
func checkUsername(name string) error {
	if len(name) < minUsername || len(name) > maxUsername {
		return countersign.Errorf(countersign.BadRequest, "username must be %d to %d characters", minUsername, maxUsername)
	}
	if !utf8.ValidString(name) || !norm.NFKC.IsNormalString(name) {
		return countersign.Errorf(countersign.BadRequest, "username must be in Unicode NFKC form")
	}
	first := ""
	for _, r := range name {
		if r < utf8.RuneSelf && (r >= '0' && r <= '9' || strings.ContainsRune("._-@+", r)) {
			continue
		}
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) || countersign.IsBlankLetter(r) {
			return countersign.Errorf(countersign.BadRequest, "username may contain letters, digits and . _ - @ + only")
		}
		sc := scriptOf(r)
		if sc == "" {
			continue // Common or Inherited (e.g. a digit with no script of its own)
		}
		if first == "" {
			first = sc
		} else if sc != first {
			return countersign.Errorf(countersign.BadRequest, "username mixes letters of the %s and %s scripts, which can imitate another name; use one script", first, sc)
		}
	}
	return nil
}

// loginUsername is the form checkLogin looks a typed username up by: the
// same NFKC normalisation registration applies, without refusing anything
// (an invalid name simply matches no account, with the same answer and
// timing as a wrong password). It must run before the login limiter, so
// equivalent spellings share one failure count.
func loginUsername(name string) string {
	if !utf8.ValidString(name) {
		return name
	}
	return norm.NFKC.String(name)
}

// cjk folds the scripts that are written together into one.
var cjk = map[string]bool{"Han": true, "Hiragana": true, "Katakana": true, "Bopomofo": true, "Hangul": true}

// scriptOf returns the Unicode script of a letter or digit ("" for Common
// and Inherited), with the CJK scripts folded into "Han".
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		if unicode.IsLetter(r) {
			return "Latin"
		}
		return ""
	}
	for _, name := range commonScripts { // most names: skip the full table walk
		if unicode.Is(unicode.Scripts[name], r) {
			return foldScript(name)
		}
	}
	for name, table := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(table, r) {
			return foldScript(name)
		}
	}
	return ""
}

var commonScripts = []string{"Latin", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Devanagari", "Thai"}

func foldScript(name string) string {
	if cjk[name] {
		return "Han"
	}
	return name
}
