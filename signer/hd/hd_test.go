package hd

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	hdkeys "github.com/countersign/countersign/keys/hd"
	"github.com/countersign/countersign/keys/keystore"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

var fastArgon = keystore.Params{Time: 1, MemoryKiB: 8 << 10, Threads: 1}

func newKeyring(t *testing.T) (*Keyring, *testClock, keystore.Dir) {
	t.Helper()
	ks := keystore.Dir{Path: filepath.Join(t.TempDir(), "ks")}
	clock := &testClock{t: time.Unix(1_800_000_000, 0)}
	return New(ks, clock, Config{Argon2: fastArgon}), clock, ks
}

// account makes the DaemonAccount row the daemon would store for pub.
func account(id, walletID string, pub *countersign.HDPublicKey) *countersign.DaemonAccount {
	return &countersign.DaemonAccount{ID: id, WalletID: walletID, Curve: pub.Curve, Path: pub.Path, Address: pub.Address, PublicKey: pub.PublicKey, EVMAddress: pub.EVMAddress}
}

func readVectors(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// BIP-44 vectors (keys/hd/testdata/bip44-eth.json): an imported mnemonic
// derives the published keys, its message signatures recover to the
// published address, and an EVM transaction it signs has that sender.
func TestKeyringBIP44VectorsSignAndRecover(t *testing.T) {
	var f struct {
		Vectors []struct {
			Mnemonic, Passphrase string
			Accounts             []struct {
				Path, Address       string
				PublicKeyCompressed string `json:"public_key_compressed"`
			}
		}
	}
	readVectors(t, "../../keys/hd/testdata/bip44-eth.json", &f)
	k, _, _ := newKeyring(t)
	ctx := context.Background()
	for vi, v := range f.Vectors {
		w := &countersign.HDWallet{ID: "w" + string(rune('a'+vi)), Name: "v"}
		if err := k.ImportMnemonic(ctx, w, "pw", v.Mnemonic, v.Passphrase); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Unlock(ctx, w.ID, "pw", time.Unix(1_900_000_000, 0)); err != nil {
			t.Fatal(err)
		}
		for ai, va := range v.Accounts {
			pub, err := k.Derive(ctx, w.ID, countersign.CurveSecp256k1, va.Path)
			if err != nil {
				t.Fatal(err)
			}
			if pub.EVMAddress != va.Address || "0x"+hex.EncodeToString(pub.PublicKey) != va.PublicKeyCompressed || pub.Path != va.Path {
				t.Fatalf("%s: derived %s %x, want %s %s", va.Path, pub.EVMAddress, pub.PublicKey, va.Address, va.PublicKeyCompressed)
			}
			a := account(w.ID+string(rune('0'+ai)), w.ID, pub)
			msg := []byte("job 42 receipt")
			sig, algo, err := k.SignMessage(ctx, a, msg)
			if err != nil || algo != "secp256k1-eip191" || len(sig) != 65 || (sig[64] != 27 && sig[64] != 28) {
				t.Fatalf("sign: %x %s %v", sig, algo, err)
			}
			s := append([]byte(nil), sig...)
			s[64] -= 27
			rec, err := crypto.SigToPub(accounts.TextHash(msg), s)
			if err != nil || crypto.PubkeyToAddress(*rec).Hex() != va.Address {
				t.Fatalf("%s: the signature recovers to another address (%v)", va.Path, err)
			}
			to := common.HexToAddress("0x000000000000000000000000000000000000dEaD")
			unsigned, _ := types.NewTx(&types.DynamicFeeTx{ChainID: big.NewInt(1337), Nonce: 1, GasTipCap: big.NewInt(1), GasFeeCap: big.NewInt(2e9), Gas: 21000, To: &to, Value: big.NewInt(5)}).MarshalBinary()
			st, err := k.SignTx(ctx, a, "evm", unsigned, big.NewInt(1337))
			if err != nil {
				t.Fatal(err)
			}
			var signed types.Transaction
			if err := signed.UnmarshalBinary(st.Signed); err != nil {
				t.Fatal(err)
			}
			from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(1337)), &signed)
			if err != nil || from.Hex() != va.Address || signed.Hash().Hex() != st.TxHash {
				t.Fatalf("%s: the transaction's sender is %s (%v)", va.Path, from.Hex(), err)
			}
		}
	}
}

