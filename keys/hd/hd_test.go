package hd

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"
)

func load(t testing.TB, name string, v any) {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func unhex(s string) []byte { b, _ := hex.DecodeString(strings.TrimPrefix(s, "0x")); return b }

// All 24 English BIP-39 vectors (trezor), passphrase "TREZOR", with the
// BIP-32 root xprv of each seed.
func TestBIP39Vectors(t *testing.T) {
	var f struct {
		Vectors []struct{ Entropy, Mnemonic, Passphrase, Seed, Xprv string }
	}
	load(t, "bip39-english.json", &f)
	if len(f.Vectors) != 24 {
		t.Fatalf("%d vectors", len(f.Vectors))
	}
	for _, v := range f.Vectors {
		seed, err := Seed(v.Mnemonic, v.Passphrase)
		if err != nil || hex.EncodeToString(seed) != v.Seed {
			t.Fatalf("%q: seed %x %v", v.Mnemonic, seed, err)
		}
		m, err := NewMaster(seed)
		if err != nil || m.String() != v.Xprv {
			t.Fatalf("%q: xprv %s", v.Mnemonic, m)
		}
	}
	// NFKD: the same mnemonic with odd spacing gives the same seed
	s1, _ := Seed(f.Vectors[0].Mnemonic, "TREZOR")
	s2, _ := Seed("  "+strings.ReplaceAll(f.Vectors[0].Mnemonic, " ", "   ")+" ", "TREZOR")
	if hex.EncodeToString(s1) != hex.EncodeToString(s2) {
		t.Fatal("whitespace changes the seed")
	}
	for _, bad := range []string{"abandon abandon", strings.Replace(f.Vectors[0].Mnemonic, "about", "abandon", 1), strings.Replace(f.Vectors[0].Mnemonic, "about", "notaword", 1)} {
		if _, err := Seed(bad, ""); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
	for _, n := range []int{12, 24} {
		m, err := NewMnemonic(n)
		if err != nil || len(strings.Fields(m)) != n {
			t.Fatalf("NewMnemonic(%d) = %q", n, m)
		}
		if _, err := Seed(m, ""); err != nil {
			t.Fatal(err)
		}
	}
}

func TestBIP32Vectors(t *testing.T) {
	var f struct {
		Valid []struct {
			Name, Seed string
			Chains     []struct {
				Path   string
				ExtPub string `json:"ext_pub"`
				ExtPrv string `json:"ext_prv"`
			}
		}
		Invalid []struct{ Key, Reason string }
	}
	load(t, "bip32.json", &f)
	n := 0
	for _, v := range f.Valid {
		m, err := NewMaster(unhex(v.Seed))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range v.Chains {
			p, err := ParsePath(c.Path)
			if err != nil {
				t.Fatal(err)
			}
			k, err := m.Derive(p)
			if err != nil {
				t.Fatal(err)
			}
			if k.String() != c.ExtPrv || k.Neuter().String() != c.ExtPub {
				t.Errorf("%s %s: got %s / %s", v.Name, c.Path, k, k.Neuter())
			}
			// both serialisations parse back
			if pk, err := ParseExtendedKey(c.ExtPrv); err != nil || pk.String() != c.ExtPrv {
				t.Errorf("%s %s: parse xprv: %v", v.Name, c.Path, err)
			}
			if pk, err := ParseExtendedKey(c.ExtPub); err != nil || pk.String() != c.ExtPub {
				t.Errorf("%s %s: parse xpub: %v", v.Name, c.Path, err)
			}
			n++
		}
	}
	// public derivation agrees with private derivation for normal children
	m, _ := NewMaster(unhex(f.Valid[0].Seed))
	a, _ := m.Derive(Path{HardenedOffset, 1})
	b, _ := m.Derive(Path{HardenedOffset})
	b, err := b.Neuter().Child(1)
	if err != nil || a.Neuter().String() != b.String() {
		t.Fatal("public derivation differs from private")
	}
	if _, err := b.Child(HardenedOffset); err != ErrHardenedFromPublic {
		t.Fatal("hardened child of a public key")
	}
	for _, iv := range f.Invalid {
		if _, err := ParseExtendedKey(iv.Key); err == nil {
			t.Errorf("invalid key accepted (%s)", iv.Reason)
		}
	}
	if n < 17 || len(f.Invalid) != 16 {
		t.Fatalf("%d chains, %d invalid", n, len(f.Invalid))
	}
}

func TestSLIP10Vectors(t *testing.T) {
	type chain struct {
		Path, Fingerprint, Private, Public string
		ChainCode                          string `json:"chain_code"`
	}
	var f struct {
		Curves map[string][]struct {
			Name, Seed string
			Chains     []chain
		}
	}
	load(t, "slip10.json", &f)
	count := 0
	for _, v := range f.Curves["ed25519"] {
		m, _ := NewEd25519Master(unhex(v.Seed))
		for _, c := range v.Chains {
			p, _ := ParsePath(c.Path)
			k, err := m.Derive(p)
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(k.Seed) != c.Private || hex.EncodeToString(k.ChainCode) != c.ChainCode || "00"+hex.EncodeToString(k.PublicKey()) != c.Public {
				t.Errorf("%s %s", v.Name, c.Path)
			}
			count++
		}
	}
	for _, v := range f.Curves["secp256k1"] {
		m, _ := NewMaster(unhex(v.Seed))
		for _, c := range v.Chains {
			p, _ := ParsePath(c.Path)
			k, err := m.Derive(p)
			if err != nil {
				t.Fatal(err)
			}
			fp := "00000000"
			if len(p) > 0 {
				fp = hex.EncodeToString(k.parentFP[:])
			}
			if hex.EncodeToString(k.PrivateKey()) != c.Private || hex.EncodeToString(k.ChainCode()) != c.ChainCode || hex.EncodeToString(k.PublicKey()) != c.Public || fp != c.Fingerprint {
				t.Errorf("%s %s", v.Name, c.Path)
			}
			count++
		}
	}
	if count != 24 {
		t.Fatalf("%d chains", count)
	}
	m, _ := NewEd25519Master(unhex("000102030405060708090a0b0c0d0e0f"))
	p, _ := ParsePath("m/44'/1313'/0/0")
	if _, err := m.Derive(p); err != ErrNonHardenedEd25519 {
		t.Fatalf("non-hardened ed25519 path: %v", err)
	}
}

func TestBIP44Ethereum(t *testing.T) {
	var f struct {
		Vectors []struct {
			Mnemonic, Passphrase string
			Accounts             []struct {
				Path, Address string
				PrivateKey    string `json:"private_key"`
			}
		}
	}
	load(t, "bip44-eth.json", &f)
	for _, v := range f.Vectors {
		seed, _ := Seed(v.Mnemonic, v.Passphrase)
		m, _ := NewMaster(seed)
		for _, a := range v.Accounts {
			p, _ := ParsePath(a.Path)
			k, _ := m.Derive(p)
			key, _ := crypto.ToECDSA(k.PrivateKey())
			if crypto.PubkeyToAddress(key.PublicKey).Hex() != a.Address || "0x"+hex.EncodeToString(k.PrivateKey()) != a.PrivateKey {
				t.Errorf("%s: %s", a.Path, crypto.PubkeyToAddress(key.PublicKey).Hex())
			}
		}
	}
}

func TestBech32Vectors(t *testing.T) {
	var f struct {
		BIP173 struct {
			Valid   []struct{ String string }         `json:"bech32_valid"`
			Invalid []struct{ String, Reason string } `json:"bech32_invalid"`
		} `json:"bip173"`
		BIP350 struct {
			Valid []struct{ String string } `json:"bech32m_valid"`
		} `json:"bip350"`
	}
	load(t, "bech32.json", &f)
	for _, v := range f.BIP173.Valid {
		hrp, data, err := Bech32Decode(v.String)
		if err != nil {
			t.Errorf("valid %q refused: %v", v.String, err)
			continue
		}
		again, _ := Bech32Encode(hrp, data)
		if again != strings.ToLower(v.String) {
			t.Errorf("round trip %q → %q", v.String, again)
		}
	}
	for _, v := range f.BIP173.Invalid {
		if _, _, err := Bech32Decode(v.String); err == nil {
			t.Errorf("invalid %q accepted (%s)", v.String, v.Reason)
		}
	}
	for _, v := range f.BIP350.Valid { // bech32m checksums are not bech32
		if _, _, err := Bech32Decode(v.String); err == nil {
			t.Errorf("bech32m %q accepted as bech32", v.String)
		}
	}
}

func TestAitAddress(t *testing.T) {
	m, _ := NewEd25519Master(unhex("000102030405060708090a0b0c0d0e0f"))
	a, err := Address(m.PublicKey())
	if err != nil || !strings.HasPrefix(a, "ait1") {
		t.Fatalf("address %s %v", a, err)
	}
	h, err := ParseAddress(a)
	if err != nil || len(h) != 20 {
		t.Fatalf("parse: %v", err)
	}
	if _, err := ParseAddress(strings.Replace(a, "ait1", "bc1", 1)); err == nil {
		t.Fatal("wrong hrp accepted")
	}
	flipped := []byte(a)
	flipped[len(flipped)-1] ^= 1
	if _, err := ParseAddress(string(flipped)); err == nil {
		t.Fatal("bad checksum accepted")
	}
}

func TestParsePath(t *testing.T) {
	for in, ok := range map[string]bool{
		"m": true, "m/0": true, "m/44'/60'/0'/0/0": true, "m/0h/1H": true, "m/2147483647'": true,
		"": false, "44'/0": false, "m/": false, "m//0": false, "m/2147483648": false, "m/-1": false, "m/01": false, "m/a": false, "m/0''": false,
	} {
		p, err := ParsePath(in)
		if (err == nil) != ok {
			t.Errorf("%q: %v", in, err)
		}
		if ok && in != "m/0h/1H" {
			if back, _ := ParsePath(p.String()); back.String() != p.String() {
				t.Errorf("round trip %q", in)
			}
		}
	}
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"m", "m/44'/60'/0'/0/0", "m/0h", "m/2147483647'", "m//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePath(s)
		if err != nil {
			return
		}
		q, err := ParsePath(p.String())
		if err != nil || q.String() != p.String() {
			t.Fatalf("%q → %q does not round-trip", s, p.String())
		}
	})
}

func FuzzParseExtendedKey(f *testing.F) {
	f.Add("xprv9s21ZrQH143K3QTDL4LXw2F7HEK3wJUD2nW2nRk4stbPy6cq3jPPqjiChkVvvNKmPGJxWUtg6LnF5kejMRNNU3TGtRBeJgk33yuGBxrMPHi")
	f.Add("xpub661MyMwAqRbcFtXgS5sYJABqqG9YLmC4Q1Rdap9gSE8NqtwybGhePY2gZ29ESFjqJoCu1Rupje8YtGqsefD265TMg7usUDFdp6W1EGMcet8")
	f.Add("1111")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseExtendedKey(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("round trip changed %q", s)
		}
	})
}
