package keystore

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
	"golang.org/x/crypto/scrypt"
)

// Bounds on Web3 Secret Storage KDF parameters read from a file: a planted
// file must not make one import spend gigabytes or minutes before the
// password check fails. They admit every common writer: geth's standard
// (n = 2^18, r = 8, p = 1: 256 MiB), ethers (2^17, 8, 1) and the wiki vector
// (2^18, 1, 8).
const (
	MaxScryptN      = 1 << 20
	MaxScryptR      = 16
	MaxScryptP      = 16
	MaxScryptMemory = 256 << 20 // bytes: scrypt's V array is 128·r·n bytes
	MaxScryptWork   = 1 << 22   // n·r·p, the number of BlockMix rounds (p runs in sequence)
	MaxPBKDF2Count  = 10_000_000
	maxV3Size       = 64 << 10
)

// ErrV3 wraps refusals of a v3 keystore.
var ErrV3 = errors.New("keystore: invalid v3 keystore")

// v3Key is a v3 keystore after validation: every value the decryption uses,
// already decoded and within bounds.
type v3Key struct {
	address                   string
	kdf                       string // "scrypt" or "pbkdf2"
	n, r, p, c                int
	salt, iv, cipherText, mac []byte
}

// foldKey maps s to one representative of everything that compares equal to
// it ignoring case (the smallest rune of each rune's case-folding orbit), so
// "N", "n", "Salt", "ſalt" (long s) collide in a map.
func foldKey(s string) string {
	var b strings.Builder
	for _, r := range s {
		m := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			m = min(m, f)
		}
		b.WriteRune(m)
	}
	return b.String()
}

// checkKeys walks the JSON document and refuses any object that holds the
// same key twice, exactly or in another case. Decoders disagree about such
// files (encoding/json into a struct matches keys case-insensitively and
// keeps the last; a map keeps both spellings), so a check and a use that
// read different values is exactly how bounds get sidestepped.
func checkKeys(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		keys      map[string]bool // nil for an array
		expectKey bool
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].keys != nil {
			stack[n-1].expectKey = true
		}
	}
	started := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			if len(stack) != 0 || !started {
				return fmt.Errorf("%w: truncated JSON", ErrV3)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: not valid JSON", ErrV3)
		}
		if started && len(stack) == 0 {
			return fmt.Errorf("%w: trailing data after the JSON object", ErrV3)
		}
		started = true
		if n := len(stack); n > 0 && stack[n-1].expectKey {
			if tok == json.Delim('}') {
				stack = stack[:n-1]
				valueDone()
				continue
			}
			k, _ := tok.(string) // the decoder only yields string keys here
			f := foldKey(k)
			if stack[n-1].keys[f] {
				return fmt.Errorf("%w: key %q appears twice (keys are compared ignoring case)", ErrV3, truncate(k, 32))
			}
			stack[n-1].keys[f] = true
			stack[n-1].expectKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{keys: map[string]bool{}, expectKey: true})
		case json.Delim('['):
			stack = append(stack, &frame{})
		case json.Delim(']'), json.Delim('}'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// object decodes raw as a JSON object and refuses any key that differs only
// in case from one of known (other keys are ignored: writers add their own,
// like "id" or "x-ethers"). Values are then read by their exact names only.
func object(raw json.RawMessage, what string, known ...string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: %s must be a JSON object", ErrV3, what)
	}
	for k := range m {
		for _, want := range known {
			if k != want && strings.EqualFold(k, want) {
				return nil, fmt.Errorf("%w: key %q in %s must be spelled %q", ErrV3, truncate(k, 32), what, want)
			}
		}
	}
	return m, nil
}

func str(m map[string]json.RawMessage, key, what string) (string, error) {
	var s string
	v, ok := m[key]
	if !ok || json.Unmarshal(v, &s) != nil {
		return "", fmt.Errorf("%w: %s.%s must be a string", ErrV3, what, key)
	}
	return s, nil
}

// integer reads a JSON integer in [lo, hi]; strings, fractions and
// exponents are refused rather than interpreted.
func integer(m map[string]json.RawMessage, key string, lo, hi int) (int, error) {
	var n int
	v, ok := m[key]
	if !ok || json.Unmarshal(v, &n) != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%w: kdfparams.%s must be an integer from %d to %d", ErrV3, key, lo, hi)
	}
	return n, nil
}