// SLIP-10 ed25519 vector 1 (keys/hd/testdata/slip10.json): derivation
// from the seed gives the published key, and an imported key of it signs
// what ed25519 verifies.
func TestKeyringSLIP10VectorSignAndVerify(t *testing.T) {
	var f struct {
		Curves map[string][]struct {
			Seed   string
			Chains []struct{ Path, Private, Public string }
		}
	}
	readVectors(t, "../../keys/hd/testdata/slip10.json", &f)
	v := f.Curves["ed25519"][0]
	seed, _ := hex.DecodeString(v.Seed)
	k, _, _ := newKeyring(t)
	ctx := context.Background()
	for _, c := range v.Chains[1:] { // "m" itself is not a path the daemon derives
		p, err := hdkeys.ParsePath(c.Path)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := deriveHD(seed, countersign.CurveEd25519, p)
		if err != nil || hex.EncodeToString(priv) != c.Private {
			t.Fatalf("%s: derived %x (%v), want %s", c.Path, priv, err, c.Private)
		}
		w := &countersign.HDWallet{ID: "k" + hex.EncodeToString(priv[:4]), Name: "k", Curve: countersign.CurveEd25519}
		pub, err := k.ImportKey(ctx, w, "pw", c.Private)
		if err != nil || "00"+hex.EncodeToString(pub.PublicKey) != c.Public {
			t.Fatalf("%s: public key %x (%v), want %s", c.Path, pub.PublicKey, err, c.Public)
		}
		if _, err := k.Unlock(ctx, w.ID, "pw", time.Unix(1_900_000_000, 0)); err != nil {
			t.Fatal(err)
		}
		a := account("a"+w.ID, w.ID, pub)
		sig, algo, err := k.SignMessage(ctx, a, []byte("m"))
		if err != nil || algo != "ed25519" || !ed25519.Verify(pub.PublicKey, []byte("m"), sig) {
			t.Fatalf("%s: ed25519 signature: %v", c.Path, err)
		}
		st, err := k.SignTx(ctx, a, "aitbc_v0", []byte("tx"), nil)
		if err != nil || !ed25519.Verify(pub.PublicKey, []byte("tx"), st.Signature) || !bytes.Equal(st.Signed, append([]byte("tx"), st.Signature...)) {
			t.Fatalf("%s: aitbc_v0: %v", c.Path, err)
		}
	}
}

func zeroWords(ws []big.Word) bool {
	for _, w := range ws {
		if w != 0 {
			return false
		}
	}
	return true
}

// scalarWords is a secp256k1 key's private scalar, to check it is zeroed.
func scalarWords(k *ecdsa.PrivateKey) []big.Word {
	//lint:ignore SA1019 go-ethereum keys only exist as D; zeroing it is what is tested
	return k.D.Bits()
}

