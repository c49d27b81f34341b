package envelope

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

// memKEK is an external KEK for tests: an AEAD with its own blob format
// (a prefix byte, so its wrapped keys are never 72 bytes like a file
// key's), and a switch that makes it "unreachable".
type memKEK struct {
	id    string
	key   []byte
	down  atomic.Bool
	calls atomic.Int64
}

var errDown = errors.New("memkek: the service is unreachable")

func newMemKEK(id string, fill byte) *memKEK {
	return &memKEK{id: id, key: bytes.Repeat([]byte{fill}, 32)}
}

func (k *memKEK) ID() string { return k.id }

func (k *memKEK) WrapKey(_ context.Context, recordID string, dek []byte) ([]byte, error) {
	k.calls.Add(1)
	if k.down.Load() {
		return nil, errDown
	}
	aead, _ := chacha20poly1305.NewX(k.key)
	nonce := bytes.Repeat([]byte{3}, chacha20poly1305.NonceSizeX) // a test KEK: determinism is fine
	return append([]byte{0xEE}, aead.Seal(nonce, nonce, dek, []byte("mem/"+recordID))...), nil
}

func (k *memKEK) UnwrapKey(_ context.Context, recordID string, wrapped []byte) ([]byte, error) {
	k.calls.Add(1)
	if k.down.Load() {
		return nil, errDown
	}
	if len(wrapped) < 1+chacha20poly1305.NonceSizeX || wrapped[0] != 0xEE {
		return nil, ErrOpen
	}
	aead, _ := chacha20poly1305.NewX(k.key)
	w := wrapped[1:]
	dek, err := aead.Open(nil, w[:chacha20poly1305.NonceSizeX], w[chacha20poly1305.NonceSizeX:], []byte("mem/"+recordID))
	if err != nil {
		return nil, ErrOpen
	}
	return dek, nil
}

// goldenV1 was sealed by the envelope code before external KEKs existed
// (git HEAD ab63e90, keys/envelope/envelope.go), with the KEK 32 × 0x42,
// for record "wallet:golden".
const goldenV1 = "01106536383766363139393731323062613165d0d05da9e88b00e91afd9e95dfeacad98da0a816dfb3f479a88720c9ba3121f0e6cd9a8f8df1a872f0289d60aa67b613228ef3a6a84a875617961e63de464cc755da8c617158532a365e1dad01d6b566eb695d22a062bddd95963d234ff2abab0b81c6c9aaab595aaa6b7409074f8a732185cfe68caea386a752edeb2288ab1b165078eced60d1fbecf3ab6c57db7aff695641bb"

