package envelope

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseKeys(t *testing.T) {
	a, b := kek(t), kek(t)
	text := "# rotated 2026-12-01\n" + hex.EncodeToString(a) + "\n\n  " + hex.EncodeToString(b) + "  \n" + hex.EncodeToString(a) + "\n"
	keks, err := ParseKeys([]byte(text))
	if err != nil || len(keks) != 2 || !bytes.Equal(keks[0], a) || !bytes.Equal(keks[1], b) {
		t.Fatalf("parse: %d keys, %v", len(keks), err)
	}
	for name, bad := range map[string]string{
		"empty":      "",
		"comments":   "# nothing\n",
		"short":      hex.EncodeToString(a[:31]),
		"not hex":    strings.Repeat("zz", 32),
		"second bad": hex.EncodeToString(a) + "\nnope\n",
	} {
		_, err := ParseKeys([]byte(bad))
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if len(bad) > 8 && strings.Contains(err.Error(), bad[:8]) {
			t.Fatalf("%s: the error echoes the line: %v", name, err)
		}
	}
	var many strings.Builder
	for range maxKeys + 1 {
		many.WriteString(hex.EncodeToString(kek(t)) + "\n")
	}
	if _, err := ParseKeys([]byte(many.String())); err == nil {
		t.Fatal("an endless key file accepted")
	}
}

func TestWriteAndLoadKeys(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d", "master.key")
	if _, err := LoadKeys(p); err == nil || !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "no master key file") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatal("LoadKeys created the file")
	}
	a, b := kek(t), kek(t)
	if err := WriteKeys(p, [][]byte{a, b}); err != nil {
		t.Fatal(err)
	}
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", info.Mode().Perm())
	}
	keks, err := LoadKeys(p)
	if err != nil || len(keks) != 2 || !bytes.Equal(keks[0], a) {
		t.Fatalf("load: %v", err)
	}
	// the one-key loader of earlier versions reads the current key
	k, created, err := LoadOrCreateKeyFile(p)
	if err != nil || created || !bytes.Equal(k, a) {
		t.Fatalf("LoadOrCreateKeyFile on a two-key file: %v", err)
	}
	os.Chmod(p, 0o640)
	if _, err := LoadKeys(p); err == nil || !strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("group-readable file: %v", err)
	}
	if err := WriteKeys(p, nil); err == nil {
		t.Fatal("an empty key file written")
	}
	if err := WriteKeys(p, [][]byte{a[:16]}); err == nil {
		t.Fatal("a short key written")
	}
}

// Rewrap moves a value to the current KEK and keeps the payload's
// ciphertext: after it, the old KEK alone does not open the value, the new
// one alone does, and the secret is the same. A tampered value is refused
// rather than carried forward, and a value for another record id too.
func TestRewrap(t *testing.T) {
	oldK, newK := kek(t), kek(t)
	old, _ := New(oldK)
	secret := []byte("the wallet's unlock secret, 32 b")
	sealed, _ := old.Seal("wallet-kdb-secret:w1", secret)
	both, _ := New(newK, oldK)
	out, changed, err := both.Rewrap("wallet-kdb-secret:w1", sealed)
	if err != nil || !changed {
		t.Fatalf("rewrap: %v %v", changed, err)
	}
	if id, _ := SealedKeyID(out); id != KeyID(newK) {
		t.Fatalf("rewrapped under %s", id)
	}
	if !bytes.Equal(out[len(out)-24-len(secret)-16:], sealed[len(sealed)-24-len(secret)-16:]) {
		t.Fatal("the payload was re-encrypted, not kept")
	}
	newOnly, _ := New(newK)
	if got, err := newOnly.Open("wallet-kdb-secret:w1", out); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the new key alone: %v", err)
	}
	if _, err := old.Open("wallet-kdb-secret:w1", out); err == nil {
		t.Fatal("the old key still opens the rewrapped value")
	}
	again, changed, err := both.Rewrap("wallet-kdb-secret:w1", out)
	if err != nil || changed || !bytes.Equal(again, out) {
		t.Fatalf("rewrap of a current value: %v %v", changed, err)
	}
	if _, _, err := both.Rewrap("wallet-kdb-secret:w2", sealed); err != ErrOpen {
		t.Fatalf("rewrap under another record id: %v", err)
	}
	bad := bytes.Clone(sealed)
	bad[len(bad)-1] ^= 1
	if _, _, err := both.Rewrap("wallet-kdb-secret:w1", bad); err != ErrOpen {
		t.Fatalf("a tampered payload rewrapped: %v", err)
	}
	if _, _, err := newOnly.Rewrap("wallet-kdb-secret:w1", sealed); err != ErrOpen {
		t.Fatalf("rewrap without the old key: %v", err)
	}
}

