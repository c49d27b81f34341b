// Package envelope seals secrets at rest: each record gets a fresh data key,
// the data key is wrapped by a key-encryption key (KEK), and both layers use
// XChaCha20-Poly1305 with the record id as associated data, so a sealed value
// copied onto another row does not open.
//
// Byte layout (version 1: a key of the master key file is the KEK):
//
//	0      1 byte   version (0x01)
//	1      1 byte   length k of the KEK id
//	2      k bytes  KEK id (ASCII)
//	2+k    24       nonce for the wrapped data key
//	26+k   48       wrapped data key (32 bytes + 16-byte tag)
//	74+k   24       nonce for the payload
//	98+k   n+16     payload ciphertext and tag
//
// Byte layout (version 2: an external KEK such as a KMS key, whose wrapped
// data key is its own opaque, variable-length blob):
//
//	0      1 byte   version (0x02)
//	1      1 byte   length k of the KEK id
//	2      k bytes  KEK id (ASCII, e.g. "awskms:arn:aws:kms:…")
//	2+k    2 bytes  length w of the wrapped data key (big-endian, 1 to 8192)
//	4+k    w bytes  wrapped data key
//	4+k+w  24       nonce for the payload
//	28+k+w n+16     payload ciphertext and tag
//
// File keys keep sealing version 1, so a value sealed without a KMS stays
// readable by every earlier build. The KEK id lets a rotation find the
// right KEK for old records.
package envelope

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
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

const (
	version    = 1 // a file key wraps the data key (fixed-size field)
	versionExt = 2 // an external KEK wraps it (length-prefixed blob)

	maxWrapLen = 8192 // a KMS ciphertext for a 32-byte key is about 200 bytes
)

// ErrOpen is returned for any envelope that does not open: wrong record id,
// wrong KEK, tampered bytes or a truncated value. It says nothing more on
// purpose.
var ErrOpen = errors.New("envelope: cannot open sealed value")

// Sealer seals with one current KEK and opens with any KEK it knows.
type Sealer struct {
	set atomic.Pointer[keySet]

	// ext are the external KEKs (a KMS key): fixed for the Sealer's life,
	// merged into every set loaded from the file. extSeals: ext[0] seals.
	ext      []KEK
	extSeals bool

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
	keks    map[string]KEK
}

var _ countersign.Sealer = (*Sealer)(nil)

