// Package keystore holds encrypted key envelopes: the v1-kdb format of
// the AITBC wallet-daemon design (Argon2id + XChaCha20-Poly1305, docs/keystore-format.md) and Web3
// Secret Storage v3 (the JSON keystores of geth, MetaMask and ethers).
package keystore

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/countersign/countersign"
)

// Magic starts every v1-kdb file.
const Magic = "v1-kdb"

const (
	formatVersion = 1
	// keyedVersion is the variant for secrets sealed under a random
	// 32-byte key rather than a password (API wallets): the file key is
	// HKDF-SHA256 of that key, salted, with the record id in its info. A
	// random 256-bit key gains nothing from Argon2id (a guess is 2^256
	// tries either way), which cost every API signature 8 MiB and ~5 ms.
	keyedVersion = 2
	// KeyedKeyLen is the length of a keyed file's key.
	KeyedKeyLen = 32
	saltLen     = 32
	headerLen   = 6 + 1 + saltLen + 4 + 4 + 1 + chacha20poly1305.NonceSizeX + 4 // 76
	maxMeta     = 64 << 10
	maxSecret   = 1 << 10
)

// Params are Argon2id's cost parameters.
type Params struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// DefaultParams are the AITBC wallet-daemon design's defaults: ARGON_TIME=4, ARGON_MEMORY_MB=256,
// ARGON_PARALLELISM=2.
var DefaultParams = Params{Time: 4, MemoryKiB: 256 << 10, Threads: 2}

// Bounds on parameters read from a file: a planted file must not make the
// reader spend minutes or gigabytes before the password check fails.
const (
	MaxTime      = 16
	MaxMemoryKiB = 1 << 20 // 1 GiB
	MinMemoryKiB = 8 << 10 // 8 MiB
	MaxThreads   = 16
)

var (
	// ErrMalformed: not a v1-kdb file, or parameters out of bounds.
	ErrMalformed = errors.New("keystore: not a valid v1-kdb file")
	// ErrDecrypt: wrong password, or the file was altered.
	ErrDecrypt = errors.New("keystore: wrong password or damaged file")
)

// Check validates parameters against the bounds.
func (p Params) Check() error {
	if p.Time < 1 || p.Time > MaxTime || p.MemoryKiB < MinMemoryKiB || p.MemoryKiB > MaxMemoryKiB || p.Threads < 1 || p.Threads > MaxThreads {
		return fmt.Errorf("%w: Argon2id parameters t=%d m=%dKiB p=%d are out of bounds", ErrMalformed, p.Time, p.MemoryKiB, p.Threads)
	}
	return nil
}

// Encrypt seals secret (a seed or a private key) with a key derived from
// password. meta (JSON, readable without the password) and the whole header
// are authenticated: changing any byte makes Decrypt fail.
func Encrypt(secret, password, meta []byte, p Params) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if len(secret) == 0 || len(secret) > maxSecret || len(meta) > maxMeta {
		return nil, errors.New("keystore: secret or metadata size out of range")
	}
	h, err := newHeader(formatVersion, p, meta)
	if err != nil {
		return nil, err
	}
	key := argon2.IDKey(password, h[7:7+saltLen], p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
	defer clear(key)
	return seal(h, key, secret, meta)
}

// newHeader makes a header with a fresh salt and nonce.
func newHeader(version byte, p Params, meta []byte) ([]byte, error) {
	h := make([]byte, headerLen)
	copy(h, Magic)
	h[6] = version
	if _, err := rand.Read(h[7 : 7+saltLen]); err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(h[39:], p.Time)
	binary.BigEndian.PutUint32(h[43:], p.MemoryKiB)
	h[47] = p.Threads
	if _, err := rand.Read(h[48:72]); err != nil {
		return nil, err
	}
	binary.BigEndian.PutUint32(h[72:], uint32(len(meta)))
	return h, nil
}

