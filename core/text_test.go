package core

import (
	"context"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/countersign/countersign"
)

// The characters an attacker would use to make an approver misread text.
const (
	rlo = "\u202e" // RIGHT-TO-LEFT OVERRIDE: "to 0xAB…12" shows as "to 21…BAx0"
	lri = "\u2066" // LEFT-TO-RIGHT ISOLATE
	esc = "\x1b"   // starts a terminal escape sequence
)

func TestCheckText(t *testing.T) {
	tests := map[string]struct {
		s         string
		max       int
		multiline bool
		wantErr   string // substring of the detail; "" = accepted
	}{
		"ok/plain":               {s: "pay the GPU bill", max: 64},
		"ok/empty":               {s: "", max: 64},
		"ok/accents":             {s: "café crème", max: 64},
		"ok/arabic":              {s: "دفع الفاتورة", max: 64},
		"ok/emoji zwj sequence":  {s: "dev 👩‍💻 team", max: 64},
		"ok/emoji variation":     {s: "❤️ thanks", max: 64},
		"ok/persian zwnj":        {s: "می\u200cخواهم", max: 64},
		"ok/newline multiline":   {s: "line one\nline two\tx", max: 64, multiline: true},
		"ok/exact max":           {s: strings.Repeat("é", 64), max: 64},
		"fail/too long":          {s: strings.Repeat("é", 65), max: 64, wantErr: "at most 64 characters"},
		"fail/invalid utf8":      {s: "a\xffb", max: 64, wantErr: "valid UTF-8"},
		"fail/nul":               {s: "a\x00b", max: 64, wantErr: "control characters (U+0000 at character 2)"},
		"fail/bel":               {s: "a\x07b", max: 64, multiline: true, wantErr: "control characters (U+0007"},
		"fail/esc":               {s: "a" + esc + "[31mred", max: 64, multiline: true, wantErr: "control characters (U+001B"},
		"fail/del":               {s: "a\x7f", max: 64, wantErr: "control characters (U+007F"},
		"fail/nel":               {s: "a\u0085b", max: 64, multiline: true, wantErr: "control characters (U+0085"},
		"fail/cr":                {s: "a\rb", max: 64, multiline: true, wantErr: "control characters (U+000D"},
		"fail/newline one line":  {s: "a\nb", max: 64, wantErr: "one line"},
		"fail/tab one line":      {s: "a\tb", max: 64, wantErr: "one line"},
		"fail/line separator":    {s: "a\u2028b", max: 64, multiline: true, wantErr: "line or paragraph separators (U+2028"},
		"fail/rlo":               {s: "to " + rlo + "21BA", max: 64, multiline: true, wantErr: "bidirectional control characters, which reorder what the approver reads (U+202E at character 4)"},
		"fail/lre":               {s: "\u202a", max: 64, wantErr: "bidirectional"},
		"fail/pdf":               {s: "\u202c", max: 64, wantErr: "bidirectional"},
		"fail/lri":               {s: lri + "x", max: 64, wantErr: "bidirectional"},
		"fail/pdi":               {s: "\u2069", max: 64, wantErr: "bidirectional"},
		"fail/lrm":               {s: "\u200e", max: 64, wantErr: "bidirectional"},
		"fail/rlm":               {s: "\u200f", max: 64, wantErr: "bidirectional"},
		"fail/alm":               {s: "\u061c", max: 64, wantErr: "bidirectional"},
		"fail/zero width space":  {s: "pay\u200bpal", max: 64, wantErr: "invisible or formatting characters (U+200B"},
		"fail/word joiner":       {s: "\u2060", max: 64, wantErr: "invisible"},
		"fail/bom":               {s: "\ufeffx", max: 64, wantErr: "invisible"},
		"fail/soft hyphen":       {s: "ap\u00adprove", max: 64, wantErr: "invisible"},
		"fail/tag characters":    {s: "ok\U000E0041\U000E0042", max: 64, wantErr: "invisible or formatting characters (U+0E0041"},
		"fail/hangul filler":     {s: "\u3164", max: 64, wantErr: "invisible"},
		"fail/braille blank":     {s: "\u2800", max: 64, wantErr: "invisible"},
		"fail/mongolian vowel s": {s: "\u180e", max: 64, wantErr: "invisible"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			err := CheckText("memo", tt.s, tt.max, tt.multiline)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("refused %q: %v", tt.s, err)
				}
				return
			}
			if countersign.ErrorCode(err) != countersign.BadRequest || !strings.Contains(countersign.ErrorDetail(err), tt.wantErr) {
				t.Fatalf("CheckText(%q) = %v, want BadRequest with %q", tt.s, err, tt.wantErr)
			}
			if !strings.HasPrefix(countersign.ErrorDetail(err), "memo ") {
				t.Fatalf("detail %q does not name the field", countersign.ErrorDetail(err))
			}
			// The detail names the character; it never echoes it.
			if d := countersign.ErrorDetail(err); strings.ContainsAny(d, "\x00\x07\x1b\u202e\u2066\u200b\ufeff") {
				t.Fatalf("detail %q contains the refused character", d)
			}
		})
	}
}