// New returns a Sealer whose current KEK is kek (32 bytes). Older KEKs may
// be added for opening records sealed before a rotation.
func New(kek []byte, older ...[]byte) (*Sealer, error) {
	s := &Sealer{}
	set, err := s.compose(append([][]byte{kek}, older...))
	if err != nil {
		return nil, err
	}
	s.set.Store(set)
	return s, nil
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

// parsed is an envelope split into its fields (slices of the input).
type parsed struct {
	ver     byte
	id      string
	wrapped []byte // the KEK's wrapped data key
	payload []byte // payload nonce, ciphertext and tag
}

// parse splits sealed without opening anything; any layout error is
// ErrOpen.
func parse(sealed []byte) (parsed, error) {
	const min = chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead
	if len(sealed) < 2 || (sealed[0] != version && sealed[0] != versionExt) {
		return parsed{}, ErrOpen
	}
	p := parsed{ver: sealed[0]}
	k := int(sealed[1])
	rest := sealed[2:]
	if k == 0 || len(rest) < k {
		return parsed{}, ErrOpen
	}
	p.id, rest = string(rest[:k]), rest[k:]
	w := fileWrapLen
	if p.ver == versionExt {
		if len(rest) < 2 {
			return parsed{}, ErrOpen
		}
		w, rest = int(binary.BigEndian.Uint16(rest)), rest[2:]
		if w == 0 || w > maxWrapLen {
			return parsed{}, ErrOpen
		}
	}
	if len(rest) < w+min {
		return parsed{}, ErrOpen
	}
	p.wrapped, p.payload = rest[:w], rest[w:]
	return p, nil
}

// format lays out an envelope for kek: version 1 for a file key (the
// layout every earlier build reads), version 2 for an external KEK.
func format(kek KEK, wrapped, payload []byte) ([]byte, error) {
	id := kek.ID()
	if _, file := kek.(*fileKEK); file {
		if len(wrapped) != fileWrapLen {
			return nil, errors.New("envelope: a file key wrapped a data key to the wrong size")
		}
		out := make([]byte, 0, 2+len(id)+len(wrapped)+len(payload))
		out = append(out, version, byte(len(id)))
		out = append(out, id...)
		out = append(out, wrapped...)
		return append(out, payload...), nil
	}
	if len(wrapped) == 0 || len(wrapped) > maxWrapLen {
		return nil, fmt.Errorf("envelope: key-encryption key %s wrapped a data key into %d bytes (1 to %d allowed)", id, len(wrapped), maxWrapLen)
	}
	out := make([]byte, 0, 4+len(id)+len(wrapped)+len(payload))
	out = append(out, versionExt, byte(len(id)))
	out = append(out, id...)
	out = binary.BigEndian.AppendUint16(out, uint16(len(wrapped)))
	out = append(out, wrapped...)
	return append(out, payload...), nil
}

// kekFor returns the KEK that p names and may be opened by: a file key
// only in version 1, an external KEK only in version 2, so a value can
// never make the Sealer hand a file key's blob to a KMS or the reverse.
func (s *Sealer) kekFor(p parsed) (KEK, bool) {
	kek, ok := s.set.Load().keks[p.id]
	if !ok && s.refresh(true) { // a key added to the file since it was read
		kek, ok = s.set.Load().keks[p.id]
	}
	if !ok {
		return nil, false
	}
	_, file := kek.(*fileKEK)
	return kek, file == (p.ver == version)
}

// unwrap returns p's data key. A KEK that could not be asked (a KMS
// outage) is reported as such, never as ErrOpen: see KEK.
func (s *Sealer) unwrap(recordID string, p parsed) ([]byte, error) {
	kek, ok := s.kekFor(p)
	if !ok {
		return nil, ErrOpen
	}
	dek, err := kek.UnwrapKey(context.Background(), recordID, p.wrapped)
	if errors.Is(err, ErrOpen) {
		return nil, ErrOpen
	}
	if err != nil {
		return nil, fmt.Errorf("envelope: key-encryption key %s: %w", p.id, err)
	}
	if len(dek) != chacha20poly1305.KeySize {
		clear(dek)
		return nil, ErrOpen
	}
	return dek, nil
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
	kek := set.keks[set.current]
	// Wrap first: a KEK that cannot be reached fails the seal before any
	// payload is encrypted, and its error names it.
	wrapped, err := kek.WrapKey(context.Background(), recordID, dek)
	if err != nil {
		return nil, fmt.Errorf("envelope: key-encryption key %s: %w", set.current, err)
	}
	dekAEAD, err := chacha20poly1305.NewX(dek)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, chacha20poly1305.NonceSizeX+len(plaintext)+chacha20poly1305.Overhead)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return format(kek, wrapped, dekAEAD.Seal(nonce, nonce, plaintext, ad("data", recordID)))
}

// Open decrypts a value sealed for recordID. The caller should clear the
// result when done with it.
func (s *Sealer) Open(recordID string, sealed []byte) ([]byte, error) {
	p, err := parse(sealed)
	if err != nil {
		return nil, err
	}
	dek, err := s.unwrap(recordID, p)
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	return openPayload(dek, recordID, p.payload)
}

func openPayload(dek []byte, recordID string, payload []byte) ([]byte, error) {
	const ns = chacha20poly1305.NonceSizeX
	dekAEAD, err := chacha20poly1305.NewX(dek)
	if err != nil {
		return nil, ErrOpen
	}
	pt, err := dekAEAD.Open(nil, payload[:ns], payload[ns:], ad("data", recordID))
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
