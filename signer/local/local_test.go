package local

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"math/big"
	"os"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/keys/envelope"
	"github.com/countersign/countersign/keys/keystore"
)

var ctx = context.Background()

func newSigner(t testing.TB) (*Signer, keystore.Dir) {
	t.Helper()
	sealer, err := envelope.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	dir := keystore.Dir{Path: filepath.Join(t.TempDir(), "keystore")}
	return New(sealer, dir), dir
}

func newWallet(t testing.TB, s *Signer, id string) *countersign.Wallet {
	t.Helper()
	addr, format, sealed, err := s.NewKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return &countersign.Wallet{ID: id, Address: addr, KeyFormat: format, KeySealed: sealed}
}

func signsAs(t *testing.T, s *Signer, w *countersign.Wallet) error {
	t.Helper()
	hash := crypto.Keccak256([]byte("countersign"))
	sig, err := s.SignHash(ctx, w, hash)
	if err != nil {
		return err
	}
	sig[64] -= 27
	pub, err := crypto.SigToPub(hash, sig)
	if err != nil || crypto.PubkeyToAddress(*pub).Hex() != w.Address {
		t.Fatalf("signature does not recover to %s", w.Address)
	}
	return nil
}

func TestNewKeyLivesInTheKeystore(t *testing.T) {
	s, dir := newSigner(t)
	w := newWallet(t, s, "w1")
	if w.KeyFormat != countersign.WalletKeyKDB || len(w.KeySealed) == 0 {
		t.Fatalf("wallet: %+v", w)
	}
	blob, err := dir.Get(ctx, "w1")
	if err != nil {
		t.Fatal(err)
	}
	h, err := keystore.ReadHeader(blob)
	if err != nil || !h.Keyed() || h.Params != (keystore.Params{}) || !bytes.Contains(h.Meta, []byte(`"kind":"api"`)) || !bytes.Contains(h.Meta, []byte(w.Address)) {
		t.Fatalf("file header: %+v %v", h, err)
	}
	if st, err := os.Stat(filepath.Join(dir.Path, "w1.kdb")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file: %v %v", st, err)
	}
	if err := signsAs(t, s, w); err != nil {
		t.Fatal(err)
	}
	// a transaction too
	to := crypto.PubkeyToAddress(crypto.ToECDSAUnsafe(bytes.Repeat([]byte{1}, 32)).PublicKey).Hex()
	raw, hash, err := s.SignTx(ctx, w, &countersign.UnsignedTx{ChainID: big.NewInt(1337), Nonce: 1, To: to, Value: big.NewInt(5), Gas: 21000, Tip: big.NewInt(1), FeeCap: big.NewInt(2)})
	if err != nil {
		t.Fatal(err)
	}
	var tx types.Transaction
	if err := tx.UnmarshalBinary(raw); err != nil || tx.Hash().Hex() != hash {
		t.Fatal(err)
	}
	if from, _ := types.Sender(types.LatestSignerForChainID(big.NewInt(1337)), &tx); from.Hex() != w.Address {
		t.Fatalf("tx from %s", from.Hex())
	}
}

func TestKeystoreFilesCannotBeSwappedOrAltered(t *testing.T) {
	s, dir := newSigner(t)
	a, b := newWallet(t, s, "wa"), newWallet(t, s, "wb")
	blobA, _ := dir.Get(ctx, "wa")

	// b's row with a's file: a's file does not open with b's secret
	os.WriteFile(filepath.Join(dir.Path, "wb.kdb"), blobA, 0o600)
	if err := signsAs(t, s, b); countersign.ErrorCode(err) != countersign.Internal {
		t.Fatalf("b signing with a's file: %v", err)
	}
	// a's sealed secret on b's row: the envelope is bound to a's id
	if err := signsAs(t, s, &countersign.Wallet{ID: "wb", Address: a.Address, KeyFormat: countersign.WalletKeyKDB, KeySealed: a.KeySealed}); err == nil {
		t.Fatal("a's secret opened under b's id")
	}
	// any altered byte of a's file
	for _, i := range []int{0, 10, 40, 60, len(blobA) / 2, len(blobA) - 1} {
		bad := bytes.Clone(blobA)
		bad[i] ^= 1
		os.WriteFile(filepath.Join(dir.Path, "wa.kdb"), bad, 0o600)
		if err := signsAs(t, s, a); err == nil {
			t.Fatalf("signed with byte %d altered", i)
		}
	}
	os.Remove(filepath.Join(dir.Path, "wa.kdb"))
	if err := signsAs(t, s, a); err == nil {
		t.Fatal("signed without a file")
	}
	if err := signsAs(t, s, &countersign.Wallet{ID: "wa", Address: a.Address, KeyFormat: "bogus", KeySealed: a.KeySealed}); err == nil {
		t.Fatal("unknown key format")
	}
}

func TestMigrateLegacySealedKey(t *testing.T) {
	s, dir := newSigner(t)
	key, _ := crypto.GenerateKey()
	sealed, err := s.sealer.Seal(keyRecord("old"), crypto.FromECDSA(key))
	if err != nil {
		t.Fatal(err)
	}
	w := &countersign.Wallet{ID: "old", Address: crypto.PubkeyToAddress(key.PublicKey).Hex(), KeyFormat: countersign.WalletKeySealed, KeySealed: sealed}
	if err := signsAs(t, s, w); err != nil {
		t.Fatalf("legacy wallet: %v", err)
	}
	if _, err := dir.Get(ctx, "old"); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("a legacy wallet has a file already: %v", err)
	}
	format, newSealed, err := s.MigrateKey(ctx, w)
	if err != nil || format != countersign.WalletKeyKDB {
		t.Fatalf("migrate: %v %s", err, format)
	}
	moved := &countersign.Wallet{ID: "old", Address: w.Address, KeyFormat: format, KeySealed: newSealed}
	if err := signsAs(t, s, moved); err != nil {
		t.Fatalf("after migration: %v", err)
	}
	if _, _, err := s.MigrateKey(ctx, moved); countersign.ErrorCode(err) != countersign.Conflict {
		t.Fatalf("migrating twice: %v", err)
	}
	// the legacy secret is not the new unlock secret's envelope
	if err := signsAs(t, s, &countersign.Wallet{ID: "old", Address: w.Address, KeyFormat: countersign.WalletKeyKDB, KeySealed: sealed}); err == nil {
		t.Fatal("a sealed key passed as an unlock secret")
	}
	// a wallet whose sealed key is not its address's is refused, and nothing is written
	other, _ := crypto.GenerateKey()
	wrong := &countersign.Wallet{ID: "wrong", Address: crypto.PubkeyToAddress(other.PublicKey).Hex(), KeyFormat: countersign.WalletKeySealed, KeySealed: mustSeal(t, s, "wrong", key)}
	if _, _, err := s.MigrateKey(ctx, wrong); err == nil {
		t.Fatal("migrated a key that is not the wallet's")
	}
	if _, err := dir.Get(ctx, "wrong"); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatal("a refused migration wrote a file")
	}
}

func mustSeal(t *testing.T, s *Signer, id string, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := s.sealer.Seal(keyRecord(id), crypto.FromECDSA(key))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