// seal appends the metadata and the sealed secret to header h.
func seal(h, key, secret, meta []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	ad := append(append([]byte(nil), h...), meta...)
	return append(ad, aead.Seal(nil, h[48:72], secret, ad)...), nil
}

// keyedFileKey derives a keyed file's XChaCha20-Poly1305 key: HKDF-SHA256
// of the 32-byte key with the file's salt, and the record id in the info
// so a file copied under another id does not open.
func keyedFileKey(key, salt []byte, recordID string) ([]byte, error) {
	if len(key) != KeyedKeyLen {
		return nil, fmt.Errorf("keystore: a keyed file needs a %d-byte random key", KeyedKeyLen)
	}
	return hkdf.Key(sha256.New, key, salt, "countersign v1-kdb keyed file key\x00"+recordID, chacha20poly1305.KeySize)
}

// EncryptKeyed seals secret under key — 32 random bytes, never a password
// — as a format version 2 file bound to recordID (docs/keystore-format.md).
// meta and the whole header are authenticated, as in version 1.
func EncryptKeyed(secret, key []byte, recordID string, meta []byte) ([]byte, error) {
	if len(secret) == 0 || len(secret) > maxSecret || len(meta) > maxMeta {
		return nil, errors.New("keystore: secret or metadata size out of range")
	}
	h, err := newHeader(keyedVersion, Params{}, meta)
	if err != nil {
		return nil, err
	}
	fk, err := keyedFileKey(key, h[7:7+saltLen], recordID)
	if err != nil {
		return nil, err
	}
	defer clear(fk)
	return seal(h, fk, secret, meta)
}

// DecryptKeyed opens a version 2 file with its key and record id. The
// caller should clear the secret.
func DecryptKeyed(b, key []byte, recordID string) (secret, meta []byte, err error) {
	h, err := ReadHeader(b)
	if err != nil {
		return nil, nil, err
	}
	if h.Version != keyedVersion {
		return nil, nil, fmt.Errorf("%w: a password file (format version %d) opened as a keyed one", ErrMalformed, h.Version)
	}
	fk, err := keyedFileKey(key, b[7:7+saltLen], recordID)
	if err != nil {
		return nil, nil, err
	}
	defer clear(fk)
	return open(b, h, fk)
}

// open decrypts the secret of a parsed file with its file key.
func open(b []byte, h *Header, fk []byte) ([]byte, []byte, error) {
	aead, err := chacha20poly1305.NewX(fk)
	if err != nil {
		return nil, nil, err
	}
	adLen := headerLen + len(h.Meta)
	secret, err := aead.Open(nil, b[48:72], b[adLen:], b[:adLen])
	if err != nil {
		return nil, nil, ErrDecrypt
	}
	return secret, bytes.Clone(h.Meta), nil
}

// PutKeyed is Put for a version 2 file: the copy read back must open with
// key and recordID to secret before it replaces anything.
func PutKeyed(ctx context.Context, ks countersign.KeyStore, id string, secret, key, meta []byte) error {
	blob, err := EncryptKeyed(secret, key, id, meta)
	if err != nil {
		return err
	}
	return ks.Put(ctx, id, blob, func(back []byte) error {
		got, _, err := DecryptKeyed(back, key, id)
		defer clear(got)
		if err == nil && !bytes.Equal(got, secret) {
			err = errors.New("keystore: the file read back holds another secret")
		}
		return err
	})
}

// Header is what a v1-kdb file says without the password.
type Header struct {
	// Version is 1 for a password file (Argon2id, Params) and 2 for a
	// keyed file (HKDF of a random key; Params zero).
	Version int
	Params  Params
	Meta    []byte
}

// Keyed reports whether the file is a keyed (version 2) one.
func (h *Header) Keyed() bool { return h.Version == keyedVersion }

