// Package envelope seals secrets at rest: each record gets a fresh data key,
// the data key is wrapped by a key-encryption key (KEK), and both layers use
// XChaCha20-Poly1305 with the record id as associated data, so a sealed value
// copied onto another row does not open.
//
// Byte layout (version 1):
//
//	0      1 byte   version (0x01)
//	1      1 byte   length k of the KEK id
//	2      k bytes  KEK id (ASCII)
//	2+k    24       nonce for the wrapped data key
//	26+k   48       wrapped data key (32 bytes + 16-byte tag)
//	74+k   24       nonce for the payload
//	98+k   n+16     payload ciphertext and tag
//
// The KEK id lets a rotation find the right KEK for old records.
package envelope

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/countersign/countersign"
)

const version = 1

// ErrOpen is returned for any envelope that does not open: wrong record id,
// wrong KEK, tampered bytes or a truncated value. It says nothing more on
// purpose.
var ErrOpen = errors.New("envelope: cannot open sealed value")

// Sealer seals with one current KEK and opens with any KEK it knows.
type Sealer struct {
	set atomic.Pointer[keySet]

	// file is the master key file the set was read from ("" for a fixed
	// set, New): the set follows it (reload.go).
	file    string
	mu      sync.Mutex   // one look at the file at a time
	checked atomic.Int64 // when the file was last looked at (unix ns)
	loaded  os.FileInfo  // the file as last loaded, under mu
}

// keySet is an immutable set of KEKs: swapped whole, never changed.
type keySet struct {
	current string
	keks    map[string][]byte
}

var _ countersign.Sealer = (*Sealer)(nil)

// New returns a Sealer whose current KEK is kek (32 bytes). Older KEKs may
// be added for opening records sealed before a rotation.
func New(kek []byte, older ...[]byte) (*Sealer, error) {
	set, err := newKeySet(append([][]byte{kek}, older...))
	if err != nil {
		return nil, err
	}
	s := &Sealer{}
	s.set.Store(set)
	return s, nil
}

func newKeySet(keks [][]byte) (*keySet, error) {
	if len(keks) == 0 {
		return nil, errors.New("envelope: no key-encryption key")
	}
	set := &keySet{keks: map[string][]byte{}}
	for i, k := range keks {
		if len(k) != chacha20poly1305.KeySize {
			return nil, fmt.Errorf("envelope: key-encryption key must be %d bytes", chacha20poly1305.KeySize)
		}
		id := KeyID(k)
		set.keks[id] = append([]byte(nil), k...)
		if i == 0 {
			set.current = id
		}
	}
	return set, nil
}

// KeyID names a KEK without revealing it: the first 8 bytes of
// SHA-256("countersign kek id" ‖ kek), hex.
func KeyID(kek []byte) string {
	h := sha256.Sum256(append([]byte("countersign kek id"), kek...))
	return hex.EncodeToString(h[:8])
}

// CurrentKeyID returns the id of the KEK new records are sealed with.
func (s *Sealer) CurrentKeyID() string {
	s.refresh(false)
	return s.set.Load().current
}

func ad(layer, recordID string) []byte {
	return []byte("countersign/" + layer + "/v1\x00" + recordID)
}

// Seal encrypts plaintext for recordID.
func (s *Sealer) Seal(recordID string, plaintext []byte) ([]byte, error) {
	dek := make([]byte, chacha20poly1305.KeySize)
	defer clear(dek)
	if _, err := rand.Read(dek); err != nil {
		return nil, err
	}
	s.refresh(false) // seal under the file's current key once it changed
	set := s.set.Load()
	kekAEAD, err := chacha20poly1305.NewX(set.keks[set.current])
	if err != nil {
		return nil, err
	}
	dekAEAD, err := chacha20poly1305.NewX(dek)
	if err != nil {
		return nil, err
	}
	out := []byte{version, byte(len(set.current))}
	out = append(out, set.current...)
	n1 := make([]byte, chacha20poly1305.NonceSizeX)
	n2 := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(n1); err != nil {
		return nil, err
	}
	if _, err := rand.Read(n2); err != nil {
		return nil, err
	}
	out = append(out, n1...)
	out = kekAEAD.Seal(out, n1, dek, ad("dek", recordID))
	out = append(out, n2...)
	out = dekAEAD.Seal(out, n2, plaintext, ad("data", recordID))
	return out, nil
}

// Open decrypts a value sealed for recordID. The caller should clear the
// result when done with it.
func (s *Sealer) Open(recordID string, sealed []byte) ([]byte, error) {
	const ns = chacha20poly1305.NonceSizeX
	if len(sealed) < 2 || sealed[0] != version {
		return nil, ErrOpen
	}
	k := int(sealed[1])
	rest := sealed[2:]
	if len(rest) < k+ns+32+16+ns+16 {
		return nil, ErrOpen
	}
	kek, ok := s.set.Load().keks[string(rest[:k])]
	if !ok && s.refresh(true) { // a key added to the file since it was read
		kek, ok = s.set.Load().keks[string(rest[:k])]
	}
	if !ok {
		return nil, ErrOpen
	}
	rest = rest[k:]
	kekAEAD, err := chacha20poly1305.NewX(kek)
	if err != nil {
		return nil, ErrOpen
	}
	dek, err := kekAEAD.Open(nil, rest[:ns], rest[ns:ns+48], ad("dek", recordID))
	if err != nil {
		return nil, ErrOpen
	}
	defer clear(dek)
	rest = rest[ns+48:]
	dekAEAD, err := chacha20poly1305.NewX(dek)
	if err != nil {
		return nil, ErrOpen
	}
	pt, err := dekAEAD.Open(nil, rest[:ns], rest[ns:], ad("data", recordID))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// LoadOrCreateKeyFile reads the current (first) KEK from path, or creates one
// (mode 0600, directory 0700) when the file does not exist. created reports
// whether a new key was written, so the caller can warn loudly.
func LoadOrCreateKeyFile(path string) (kek []byte, created bool, err error) {
	b, err := os.ReadFile(path)
	if err == nil {
		info, statErr := os.Stat(path)
		if statErr == nil && info.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("master key file %s is readable by others (mode %v): chmod 600 it", path, info.Mode().Perm())
		}
		keks, err := ParseKeys(b) // keyset.go: a file may hold older keys too
		clear(b)
		if err != nil {
			return nil, false, fmt.Errorf("master key file %s: %w", path, err)
		}
		return keks[0], false, nil // the current one; LoadKeys returns them all
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, err
	}
	kek = make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		return nil, false, err
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, err
	}
	if _, err := f.WriteString(hex.EncodeToString(kek) + "\n"); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, err
	}
	if err := f.Close(); err != nil {
		return nil, false, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, false, err
	}
	return kek, true, nil
}
