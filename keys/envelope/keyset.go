package envelope

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/chacha20poly1305"
)

// A master key file holds one or more KEKs, one per line as 64 hex
// characters. The first line is the current KEK (new records are sealed
// under it); the lines after it are older KEKs kept only so that records
// sealed before a rotation still open. Blank lines and lines starting with
// '#' are ignored. A file with one line is the format every earlier
// version wrote, so old files load unchanged.
//
// Several keys in one file, not several files: a replica has exactly one
// setting to get right, and copying one file to every replica moves the
// whole key set at once.

// maxKeys bounds a key file: a rotation adds one line, a retirement
// removes the older ones, so a long file is a mistake, not a history.
const maxKeys = 16

// ParseKeys parses the contents of a master key file. It never echoes a
// line: a malformed line may still be most of a key.
func ParseKeys(b []byte) ([][]byte, error) {
	var keks [][]byte
	seen := map[string]bool{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := hex.DecodeString(line)
		if err != nil || len(k) != chacha20poly1305.KeySize {
			return nil, fmt.Errorf("line %d must hold 64 hex characters", i+1)
		}
		if id := KeyID(k); !seen[id] {
			seen[id] = true
			keks = append(keks, k)
		}
	}
	if len(keks) == 0 {
		return nil, errors.New("it holds no key")
	}
	if len(keks) > maxKeys {
		return nil, fmt.Errorf("it holds %d keys, more than %d: retire the old ones", len(keks), maxKeys)
	}
	return keks, nil
}

// LoadKeys reads every KEK of the master key file at path, current first.
// A missing file is an error that says so (os.ErrNotExist): commands that
// maintain existing data must never create a new master key.
func LoadKeys(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no master key file at %s: %w", path, err)
		}
		return nil, err
	}
	defer clear(b)
	info, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("master key file %s is readable by others (mode %v): chmod 600 it", path, info.Mode().Perm())
	}
	keks, err := ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("master key file %s: %w", path, err)
	}
	return keks, nil
}

// LoadOrCreateKeys is LoadKeys, creating a file with one new KEK when none
// exists (the first start). created reports whether it did, so the caller
// can warn loudly.
func LoadOrCreateKeys(path string) (keks [][]byte, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		kek, created, err := LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, false, err
		}
		return [][]byte{kek}, created, nil
	}
	keks, err = LoadKeys(path)
	return keks, false, err
}

// NewFromKeys returns a Sealer over keks: the first seals, all open.
func NewFromKeys(keks [][]byte) (*Sealer, error) {
	if len(keks) == 0 {
		return nil, errors.New("envelope: no key-encryption key")
	}
	return New(keks[0], keks[1:]...)
}

// GenerateKey returns a new random KEK.
func GenerateKey() ([]byte, error) {
	k := make([]byte, chacha20poly1305.KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	return k, nil
}

// WriteKeys writes keks to path as a master key file (current first),
// replacing it atomically: a temp file (0600, created exclusively), fsync,
// rename, directory fsync. A reader sees the old file or the new one,
// never half of either.
func WriteKeys(path string, keks [][]byte) error {
	if len(keks) == 0 || len(keks) > maxKeys {
		return fmt.Errorf("envelope: a master key file holds 1 to %d keys", maxKeys)
	}
	var sb strings.Builder
	for _, k := range keks {
		if len(k) != chacha20poly1305.KeySize {
			return fmt.Errorf("envelope: key-encryption key must be %d bytes", chacha20poly1305.KeySize)
		}
		sb.WriteString(hex.EncodeToString(k))
		sb.WriteByte('\n')
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	_ = os.Remove(tmp) // a leftover of a write that died before its rename
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(sb.String())
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// KeyIDs returns the ids of every KEK the Sealer opens with, current first.
func (s *Sealer) KeyIDs() []string {
	s.refresh(false)
	set := s.set.Load()
	ids := []string{set.current}
	for id := range set.keks {
		if id != set.current {
			ids = append(ids, id)
		}
	}
	return ids
}

// SealedKeyID returns the KEK id a sealed value names, without opening it.
// It says which key a record needs; it proves nothing about the record.
func SealedKeyID(sealed []byte) (string, error) {
	p, err := parse(sealed)
	if err != nil {
		return "", err
	}
	return p.id, nil
}

// Rewrap returns sealed with its data key re-encrypted under the current
// KEK, and whether anything changed (a value already under the current
// KEK is returned as it is). The payload's ciphertext is kept byte for
// byte: rotating the KEK re-wraps data keys, it does not re-encrypt
// secrets. The whole value is authenticated first, so a damaged record
// fails here with ErrOpen instead of being carried forward. Between a
// file key and an external KEK the layout changes version (1 and 2), the
// payload does not.
func (s *Sealer) Rewrap(recordID string, sealed []byte) ([]byte, bool, error) {
	p, err := parse(sealed)
	if err != nil {
		return nil, false, err
	}
	dek, err := s.unwrap(recordID, p)
	if err != nil {
		return nil, false, err
	}
	defer clear(dek)
	pt, err := openPayload(dek, recordID, p.payload)
	if err != nil {
		return nil, false, err
	}
	clear(pt)
	set := s.set.Load() // unwrap refreshed it when it had to
	if p.id == set.current {
		return sealed, false, nil
	}
	kek := set.keks[set.current]
	wrapped, err := kek.WrapKey(context.Background(), recordID, dek)
	if err != nil {
		return nil, false, fmt.Errorf("envelope: key-encryption key %s: %w", set.current, err)
	}
	out, err := format(kek, wrapped, p.payload) // payload nonce and ciphertext, unchanged
	if err != nil {
		return nil, false, err
	}
	return out, true, nil
}
