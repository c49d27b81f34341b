package auth

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// SIWE is a Sign-In with Ethereum message (EIP-4361). Times keep the text
// they were written with, so String() reproduces a parsed message exactly.
type SIWE struct {
	Scheme         string // optional, before "://" in the first line
	Domain         string // RFC 3986 authority
	Address        string // EIP-55
	Statement      string // optional, one line
	URI            string
	Version        string // "1"
	ChainID        int64
	Nonce          string // at least 8 alphanumerics
	IssuedAt       string
	ExpirationTime string // optional
	NotBefore      string // optional
	RequestID      string // optional
	Resources      []string
}

const siweHeader = " wants you to sign in with your Ethereum account:"

var (
	nonceRE     = regexp.MustCompile(`^[A-Za-z0-9]{8,}$`)
	schemeRE    = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*$`)
	authorityRE = regexp.MustCompile(`^(?:[A-Za-z0-9\-._~%!$&'()*+,;=:]+@)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]+)(?::[0-9]+)?$`)
	requestIDRE = regexp.MustCompile(`^[A-Za-z0-9\-._~%!$&'()*+,;=:@/?]*$`)
	// RFC 3339 date-time, strictly (Go's parser also takes a 1-digit hour).
	dateTimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$`)
)

// ErrSIWE is wrapped by every parse and validation error.
var ErrSIWE = errors.New("siwe")

func siweErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrSIWE}, args...)...)
}

func validURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && schemeRE.MatchString(u.Scheme) && !strings.ContainsAny(s, " \t\n")
}

// ParseTime parses an RFC 3339 date-time (the ABNF of EIP-4361), refusing
// impossible dates.
func parseSIWETime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || !dateTimeRE.MatchString(s) {
		return time.Time{}, siweErr("%s is not an RFC 3339 date-time: %q", field, s)
	}
	return t, nil
}

// Validate checks every field against EIP-4361.
func (m *SIWE) Validate() error {
	if m.Scheme != "" && !schemeRE.MatchString(m.Scheme) {
		return siweErr("invalid scheme")
	}
	if m.Domain == "" || !authorityRE.MatchString(m.Domain) {
		return siweErr("domain is not an RFC 3986 authority")
	}
	if !common.IsHexAddress(m.Address) || !strings.HasPrefix(m.Address, "0x") || common.HexToAddress(m.Address).Hex() != m.Address {
		return siweErr("address is not an EIP-55 checksummed address")
	}
	if strings.ContainsAny(m.Statement, "\n\r") {
		return siweErr("statement must be one line")
	}
	if !validURI(m.URI) {
		return siweErr("uri is not an RFC 3986 URI")
	}
	if m.Version != "1" {
		return siweErr("version must be 1")
	}
	if m.ChainID < 1 {
		return siweErr("chain id must be a positive integer")
	}
	if !nonceRE.MatchString(m.Nonce) {
		return siweErr("nonce must be at least 8 alphanumeric characters")
	}
	if _, err := parseSIWETime("issued at", m.IssuedAt); err != nil {
		return err
	}
	for _, f := range []struct{ name, v string }{{"expiration time", m.ExpirationTime}, {"not before", m.NotBefore}} {
		if f.v != "" {
			if _, err := parseSIWETime(f.name, f.v); err != nil {
				return err
			}
		}
	}
	if !requestIDRE.MatchString(m.RequestID) {
		return siweErr("invalid request id")
	}
	for _, r := range m.Resources {
		if !validURI(r) {
			return siweErr("resource %q is not an RFC 3986 URI", r)
		}
	}
	return nil
}

// String renders the message in EIP-4361's text form.
func (m *SIWE) String() string {
	var b strings.Builder
	if m.Scheme != "" {
		b.WriteString(m.Scheme + "://")
	}
	b.WriteString(m.Domain + siweHeader + "\n" + m.Address + "\n\n")
	if m.Statement != "" {
		b.WriteString(m.Statement + "\n")
	}
	b.WriteString("\nURI: " + m.URI + "\nVersion: " + m.Version + "\nChain ID: " + strconv.FormatInt(m.ChainID, 10) +
		"\nNonce: " + m.Nonce + "\nIssued At: " + m.IssuedAt)
	if m.ExpirationTime != "" {
		b.WriteString("\nExpiration Time: " + m.ExpirationTime)
	}
	if m.NotBefore != "" {
		b.WriteString("\nNot Before: " + m.NotBefore)
	}
	if m.RequestID != "" {
		b.WriteString("\nRequest ID: " + m.RequestID)
	}
	if len(m.Resources) > 0 {
		b.WriteString("\nResources:")
		for _, r := range m.Resources {
			b.WriteString("\n- " + r)
		}
	}
	return b.String()
}

// ParseSIWE parses and validates an EIP-4361 message. Fields must come in
// the specified order; anything else is refused.
func ParseSIWE(msg string) (*SIWE, error) {
	if len(msg) > 16<<10 {
		return nil, siweErr("message too long")
	}
	lines := strings.Split(msg, "\n")
	m := &SIWE{}
	next := func() (string, bool) {
		if len(lines) == 0 {
			return "", false
		}
		l := lines[0]
		lines = lines[1:]
		return l, true
	}
	first, _ := next()
	head, ok := strings.CutSuffix(first, siweHeader)
	if !ok {
		return nil, siweErr("first line must end with %q", strings.TrimSpace(siweHeader))
	}
	if scheme, rest, found := strings.Cut(head, "://"); found {
		if scheme == "" {
			return nil, siweErr("empty scheme before ://")
		}
		m.Scheme, head = scheme, rest
	}
	m.Domain = head
	if m.Address, ok = next(); !ok {
		return nil, siweErr("missing address")
	}
	if l, ok := next(); !ok || l != "" {
		return nil, siweErr("an empty line must follow the address")
	}
	l, ok := next()
	if !ok {
		return nil, siweErr("message ends early")
	}
	if l != "" { // a statement, then an empty line
		m.Statement = l
		if l2, ok := next(); !ok || l2 != "" {
			return nil, siweErr("an empty line must follow the statement")
		}
	}
	field := func(prefix string, required bool) (string, error) {
		if len(lines) > 0 && strings.HasPrefix(lines[0], prefix) {
			v, _ := next()
			return strings.TrimPrefix(v, prefix), nil
		}
		if required {
			return "", siweErr("missing or misplaced %q", strings.TrimSpace(prefix))
		}
		return "", nil
	}
	var err error
	if m.URI, err = field("URI: ", true); err != nil {
		return nil, err
	}
	if m.Version, err = field("Version: ", true); err != nil {
		return nil, err
	}
	chain, err := field("Chain ID: ", true)
	if err != nil {
		return nil, err
	}
	if m.ChainID, err = strconv.ParseInt(chain, 10, 64); err != nil || strings.HasPrefix(chain, "+") {
		return nil, siweErr("chain id is not an integer")
	}
	if m.Nonce, err = field("Nonce: ", true); err != nil {
		return nil, err
	}
	if m.IssuedAt, err = field("Issued At: ", true); err != nil {
		return nil, err
	}
	m.ExpirationTime, _ = field("Expiration Time: ", false)
	m.NotBefore, _ = field("Not Before: ", false)
	m.RequestID, _ = field("Request ID: ", false)
	if len(lines) > 0 && lines[0] == "Resources:" {
		next()
		for len(lines) > 0 && strings.HasPrefix(lines[0], "- ") {
			r, _ := next()
			m.Resources = append(m.Resources, strings.TrimPrefix(r, "- "))
		}
		if len(m.Resources) == 0 {
			return nil, siweErr("Resources: with no resource")
		}
	}
	if len(lines) > 0 {
		return nil, siweErr("unexpected line %q", truncateLine(lines[0]))
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return m, nil
}

func truncateLine(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// SIWECheck is what a verifier expects of a message.
type SIWECheck struct {
	Domain  string    // required domain binding ("" skips)
	Nonce   string    // required nonce ("" skips)
	ChainID int64     // required chain id (0 skips)
	Time    time.Time // verification time
}

// CheckTimes validates the message's time window and bindings.
func (m *SIWE) Check(c SIWECheck) error {
	if c.Domain != "" && m.Domain != c.Domain {
		return siweErr("domain %q does not match %q", m.Domain, c.Domain)
	}
	if c.Nonce != "" && m.Nonce != c.Nonce {
		return siweErr("nonce does not match")
	}
	if c.ChainID != 0 && m.ChainID != c.ChainID {
		return siweErr("chain id %d does not match %d", m.ChainID, c.ChainID)
	}
	if m.ExpirationTime != "" {
		exp, _ := parseSIWETime("expiration time", m.ExpirationTime)
		if !c.Time.Before(exp) {
			return siweErr("message expired at %s", m.ExpirationTime)
		}
	}
	if m.NotBefore != "" {
		nb, _ := parseSIWETime("not before", m.NotBefore)
		if c.Time.Before(nb) {
			return siweErr("message is not valid before %s", m.NotBefore)
		}
	}
	return nil
}

// RecoverSIWE returns the address that made an EIP-191 signature of msg.
// v may be 0, 1, 27 or 28.
func RecoverSIWE(msg string, sig []byte) (common.Address, error) {
	if len(sig) != 65 {
		return common.Address{}, siweErr("signature must be 65 bytes")
	}
	s := append([]byte(nil), sig...)
	switch s[64] {
	case 27, 28:
		s[64] -= 27
	case 0, 1:
	default:
		return common.Address{}, siweErr("signature v must be 0, 1, 27 or 28")
	}
	pub, err := crypto.SigToPub(accounts.TextHash([]byte(msg)), s)
	if err != nil {
		return common.Address{}, siweErr("signature does not recover: %v", err)
	}
	return crypto.PubkeyToAddress(*pub), nil
}