// TestSecurity_LockAndExpiryZeroSecrets: lock and the deadline overwrite
// the seed and every derived key in memory, not just forget them; after
// either nothing signs.
func TestSecurity_LockAndExpiryZeroSecrets(t *testing.T) {
	k, clock, _ := newKeyring(t)
	ctx := context.Background()
	w := &countersign.HDWallet{ID: "w1", Name: "w"}
	if _, err := k.CreateMnemonic(ctx, w, "pw", 12); err != nil {
		t.Fatal(err)
	}
	secretOf := func(until time.Time) []byte {
		if _, err := k.Unlock(ctx, w.ID, "pw", until); err != nil {
			t.Fatal(err)
		}
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.unlocked[w.ID].secret
	}
	s := secretOf(clock.Now().Add(time.Hour))
	if bytes.Equal(s, make([]byte, len(s))) {
		t.Fatal("secret is zero while unlocked")
	}
	edPub, err := k.Derive(ctx, w.ID, countersign.CurveEd25519, "")
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := k.Derive(ctx, w.ID, countersign.CurveSecp256k1, "")
	if err != nil {
		t.Fatal(err)
	}
	ed, ec := account("ed", w.ID, edPub), account("ec", w.ID, ecPub)
	for _, a := range []*countersign.DaemonAccount{ed, ec} {
		if _, _, err := k.SignMessage(ctx, a, []byte("m")); err != nil {
			t.Fatal(err)
		}
	}
	k.mu.Lock()
	kv, _ := k.unlocked[w.ID].keys.Load(ed.ID)
	kecv, _ := k.unlocked[w.ID].keys.Load(ec.ID)
	k.mu.Unlock()
	kd, _ := kv.(*accountKey)
	kec, _ := kecv.(*accountKey)
	if kd == nil || len(kd.raw) != 32 || len(kd.ed) != 64 || kec == nil || kec.ec == nil || zeroWords(scalarWords(kec.ec)) {
		t.Fatal("the derived keys are not cached while unlocked")
	}
	edKey := kd.ed
	if n := k.Lock(""); n != 1 || !bytes.Equal(s, make([]byte, len(s))) || !bytes.Equal(kd.raw, make([]byte, 32)) ||
		!bytes.Equal(edKey, make([]byte, 64)) || !zeroWords(scalarWords(kec.ec)) || !bytes.Equal(kec.raw, make([]byte, 32)) {
		t.Fatal("lock did not zero the seed and the derived keys")
	}
	if _, _, err := k.SignMessage(ctx, ed, []byte("m")); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("signed after lock: %v", err)
	}

	// the deadline: Sweep zeroes, and a use found past it zeroes at once
	s = secretOf(clock.Now().Add(time.Minute))
	clock.advance(61 * time.Second)
	k.Sweep()
	if !bytes.Equal(s, make([]byte, len(s))) {
		t.Fatal("the deadline did not zero the secret")
	}
	if _, err := k.Derive(ctx, w.ID, countersign.CurveEd25519, ""); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("derived from an expired unlock: %v", err)
	}
	s = secretOf(clock.Now().Add(time.Minute))
	clock.advance(time.Minute)
	if _, _, err := k.SignMessage(ctx, ed, []byte("m")); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("signed at the deadline: %v", err)
	}
	if !bytes.Equal(s, make([]byte, len(s))) {
		t.Fatal("a use past the deadline did not zero the secret")
	}
	// unlocking again replaces (and zeroes) the previous secret
	s = secretOf(clock.Now().Add(time.Hour))
	s2 := secretOf(clock.Now().Add(time.Hour))
	if !bytes.Equal(s, make([]byte, len(s))) || bytes.Equal(s2, make([]byte, len(s2))) {
		t.Fatal("a second unlock did not zero the first secret")
	}
}

