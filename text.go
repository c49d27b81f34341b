package countersign

import (
	"unicode"
	"unicode/utf8"
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
		return Errorf(BadRequest, "%s must be valid UTF-8", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return Errorf(BadRequest, "%s must be at most %d characters (it has %d)", field, max, n)
	}
	i := 0
	for _, r := range s {
		i++
		switch {
		case r == '\n' || r == '\t':
			if !multiline {
				return Errorf(BadRequest, "%s must be one line, without tabs (%s at character %d)", field, codePoint(r), i)
			}
		case unicode.IsControl(r):
			return Errorf(BadRequest, "%s must not contain control characters (%s at character %d)", field, codePoint(r), i)
		case r == '\u2028' || r == '\u2029':
			return Errorf(BadRequest, "%s must not contain line or paragraph separators (%s at character %d)", field, codePoint(r), i)
		case r == '\u200c' || r == '\u200d':
			// joiners: allowed, see above
		case IsBidiControl(r):
			return Errorf(BadRequest, "%s must not contain bidirectional control characters, which reorder what the approver reads (%s at character %d)", field, codePoint(r), i)
		case unicode.Is(unicode.Cf, r) || IsBlankLetter(r):
			return Errorf(BadRequest, "%s must not contain invisible or formatting characters (%s at character %d)", field, codePoint(r), i)
		}
	}
	return nil
}

// IsBidiControl reports the characters that change the display order of
// the text around them: the Unicode Bidi_Control property.
func IsBidiControl(r rune) bool {
	return r == '\u061c' || r == '\u200e' || r == '\u200f' || r >= '\u202a' && r <= '\u202e' || r >= '\u2066' && r <= '\u2069'
}

// IsBlankLetter reports the letters that render as nothing (the Hangul
// fillers, the braille blank), which make a name look empty or like
// another one.
func IsBlankLetter(r rune) bool {
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

// MaxMemo is the longest memo, in characters: an agent's on a spend, the
// operator's on a daemon ledger transfer.
const MaxMemo = 500
