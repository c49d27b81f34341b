package keystore

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gethkeystore "github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
)

var fast = Params{Time: 1, MemoryKiB: 8 << 10, Threads: 1}

func TestKDBRoundTripAndTamper(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, 32)
	meta := []byte(`{"kind":"seed","name":"ops"}`)
	blob, err := Encrypt(secret, []byte("pw"), meta, fast)
	if err != nil {
		t.Fatal(err)
	}
	if string(blob[:6]) != Magic || bytes.Contains(blob, secret) {
		t.Fatal("layout")
	}
	got, m, err := Decrypt(blob, []byte("pw"))
	if err != nil || !bytes.Equal(got, secret) || !bytes.Equal(m, meta) {
		t.Fatalf("decrypt: %v", err)
	}
	if _, _, err := Decrypt(blob, []byte("wrong")); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("wrong password: %v", err)
	}
	// any altered byte — header, parameters, metadata, ciphertext — is refused
	for i := range blob {
		b := bytes.Clone(blob)
		b[i] ^= 0x01
		if _, _, err := Decrypt(b, []byte("pw")); err == nil {
			t.Fatalf("tampered byte %d accepted", i)
		}
	}
	for n := range blob {
		if _, _, err := Decrypt(blob[:n], []byte("pw")); err == nil {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
}

func TestKDBBounds(t *testing.T) {
	blob, _ := Encrypt([]byte("secret"), []byte("pw"), nil, fast)
	for name, mutate := range map[string]func(b []byte){
		"memory 64 GiB": func(b []byte) { binary.BigEndian.PutUint32(b[43:], 64<<20) },
		"time 1000":     func(b []byte) { binary.BigEndian.PutUint32(b[39:], 1000) },
		"threads 0":     func(b []byte) { b[47] = 0 },
		"version 2":     func(b []byte) { b[6] = 2 },
		"huge metadata": func(b []byte) { binary.BigEndian.PutUint32(b[72:], 1<<30) },
	} {
		b := bytes.Clone(blob)
		mutate(b)
		if _, err := ReadHeader(b); err == nil {
			t.Errorf("%s: header accepted", name)
		}
	}
	if _, err := Encrypt([]byte("s"), []byte("pw"), nil, Params{Time: 1, MemoryKiB: 1 << 30, Threads: 1}); err == nil {
		t.Fatal("absurd parameters accepted for writing")
	}
}

func TestWriteFileAtomic(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	blob, _ := Encrypt([]byte("secret"), []byte("pw"), nil, fast)
	p := filepath.Join(dir, "w.kdb")
	if err := WriteFile(p, blob, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	di, _ := os.Stat(dir)
	if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
		t.Fatalf("modes %v %v", fi.Mode().Perm(), di.Mode().Perm())
	}
	// a blob that does not decrypt with the password is never renamed into place
	if err := WriteFile(filepath.Join(dir, "bad.kdb"), blob, []byte("other")); err == nil {
		t.Fatal("unverifiable write accepted")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}

// The Web3 Secret Storage vectors (wiki scrypt and pbkdf2, and the 31- and
// 30-byte keys of go-ethereum's testdata).
func TestV3Vectors(t *testing.T) {
	var f struct {
		Cases []struct {
			Name, Password, Priv string
			JSON                 json.RawMessage
		}
	}
	b, _ := os.ReadFile("testdata/keystore-v3.json")
	if err := json.Unmarshal(b, &f); err != nil || len(f.Cases) != 4 {
		t.Fatalf("%d cases %v", len(f.Cases), err)
	}
	for _, c := range f.Cases {
		key, _, err := ImportV3(c.JSON, c.Password)
		if err != nil {
			t.Fatalf("%s: %v", c.Name, err)
		}
		want := strings.Repeat("0", 64-len(c.Priv)) + c.Priv // short keys are left-padded
		if hex.EncodeToString(key) != want {
			t.Errorf("%s: %x", c.Name, key)
		}
		if _, _, err := ImportV3(c.JSON, c.Password+"x"); !errors.Is(err, ErrDecrypt) {
			t.Errorf("%s: wrong password: %v", c.Name, err)
		}
	}
	// absurd KDF parameters are refused before any work
	var m map[string]any
	json.Unmarshal(f.Cases[0].JSON, &m)
	m["crypto"].(map[string]any)["kdfparams"].(map[string]any)["n"] = 1 << 30
	absurd, _ := json.Marshal(m)
	if _, _, err := ImportV3(absurd, f.Cases[0].Password); !errors.Is(err, ErrV3) {
		t.Fatalf("scrypt n = 2^30: %v", err)
	}
}

func TestV3ExportRoundTrip(t *testing.T) {
	priv, _ := crypto.GenerateKey()
	key := crypto.FromECDSA(priv)
	j, err := ExportV3(key, "pw", 1<<12, 1)
	if err != nil {
		t.Fatal(err)
	}
	back, addr, err := ImportV3(j, "pw")
	if err != nil || !bytes.Equal(back, key) || addr != crypto.PubkeyToAddress(priv.PublicKey) {
		t.Fatalf("round trip: %v", err)
	}
}

func FuzzReadKDB(f *testing.F) {
	blob, _ := Encrypt([]byte("secret"), []byte("pw"), []byte(`{}`), fast)
	f.Add(blob)
	f.Add([]byte(Magic))
	keyed, _ := EncryptKeyed([]byte("secret"), fuzzKey, "rec", []byte(`{}`))
	f.Add(keyed)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadHeader(b)
		if err != nil {
			return
		}
		if (h.Keyed() && h.Params != Params{}) || (!h.Keyed() && h.Params.Check() != nil) || len(h.Meta) > maxMeta {
			t.Fatal("header accepted out of bounds")
		}
		// the same for a keyed file: nothing but the genuine one opens
		if secret, meta, err := DecryptKeyed(b, fuzzKey, "rec"); err == nil && (string(secret) != "secret" || string(meta) != "{}") {
			t.Fatalf("a forged keyed file decrypted to %q / %q", secret, meta)
		}
		// Whatever decrypts must be a genuine file: the AEAD covers the
		// header and metadata, so no altered file can open to anything else.
		if secret, meta, err := Decrypt(b, []byte("pw")); err == nil && (string(secret) != "secret" || string(meta) != "{}") {
			t.Fatalf("a forged file decrypted to %q / %q", secret, meta)
		}
	})
}