// A wallet file written before the daemon left core (the same v1-kdb
// bytes and metadata JSON, made here directly with keystore.Put) still
// lists and unlocks; an API wallet's file in the same KeyStore does
// neither.
func TestKeyringOpensExistingFiles(t *testing.T) {
	k, _, ks := newKeyring(t)
	ctx := context.Background()
	seed, _ := hdkeys.Seed("abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", "")
	meta := `{"wallet_id":"old-1","name":"legacy","kind":"hd","created_at":"2026-01-02T03:04:05Z"}`
	if err := keystore.Put(ctx, ks, "old-1", seed, []byte("pw"), []byte(meta), fastArgon); err != nil {
		t.Fatal(err)
	}
	if err := keystore.Put(ctx, ks, "api-1", make([]byte, 32), []byte("pw"), []byte(`{"wallet_id":"api-1","kind":"api","curve":"secp256k1","address":"0x0"}`), fastArgon); err != nil {
		t.Fatal(err)
	}
	ws, err := k.Wallets(ctx)
	if err != nil || len(ws) != 1 || ws[0].ID != "old-1" || ws[0].Name != "legacy" || ws[0].Kind != "hd" || ws[0].CreatedAt.Year() != 2026 {
		t.Fatalf("wallets: %+v, %v", ws, err)
	}
	if _, err := k.Unlock(ctx, "api-1", "pw", time.Unix(1_900_000_000, 0)); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("unlocked an API wallet: %v", err)
	}
	if _, err := k.Unlock(ctx, "old-1", "wrong", time.Unix(1_900_000_000, 0)); countersign.ErrorCode(err) != countersign.BadPassword {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := k.Unlock(ctx, "old-1", "pw", time.Unix(1_900_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	pub, err := k.Derive(ctx, "old-1", countersign.CurveSecp256k1, "m/44'/60'/0'/0/0")
	if err != nil || pub.EVMAddress != "0x9858EfFD232B4033E47d90003D41EC34EcaEda94" {
		t.Fatalf("derived %+v, %v", pub, err)
	}
	// and a file written now has the same metadata shape
	w := &countersign.HDWallet{ID: "new-1", Name: "n", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if err := k.ImportMnemonic(ctx, w, "pw", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", ""); err != nil {
		t.Fatal(err)
	}
	blob, _ := ks.Get(ctx, "new-1")
	h, err := keystore.ReadHeader(blob)
	if err != nil || string(h.Meta) != `{"wallet_id":"new-1","name":"n","kind":"hd","created_at":"2026-01-02T03:04:05Z"}` {
		t.Fatalf("metadata %s (%v)", h.Meta, err)
	}
}

// Bad input is a BadRequest naming the field, and stores nothing; no
// error repeats the key, mnemonic or password it was given.
func TestKeyringBadInput(t *testing.T) {
	k, _, _ := newKeyring(t)
	ctx := context.Background()
	key := strings.Repeat("ab", 32)
	for name, f := range map[string]func() error{
		"short key": func() error {
			_, err := k.ImportKey(ctx, &countersign.HDWallet{ID: "a", Curve: "ed25519"}, "pw", key[:62])
			return err
		},
		"bad curve": func() error {
			_, err := k.ImportKey(ctx, &countersign.HDWallet{ID: "b", Curve: "p256"}, "pw", key)
			return err
		},
		"zero secp": func() error {
			_, err := k.ImportKey(ctx, &countersign.HDWallet{ID: "c", Curve: "secp256k1"}, "pw", strings.Repeat("00", 32))
			return err
		},
		"bad words": func() error { _, err := k.CreateMnemonic(ctx, &countersign.HDWallet{ID: "d"}, "pw", 13); return err },
		"bad mnemo": func() error { return k.ImportMnemonic(ctx, &countersign.HDWallet{ID: "e"}, "pw", "abandon "+key, "") },
		"no keystore": func() error {
			_, err := k.ImportKeystore(ctx, &countersign.HDWallet{ID: "f"}, "pw", nil, "x")
			return err
		},
		"bad evm tx": func() error {
			_, err := k.SignTx(ctx, &countersign.DaemonAccount{ID: "x", WalletID: "none", Curve: "secp256k1"}, "evm", []byte{0x05, 0xc0}, big.NewInt(1))
			return err
		},
	} {
		err := f()
		if countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("%s: err = %v, want BAD_REQUEST", name, err)
		}
		if err != nil && strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error repeats the key", name)
		}
	}
	if ws, err := k.Wallets(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("bad input stored %d wallets (%v)", len(ws), err)
	}
	// a locked wallet is WALLET_LOCKED, for signing and export alike
	a := &countersign.DaemonAccount{ID: "x", WalletID: "none", Curve: "ed25519"}
	if _, _, err := k.SignMessage(ctx, a, []byte("m")); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("sign while locked: %v", err)
	}
	if _, _, err := k.Export(ctx, a, "export-pw", 2); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("export while locked: %v", err)
	}
}

// Export round trip: the v3 keystore opens to the account's key, and the
// ed25519 v1-kdb file decrypts to the key that signs for the account.
func TestKeyringExportRoundTrip(t *testing.T) {
	k, _, _ := newKeyring(t)
	ctx := context.Background()
	w := &countersign.HDWallet{ID: "w", Name: "w"}
	if err := k.ImportMnemonic(ctx, w, "pw", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Unlock(ctx, "w", "pw", time.Unix(1_900_000_000, 0)); err != nil {
		t.Fatal(err)
	}
	ecPub, _ := k.Derive(ctx, "w", countersign.CurveSecp256k1, "m/44'/60'/0'/0/0")
	format, blob, err := k.Export(ctx, account("ec", "w", ecPub), "export-pw", 2)
	if err != nil || format != "web3-v3" {
		t.Fatalf("%s %v", format, err)
	}
	key, addr, err := keystore.ImportV3(blob, "export-pw")
	if err != nil || addr.Hex() != ecPub.EVMAddress || hex.EncodeToString(key) != "1ab42cc412b618bdea3a599e3c9bae199ebf030895b039e9db1e30dafb12b727" {
		t.Fatalf("v3 export opens to %s (%v)", addr.Hex(), err)
	}
	edPub, _ := k.Derive(ctx, "w", countersign.CurveEd25519, "")
	format, blob, err = k.Export(ctx, account("ed", "w", edPub), "export-pw", 2)
	if err != nil || format != "v1-kdb" {
		t.Fatalf("%s %v", format, err)
	}
	raw, _, err := keystore.Decrypt(blob, []byte("export-pw"))
	if err != nil || !bytes.Equal(ed25519.NewKeyFromSeed(raw).Public().(ed25519.PublicKey), edPub.PublicKey) {
		t.Fatalf("v1-kdb export: %v", err)
	}
}
