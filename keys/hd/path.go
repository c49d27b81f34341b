package hd

import (
	"fmt"
	"strconv"
	"strings"
)

// Path is a derivation path as child indexes.
type Path []uint32

// CoinType is the AITBC wallet-daemon design's provisional AITBC coin type.
const CoinType = 12345

// DefaultSecp256k1Path is BIP-44 with the AITBC wallet-daemon design's coin type.
const DefaultSecp256k1Path = "m/44'/12345'/0'/0/0"

// DefaultEd25519Path is the AITBC wallet-daemon design's path hardened at every level, as
// SLIP-10 requires for ed25519 (the AITBC design's m/44'/12345'/account'/change/
// index has non-hardened change and index levels, which SLIP-10 forbids).
const DefaultEd25519Path = "m/44'/12345'/0'/0'/0'"

// ParsePath parses "m/44'/60'/0'/0/0" (hardened with ' or h). At most 255
// levels; each index below 2^31.
func ParsePath(s string) (Path, error) {
	if s == "m" || s == "M" {
		return Path{}, nil
	}
	rest, ok := strings.CutPrefix(s, "m/")
	if !ok {
		rest, ok = strings.CutPrefix(s, "M/")
	}
	if !ok || rest == "" {
		return nil, fmt.Errorf("hd: a path starts with m/, like m/44'/60'/0'/0/0")
	}
	parts := strings.Split(rest, "/")
	if len(parts) > 255 {
		return nil, fmt.Errorf("hd: path deeper than 255 levels")
	}
	p := make(Path, 0, len(parts))
	for _, part := range parts {
		hardened := false
		if n := len(part); n > 0 && (part[n-1] == '\'' || part[n-1] == 'h' || part[n-1] == 'H') {
			hardened, part = true, part[:n-1]
		}
		if part == "" || (len(part) > 1 && part[0] == '0') || strings.ContainsAny(part, "+-") {
			return nil, fmt.Errorf("hd: invalid path level %q", part)
		}
		v, err := strconv.ParseUint(part, 10, 32)
		if err != nil || uint32(v) >= HardenedOffset {
			return nil, fmt.Errorf("hd: path index %q must be below 2^31", part)
		}
		i := uint32(v)
		if hardened {
			i += HardenedOffset
		}
		p = append(p, i)
	}
	return p, nil
}

// String renders the path with ' for hardened levels.
func (p Path) String() string {
	var b strings.Builder
	b.WriteString("m")
	for _, i := range p {
		b.WriteString("/")
		if i >= HardenedOffset {
			b.WriteString(strconv.FormatUint(uint64(i-HardenedOffset), 10) + "'")
		} else {
			b.WriteString(strconv.FormatUint(uint64(i), 10))
		}
	}
	return b.String()
}

// AllHardened reports whether every level is hardened.
func (p Path) AllHardened() bool {
	for _, i := range p {
		if i < HardenedOffset {
			return false
		}
	}
	return true
}
