package daemon

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/core"
	"github.com/countersign/countersign/keys/keystore"
	mockledger "github.com/countersign/countersign/ledger/mock"
)

// test strings the text rules refuse
const (
	rlo = "\u202e" // RIGHT-TO-LEFT OVERRIDE
	esc = "\x1b"   // starts a terminal escape sequence
)

// Concurrent signatures share commits, and every one of them is in the
// audit chain and the outbox exactly once, with the chain intact.
func TestDaemonGroupCommit(t *testing.T) {
	e, ctx := newTestEnv(t, Config{})
	_, a := unlockedAccount(t, e.d, ctx)
	const workers, each = 16, 25
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := e.d.SignMessage(ctx, a.ID, []byte{byte(w), byte(i)})
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := auditActions(t, e.st)["daemon.sign.message"]; n != workers*each {
		t.Fatalf("%d signature audit entries, want %d", n, workers*each)
	}
	if _, err := core.VerifyAudit(ctx, e.st); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	if n := eventTypes(t, e.st)["signed"]; n != workers*each {
		t.Fatalf("%d signed events, want %d", n, workers*each)
	}
}

// Locking while other goroutines sign never yields a signature made with
// a zeroed key: every signature either verifies or the call says locked.
func TestDaemonLockWhileSigning(t *testing.T) {
	d, ctx := newTestDaemon(t)
	id, a := unlockedAccount(t, d, ctx)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, locked := 0, 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				sm, err := d.SignMessage(ctx, a.ID, []byte("m"))
				mu.Lock()
				switch {
				case err == nil && ed25519.Verify(a.PublicKey, []byte("m"), sm.Signature):
					ok++
				case countersign.ErrorCode(err) == countersign.WalletLocked:
					locked++
				default:
					mu.Unlock()
					t.Errorf("bad signature or error: %v", err)
					return
				}
				mu.Unlock()
			}
		}()
	}
	for range 20 {
		time.Sleep(2 * time.Millisecond)
		d.Lock(ctx, id)
		time.Sleep(time.Millisecond)
		if _, err := d.Unlock(ctx, id, "pw"); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if ok == 0 {
		t.Fatal("no signature succeeded")
	}
}

// The unlock TTL is the daemon's: a signature one second before it passes
// works, one at it is refused WALLET_LOCKED without any sweep having run,
// and unlocking again restores signing.
func TestDaemonUnlockTTLExpiry(t *testing.T) {
	e, ctx := newTestEnv(t, Config{UnlockTTL: time.Minute})
	id, a := unlockedAccount(t, e.d, ctx)
	e.clock.advance(59 * time.Second)
	if _, err := e.d.SignMessage(ctx, a.ID, []byte("m")); err != nil {
		t.Fatalf("inside the TTL: %v", err)
	}
	e.clock.advance(time.Second)
	if _, err := e.d.SignMessage(ctx, a.ID, []byte("m")); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("at the TTL: err = %v, want WALLET_LOCKED", err)
	}
	if _, err := e.d.Derive(ctx, id, "", "m/44'/12345'/0'/0'/9'", nil); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("derive after the TTL: err = %v, want WALLET_LOCKED", err)
	}
	if ws, _ := e.d.Wallets(ctx); len(ws) != 1 || ws[0].Unlocked {
		t.Fatalf("listed as unlocked after the TTL: %+v", ws)
	}
	until, err := e.d.Unlock(ctx, id, "pw")
	if err != nil || !until.Equal(e.clock.Now().Add(time.Minute)) {
		t.Fatalf("unlock again: until %v, %v", until, err)
	}
	if _, err := e.d.SignMessage(ctx, a.ID, []byte("m")); err != nil {
		t.Fatalf("after unlocking again: %v", err)
	}
}

