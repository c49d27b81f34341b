// Package storetest is the conformance suite every countersign.Store must
// pass: the SQLite store now, the PostgreSQL store when it lands.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// Run runs the suite; open returns a fresh, empty store.
func Run(t *testing.T, open func(t *testing.T) countersign.Store) {
	for name, fn := range map[string]func(*testing.T, countersign.Store){
		"users":              testUsers,
		"wallets and agents": testWalletsAgents,
		"transactions":       testTransactions,
		"nonces":             testNonces,
		"money bookkeeping":  testMoneyBookkeeping,
		"audit and events":   testAuditEvents,
		"rollback":           testRollback,
		"tokens and keys":    testTokensKeys,
		"daemon accounts":    testDaemonAccounts,
		"chain identity":     testChainIdentity,
		"recovery codes":     testRecoveryCodes,
		"approvers":          testApprovers,         // approvers.go
		"policies":           testPolicies,          // policy.go
		"charge receipts":    testCharges,           // charges.go
		"pending expiry":     testPendingExpired,    // expiry.go
		"authorized expiry":  testAuthorizedExpired, // expiry.go
		"balance alerts":     testBalanceAlerts,     // balancealerts.go
		"tracking":           testTracking,          // tracking.go
		"topups":             testTopups,            // topups.go
		"address book":       testAddressBook,       // addressbook.go
		"x402 payments":      testX402,              // x402.go
		"grouped events":     testGroupedEventsNotSkipped,
		"payment history":    testPaymentHistory, // paymenthistory.go
	} {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
	runConcurrency(t, open)  // concurrency.go
	runCapabilities(t, open) // capabilities.go
	runLimits(t, open)       // limits.go
}

var ctx = context.Background()

func code(err error) countersign.Code { return countersign.ErrorCode(err) }

func user(id string) *countersign.User {
	return &countersign.User{ID: id, Username: "name-" + id, PasswordHash: "$argon2id$x", CreatedAt: time.Unix(1700000000, 0).UTC()}
}

func testUsers(t *testing.T, s countersign.Store) {
	u := user("u1")
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, &countersign.User{ID: "u2", Username: u.Username, CreatedAt: time.Now()}); code(err) != countersign.Conflict {
		t.Fatalf("duplicate username: %v", err)
	}
	got, err := s.UserByName(ctx, u.Username)
	if err != nil || got.ID != "u1" || !got.CreatedAt.Equal(u.CreatedAt) {
		t.Fatalf("UserByName: %+v %v", got, err)
	}
	if _, err := s.UserByID(ctx, "nope"); code(err) != countersign.NotFound {
		t.Fatalf("missing user: %v", err)
	}
	got.MFAEnabled, got.MFASealed, got.MFALastStep, got.MFAFailures, got.MFALockedUntil = true, []byte{1, 2}, 42, 3, time.Unix(1800000000, 5).UTC()
	if err := s.UpdateUserMFA(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, _ := s.UserByID(ctx, "u1")
	if !again.MFAEnabled || again.MFALastStep != 42 || again.MFAFailures != 3 || !again.MFALockedUntil.Equal(got.MFALockedUntil) || !bytes.Equal(again.MFASealed, []byte{1, 2}) {
		t.Fatalf("MFA round trip: %+v", again)
	}
}

func testWalletsAgents(t *testing.T, s countersign.Store) {
	s.CreateUser(ctx, user("u1"))
	w := &countersign.Wallet{ID: "w1", OwnerID: "u1", Name: "main", Address: "0xAbC", KeyFormat: countersign.WalletKeySealed, KeySealed: []byte{9}, CreatedAt: time.Now().UTC()}
	if err := s.CreateWallet(ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateWallet(ctx, &countersign.Wallet{ID: "w2", OwnerID: "u1", Address: "0xAbC", KeySealed: []byte{1}, CreatedAt: time.Now()}); code(err) != countersign.Conflict {
		t.Fatalf("duplicate address: %v", err)
	}
	if got, err := s.WalletByAddress(ctx, "0xAbC"); err != nil || got.ID != "w1" {
		t.Fatalf("WalletByAddress: %v", err)
	}
	if list, _ := s.WalletsByOwner(ctx, "u1"); len(list) != 1 {
		t.Fatalf("WalletsByOwner: %d", len(list))
	}
	// moving a key into the keystore: only from the format it is in
	if list, _ := s.WalletsByKeyFormat(ctx, countersign.WalletKeySealed); len(list) != 1 || list[0].ID != "w1" {
		t.Fatalf("WalletsByKeyFormat(sealed): %v", list)
	}
	if err := s.SwapWalletKey(ctx, "w1", countersign.WalletKeySealed, countersign.WalletKeyKDB, []byte{7, 7}); err != nil {
		t.Fatal(err)
	}
	if err := s.SwapWalletKey(ctx, "w1", countersign.WalletKeySealed, countersign.WalletKeyKDB, []byte{8}); code(err) != countersign.Conflict {
		t.Fatalf("second swap from a format the row left: %v", err)
	}
	if got, _ := s.WalletByID(ctx, "w1"); got.KeyFormat != countersign.WalletKeyKDB || !bytes.Equal(got.KeySealed, []byte{7, 7}) {
		t.Fatalf("after swap: %+v", got)
	}
	if list, _ := s.WalletsByKeyFormat(ctx, countersign.WalletKeySealed); len(list) != 0 {
		t.Fatalf("WalletsByKeyFormat(sealed) after the swap: %d", len(list))
	}
	a := &countersign.Agent{ID: "a1", OwnerID: "u1", Name: "bot", WalletID: "w1", KeyHash: []byte("hash"), KeyPrefix: "csk_ab", CreatedAt: time.Now().UTC()}
	if err := s.CreateAgent(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AgentByKeyHash(ctx, []byte("hash")); err != nil || got.ID != "a1" || got.Revoked() {
		t.Fatalf("AgentByKeyHash: %+v %v", got, err)
	}
	// the agent and its owner in one read, as authentication wants them: the same rows as the two reads
	// (every user column set, so a column the join's hand-written list missed would show)
	owner, _ := s.UserByID(ctx, "u1")
	owner.MFAEnabled, owner.MFASealed, owner.MFALastStep, owner.MFAFailures, owner.MFALockedUntil = true, []byte{1, 2}, 42, 3, time.Unix(1800000000, 5).UTC()
	if err := s.UpdateUserMFA(ctx, owner); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchAgent(ctx, "a1", time.Unix(1800000001, 7).UTC()); err != nil {
		t.Fatal(err)
	}
	ga, gu, err := s.AgentWithOwner(ctx, []byte("hash"))
	wa, _ := s.AgentByKeyHash(ctx, []byte("hash"))
	wu, _ := s.UserByID(ctx, "u1")
	if err != nil || !reflect.DeepEqual(ga, wa) || !reflect.DeepEqual(gu, wu) {
		t.Fatalf("AgentWithOwner: %+v %+v %v, want %+v %+v", ga, gu, err, wa, wu)
	}
	if _, _, err := s.AgentWithOwner(ctx, []byte("no such hash")); code(err) != countersign.NotFound {
		t.Fatalf("AgentWithOwner of an unknown key: %v", err)
	}
	if err := s.RevokeAgent(ctx, "a1", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAgent(ctx, "a1", time.Now()); code(err) != countersign.NotFound {
		t.Fatalf("second revoke: %v", err)
	}
	if got, _ := s.AgentByID(ctx, "a1"); !got.Revoked() {
		t.Fatal("not revoked")
	}
}

func tx(id string, created time.Time, st countersign.Status) *countersign.Transaction {
	return &countersign.Transaction{ID: id, OwnerID: "u1", AgentID: "a1", WalletID: "w1", ChainID: 1337, Type: countersign.TxNative,
		From: "0xF", To: "0xT", Amount: "123456789012345678901234567890", TxTo: "0xT", TxValue: "1", Digest: []byte{1},
		Status: st, ExpiresAt: created.Add(time.Hour), CreatedAt: created, UpdatedAt: created}
}

func testTransactions(t *testing.T, s countersign.Store) {
	s.CreateUser(ctx, user("u1"))
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: time.Now()})
	base := time.Unix(1700000000, 0).UTC()
	for i := range 5 {
		t1 := tx(fmt.Sprintf("t%d", i), base.Add(time.Duration(i)*time.Second), countersign.StatusPending)
		if i == 4 {
			t1.IdempotencyKey, t1.RequestHash = "k", []byte{7}
		}
		if err := s.CreateTransaction(ctx, t1); err != nil {
			t.Fatal(err)
		}
	}
	dup := tx("t9", base, countersign.StatusPending)
	dup.IdempotencyKey = "k"
	if err := s.CreateTransaction(ctx, dup); code(err) != countersign.Conflict {
		t.Fatalf("duplicate idempotency key: %v", err)
	}
	if got, err := s.TransactionByIdempotencyKey(ctx, "a1", "k"); err != nil || got.ID != "t4" {
		t.Fatalf("by key: %v", err)
	}
	got, err := s.Transaction(ctx, "t2")
	if err != nil || got.Amount != "123456789012345678901234567890" || got.Nonce != nil || got.BlockNumber != nil {
		t.Fatalf("Transaction: %+v %v", got, err)
	}
	n, b := uint64(7), uint64(99)
	got.Status, got.Nonce, got.BlockNumber, got.TxHash, got.RawTx, got.ApprovedDigest = countersign.StatusConfirmed, &n, &b, "0xh", []byte{3}, []byte{1}
	got.ExpiresAt = got.ExpiresAt.Add(-time.Hour) // an authorized request's deadline: AUTHORIZED_TTL from its approval
	if err := s.UpdateTransaction(ctx, got); err != nil {
		t.Fatal(err)
	}
	again, _ := s.Transaction(ctx, "t2")
	if again.Status != countersign.StatusConfirmed || *again.Nonce != 7 || *again.BlockNumber != 99 || again.TxHash != "0xh" || !again.ExpiresAt.Equal(got.ExpiresAt) {
		t.Fatalf("update round trip: %+v", again)
	}
	list, _ := s.Transactions(ctx, countersign.TxFilter{OwnerID: "u1", Limit: 2})
	if len(list) != 2 || list[0].ID != "t4" || list[1].ID != "t3" {
		t.Fatalf("newest first, limited: %v", ids(list))
	}
	list, _ = s.Transactions(ctx, countersign.TxFilter{OwnerID: "u1", Before: list[1].CreatedAt, Limit: 10})
	if len(list) != 3 || list[0].ID != "t2" {
		t.Fatalf("paging: %v", ids(list))
	}
	list, _ = s.Transactions(ctx, countersign.TxFilter{OwnerID: "u1", Status: countersign.StatusConfirmed})
	if len(list) != 1 {
		t.Fatalf("status filter: %v", ids(list))
	}
	if list, _ := s.Transactions(ctx, countersign.TxFilter{OwnerID: "someone else"}); len(list) != 0 {
		t.Fatal("another owner sees transactions")
	}
	counts, _ := s.CountTransactionsByStatus(ctx)
	if counts[countersign.StatusPending] != 4 || counts[countersign.StatusConfirmed] != 1 {
		t.Fatalf("counts %v", counts)
	}
	if p, _ := s.TransactionsByStatus(ctx, countersign.StatusPending, 2); len(p) != 2 {
		t.Fatalf("by status with limit: %d", len(p))
	}
}

func ids(l []*countersign.Transaction) []string {
	var out []string
	for _, t := range l {
		out = append(out, t.ID)
	}
	return out
}

func testNonces(t *testing.T, s countersign.Store) {
	n, _ := s.NextNonce(ctx, 1, "0xA", 5)
	m, _ := s.NextNonce(ctx, 1, "0xA", 0)
	if n != 5 || m != 6 {
		t.Fatalf("nonces %d %d", n, m)
	}
	if k, _ := s.NextNonce(ctx, 1, "0xA", 10); k != 10 {
		t.Fatalf("floor above the counter: %d", k)
	}
	if k, _ := s.NextNonce(ctx, 2, "0xA", 0); k != 0 {
		t.Fatalf("per chain: %d", k)
	}
	s.ReleaseNonce(ctx, 1, "0xA", 10)
	if k, _ := s.NextNonce(ctx, 1, "0xA", 0); k != 10 {
		t.Fatalf("released nonce not reused: %d", k)
	}
	s.ReleaseNonce(ctx, 1, "0xA", 3) // not the last: ignored
	if k, _ := s.NextNonce(ctx, 1, "0xA", 0); k != 11 {
		t.Fatalf("stale release moved the counter: %d", k)
	}
	// concurrent allocations never hand out a nonce twice
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k, err := s.NextNonce(ctx, 3, "0xB", 0)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || seen[k] {
				t.Errorf("nonce %d twice (%v)", k, err)
			}
			seen[k] = true
		}()
	}
	wg.Wait()
}