func hexField(m map[string]json.RawMessage, key, what string, lo, hi int) ([]byte, error) {
	s, err := str(m, key, what)
	if err != nil {
		return nil, err
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) < lo || len(b) > hi {
		return nil, fmt.Errorf("%w: %s.%s must be hex of %d to %d bytes", ErrV3, what, key, lo, hi)
	}
	return b, nil
}

// parseV3 validates a v3 keystore and returns every value decryption needs.
// Nothing else reads the file afterwards: decryption uses only these values,
// so what was checked is what is used.
func parseV3(raw []byte) (*v3Key, error) {
	if len(raw) > maxV3Size {
		return nil, fmt.Errorf("%w: too large", ErrV3)
	}
	if err := checkKeys(raw); err != nil {
		return nil, err
	}
	// "Crypto" is what some older writers (MyEtherWallet) used; geth reads
	// it too. checkKeys has already refused a file with both spellings.
	top, err := object(raw, "the keystore", "version", "address", "id")
	if err != nil {
		return nil, err
	}
	var version int
	if v, ok := top["version"]; !ok || json.Unmarshal(v, &version) != nil || version != 3 {
		return nil, fmt.Errorf("%w: version must be 3", ErrV3)
	}
	k := &v3Key{}
	if v, ok := top["address"]; ok {
		if json.Unmarshal(v, &k.address) != nil {
			return nil, fmt.Errorf("%w: address must be a string", ErrV3)
		}
	}
	cr, ok := top["crypto"]
	if !ok {
		cr, ok = top["Crypto"]
	}
	for key := range top {
		if key != "crypto" && key != "Crypto" && strings.EqualFold(key, "crypto") {
			return nil, fmt.Errorf("%w: key %q must be spelled \"crypto\"", ErrV3, truncate(key, 32))
		}
	}
	if !ok {
		return nil, fmt.Errorf("%w: crypto is missing", ErrV3)
	}
	c, err := object(cr, "crypto", "cipher", "cipherparams", "ciphertext", "kdf", "kdfparams", "mac")
	if err != nil {
		return nil, err
	}
	if ciph, err := str(c, "cipher", "crypto"); err != nil || ciph != "aes-128-ctr" {
		return nil, fmt.Errorf("%w: crypto.cipher must be aes-128-ctr", ErrV3)
	}
	cp, err := object(c["cipherparams"], "cipherparams", "iv")
	if err != nil {
		return nil, err
	}
	if k.iv, err = hexField(cp, "iv", "cipherparams", aes.BlockSize, aes.BlockSize); err != nil {
		return nil, err
	}
	if k.cipherText, err = hexField(c, "ciphertext", "crypto", 16, 32); err != nil {
		return nil, err
	}
	if k.mac, err = hexField(c, "mac", "crypto", 32, 32); err != nil {
		return nil, err
	}
	if k.kdf, err = str(c, "kdf", "crypto"); err != nil {
		return nil, err
	}
	kp, err := object(c["kdfparams"], "kdfparams", "n", "r", "p", "c", "dklen", "prf", "salt")
	if err != nil {
		return nil, err
	}
	if k.salt, err = hexField(kp, "salt", "kdfparams", 16, 64); err != nil {
		return nil, err
	}
	// The MAC key is bytes 16..32 of the derived key and nothing uses more.
	if _, err := integer(kp, "dklen", 32, 32); err != nil {
		return nil, err
	}
	switch k.kdf {
	case "scrypt":
		if k.n, err = integer(kp, "n", 2, MaxScryptN); err != nil {
			return nil, err
		}
		if k.r, err = integer(kp, "r", 1, MaxScryptR); err != nil {
			return nil, err
		}
		if k.p, err = integer(kp, "p", 1, MaxScryptP); err != nil {
			return nil, err
		}
		if k.n&(k.n-1) != 0 {
			return nil, fmt.Errorf("%w: kdfparams.n must be a power of two", ErrV3)
		}
		// n, r, p are each small, so these products cannot overflow.
		if 128*k.n*k.r > MaxScryptMemory || k.n*k.r*k.p > MaxScryptWork {
			return nil, fmt.Errorf("%w: scrypt n=%d r=%d p=%d needs more than %d MiB or %d rounds", ErrV3, k.n, k.r, k.p, MaxScryptMemory>>20, MaxScryptWork)
		}
	case "pbkdf2":
		if prf, err := str(kp, "prf", "kdfparams"); err != nil || prf != "hmac-sha256" {
			return nil, fmt.Errorf("%w: kdfparams.prf must be hmac-sha256", ErrV3)
		}
		if k.c, err = integer(kp, "c", 1, MaxPBKDF2Count); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: unknown kdf %q", ErrV3, truncate(k.kdf, 32))
	}
	return k, nil
}