// A value sealed by the earlier format opens, alone or with an external
// KEK that seals, and a file key still seals the version 1 layout.
func TestEnvelope_OldFormatStillOpens(t *testing.T) {
	golden, _ := hex.DecodeString(goldenV1)
	fileKey := bytes.Repeat([]byte{0x42}, 32)
	plain, _ := New(fileKey)
	dir := t.TempDir()
	file := filepath.Join(dir, "master.key")
	if err := WriteKeys(file, [][]byte{fileKey}); err != nil {
		t.Fatal(err)
	}
	mixed, _, err := NewSealer(Options{File: file, External: []KEK{newMemKEK("mem:1", 5)}, ExternalSeals: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*Sealer{"file": plain, "file+external": mixed} {
		pt, err := s.Open("wallet:golden", golden)
		if err != nil || string(pt) != "sealed by countersign before KMS KEKs" {
			t.Fatalf("%s: %q %v", name, pt, err)
		}
	}
	v, _ := plain.Seal("r", []byte("x"))
	if v[0] != 1 || len(v) != 2+16+72+24+1+16 {
		t.Fatalf("a file key sealed version %d, %d bytes", v[0], len(v))
	}
}

// An external KEK seals the version 2 layout; a sealer holding it and a
// file key opens both; Rewrap moves a value between them in both
// directions, keeping the payload's bytes.
func TestEnvelope_ExternalKEK(t *testing.T) {
	fileKey := bytes.Repeat([]byte{1}, 32)
	file := filepath.Join(t.TempDir(), "master.key")
	if err := WriteKeys(file, [][]byte{fileKey}); err != nil {
		t.Fatal(err)
	}
	ext := newMemKEK("mem:kek-1", 9)
	fileOnly, _ := New(fileKey)
	toExt, _, err := NewSealer(Options{File: file, External: []KEK{ext}, ExternalSeals: true})
	if err != nil {
		t.Fatal(err)
	}
	toFile, _, err := NewSealer(Options{File: file, External: []KEK{ext}})
	if err != nil {
		t.Fatal(err)
	}
	if toExt.CurrentKeyID() != "mem:kek-1" || toFile.CurrentKeyID() != KeyID(fileKey) {
		t.Fatalf("current %s / %s", toExt.CurrentKeyID(), toFile.CurrentKeyID())
	}
	if ids := toExt.KeyIDs(); len(ids) != 2 || ids[0] != "mem:kek-1" {
		t.Fatalf("key ids %v", ids)
	}
	v1, _ := fileOnly.Seal("rec", []byte("secret"))
	v2, changed, err := toExt.Rewrap("rec", v1)
	if err != nil || !changed || v2[0] != 2 {
		t.Fatalf("rewrap to the external KEK: %v %v %x", changed, err, v2[:1])
	}
	if id, _ := SealedKeyID(v2); id != "mem:kek-1" {
		t.Fatalf("id %q", id)
	}
	if !bytes.HasSuffix(v2, v1[2+16+72:]) {
		t.Fatal("the payload changed in the rewrap")
	}
	if _, err := fileOnly.Open("rec", v2); !errors.Is(err, ErrOpen) {
		t.Fatalf("the file key alone opened an externally wrapped value: %v", err)
	}
	back, changed, err := toFile.Rewrap("rec", v2)
	if err != nil || !changed || back[0] != 1 {
		t.Fatalf("rewrap back to the file key: %v %v", changed, err)
	}
	for _, s := range []*Sealer{fileOnly, toFile, toExt} {
		if pt, err := s.Open("rec", back); err != nil || string(pt) != "secret" {
			t.Fatalf("open the value rewrapped back: %q %v", pt, err)
		}
	}
	if same, changed, _ := toExt.Rewrap("rec", v2); changed || !bytes.Equal(same, v2) {
		t.Fatal("a value under the current KEK was rewrapped")
	}
	// new seals
	s2, err := toExt.Seal("rec2", []byte("fresh"))
	if err != nil || s2[0] != 2 {
		t.Fatalf("seal under the external KEK: %v", err)
	}
	if pt, err := toFile.Open("rec2", s2); err != nil || string(pt) != "fresh" {
		t.Fatalf("%q %v", pt, err)
	}
	if _, err := toFile.Open("rec3", s2); !errors.Is(err, ErrOpen) {
		t.Fatalf("opened under another record id: %v", err)
	}
}

// TestSecurity_ExternalKEKOutageIsNotErrOpen: an external KEK that cannot
// be reached fails seal, open and rewrap closed — no plaintext, no
// fallback to the file key for sealing — with its own error (naming the
// key id), not ErrOpen, which would send the operator after a wrong key.
func TestSecurity_ExternalKEKOutageIsNotErrOpen(t *testing.T) {
	fileKey := bytes.Repeat([]byte{1}, 32)
	file := filepath.Join(t.TempDir(), "master.key")
	if err := WriteKeys(file, [][]byte{fileKey}); err != nil {
		t.Fatal(err)
	}
	ext := newMemKEK("mem:kek-1", 9)
	s, _, err := NewSealer(Options{File: file, External: []KEK{ext}, ExternalSeals: true})
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := s.Seal("rec", []byte("secret"))
	ext.down.Store(true)
	pt, err := s.Open("rec", sealed)
	if pt != nil || err == nil || errors.Is(err, ErrOpen) || !errors.Is(err, errDown) || !strings.Contains(err.Error(), "mem:kek-1") {
		t.Fatalf("open while down: %q %v", pt, err)
	}
	if out, err := s.Seal("rec", []byte("x")); out != nil || !errors.Is(err, errDown) {
		t.Fatalf("seal while down: %x %v (a fallback to the file key would have sealed)", out, err)
	}
	fileSealed, _ := New(fileKey)
	v1, _ := fileSealed.Seal("rec", []byte("y"))
	if out, _, err := s.Rewrap("rec", v1); out != nil || !errors.Is(err, errDown) {
		t.Fatalf("rewrap while down: %v", err)
	}
	// the file key's own values still open: they never needed the KMS
	if pt, err := s.Open("rec", v1); err != nil || string(pt) != "y" {
		t.Fatalf("file value while the external KEK is down: %v", err)
	}
}

// TestSecurity_LayoutVersionBindsKEKKind: a version 1 value (fixed-size
// wrapped key) is only ever handed to a file key and a version 2 value
// only to an external KEK. Relabelled to cross over, neither opens, and
// the external KEK is never even asked to unwrap a file key's blob.
func TestSecurity_LayoutVersionBindsKEKKind(t *testing.T) {
	fileKey := bytes.Repeat([]byte{1}, 32)
	ext := newMemKEK("mem:kek-1", 9)
	file := filepath.Join(t.TempDir(), "master.key")
	if err := WriteKeys(file, [][]byte{fileKey}); err != nil {
		t.Fatal(err)
	}
	s, _, err := NewSealer(Options{File: file, External: []KEK{ext}, ExternalSeals: true})
	if err != nil {
		t.Fatal(err)
	}
	fileOnly, _ := New(fileKey)
	v1, _ := fileOnly.Seal("rec", []byte("secret"))
	// v1 relabelled with the external KEK's id
	k := int(v1[1])
	cross := append([]byte{1, byte(len(ext.id))}, ext.id...)
	cross = append(cross, v1[2+k:]...)
	before := ext.calls.Load()
	if _, err := s.Open("rec", cross); !errors.Is(err, ErrOpen) {
		t.Fatalf("a version 1 value naming the external KEK: %v", err)
	}
	if ext.calls.Load() != before {
		t.Fatal("the external KEK was asked to unwrap a version 1 value")
	}
	// v2 (external) relabelled with the file key's id
	v2, _ := s.Seal("rec", []byte("secret"))
	k = int(v2[1])
	id := KeyID(fileKey)
	cross = append([]byte{2, byte(len(id))}, id...)
	cross = append(cross, v2[2+k:]...)
	if _, err := s.Open("rec", cross); !errors.Is(err, ErrOpen) {
		t.Fatalf("a version 2 value naming the file key: %v", err)
	}
}

// NewSealer's file rules: with an external KEK that seals, no file is
// needed (nor created); without one, the file is created only when asked;
// a sealer that follows its file keeps its external KEK across reloads.
func TestNewSealer_FileRules(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "none", "master.key")
	ext := newMemKEK("mem:kek-1", 9)
	s, created, err := NewSealer(Options{File: missing, Create: true, Follow: true, External: []KEK{ext}, ExternalSeals: true})
	if err != nil || created || s.CurrentKeyID() != "mem:kek-1" {
		t.Fatalf("external KEK, no file: %v %v", created, err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("a master key file was created although the external KEK seals")
	}
	if _, _, err := NewSealer(Options{File: missing, External: []KEK{ext}}); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the file seals but is missing: %v", err)
	}
	if _, _, err := NewSealer(Options{ExternalSeals: true}); err == nil {
		t.Fatal("ExternalSeals without an external KEK")
	}
	// follows the file, keeps the external KEK
	old := RefreshEvery
	RefreshEvery = 0
	defer func() { RefreshEvery = old }()
	file := filepath.Join(dir, "master.key")
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	if err := WriteKeys(file, [][]byte{k1}); err != nil {
		t.Fatal(err)
	}
	f, _, err := NewSealer(Options{File: file, Follow: true, External: []KEK{ext}})
	if err != nil {
		t.Fatal(err)
	}
	byExt, _, _ := NewSealer(Options{External: []KEK{ext}, ExternalSeals: true})
	extVal, _ := byExt.Seal("r", []byte("e"))
	if err := WriteKeys(file, [][]byte{k2, k1}); err != nil {
		t.Fatal(err)
	}
	if f.CurrentKeyID() != KeyID(k2) {
		t.Fatalf("the file's new key was not picked up: %s", f.CurrentKeyID())
	}
	if pt, err := f.Open("r", extVal); err != nil || string(pt) != "e" {
		t.Fatalf("the external KEK was lost in the reload: %v", err)
	}
}

// FuzzOpenExternal: with a file key and an external KEK in one sealer, no
// input opens but what they sealed (or a value with the same key,
// record and payload), whatever its layout version or length fields say;
// whatever rewraps opens to the same plaintext with the current KEK alone.
func FuzzOpenExternal(f *testing.F) {
	fileKey := bytes.Repeat([]byte{7}, 32)
	ext := newMemKEK("mem:kek-1", 9)
	dir := f.TempDir()
	file := filepath.Join(dir, "master.key")
	if err := WriteKeys(file, [][]byte{fileKey}); err != nil {
		f.Fatal(err)
	}
	both, _, err := NewSealer(Options{File: file, External: []KEK{ext}, ExternalSeals: true})
	if err != nil {
		f.Fatal(err)
	}
	extOnly, _, _ := NewSealer(Options{External: []KEK{ext}, ExternalSeals: true})
	fileOnly, _ := New(fileKey)
	v1, _ := fileOnly.Seal("r", []byte("secret"))
	v2, _ := both.Seal("r", []byte("secret"))
	f.Add(v1)
	f.Add(v2)
	f.Add([]byte{2, 0})
	f.Add([]byte{2, 1, 'x', 0xff, 0xff})
	f.Add([]byte{2, 10, 'm', 'e', 'm', ':', 'k', 'e', 'k', '-', '1', 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := both.Open("r", b)
		if err == nil && !bytes.Equal(pt, []byte("secret")) {
			t.Fatalf("forged envelope opened to %q: %x", pt, b)
		}
		if err != nil && !errors.Is(err, ErrOpen) {
			t.Fatalf("an input made Open fail with something else than ErrOpen: %v", err)
		}
		out, _, err := both.Rewrap("r", b)
		if err != nil {
			return
		}
		if got, err := extOnly.Open("r", out); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("rewrapped %x does not open to the same secret: %v", b, err)
		}
	})
}