// FuzzImportV3 checks that whatever parseV3 accepts decrypts without a
// panic and within bounds, and that go-ethereum's decrypter, reading the
// same file its own way, agrees on the outcome: a file the two read
// differently (case variants, duplicate keys) must have been refused.
func FuzzImportV3(f *testing.F) {
	b, _ := os.ReadFile("testdata/keystore-v3.json")
	var v struct {
		Cases []struct{ JSON json.RawMessage }
	}
	json.Unmarshal(b, &v)
	for _, c := range v.Cases {
		if strings.Contains(string(c.JSON), "pbkdf2") {
			f.Add([]byte(c.JSON))
		}
	}
	f.Add([]byte(`{"version":3,"crypto":{"kdf":"pbkdf2","cipher":"aes-128-ctr","kdfparams":{"c":1,"dklen":32,"prf":"hmac-sha256"}}}`))
	for _, s := range v3AttackSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, err := parseV3(raw)
		if err != nil {
			if !errors.Is(err, ErrV3) {
				t.Fatalf("refusal not wrapped in ErrV3: %v", err)
			}
			return
		}
		if 128*k.n*k.r > MaxScryptMemory || k.n*k.r*k.p > MaxScryptWork || k.c > MaxPBKDF2Count {
			t.Fatalf("accepted out of bounds: %+v", k)
		}
		if k.c > 1<<12 || k.n*k.r*k.p > 1<<12 {
			return // accepted and bounded; too slow to decrypt at fuzzing speed
		}
		_, _, err = ImportV3(raw, "pw")
		var enc struct {
			Crypto gethkeystore.CryptoJSON `json:"crypto"`
		}
		if json.Unmarshal(raw, &enc) != nil {
			t.Fatal("accepted a file go-ethereum cannot parse")
		}
		_, gerr := gethkeystore.DecryptDataV3(enc.Crypto, "pw") // would panic on a case variant we let through
		if errors.Is(err, ErrDecrypt) != errors.Is(gerr, gethkeystore.ErrDecrypt) {
			t.Fatalf("we say %v, go-ethereum says %v", err, gerr)
		}
	})
}
