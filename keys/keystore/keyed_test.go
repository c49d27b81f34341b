package keystore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"path/filepath"
	"testing"
)

var fuzzKey = bytes.Repeat([]byte{0x42}, KeyedKeyLen)

// A keyed file (format version 2) round-trips, is bound to its record id
// and key, and no byte of it can change without decryption failing.
func TestKeyedRoundTripAndTamper(t *testing.T) {
	blob, err := EncryptKeyed([]byte("secret"), fuzzKey, "w1", []byte(`{"k":1}`))
	if err != nil {
		t.Fatal(err)
	}
	h, err := ReadHeader(blob)
	if err != nil || !h.Keyed() || h.Version != 2 || h.Params != (Params{}) || string(h.Meta) != `{"k":1}` {
		t.Fatalf("header %+v %v", h, err)
	}
	secret, meta, err := DecryptKeyed(blob, fuzzKey, "w1")
	if err != nil || string(secret) != "secret" || string(meta) != `{"k":1}` {
		t.Fatalf("round trip: %q %q %v", secret, meta, err)
	}
	if _, _, err := DecryptKeyed(blob, fuzzKey, "w2"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another record id: %v", err)
	}
	other := bytes.Repeat([]byte{0x43}, KeyedKeyLen)
	if _, _, err := DecryptKeyed(blob, other, "w1"); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("another key: %v", err)
	}
	if _, _, err := DecryptKeyed(blob, fuzzKey[:16], "w1"); err == nil {
		t.Fatal("a short key accepted")
	}
	if _, err := EncryptKeyed([]byte("s"), []byte("a password"), "w1", nil); err == nil {
		t.Fatal("a password accepted as a keyed file's key")
	}
	for i := range blob {
		b := bytes.Clone(blob)
		b[i] ^= 0x01
		if _, _, err := DecryptKeyed(b, fuzzKey, "w1"); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
}

// TestSecurity_KeyedAndPasswordFilesDoNotMix: a keyed file never opens
// through the password path (it has no KDF to slow a guess: a planted keyed
// file must not stand in for a password wallet), a password file never
// opens as a keyed one, and a keyed header with KDF parameters is refused.
func TestSecurity_KeyedAndPasswordFilesDoNotMix(t *testing.T) {
	keyed, _ := EncryptKeyed([]byte("secret"), fuzzKey, "w1", nil)
	if _, _, err := Decrypt(keyed, fuzzKey); !errors.Is(err, ErrMalformed) {
		t.Fatalf("keyed file opened with a password: %v", err)
	}
	pw, _ := Encrypt([]byte("secret"), fuzzKey, nil, fast)
	if _, _, err := DecryptKeyed(pw, fuzzKey, "w1"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("password file opened as keyed: %v", err)
	}
	b := bytes.Clone(keyed)
	binary.BigEndian.PutUint32(b[43:], 8<<10)
	if _, err := ReadHeader(b); err == nil {
		t.Fatal("keyed header with Argon2id parameters accepted")
	}
	b = bytes.Clone(keyed)
	b[6] = 3
	if _, err := ReadHeader(b); err == nil {
		t.Fatal("format version 3 accepted")
	}
}

// PutKeyed writes through the KeyStore port and verifies the read-back.
func TestPutKeyed(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "ks")}
	if err := PutKeyed(context.Background(), d, "w1", []byte("secret"), fuzzKey, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	blob, err := d.Get(context.Background(), "w1")
	if err != nil {
		t.Fatal(err)
	}
	if s, _, err := DecryptKeyed(blob, fuzzKey, "w1"); err != nil || string(s) != "secret" {
		t.Fatalf("%q %v", s, err)
	}
	// a store that corrupts what it holds: the write is refused
	if err := PutKeyed(context.Background(), corrupting{d}, "w2", []byte("secret"), fuzzKey, nil); err == nil {
		t.Fatal("an unverifiable write accepted")
	}
}

type corrupting struct{ Dir }

func (c corrupting) Put(ctx context.Context, id string, blob []byte, verify func([]byte) error) error {
	bad := bytes.Clone(blob)
	bad[len(bad)-1] ^= 1
	return verify(bad)
}
