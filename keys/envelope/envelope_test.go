package envelope

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

func kek(t *testing.T) []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

// The AEAD underneath is XChaCha20-Poly1305: check the library against the
// draft's A.3.1 vector before trusting it with keys.
func TestXChaCha20Poly1305Vector(t *testing.T) {
	var f struct {
		AEAD struct {
			Plaintext, AAD, Key, Nonce, Ciphertext, Tag string
		}
	}
	b, err := os.ReadFile("testdata/xchacha20poly1305.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	h := func(s string) []byte { v, _ := hex.DecodeString(s); return v }
	a, err := chacha20poly1305.NewX(h(f.AEAD.Key))
	if err != nil {
		t.Fatal(err)
	}
	got := a.Seal(nil, h(f.AEAD.Nonce), h(f.AEAD.Plaintext), h(f.AEAD.AAD))
	if want := append(h(f.AEAD.Ciphertext), h(f.AEAD.Tag)...); !bytes.Equal(got, want) {
		t.Fatalf("seal = %x, want %x", got, want)
	}
}

func TestSealOpen(t *testing.T) {
	k0 := kek(t)
	s, err := New(k0)
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("a private key of thirty-two byte")
	sealed, err := s.Seal("wallet:1", secret)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, secret) {
		t.Fatal("plaintext visible in the envelope")
	}
	got, err := s.Open("wallet:1", sealed)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("open: %v", err)
	}
	// bound to the record id: a row copied elsewhere does not open
	if _, err := s.Open("wallet:2", sealed); err != ErrOpen {
		t.Fatalf("opened under another record id: %v", err)
	}
	// any flipped byte is refused
	for i := range sealed {
		b := bytes.Clone(sealed)
		b[i] ^= 0x01
		if _, err := s.Open("wallet:1", b); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	for n := range sealed {
		if _, err := s.Open("wallet:1", sealed[:n]); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
	// another KEK cannot open it; after rotation the old KEK still can
	other, _ := New(kek(t))
	if _, err := other.Open("wallet:1", sealed); err == nil {
		t.Fatal("another KEK opened it")
	}
	rotated, _ := New(kek(t), k0)
	if got, err := rotated.Open("wallet:1", sealed); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("rotated sealer cannot open an old record: %v", err)
	}
	if _, err := New(make([]byte, 16)); err == nil {
		t.Fatal("short KEK accepted")
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "master.key")
	k1, created, err := LoadOrCreateKeyFile(p)
	if err != nil || !created || len(k1) != 32 {
		t.Fatalf("create: %v %v", created, err)
	}
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", info.Mode().Perm())
	}
	k2, created, err := LoadOrCreateKeyFile(p)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: %v %v", created, err)
	}
	os.Chmod(p, 0o644)
	if _, _, err := LoadOrCreateKeyFile(p); err == nil {
		t.Fatal("world-readable key file accepted")
	}
	os.WriteFile(p, []byte("short"), 0o600)
	if _, _, err := LoadOrCreateKeyFile(p); err == nil {
		t.Fatal("malformed key file accepted")
	}
}

func FuzzOpen(f *testing.F) {
	s, _ := New(bytes.Repeat([]byte{7}, 32))
	good, _ := s.Seal("r", []byte("secret"))
	f.Add(good)
	f.Add([]byte{1, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := s.Open("r", b)
		if err == nil && !bytes.Equal(b, good) && !bytes.Equal(pt, []byte("secret")) {
			t.Fatalf("forged envelope opened: %x", b)
		}
	})
}