func TestNormalizeUsername(t *testing.T) {
	tests := map[string]struct {
		in, want string
		wantErr  string
	}{
		"ok/ascii":              {in: "alice", want: "alice"},
		"ok/punctuation":        {in: "a.l_i-c+e@x", want: "a.l_i-c+e@x"},
		"ok/digits":             {in: "bob42", want: "bob42"},
		"ok/fullwidth folds":    {in: "ａｌｉｃｅ", want: "alice"},
		"ok/ligature folds":     {in: "ﬁnn", want: "finn"},
		"ok/decomposed accent":  {in: "jose\u0301", want: "josé"},
		"ok/fullwidth digits":   {in: "bob４２", want: "bob42"},
		"ok/greek":              {in: "αλίκη", want: "αλίκη"},
		"ok/cyrillic":           {in: "алиса", want: "алиса"},
		"ok/cyrillic digits":    {in: "алиса7", want: "алиса7"},
		"ok/japanese":           {in: "たなか太郎カ", want: "たなか太郎カ"},
		"ok/korean":             {in: "김민준", want: "김민준"},
		"fail/cyrillic a":       {in: "\u0430lice", wantErr: "mixes letters of the Cyrillic and Latin scripts"},
		"fail/greek omicron":    {in: "b\u03bfb", wantErr: "Latin and Greek"},
		"fail/micro sign":       {in: "\u00b5ser", wantErr: "Greek and Latin"}, // NFKC turns µ into Greek μ
		"fail/latin and han":    {in: "bob太郎", wantErr: "mixes"},
		"fail/too short":        {in: "ab", wantErr: "3 to 64"},
		"fail/too long":         {in: strings.Repeat("a", 65), wantErr: "3 to 64"},
		"fail/space":            {in: "b o b", wantErr: "letters, digits"},
		"fail/nul":              {in: "bob\x00", wantErr: "letters, digits"},
		"fail/rlo":              {in: "bob" + rlo + "x", wantErr: "letters, digits"},
		"fail/zero width":       {in: "bo\u200bb", wantErr: "letters, digits"},
		"fail/hangul filler":    {in: "김\u3164민", wantErr: "letters, digits"},
		"fail/invalid utf8":     {in: "bob\xff", wantErr: "UTF-8"},
		"fail/combining only":   {in: "bo\u0308\u0308b", wantErr: "letters, digits"}, // a mark with nothing to compose with
		"fail/fullwidth bslash": {in: "ｂｏｂ＼", wantErr: "letters, digits"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := NormalizeUsername(tt.in)
			if tt.wantErr == "" {
				if err != nil || got != tt.want {
					t.Fatalf("NormalizeUsername(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
				}
				if err := validUsername(got); err != nil {
					t.Fatalf("validUsername refuses the normalised %q: %v", got, err)
				}
				if loginUsername(tt.in) != got {
					t.Fatalf("login looks %q up as %q, registration stores %q", tt.in, loginUsername(tt.in), got)
				}
				return
			}
			if countersign.ErrorCode(err) != countersign.BadRequest || !strings.Contains(countersign.ErrorDetail(err), tt.wantErr) {
				t.Fatalf("NormalizeUsername(%q) = %q, %v; want BadRequest with %q", tt.in, got, err, tt.wantErr)
			}
		})
	}
}