// The wallet lifecycle's state changes are audited with the same actions
// and details as before the daemon left core.
func TestDaemonLifecycleAudit(t *testing.T) {
	e, ctx := newTestEnv(t, Config{})
	id, a := unlockedAccount(t, e.d, ctx)
	if _, err := e.d.Unlock(ctx, id, "wrong"); countersign.ErrorCode(err) != countersign.BadPassword {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := e.d.SetAccountTags(ctx, a.ID, map[string]string{"role": "payout"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.d.Export(ctx, a.ID, "export-pw", 2); err != nil {
		t.Fatal(err)
	}
	if n, err := e.d.Lock(ctx, ""); n != 1 || err != nil {
		t.Fatalf("lock: %d, %v", n, err)
	}
	entries, err := e.st.AuditEntries(ctx, Owner, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct{ action, subject, details string }{
		{"daemon.wallet.create", id, `{"kind":"hd","name":"w"}`},
		{"daemon.unlock", id, `{"until":"` + time.Unix(1_800_000_000, 0).Add(time.Hour).UTC().Format(time.RFC3339) + `"}`},
		{"daemon.account.derive", a.ID, `{"address":"` + a.Address + `","curve":"ed25519","path":"m/44'/12345'/0'/0'/0'","wallet_id":"` + id + `"}`},
		{"daemon.unlock.failure", id, `{}`},
		{"daemon.account.tags", a.ID, `{"role":"payout"}`},
		{"daemon.export", a.ID, `{"format":"v1-kdb"}`},
		{"daemon.lock", "", `{"locked":1}`},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d audit entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i, w := range want {
		got := entries[i]
		if got.Action != w.action || got.Subject != w.subject || got.Details != w.details || got.Actor != "operator" {
			t.Errorf("entry %d: %s %s %s by %s, want %s %s %s by operator", i, got.Action, got.Subject, got.Details, got.Actor, w.action, w.subject, w.details)
		}
	}
	if _, err := core.VerifyAudit(ctx, e.st); err != nil {
		t.Fatal(err)
	}
}

// Daemon wallet names and account tag values follow the same rules: on the
// old code a name was only length-checked (bytes), so NUL, ESC and bidi
// overrides were stored, and tag values took bidi overrides.
func TestSecurity_DaemonNamesAndTagsRefuseControlAndBidi(t *testing.T) {
	d, ctx := newTestDaemon(t)
	for name, n := range map[string]string{"nul": "w\x00", "esc": "w" + esc + "]0;pwned\x07", "rlo": "w" + rlo + "x", "bad utf8": "w\xfe"} {
		if _, _, err := d.CreateWallet(ctx, n, "pw", 12); countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("daemon wallet name %s: err = %v, want BAD_REQUEST", name, err)
		}
		if _, _, err := d.ImportKey(ctx, n, "pw", CurveEd25519, strings.Repeat("11", 32)); countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("daemon import-key name %s: err = %v, want BAD_REQUEST", name, err)
		}
	}
	if ws, err := d.Wallets(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("refused names created %d daemon wallets (%v)", len(ws), err)
	}
	id, a := unlockedAccount(t, d, ctx)
	for name, v := range map[string]string{"rlo": "pay" + rlo + "tuo", "nul": "a\x00", "bom": "\ufeffx", "newline": "a\nb"} {
		if _, err := d.Derive(ctx, id, "", "m/44'/0'/0'/0'/7'", map[string]string{"role": v}); countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("derive with tag %s: err = %v, want BAD_REQUEST", name, err)
		}
		if _, err := d.SetAccountTags(ctx, a.ID, map[string]string{"role": v}); countersign.ErrorCode(err) != countersign.BadRequest {
			t.Errorf("set tag %s: err = %v, want BAD_REQUEST", name, err)
		}
	}
	accts, err := d.Accounts(ctx, id, "")
	if err != nil || len(accts) != 1 || len(accts[0].Tags) != 0 {
		t.Fatalf("refused tags changed the accounts: %d accounts, %v (%v)", len(accts), accts, err)
	}
	if _, err := d.SetAccountTags(ctx, a.ID, map[string]string{"role": "payout 💸"}); err != nil {
		t.Fatalf("emoji tag: %v", err)
	}
}

// TestSecurity_ImportKeystoreCaseVariants performs finding 14 through the
// daemon's import, the function behind POST /v1/wallet/import-keystore:
// KDF parameters spelled in another case (or given twice) are a clear
// BadRequest, returned at once, and nothing is stored. On the old code the
// "Salt" and "DKLen" files panicked go-ethereum's decrypter (a 500) and
// "n and N" passed the n ≤ 2^20 bound with N = 2 while go-ethereum derived
// with n = 2^30 (128·r·n bytes: a terabyte here), killing the process.
func TestSecurity_ImportKeystoreCaseVariants(t *testing.T) {
	d, ctx := newTestDaemon(t)
	priv, _ := crypto.GenerateKey()
	good, err := keystore.ExportV3(crypto.FromECDSA(priv), "ks-pw", 2, 1) // go-ethereum's writer: {"dklen":32,"n":2,"p":1,"r":8,"salt":…}
	if err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string][2]string{
		"Salt":        {`"salt":`, `"Salt":`},
		"DKLen":       {`"dklen":`, `"DKLen":`},
		"n and N":     {`"n":2,`, `"n":1073741824,"N":2,`},
		"duplicate r": {`"r":8,`, `"r":8,"r":8,`},
	} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(string(good), mutate[0]) {
				t.Fatalf("go-ethereum's output changed shape: %s", good)
			}
			raw := []byte(strings.Replace(string(good), mutate[0], mutate[1], 1))
			start := time.Now()
			var err error
			func() {
				defer func() {
					if r := recover(); r != nil {
						err = errors.New("panic") // a 500
					}
				}()
				_, _, err = d.ImportKeystore(ctx, "imported", "wallet-pw", raw, "ks-pw")
			}()
			if countersign.ErrorCode(err) != countersign.BadRequest || !strings.Contains(countersign.ErrorDetail(err), "keystore_json") {
				t.Fatalf("err = %v, want BAD_REQUEST about keystore_json", err)
			}
			if el := time.Since(start); el > 2*time.Second {
				t.Fatalf("refusal took %v", el)
			}
		})
	}
	if ws, err := d.Wallets(ctx); err != nil || len(ws) != 0 {
		t.Fatalf("refused imports stored %d wallets (%v)", len(ws), err)
	}
	// the unaltered file still imports
	if _, a, err := d.ImportKeystore(ctx, "imported", "wallet-pw", good, "ks-pw"); err != nil || a == nil {
		t.Fatalf("the genuine keystore: %v", err)
	}
}

