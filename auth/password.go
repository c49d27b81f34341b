// Package auth holds the credential primitives: Argon2id password hashes,
// TOTP (RFC 6238), asymmetric session tokens with a JWKS, and agent API keys.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/countersign/countersign"
)

// MinPasswordLen is the shortest password accepted at registration.
const MinPasswordLen = 12

// MaxPasswordLen bounds the work an attacker can make Argon2 do per request.
const MaxPasswordLen = 256

// Argon2Params are the Argon2id cost parameters for new hashes. Verification
// always uses the parameters stored in the hash.
type Argon2Params struct {
	Time    uint32
	Memory  uint32 // KiB
	Threads uint8
}

// DefaultArgon2 is RFC 9106's second recommended option with a larger time
// cost: t=3, m=64 MiB, p=2 (about 0.3 s on one core of the reference machine).
var DefaultArgon2 = Argon2Params{Time: 3, Memory: 64 * 1024, Threads: 2}

// Bounds for parameters read back from a stored hash, so a corrupted or
// planted row cannot make verification allocate gigabytes.
const (
	maxArgonTime   = 16
	maxArgonMemory = 1024 * 1024 // 1 GiB in KiB
)

// CheckPasswordPolicy returns a BadRequest error for a password that is too
// short, too long or not valid UTF-8.
func CheckPasswordPolicy(pw string) error {
	if !utf8.ValidString(pw) {
		return countersign.Errorf(countersign.BadRequest, "password must be valid UTF-8")
	}
	if n := utf8.RuneCountInString(pw); n < MinPasswordLen {
		return countersign.Errorf(countersign.BadRequest, "password must be at least %d characters", MinPasswordLen)
	}
	if len(pw) > MaxPasswordLen {
		return countersign.Errorf(countersign.BadRequest, "password must be at most %d bytes", MaxPasswordLen)
	}
	return nil
}

// HashPassword returns a PHC-format Argon2id hash of pw:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>.
func HashPassword(pw string, p Argon2Params) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(sum)), nil
}

var errBadHash = errors.New("auth: malformed password hash")

// VerifyPassword reports whether pw matches the PHC hash, in constant time.
func VerifyPassword(pw, hash string) (bool, error) {
	if len(pw) > MaxPasswordLen {
		return false, nil
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false, errBadHash
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return false, errBadHash
	}
	if t == 0 || t > maxArgonTime || m < 8 || m > maxArgonMemory || p == 0 {
		return false, errBadHash
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return false, errBadHash
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) < 16 {
		return false, errBadHash
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}
