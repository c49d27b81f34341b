package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"strings"
)

// APIKeyPrefix marks countersign agent keys so they are recognisable in
// logs, config files and secret scanners.
const APIKeyPrefix = "csk_"

var keyEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewAPIKey returns a new agent key (256 random bits after the prefix) and
// the SHA-256 hash that is stored in its place.
func NewAPIKey() (key string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	key = APIKeyPrefix + strings.ToLower(keyEnc.EncodeToString(b))
	return key, HashAPIKey(key), nil
}

// HashAPIKey returns the stored form of key. The key has 256 bits of entropy,
// so a fast hash is enough: there is nothing to brute-force.
func HashAPIKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// LooksLikeAPIKey reports whether key has the countersign key shape; other
// strings are refused before any lookup.
func LooksLikeAPIKey(key string) bool {
	if !strings.HasPrefix(key, APIKeyPrefix) || len(key) != len(APIKeyPrefix)+52 {
		return false
	}
	for _, r := range key[len(APIKeyPrefix):] {
		if !(r >= 'a' && r <= 'z' || r >= '2' && r <= '7') {
			return false
		}
	}
	return true
}
