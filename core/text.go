package core

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/countersign/countersign"
)

// Text a human reads before deciding (memos, rejection reasons, wallet,
// agent and daemon names, account tag values) passes one validator, so an
// agent cannot make the approver read something other than what is stored:
// no control characters (a NUL truncates, an ESC drives a terminal that
// prints the audit log), no bidirectional controls (U+202E turns
// "0x…dEaD to Bob" into what looks like another recipient or amount), and
// no invisible format characters that hide or split words.

// MaxName is the longest wallet, agent or daemon wallet name, in
// characters.
const MaxName = 64

// CheckText returns a BadRequest naming field unless s is valid UTF-8 of at
// most max characters (code points) without:
//   - control characters (Unicode Cc), except '\n' and '\t' when multiline
//     (U+0085 NEL is refused: it is a line break some viewers honour);
//   - line and paragraph separators U+2028 and U+2029;
//   - format characters (Unicode Cf): the bidirectional controls U+061C,
//     U+200E, U+200F, U+202A–U+202E and U+2066–U+2069, the zero-width
//     space U+200B, the word joiner U+2060, the BOM U+FEFF, the soft hyphen,
//     the invisible tag characters U+E0000–U+E007F (which can smuggle text
//     no approver sees) and the rest of Cf — except the zero-width
//     non-joiner U+200C and joiner U+200D, which emoji sequences
//     (👩‍💻) and scripts such as Persian need, and which reorder nothing;
//   - the blank letters U+115F, U+1160, U+3164, U+FFA0 and U+2800.
//
// It refuses rather than strips, so what is stored is byte for byte what the
// sender sent and the approver sees.
func CheckText(field, s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return countersign.Errorf(countersign.BadRequest, "%s must be valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return countersign.Errorf(countersign.BadRequest, "%s must be at most %d characters (it has %d)", field, max, n)
	}
	i := 0
	for _, r := range s {
		i++
		switch {
		case r == '\n' || r == '\t':
			if !multiline {
				return countersign.Errorf(countersign.BadRequest, "%s must be one line, without tabs (%s at character %d)", field, codePoint(r), i)
			}
		case unicode.IsControl(r):
			return countersign.Errorf(countersign.BadRequest, "%s must not contain control characters (%s at character %d)", field, codePoint(r), i)
		case r == '\u2028' || r == '\u2029':
			return countersign.Errorf(countersign.BadRequest, "%s must not contain line or paragraph separators (%s at character %d)", field, codePoint(r), i)
		case r == '\u200c' || r == '\u200d':
			// joiners: allowed, see above
		case isBidiControl(r):
			return countersign.Errorf(countersign.BadRequest, "%s must not contain bidirectional control characters, which reorder what the approver reads (%s at character %d)", field, codePoint(r), i)
		case unicode.Is(unicode.Cf, r) || isBlankLetter(r):
			return countersign.Errorf(countersign.BadRequest, "%s must not contain invisible or formatting characters (%s at character %d)", field, codePoint(r), i)
		}
	}
	return nil
}

// isBidiControl reports the characters that change the display order of
// the text around them: the Unicode Bidi_Control property.
func isBidiControl(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' || r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// isBlankLetter reports the letters that render as nothing (the Hangul
// fillers, the braille blank), which make a name look empty or like
// another one.
func isBlankLetter(r rune) bool {
	return r == '\u115f' || r == '\u1160' || r == '\u3164' || r == '\uffa0' || r == '\u2800'
}

// codePoint names r in U+XXXX form: the character itself would be invisible
// (or worse) in the error message.
func codePoint(r rune) string {
	const hex = "0123456789ABCDEF"
	b := []byte("U+")
	digits := 4
	if r > 0xFFFF {
		digits = 6
	}
	for shift := (digits - 1) * 4; shift >= 0; shift -= 4 {
		b = append(b, hex[(r>>shift)&0xF])
	}
	return string(b)
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
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) || isBlankLetter(r) {
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
