package main

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/keys/envelope"
	"github.com/countersign/countersign/keys/keystore"
)

// One key model: an API wallet's key is a v1-kdb file in the same KeyStore
// as the daemon's wallets (dir or store), which the daemon neither lists
// nor unlocks, and the countersigned flow signs with it.
func TestAPIWalletKeysLiveInTheKeystore(t *testing.T) {
	for _, kind := range []string{"dir", "store"} {
		t.Run(kind, func(t *testing.T) {
			var dir string
			e := newEnv(t, fastDaemon, func(c *Config) { c.KeystoreKind = kind; dir = c.DataDir })
			u := e.newUser(true)
			addr := e.createWallet(u)
			w, err := e.app.Store.WalletByAddress(context.Background(), addr)
			if err != nil || w.KeyFormat != countersign.WalletKeyKDB {
				t.Fatalf("wallet row: %+v %v", w, err)
			}
			var blob []byte
			file := filepath.Join(dir, "keystore", w.ID+".kdb")
			if kind == "dir" {
				blob, err = os.ReadFile(file)
			} else {
				blob, err = e.app.Store.KeyBlob(context.Background(), w.ID)
				if _, ferr := os.Stat(file); ferr == nil {
					t.Error("KEYSTORE=store also wrote a file")
				}
			}
			if err != nil {
				t.Fatalf("the key is not in the %s keystore: %v", kind, err)
			}
			h, err := keystore.ReadHeader(blob)
			if err != nil || !strings.Contains(string(h.Meta), `"kind":"api"`) || !strings.Contains(string(h.Meta), addr) {
				t.Fatalf("keystore file: %v %s", err, h.Meta)
			}

			// the daemon keeps to its own wallets
			d := e.do("POST", "/v1/wallet/create", anon, map[string]any{"name": "op", "password": "pw-123"}).must(t, 201)
			list := e.do("GET", "/v1/wallets", anon, nil).must(t, 200)
			if ws := list.body["wallets"].([]any); len(ws) != 1 || !strings.Contains(list.raw, d.str("wallet_id")) || strings.Contains(list.raw, w.ID) {
				t.Fatalf("daemon wallets: %s", list.raw)
			}
			e.do("POST", "/v1/wallet/unlock", anon, map[string]string{"wallet_id": w.ID, "password": "anything"}).refused(t, 404, "NOT_FOUND")

			// and the countersigned flow signs with the file's key
			e.payOnChain(u, addr, 777)
		})
	}
}

// Wallets whose key was sealed in the row (before the keystore held API
// keys) move into the keystore when the server starts, once, audited, and
// keep signing.
func TestLegacyWalletKeysMoveIntoTheKeystore(t *testing.T) {
	dataDir := t.TempDir()
	same := func(c *Config) { c.DataDir = dataDir }
	ctx := context.Background()

	e := newEnv(t, fastDaemon, same)
	u := e.newUser(true)
	owner, err := e.app.Store.UserByName(ctx, u.name)
	if err != nil {
		t.Fatal(err)
	}
	// a row as the server wrote it before: the key sealed under the KEK
	kek, _, err := envelope.LoadOrCreateKeyFile(filepath.Join(dataDir, "master.key"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, _ := envelope.New(kek)
	key, _ := crypto.GenerateKey()
	id := uuid.NewString()
	sealed, err := sealer.Seal("wallet:"+id, crypto.FromECDSA(key))
	if err != nil {
		t.Fatal(err)
	}
	addr := crypto.PubkeyToAddress(key.PublicKey).Hex()
	legacy := &countersign.Wallet{ID: id, OwnerID: owner.ID, Name: "old", Address: addr, KeyFormat: countersign.WalletKeySealed, KeySealed: sealed, CreatedAt: time.Now().UTC()}
	if err := e.app.Store.CreateWallet(ctx, legacy); err != nil {
		t.Fatal(err)
	}
	if err := e.app.Close(); err != nil {
		t.Fatal(err)
	}

	e2 := newEnv(t, fastDaemon, same)
	if !strings.Contains(e2.logs.String(), "moved wallet keys into the keystore") {
		t.Fatalf("no migration logged:\n%s", e2.logs.String())
	}
	w, err := e2.app.Store.WalletByID(ctx, id)
	if err != nil || w.KeyFormat != countersign.WalletKeyKDB {
		t.Fatalf("after start: %+v %v", w, err)
	}
	blob, err := os.ReadFile(filepath.Join(dataDir, "keystore", id+".kdb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keystore.ReadHeader(blob); err != nil {
		t.Fatal(err)
	}
	entries, _ := e2.app.Store.AuditEntries(ctx, owner.ID, 0, 100)
	migrated := 0
	for _, a := range entries {
		if a.Action == "wallet.key.migrate" && a.Subject == id {
			migrated++
		}
	}
	if migrated != 1 {
		t.Fatalf("%d wallet.key.migrate audit entries", migrated)
	}

	// the moved key still signs, on chain
	e2.payOnChain(u, addr, 4242)
	if err := e2.app.Close(); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(ctx, []string{"audit", "verify", "--data-dir", dataDir}, func(string) string { return "" }, &out, &errb); err != nil {
		t.Fatalf("audit verify after the move: %v\n%s%s", err, out.String(), errb.String())
	}

	// a third start has nothing to move and changes nothing
	e3 := newEnv(t, fastDaemon, same)
	if strings.Contains(e3.logs.String(), "moved wallet keys") {
		t.Fatal("migrated twice")
	}
	if w3, _ := e3.app.Store.WalletByID(ctx, id); string(w3.KeySealed) != string(w.KeySealed) {
		t.Fatal("the row changed on a start with nothing to move")
	}
}

// payOnChain funds wallet, has an agent prepare a payment of wei from it,
// u approve it and the agent execute it, and checks the recipient got it.
func (e *env) payOnChain(u *user, wallet string, wei int64) {
	e.t.Helper()
	fx := simFixture(e, u)
	fx.fund(e.t, wallet, ether(1))
	_, key := e.createAgent(u, wallet)
	to := randomAddress()
	id := e.do("POST", "/api/prepare_transaction", apiKey(key), map[string]string{"type": "native", "to_address": to, "amount": fmt.Sprint(wei)}).must(e.t, 202).str("transaction_id")
	e.approveAndExecute(u, key, id)
	if b, _ := fx.chain.BalanceAt(context.Background(), common.HexToAddress(to), nil); b.Cmp(big.NewInt(wei)) != 0 {
		e.t.Fatalf("recipient balance %v, want %d", b, wei)
	}
}

// A server whose keystore does not hold its wallets' keys (KEYSTORE
// switched, or the directory not restored) refuses to start and says why.
func TestStartRefusesMissingWalletKeys(t *testing.T) {
	dataDir := t.TempDir()
	e := newEnv(t, fastDaemon, func(c *Config) { c.DataDir = dataDir })
	addr := e.createWallet(e.newUser(false))
	if err := e.app.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name  string
		setup func(*Config)
	}{
		{"switched to store", func(c *Config) { c.DataDir = dataDir; c.KeystoreKind = "store" }},
		{"directory not restored", func(c *Config) { c.DataDir = dataDir; c.KeystoreDir = t.TempDir() }},
	} {
		err := startFails(t, c.setup)
		if !strings.Contains(err.Error(), "not in the keystore") || !strings.Contains(err.Error(), addr) {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	// with the keystore where it was, it starts
	newEnv(t, fastDaemon, func(c *Config) { c.DataDir = dataDir })
}