// FuzzNormalizeUsername: an accepted name is its own normal form, valid,
// and what login looks it up by; nothing panics.
func FuzzNormalizeUsername(f *testing.F) {
	for _, s := range []string{"alice", "ａｌｉｃｅ", "\u0430lice", "たなか太郎", "ﬁnn", "jose\u0301", "b\xffob", "\u00b5ser", "a\u200db"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := NormalizeUsername(s)
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("NormalizeUsername(%q): %v", s, err)
			}
			return
		}
		if !norm.NFKC.IsNormalString(got) || checkUsername(got) != nil || validUsername(got) != nil || loginUsername(s) != got {
			t.Fatalf("NormalizeUsername(%q) = %q: not normal, not valid or not the login form", s, got)
		}
		if again, err := NormalizeUsername(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q → %q → %q, %v", s, got, again, err)
		}
	})
}

// FuzzCheckText: accepted text is valid UTF-8 within the limit and holds no
// character an attacker could hide or reorder with.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"pay", "a\nb", "to " + rlo + "x", "👩‍💻", "\x00", "\xff", "\u2066x\u2069", "ok\U000E0041"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, multiline bool) {
		err := CheckText("memo", s, 64, multiline)
		if err != nil {
			if countersign.ErrorCode(err) != countersign.BadRequest {
				t.Fatalf("CheckText(%q): %v", s, err)
			}
			return
		}
		if !utf8.ValidString(s) || utf8.RuneCountInString(s) > 64 {
			t.Fatalf("accepted %q", s)
		}
		for _, r := range s {
			if countersign.IsBidiControl(r) || r < 0x20 && (!multiline || r != '\n' && r != '\t') || r >= 0x7f && r <= 0x9f ||
				r == '\u200b' || r == '\u2060' || r == '\ufeff' || r >= 0xE0000 && r <= 0xE007F {
				t.Fatalf("accepted %q with %U", s, r)
			}
		}
	})
}

// ---- the attacks, through the service entry points

// stubChain answers ChainID; the refusals under test happen before
// anything else reaches the chain.
type stubChain struct{ countersign.Chain }

func (stubChain) ChainID(context.Context) (*big.Int, error) { return big.NewInt(31337), nil }

// The calls a request that got past validation would make answer an
// error, so a regression fails the assertion rather than panicking.
var errUnreached = errors.New("stub chain: this test should not reach the chain")

func (stubChain) BalanceAt(context.Context, string) (*big.Int, error) { return nil, errUnreached }
func (stubChain) CodeAt(context.Context, string) ([]byte, error)      { return nil, errUnreached }
func (stubChain) PendingNonceAt(context.Context, string) (uint64, error) {
	return 0, errUnreached
}
func (stubChain) Call(context.Context, countersign.CallMsg) ([]byte, error) { return nil, errUnreached }
func (stubChain) EstimateGas(context.Context, countersign.CallMsg) (uint64, error) {
	return 0, errUnreached
}
func (stubChain) SuggestFees(context.Context) (*big.Int, *big.Int, error) {
	return nil, nil, errUnreached
}

func newTextService(t *testing.T) (*Service, context.Context) {
	t.Helper()
	return newStubService(t, stubChain{})
}

const textTestPassword = "correct horse battery staple"

// Wallet and agent names with NUL, BEL, ESC or a bidi override are refused
// with BadRequest and nothing is created; a name with an emoji ZWJ sequence
// still works. On the old code the control-character names were stored and
// the ESC reached the HTML.
func TestSecurity_APINamesRefuseControlAndBidi(t *testing.T) {
	svc, ctx := newTextService(t)
	u, err := svc.Register(ctx, "alice", textTestPassword)
	if err != nil {
		t.Fatal(err)
	}
	u.MFAEnabled = true // CreateAgent checks the name before the MFA code
	p := &Principal{User: u}
	w, err := svc.CreateWallet(ctx, p, textTestPassword, "  dev 👩‍💻 wallet  ") // an emoji ZWJ sequence is fine
	if err != nil || w.Name != "dev 👩‍💻 wallet" {
		t.Fatalf("emoji ZWJ name: %v", err)
	}
	bad := map[string]string{
		"nul":      "ops\x00wallet",
		"bel":      "ops\x07",
		"esc":      "ops" + esc + "[2J" + esc + "[31mred",
		"rlo":      "cold " + rlo + "tellaw",
		"isolate":  lri + "x",
		"newline":  "a\nb",
		"zwsp":     "ops\u200b",
		"bad utf8": "ops\xff",
	}
	for name, n := range bad {
		if _, err := svc.CreateWallet(ctx, p, textTestPassword, n); countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("wallet name %s: err = %v, want BAD_REQUEST", name, err)
		}
		if _, _, err := svc.CreateAgent(ctx, p, n, w.Address, "000000"); countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("agent name %s: err = %v, want BAD_REQUEST", name, err)
		}
	}
	if ws, err := svc.Wallets(ctx, p); err != nil || len(ws) != 1 {
		t.Fatalf("refused names created %d wallets (%v)", len(ws)-1, err)
	}
	if as, err := svc.Agents(ctx, p); err != nil || len(as) != 0 {
		t.Fatalf("refused names created %d agents (%v)", len(as), err)
	}
	// A bad name costs no password attempt: it is refused before the
	// password is checked, even a wrong one.
	if _, err := svc.CreateWallet(ctx, p, "wrong password", "x"+esc); countersign.ErrorCode(err) != countersign.BadRequest {
		t.Fatalf("bad name with wrong password: %v", err)
	}
}