// Each signature through the service is recorded once: one audit entry
// naming what was signed by its hash only, and one "signed" event with the
// account — byte for byte what the daemon wrote before the move (webhook
// consumers and the cmd tests read them). A refused signature records
// nothing.
func TestDaemonSignatureAuditedOnce(t *testing.T) {
	e, ctx := newTestEnv(t, Config{})
	_, a := unlockedAccount(t, e.d, ctx)
	msg := []byte("secret-looking message body")
	if _, err := e.d.SignMessage(ctx, a.ID, msg); err != nil {
		t.Fatal(err)
	}
	tx := []byte("aitbc transaction bytes")
	st, err := e.d.SignTx(ctx, a.ID, tx, "aitbc_v0", big.NewInt(1))
	if err != nil || !ed25519.Verify(a.PublicKey, tx, st.Signature) {
		t.Fatalf("aitbc_v0: %v", err)
	}
	if _, err := e.d.SignTx(ctx, a.ID, tx, "evm", big.NewInt(1)); countersign.ErrorCode(err) != countersign.BadRequest {
		t.Fatalf("evm with an ed25519 account: %v", err)
	}
	e.d.Lock(ctx, "")
	if _, err := e.d.SignMessage(ctx, a.ID, msg); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("locked: %v", err)
	}
	entries, _ := e.st.AuditEntries(ctx, Owner, 0, 100)
	var signs []*countersign.AuditEntry
	for _, en := range entries {
		if strings.HasPrefix(en.Action, "daemon.sign.") {
			signs = append(signs, en)
		}
	}
	mh := hex.EncodeToString(crypto.Keccak256(msg))
	th := hex.EncodeToString(crypto.Keccak256(tx))
	want := []struct{ action, details string }{
		{"daemon.sign.message", `{"algo":"ed25519","message_hash":"` + mh + `"}`},
		{"daemon.sign.tx", `{"bytes_hash":"` + th + `","tx_hash":"","type":"aitbc_v0"}`},
	}
	if len(signs) != len(want) {
		t.Fatalf("%d signature entries, want %d", len(signs), len(want))
	}
	for i, w := range want {
		if signs[i].Action != w.action || signs[i].Details != w.details || signs[i].Subject != a.ID || signs[i].Actor != "operator" {
			t.Errorf("entry %d: %s %s %s", i, signs[i].Action, signs[i].Subject, signs[i].Details)
		}
		if strings.Contains(signs[i].Details, string(msg)) {
			t.Errorf("entry %d holds the message itself", i)
		}
	}
	evs, _ := e.st.EventsAfter(ctx, Owner, 0, 100)
	var payloads []map[string]string
	for _, ev := range evs {
		if ev.Type == "signed" {
			var p map[string]string
			if err := json.Unmarshal([]byte(ev.Payload), &p); err != nil || ev.Subject != a.ID {
				t.Fatalf("event %+v: %v", ev, err)
			}
			payloads = append(payloads, p)
		}
	}
	if len(payloads) != 2 || payloads[0]["message_hash"] != mh || payloads[0]["account_id"] != a.ID || payloads[0]["address"] != a.Address ||
		payloads[0]["algo"] != "ed25519" || payloads[1]["bytes_hash"] != th || payloads[1]["type"] != "aitbc_v0" || len(payloads[0]) != 4 || len(payloads[1]) != 5 {
		t.Fatalf("signed events: %v", payloads)
	}
}