// A Sealer from OpenFile follows its file: a new current key written there
// is used for the next seal (after RefreshEvery) and for the next open of
// a value under it (at once); a broken file does not take the loaded keys
// away; a retired key stops opening.
func TestOpenFileFollowsTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "master.key")
	s, created, err := OpenFile(p)
	if err != nil || !created {
		t.Fatalf("open: %v %v", created, err)
	}
	oldID := s.CurrentKeyID()
	old, _ := LoadKeys(p)
	oldSealed, _ := s.Seal("r", []byte("x"))

	newK := kek(t)
	other, _ := New(newK, old[0]) // another replica that has the new file already
	newSealed, _ := other.Seal("r", []byte("y"))
	if err := WriteKeys(p, [][]byte{newK, old[0]}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Open("r", newSealed); err != nil || string(got) != "y" {
		t.Fatalf("a value under the new key, right after the file changed: %v", err)
	}
	if got, err := s.Open("r", oldSealed); err != nil || string(got) != "x" {
		t.Fatalf("a value under the old key: %v", err)
	}
	if s.CurrentKeyID() != KeyID(newK) {
		t.Fatalf("current key %s after the reload, want %s", s.CurrentKeyID(), KeyID(newK))
	}
	v, _ := s.Seal("r", []byte("z"))
	if id, _ := SealedKeyID(v); id != KeyID(newK) {
		t.Fatalf("sealed under %s after the rotation", id)
	}

	// a broken copy is ignored: the keys stay
	RefreshEvery = 0
	defer func() { RefreshEvery = time.Second }()
	if err := os.WriteFile(p+".x", []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	os.Rename(p+".x", p)
	if _, err := s.Open("r", oldSealed); err != nil {
		t.Fatalf("a broken key file took the keys away: %v", err)
	}
	// retiring the old key
	if err := WriteKeys(p, [][]byte{newK}); err != nil {
		t.Fatal(err)
	}
	s.Seal("r", nil) // looks at the file
	if _, err := s.Open("r", oldSealed); err != ErrOpen {
		t.Fatalf("a retired key (%s) still opens: %v", oldID, err)
	}

	// concurrent use while the file changes is safe (go test -race)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if i == 0 {
					WriteKeys(p, [][]byte{newK})
				}
				b, err := s.Seal("c", []byte("v"))
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := s.Open("c", b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestSealedKeyID(t *testing.T) {
	k := kek(t)
	s, _ := New(k)
	v, _ := s.Seal("r", []byte("x"))
	if id, err := SealedKeyID(v); err != nil || id != KeyID(k) {
		t.Fatalf("%s %v", id, err)
	}
	for _, b := range [][]byte{nil, {1}, {2, 0}, {1, 200, 'a'}} {
		if _, err := SealedKeyID(b); err == nil {
			t.Fatalf("%x accepted", b)
		}
	}
}

// FuzzRewrap: no input rewraps unless it opens; whatever rewraps opens
// with the current key alone to the same plaintext.
func FuzzRewrap(f *testing.F) {
	oldK, newK := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{9}, 32)
	old, _ := New(oldK)
	both, _ := New(newK, oldK)
	newOnly, _ := New(newK)
	good, _ := old.Seal("r", []byte("secret"))
	f.Add(good)
	f.Add([]byte{1, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, changed, err := both.Rewrap("r", b)
		if err != nil {
			return
		}
		pt, err := newOnly.Open("r", out)
		want, _ := both.Open("r", b)
		if err != nil || !bytes.Equal(pt, want) {
			t.Fatalf("rewrapped %x (changed %v) does not open to the same secret: %v", b, changed, err)
		}
	})
}

// Seals racing the reload that retires their Sealer's current key all
// land under the file's key: none waits out the reload with the old set
// (a value sealed under a retired key opens nowhere).
func TestSecurity_SealsRacingAReloadUseTheNewKey(t *testing.T) {
	for round := range 20 {
		p := filepath.Join(t.TempDir(), "master.key")
		s, _, err := OpenFile(p)
		if err != nil {
			t.Fatal(err)
		}
		newK := kek(t)
		if err := WriteKeys(p, [][]byte{newK}); err != nil { // rotated and the old key retired
			t.Fatal(err)
		}
		RefreshEvery = time.Millisecond
		time.Sleep(2 * time.Millisecond)
		var wg sync.WaitGroup
		start := make(chan struct{})
		sealed := make([][]byte, 32)
		for i := range sealed {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				sealed[i], _ = s.Seal("r", []byte("v"))
			}()
		}
		close(start)
		wg.Wait()
		RefreshEvery = time.Second
		for i, v := range sealed {
			if id, _ := SealedKeyID(v); id != KeyID(newK) {
				t.Fatalf("round %d: seal %d under %s, want the file's key %s", round, i, id, KeyID(newK))
			}
		}
	}
}
