package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"hash"
	"net/url"
	"time"
)

// TOTP parameters of RFC 6238 as deployed by authenticator apps: HMAC-SHA1,
// 6 digits, 30-second steps. Skew allows one step either side for clock drift.
const (
	TOTPDigits = 6
	TOTPPeriod = 30
	TOTPSkew   = 1
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a fresh 160-bit secret (RFC 4226 §4 recommends 160).
func NewTOTPSecret() ([]byte, error) {
	s := make([]byte, 20)
	_, err := rand.Read(s)
	return s, err
}

// EncodeSecret returns the unpadded base32 form authenticator apps expect.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// TOTPURI returns the otpauth:// URI for enrolment (Key Uri Format).
func TOTPURI(issuer, account string, secret []byte) string {
	v := url.Values{}
	v.Set("secret", EncodeSecret(secret))
	v.Set("issuer", issuer)
	// Path escaping keeps the label readable; query order is fixed by hand
	// so the URI starts with secret= as authenticator apps and the source design show it.
	return fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s",
		url.PathEscape(issuer), url.PathEscape(account), EncodeSecret(secret), url.QueryEscape(issuer))
}

// HOTP computes the RFC 4226 value for counter with the given hash and
// number of digits.
func HOTP(secret []byte, counter uint64, digits int, h func() hash.Hash) string {
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], counter)
	mac := hmac.New(h, secret)
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := (uint32(sum[off])&0x7f)<<24 | uint32(sum[off+1])<<16 | uint32(sum[off+2])<<8 | uint32(sum[off+3])
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// TOTPStep returns the RFC 6238 time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / TOTPPeriod }

// TOTPCode returns the 6-digit SHA-1 code for t.
func TOTPCode(secret []byte, t time.Time) string {
	return HOTP(secret, uint64(TOTPStep(t)), TOTPDigits, sha1.New)
}

// VerifyTOTP checks code against the steps around now and returns the step
// it matched. A code whose step is not after lastStep is refused, so each
// code (and any older one) is accepted once per user (RFC 6238 §5.2).
func VerifyTOTP(secret []byte, code string, now time.Time, lastStep int64) (int64, bool) {
	if len(code) != TOTPDigits {
		return 0, false
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return 0, false
		}
	}
	cur := TOTPStep(now)
	matched, ok := int64(0), 0
	// Check every candidate so timing does not reveal which step matched.
	for s := cur - TOTPSkew; s <= cur+TOTPSkew; s++ {
		want := HOTP(secret, uint64(s), TOTPDigits, sha1.New)
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code))
		if eq == 1 && s > lastStep && ok == 0 {
			matched, ok = s, 1
		}
	}
	return matched, ok == 1
}