func testAuditEvents(t *testing.T, s countersign.Store) {
	for i := int64(1); i <= 3; i++ {
		if err := s.AppendAudit(ctx, &countersign.AuditEntry{OwnerID: "u1", Seq: i, At: time.Now().UTC(), Actor: "a", Action: "x", Details: "{}", PrevHash: []byte{0}, Hash: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendAudit(ctx, &countersign.AuditEntry{OwnerID: "u1", Seq: 3, Details: "{}", PrevHash: []byte{0}, Hash: []byte{9}}); code(err) != countersign.Conflict {
		t.Fatalf("duplicate seq: %v", err)
	}
	head, _ := s.AuditEntries(ctx, "u1", -1, 1)
	if len(head) != 1 || head[0].Seq != 3 {
		t.Fatalf("head: %v", head)
	}
	if l, _ := s.AuditEntries(ctx, "u1", 1, 10); len(l) != 2 || l[0].Seq != 2 {
		t.Fatalf("after: %v", l)
	}
	if owners, _ := s.AuditOwners(ctx); len(owners) != 1 || owners[0] != "u1" {
		t.Fatalf("owners %v", owners)
	}
	e1 := &countersign.Event{OwnerID: "u1", Type: "t", Subject: "s", Payload: "{}", CreatedAt: time.Now()}
	e2 := &countersign.Event{OwnerID: "u1", Type: "t", Subject: "s2", Payload: "{}", CreatedAt: time.Now()}
	s.AddEvent(ctx, e1)
	s.AddEvent(ctx, e2)
	if e2.ID <= e1.ID {
		t.Fatalf("event ids %d %d", e1.ID, e2.ID)
	}
	if l, _ := s.EventsAfter(ctx, "u1", e1.ID, 10); len(l) != 1 || l[0].Subject != "s2" {
		t.Fatalf("events after: %v", l)
	}
	if last, _ := s.LastEventID(ctx, "u1"); last != e2.ID {
		t.Fatalf("last %d", last)
	}
	if last, _ := s.LastEventID(ctx, "nobody"); last != 0 {
		t.Fatalf("last of nobody %d", last)
	}

	// many at once (group commit): more rows than one statement holds
	var batch []*countersign.AuditEntry
	for i := int64(1); i <= 250; i++ {
		batch = append(batch, &countersign.AuditEntry{OwnerID: "many", Seq: i, At: time.Now().UTC(), Actor: "a", Action: "x", Details: "{}", PrevHash: []byte{0}, Hash: []byte{byte(i)}})
	}
	if err := s.AppendAudit(ctx, batch...); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.AuditEntries(ctx, "many", 0, 1000); len(l) != 250 || l[249].Seq != 250 || l[249].Hash[0] != 250 {
		t.Fatalf("batch append: %d entries", len(l))
	}
	// a batch with one taken seq stores none of its rows
	bad := []*countersign.AuditEntry{
		{OwnerID: "many2", Seq: 1, Details: "{}", PrevHash: []byte{0}, Hash: []byte{1}},
		{OwnerID: "many", Seq: 7, Details: "{}", PrevHash: []byte{0}, Hash: []byte{1}},
	}
	if err := s.AppendAudit(ctx, bad...); code(err) != countersign.Conflict {
		t.Fatalf("batch with a taken seq: %v", err)
	}
	if l, _ := s.AuditEntries(ctx, "many2", 0, 10); len(l) != 0 {
		t.Fatal("a refused batch stored some rows")
	}
	var evs []*countersign.Event
	for i := range 230 {
		evs = append(evs, &countersign.Event{OwnerID: "many", Type: "t", Subject: fmt.Sprint(i), Payload: "{}", CreatedAt: time.Now()})
	}
	if err := s.AddEvent(ctx, evs...); err != nil {
		t.Fatal(err)
	}
	got, _ := s.EventsAfter(ctx, "many", 0, 1000)
	if len(got) != 230 {
		t.Fatalf("%d events stored", len(got))
	}
	for i, e := range got {
		if e.ID != evs[i].ID || e.Subject != fmt.Sprint(i) || i > 0 && e.ID <= got[i-1].ID {
			t.Fatalf("event %d: stored id %d subject %s, set id %d", i, e.ID, e.Subject, evs[i].ID)
		}
	}
}

func testRollback(t *testing.T, s countersign.Store) {
	boom := errors.New("boom")
	err := s.InTx(ctx, func(ctx context.Context) error {
		if err := s.CreateUser(ctx, user("r1")); err != nil {
			return err
		}
		if err := s.AppendAudit(ctx, &countersign.AuditEntry{OwnerID: "r1", Seq: 1, Details: "{}", PrevHash: []byte{0}, Hash: []byte{1}}); err != nil {
			return err
		}
		if _, err := s.UserByID(ctx, "r1"); err != nil { // visible inside
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("InTx returned %v", err)
	}
	if _, err := s.UserByID(ctx, "r1"); code(err) != countersign.NotFound {
		t.Fatal("rolled-back user persisted")
	}
	if l, _ := s.AuditEntries(ctx, "r1", 0, 10); len(l) != 0 {
		t.Fatal("rolled-back audit entry persisted")
	}
}

func testTokensKeys(t *testing.T, s countersign.Store) {
	if r, _ := s.TokenRevoked(ctx, "j1"); r {
		t.Fatal("revoked before revoking")
	}
	s.RevokeToken(ctx, "j1", time.Now().Add(time.Hour))
	s.RevokeToken(ctx, "j1", time.Now().Add(time.Hour))
	if r, _ := s.TokenRevoked(ctx, "j1"); !r {
		t.Fatal("not revoked")
	}
	s.AddSigningKey(ctx, &countersign.SigningKey{KID: "k1", Alg: "EdDSA", Sealed: []byte{1}, Public: []byte{2}, CreatedAt: time.Unix(1, 0)})
	s.AddSigningKey(ctx, &countersign.SigningKey{KID: "k2", Alg: "EdDSA", Sealed: []byte{1}, Public: []byte{2}, CreatedAt: time.Unix(2, 0)})
	if err := s.AddSigningKey(ctx, &countersign.SigningKey{KID: "k2", Alg: "EdDSA", Sealed: []byte{1}, Public: []byte{2}, CreatedAt: time.Now()}); code(err) != countersign.Conflict {
		t.Fatalf("duplicate kid: %v", err)
	}
	if ks, _ := s.SigningKeys(ctx); len(ks) != 2 || ks[0].KID != "k2" {
		t.Fatalf("newest key first: %v", ks)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

func testDaemonAccounts(t *testing.T, s countersign.Store) {
	a := &countersign.DaemonAccount{ID: "a1", WalletID: "w1", Curve: "ed25519", Path: "m/0'", Address: "ait1x", PublicKey: []byte{1}, CreatedAt: time.Now().UTC()}
	if err := s.CreateDaemonAccount(ctx, a); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DaemonAccount(ctx, "a1"); err != nil || got.Tags == nil || len(got.Tags) != 0 {
		t.Fatalf("untagged account: %+v %v", got, err)
	}
	tags := map[string]string{"role": "payout", "note": "é \"quoted\""}
	if err := s.SetDaemonAccountTags(ctx, "a1", tags); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.DaemonAccount(ctx, "a1"); len(got.Tags) != 2 || got.Tags["role"] != "payout" || got.Tags["note"] != tags["note"] {
		t.Fatalf("tags: %v", got.Tags)
	}
	if list, _ := s.DaemonAccounts(ctx, "w1"); len(list) != 1 || list[0].Tags["role"] != "payout" {
		t.Fatalf("listed tags: %v", list)
	}
	if err := s.SetDaemonAccountTags(ctx, "missing", tags); code(err) != countersign.NotFound {
		t.Fatalf("tags of a missing account: %v", err)
	}
	b := &countersign.DaemonAccount{ID: "a2", WalletID: "w1", Curve: "ed25519", Path: "m/1'", Address: "ait1y", PublicKey: []byte{2}, Tags: map[string]string{"ops": ""}, CreatedAt: time.Now().UTC()}
	if err := s.CreateDaemonAccount(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.DaemonAccountByAddress(ctx, "ait1y"); got == nil || len(got.Tags) != 1 {
		t.Fatalf("created with tags: %+v", got)
	}
}

// testMoneyBookkeeping: the fee limit and the tracker's fields round-trip,
// the fee limit never changes on update, the tracker sees the least
// recently checked rows first, lists filter by sender and chain, and the
// nonce counter can be read without allocating.
func testMoneyBookkeeping(t *testing.T, s countersign.Store) {
	s.CreateUser(ctx, user("u1"))
	s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0xF", KeySealed: []byte{1}, CreatedAt: time.Now()})
	base := time.Unix(1700000000, 0).UTC()
	for i := range 3 {
		t1 := tx(fmt.Sprintf("m%d", i), base.Add(time.Duration(i)*time.Second), countersign.StatusSubmitted)
		t1.GasLimit, t1.MaxFeePerGas = 25200, "123456789012345678901234567890"
		if i == 2 {
			t1.From, t1.ChainID = "0xG", 8453
		}
		if err := s.CreateTransaction(ctx, t1); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Transaction(ctx, "m0")
	if err != nil || got.GasLimit != 25200 || got.MaxFeePerGas != "123456789012345678901234567890" || got.Broadcasts != 0 || !got.CheckedAt.IsZero() {
		t.Fatalf("fee limit round trip: %+v %v", got, err)
	}
	next := base.Add(time.Hour)
	got.GasLimit, got.MaxFeePerGas, got.Broadcasts, got.NextBroadcastAt = 1, "1", 3, next
	if err := s.UpdateTransaction(ctx, got); err != nil {
		t.Fatal(err)
	}
	if again, _ := s.Transaction(ctx, "m0"); again.GasLimit != 25200 || again.MaxFeePerGas != "123456789012345678901234567890" || again.Broadcasts != 3 || !again.NextBroadcastAt.Equal(next) {
		t.Fatalf("update changed the fee limit or lost the backoff: %+v", again)
	}
	if l, _ := s.TransactionsByStatus(ctx, countersign.StatusSubmitted, 1); len(l) != 1 || l[0].ID != "m0" {
		t.Fatalf("never checked, oldest first: %v", ids(l))
	}
	if err := s.MarkChecked(ctx, base.Add(time.Minute), "m0", "m1"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.TransactionsByStatus(ctx, countersign.StatusSubmitted, 3); len(l) != 3 || l[0].ID != "m2" || !l[1].CheckedAt.Equal(base.Add(time.Minute)) {
		t.Fatalf("least recently checked first: %v", ids(l))
	}
	if err := s.MarkChecked(ctx, base.Add(2*time.Minute), "m2"); err != nil {
		t.Fatal(err)
	}
	if l, _ := s.TransactionsByStatus(ctx, countersign.StatusSubmitted, 1); len(l) != 1 || l[0].ID != "m0" {
		t.Fatalf("fair rotation: %v", ids(l))
	}
	if l, _ := s.Transactions(ctx, countersign.TxFilter{OwnerID: "u1", From: "0xF", ChainID: 1337}); len(l) != 2 {
		t.Fatalf("sender and chain filter: %v", ids(l))
	}
	if l, _ := s.Transactions(ctx, countersign.TxFilter{OwnerID: "u1", ChainID: 8453}); len(l) != 1 || l[0].ID != "m2" {
		t.Fatalf("chain filter: %v", ids(l))
	}
	if n, err := s.NonceCounter(ctx, 1, "0xC"); err != nil || n != 0 {
		t.Fatalf("counter before any allocation: %d %v", n, err)
	}
	s.NextNonce(ctx, 1, "0xC", 4)
	if n, _ := s.NonceCounter(ctx, 1, "0xC"); n != 5 {
		t.Fatalf("counter after allocating 4: %d", n)
	}
	if n, _ := s.NonceCounter(ctx, 1, "0xC"); n != 5 {
		t.Fatalf("reading the counter allocated: %d", n)
	}
}