// ReadHeader parses and bounds-checks a file's header and metadata.
func ReadHeader(b []byte) (*Header, error) {
	if len(b) < headerLen || string(b[:6]) != Magic {
		return nil, ErrMalformed
	}
	p := Params{Time: binary.BigEndian.Uint32(b[39:]), MemoryKiB: binary.BigEndian.Uint32(b[43:]), Threads: b[47]}
	switch b[6] {
	case formatVersion:
		if err := p.Check(); err != nil {
			return nil, err
		}
	case keyedVersion:
		if p != (Params{}) { // no KDF parameters: nothing to read, nothing to bound
			return nil, fmt.Errorf("%w: a keyed file with Argon2id parameters", ErrMalformed)
		}
	default:
		return nil, fmt.Errorf("%w: format version %d is not supported", ErrMalformed, b[6])
	}
	m := int(binary.BigEndian.Uint32(b[72:]))
	if m > maxMeta || len(b) < headerLen+m+chacha20poly1305.Overhead+1 || len(b) > headerLen+m+maxSecret+chacha20poly1305.Overhead {
		return nil, ErrMalformed
	}
	return &Header{Version: int(b[6]), Params: p, Meta: b[headerLen : headerLen+m]}, nil
}

// Decrypt opens a v1-kdb file. The caller should clear the secret.
func Decrypt(b, password []byte) (secret, meta []byte, err error) {
	h, err := ReadHeader(b)
	if err != nil {
		return nil, nil, err
	}
	if h.Version != formatVersion {
		// a keyed file never opens with a password: it has no KDF to slow a guess
		return nil, nil, fmt.Errorf("%w: a keyed file (format version %d) opened with a password", ErrMalformed, h.Version)
	}
	key := argon2.IDKey(password, b[7:7+saltLen], h.Params.Time, h.Params.MemoryKiB, h.Params.Threads, chacha20poly1305.KeySize)
	defer clear(key)
	return open(b, h, key)
}

// Put encrypts secret under password (with meta) and stores it in ks as
// id. The bytes read back from the new copy must decrypt to secret before
// they replace anything.
func Put(ctx context.Context, ks countersign.KeyStore, id string, secret, password, meta []byte, p Params) error {
	blob, err := Encrypt(secret, password, meta, p)
	if err != nil {
		return err
	}
	return ks.Put(ctx, id, blob, func(back []byte) error {
		got, _, err := Decrypt(back, password)
		defer clear(got)
		if err == nil && !bytes.Equal(got, secret) {
			err = errors.New("keystore: the file read back holds another secret")
		}
		return err
	})
}

// WriteFile writes a v1-kdb file atomically and durably (see writeAtomic);
// the read-back must decrypt with password.
func WriteFile(path string, blob, password []byte) error {
	return writeAtomic(path, blob, func(back []byte) error {
		secret, _, err := Decrypt(back, password)
		clear(secret)
		return err
	})
}

// writeAtomic writes blob to path: a temp file in the same directory
// (0600; the directory 0700), fsync, verify(read-back) when verify is
// non-nil, rename, and an fsync of the directory. A blob that fails
// verification is never renamed into place.
func writeAtomic(path string, blob []byte, verify func([]byte) error) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".tmp-*.kdb")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if err := writeSyncClose(f, blob); err != nil {
		return err
	}
	back, err := os.ReadFile(tmp)
	if err != nil {
		return err
	}
	if verify != nil {
		if err := verify(back); err != nil {
			return fmt.Errorf("keystore: the written file does not verify: %w", err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// writeSyncClose writes blob to f, flushes it to disk and closes it.
func writeSyncClose(f *os.File, blob []byte) error {
	if _, err := f.Write(blob); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// WriteNewFile writes blob to a file that must not exist yet (mode 0600),
// durably: an export never replaces a file that may hold another key.
func WriteNewFile(path string, blob []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if err := writeSyncClose(f, blob); err != nil {
		os.Remove(path)
		return err
	}
	return nil
}