// decrypt derives the key, checks the MAC and decrypts, from validated
// values only. The caller clears the result.
func (k *v3Key) decrypt(password string) ([]byte, error) {
	var dk []byte
	var err error
	if k.kdf == "scrypt" {
		dk, err = scrypt.Key([]byte(password), k.salt, k.n, k.r, k.p, 32)
	} else {
		dk, err = pbkdf2.Key(sha256.New, password, k.salt, k.c, 32)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: key derivation failed", ErrV3)
	}
	defer clear(dk)
	if subtle.ConstantTimeCompare(crypto.Keccak256(dk[16:32], k.cipherText), k.mac) != 1 {
		return nil, ErrDecrypt
	}
	block, err := aes.NewCipher(dk[:16])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrV3, err)
	}
	plain := make([]byte, len(k.cipherText))
	cipher.NewCTR(block, k.iv).XORKeyStream(plain, k.cipherText)
	return plain, nil
}

// ImportV3 decrypts a Web3 Secret Storage v3 keystore (scrypt or pbkdf2).
// It decrypts with its own code from the validated values rather than
// handing the file to go-ethereum, whose decrypter re-reads the KDF
// parameters from a map by exact key and panics on a missing or mistyped
// one. Keys stored shorter than 32 bytes (older writers dropped leading
// zero bytes) are left-padded: the scalar is the same number. The caller
// should clear the returned key.
func ImportV3(raw []byte, password string) ([]byte, common.Address, error) {
	k, err := parseV3(raw)
	if err != nil {
		return nil, common.Address{}, err
	}
	plain, err := k.decrypt(password)
	if err != nil {
		return nil, common.Address{}, err
	}
	if len(plain) > 32 || len(plain) < 16 {
		clear(plain)
		return nil, common.Address{}, fmt.Errorf("%w: key of %d bytes", ErrV3, len(plain))
	}
	key := make([]byte, 32)
	copy(key[32-len(plain):], plain)
	clear(plain)
	priv, err := crypto.ToECDSA(key)
	if err != nil {
		clear(key)
		return nil, common.Address{}, fmt.Errorf("%w: not a secp256k1 key", ErrV3)
	}
	addr := crypto.PubkeyToAddress(priv.PublicKey)
	ZeroKey(priv)
	if k.address != "" && common.HexToAddress(k.address) != addr {
		clear(key)
		return nil, common.Address{}, fmt.Errorf("%w: the address field does not match the key", ErrV3)
	}
	return key, addr, nil
}

// ExportV3 writes a v3 keystore of key (scrypt with n, p; geth's standard
// is n = 2^18, p = 1).
func ExportV3(key []byte, password string, scryptN, scryptP int) ([]byte, error) {
	priv, err := crypto.ToECDSA(key)
	if err != nil {
		return nil, err
	}
	k := &keystore.Key{Id: uuid.New(), Address: crypto.PubkeyToAddress(priv.PublicKey), PrivateKey: priv}
	defer ZeroKey(priv)
	return keystore.EncryptKey(k, password, scryptN, scryptP)
}

// ZeroKey overwrites a secp256k1 private key's scalar once it is no longer
// needed. go-ethereum's keys exist only as D, whose words big.Int lets us
// reach through Bits; the curve is go-ethereum's secp256k1, not a
// standard-library one, so no precomputed state depends on D.
func ZeroKey(k *ecdsa.PrivateKey) {
	//lint:ignore SA1019 go-ethereum keys only exist as D; zeroing it is the point
	if k == nil || k.D == nil {
		return
	}
	//lint:ignore SA1019 see above
	clear(k.D.Bits())
}
