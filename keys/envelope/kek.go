package envelope

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"

	"golang.org/x/crypto/chacha20poly1305"
)

// KEK is a key-encryption key: it wraps and unwraps the per-record data
// keys, bound to the record id so a wrapped key copied onto another row
// does not unwrap. The keys of a master key file are one implementation
// (in this package); a cloud KMS key is another (cloud/awskms), composed
// with them in the wiring, so one Sealer can hold both while a rotation
// moves the data keys from one to the other.
//
// UnwrapKey returns an error wrapping ErrOpen when the wrapped key is not
// one of its own (wrong key, wrong record, tampered bytes): the envelope
// then reports ErrOpen. Any other error means the KEK could not be asked
// (a KMS outage, missing permission): the envelope passes it on, so an
// operator reads what is down instead of a bare "cannot open", and the
// caller still gets no plaintext (fail closed).
type KEK interface {
	// ID names the KEK in every envelope it wraps: ASCII, 1 to 255
	// bytes, stable for the life of the key, never secret.
	ID() string
	WrapKey(ctx context.Context, recordID string, dek []byte) ([]byte, error)
	UnwrapKey(ctx context.Context, recordID string, wrapped []byte) ([]byte, error)
}

// fileKEK is a 32-byte key of a master key file. Its wrapped form is the
// 24-byte nonce and the 48-byte XChaCha20-Poly1305 ciphertext of the data
// key: the fixed-size field of the version 1 layout, so every envelope a
// file key seals is byte-compatible with earlier versions.
type fileKEK struct {
	id  string
	key []byte
}

const fileWrapLen = chacha20poly1305.NonceSizeX + chacha20poly1305.KeySize + chacha20poly1305.Overhead

func (k *fileKEK) ID() string { return k.id }

func (k *fileKEK) WrapKey(_ context.Context, recordID string, dek []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.key)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, chacha20poly1305.NonceSizeX, fileWrapLen)
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(nonce, nonce, dek, ad("dek", recordID)), nil
}

func (k *fileKEK) UnwrapKey(_ context.Context, recordID string, wrapped []byte) ([]byte, error) {
	if len(wrapped) != fileWrapLen {
		return nil, ErrOpen
	}
	aead, err := chacha20poly1305.NewX(k.key)
	if err != nil {
		return nil, ErrOpen
	}
	ns := chacha20poly1305.NonceSizeX
	dek, err := aead.Open(nil, wrapped[:ns], wrapped[ns:], ad("dek", recordID))
	if err != nil {
		return nil, ErrOpen
	}
	return dek, nil
}

// Options says where a Sealer's KEKs come from (NewSealer).
type Options struct {
	// File is the master key file ("" for none). Its keys always open;
	// its first key seals unless an external KEK does.
	File string
	// Create makes File with one new key when it does not exist (the
	// first start of a server with no external KEK). It is ignored when
	// an external KEK seals: nothing would need the new key.
	Create bool
	// Follow reloads File when it changes (reload.go), as serve does.
	Follow bool
	// External KEKs (a KMS key), kept across reloads of File. They open;
	// with ExternalSeals, the first of them seals.
	External      []KEK
	ExternalSeals bool
}

// NewSealer returns a Sealer over the master key file's keys and the
// external KEKs. created reports that it generated File, so the caller can
// warn loudly. Without an external KEK that seals, a missing File is an
// error unless Create is set; with one, a missing File just means there is
// no file key (every value is sealed under the external KEK).
func NewSealer(o Options) (s *Sealer, created bool, err error) {
	if o.ExternalSeals && len(o.External) == 0 {
		return nil, false, errors.New("envelope: no external key-encryption key to seal with")
	}
	var keks [][]byte
	if o.File != "" {
		_, statErr := os.Stat(o.File)
		switch {
		case o.Create && !o.ExternalSeals:
			keks, created, err = LoadOrCreateKeys(o.File)
		case errors.Is(statErr, os.ErrNotExist) && o.ExternalSeals:
			// no file key: fine while the external KEK seals
		default:
			keks, err = LoadKeys(o.File)
		}
		if err != nil {
			return nil, false, err
		}
	}
	defer clearAll(keks)
	s = &Sealer{ext: o.External, extSeals: o.ExternalSeals}
	set, err := s.compose(keks)
	if err != nil {
		return nil, false, err
	}
	s.set.Store(set)
	if o.Follow && o.File != "" {
		s.follow(o.File)
	}
	return s, created, nil
}

// compose builds the key set from the file's keys (current first) and the
// Sealer's external KEKs.
func (s *Sealer) compose(fileKeys [][]byte) (*keySet, error) {
	if len(fileKeys) == 0 && len(s.ext) == 0 {
		return nil, errors.New("envelope: no key-encryption key")
	}
	if len(fileKeys) == 0 && !s.extSeals {
		return nil, errors.New("envelope: no master key file key to seal with")
	}
	set := &keySet{keks: map[string]KEK{}}
	for i, k := range fileKeys {
		if len(k) != chacha20poly1305.KeySize {
			return nil, fmt.Errorf("envelope: key-encryption key must be %d bytes", chacha20poly1305.KeySize)
		}
		id := KeyID(k)
		set.keks[id] = &fileKEK{id: id, key: append([]byte(nil), k...)}
		if i == 0 && !s.extSeals {
			set.current = id
		}
	}
	for i, k := range s.ext {
		id := k.ID()
		if id == "" || len(id) > 255 {
			return nil, fmt.Errorf("envelope: a key-encryption key id must be 1 to 255 bytes, not %d", len(id))
		}
		set.keks[id] = k
		if i == 0 && s.extSeals {
			set.current = id
		}
	}
	return set, nil
}

func clearAll(keks [][]byte) {
	for _, k := range keks {
		clear(k)
	}
}