// A memo carrying a bidi override (which would show the approver the
// recipient's address or an amount reversed) or an invisible character is
// refused at prepare and no transaction exists. On the old code the RLO
// memo was accepted (only Cc was refused).
func TestSecurity_MemoBidiRefused(t *testing.T) {
	svc, ctx := newTextService(t)
	u, err := svc.Register(ctx, "bob", textTestPassword)
	if err != nil {
		t.Fatal(err)
	}
	owner := &Principal{User: u}
	w, err := svc.CreateWallet(ctx, owner, textTestPassword, "w")
	if err != nil {
		t.Fatal(err)
	}
	a := &countersign.Agent{ID: "6f1c1e5e-0a55-4a55-9d55-555555555555", OwnerID: u.ID, Name: "agent", WalletID: w.ID,
		KeyHash: make([]byte, 32), KeyPrefix: "cs_test", CreatedAt: time.Unix(1_800_000_000, 0)}
	if err := svc.store.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	agent := &Principal{User: u, Agent: a}
	for name, memo := range map[string]string{
		"rlo":     "refund to " + rlo + "dAeD...0000x0",
		"lri":     "pay " + lri + "1000" + "\u2069 USDC",
		"rlm":     "x\u200f",
		"zwsp":    "app\u200brove",
		"tags":    "hi\U000E0049\U000E0047\U000E004E\U000E004F\U000E0052\U000E0045", // invisible "IGNORE"
		"esc":     "a" + esc + "[8mhidden",
		"nel":     "a\u0085b",
		"lsep":    "a\u2028b",
		"bad utf": "\xc0\x80",
	} {
		req := &PrepareRequest{Type: "native", ToAddress: "0x000000000000000000000000000000000000dEaD", Amount: "1", Memo: memo}
		if _, err := svc.Prepare(ctx, agent, req, ""); countersign.ErrorCode(err) != countersign.BadRequest || !strings.Contains(countersign.ErrorDetail(err), "memo") {
			t.Errorf("memo %s: err = %v, want BAD_REQUEST naming memo", name, err)
		}
	}
	if list, err := svc.Transactions(ctx, owner, countersign.TxFilter{Limit: 100}); err != nil || len(list) != 0 {
		t.Fatalf("refused memos created %d transactions (%v)", len(list), err)
	}
}

// A look-alike username (Cyrillic "а" for Latin "a") is not a second
// account. On the old code any mix of letters was accepted.
func TestSecurity_LookalikeUsernameRefused(t *testing.T) {
	svc, ctx := newTextService(t)
	if _, err := svc.Register(ctx, "alice", textTestPassword); err != nil {
		t.Fatal(err)
	}
	for name, n := range map[string]string{
		"cyrillic a":  "\u0430lice",
		"greek o":     "b\u03bfb",
		"fullwidth":   "ａｌｉｃｅ", // NFKC-equal to alice: refused (or, once Register normalises, taken)
		"rlo":         "alice" + rlo,
		"zero width":  "ali\u200bce",
		"hangul fill": "alice\u3164",
	} {
		_, err := svc.Register(ctx, n, textTestPassword)
		if c := countersign.ErrorCode(err); c != countersign.BadRequest && c != countersign.Conflict {
			t.Errorf("username %s (%q): err = %v, want BAD_REQUEST or CONFLICT", name, n, err)
		}
		if _, err := svc.store.UserByName(ctx, n); err == nil {
			t.Errorf("username %s (%q) was stored", name, n)
		}
	}
}