// The ledger's transfer is signed by the local account and recorded with
// its audit entry and "transfer" event in the transaction that moves the
// units; a transfer the sender cannot pay moves nothing and audits no
// transfer.
func TestMoney_DaemonLedgerTransfer(t *testing.T) {
	e, ctx := newTestEnv(t, Config{})
	e.d.cfg.Ledger = mockledger.Ledger{Store: e.st}
	_, a := unlockedAccount(t, e.d, ctx)
	to := a.Address // any ait1 address will do; a second account is not needed
	if _, err := e.d.LedgerFaucet(ctx, a.Address, "1.5"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.LedgerTransfer(ctx, a.Address, "not-an-address", "1", ""); countersign.ErrorCode(err) != countersign.BadRequest {
		t.Fatalf("bad to: %v", err)
	}
	if _, err := e.d.LedgerTransfer(ctx, a.Address, to, "2", "too much"); countersign.ErrorCode(err) != countersign.InsufficientFunds {
		t.Fatalf("overdraft: %v", err)
	}
	tx, err := e.d.LedgerTransfer(ctx, a.Address, to, "0.25", "rent")
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(a.PublicKey, []byte(tx.Canonical), tx.Signature) {
		t.Fatal("the transfer's signature does not verify over its canonical form")
	}
	if got, err := e.d.LedgerTx(ctx, tx.ID); err != nil || got.Units.Cmp(big.NewInt(250_000)) != 0 {
		t.Fatalf("stored transfer: %+v, %v", got, err)
	}
	acts := auditActions(t, e.st)
	if acts["ledger.faucet"] != 1 || acts["ledger.transfer"] != 1 || eventTypes(t, e.st)["transfer"] != 1 {
		t.Fatalf("audit %v, events %v", acts, eventTypes(t, e.st))
	}
	e.d.Lock(ctx, "")
	if _, err := e.d.LedgerTransfer(ctx, a.Address, to, "0.25", ""); countersign.ErrorCode(err) != countersign.WalletLocked {
		t.Fatalf("locked sender: %v", err)
	}
}
