package core

import (
	"context"
	"io"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/keys/keystore"
	"github.com/countersign/countersign/signer/local"
	"github.com/countersign/countersign/store/sqlite"
)

// identChain is a chain with an id and a genesis hash and nothing else: a
// call to any other method panics, so CheckChain provably reads no more.
type identChain struct {
	countersign.Chain
	id      int64
	genesis string
}

func (c identChain) ChainID(context.Context) (*big.Int, error)   { return big.NewInt(c.id), nil }
func (c identChain) GenesisHash(context.Context) (string, error) { return c.genesis, nil }

func chainOf(id int64, genesis string) identChain { return identChain{id: id, genesis: genesis} }

func (f *chainFixture) counts() map[countersign.Status]int { return countRows(f.t, f.st) }

func countRows(t *testing.T, st *sqlite.Store) map[countersign.Status]int {
	t.Helper()
	m, err := st.CountTransactionsByStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[countersign.Status]int{}
	for k, v := range m {
		out[k] = int(v)
	}
	return out
}

// chainFixture is one database that is started on chains one after the
// other, like a server restarted with another --chain.
type chainFixture struct {
	t      *testing.T
	st     *sqlite.Store
	sealer countersign.Sealer
	ks     string
	clock  *fixedClock
}

func newChainFixture(t *testing.T) *chainFixture {
	t.Helper()
	st, sealer := openTestStore(t)
	f := &chainFixture{t: t, st: st, sealer: sealer, ks: t.TempDir(), clock: &fixedClock{t: time.Unix(1_800_000_000, 0)}}
	ctx := context.Background()
	if err := st.CreateUser(ctx, &countersign.User{ID: "u1", Username: "alice", PasswordHash: "x", CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := st.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u1", Address: "0x00000000000000000000000000000000000000F1", KeySealed: []byte{1}, CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	return f
}

// start is a server start on ch: a new Service over the same data.
func (f *chainFixture) start(ch countersign.Chain) *Service {
	f.t.Helper()
	svc, err := New(context.Background(), f.st, ch, local.New(f.sealer, keystore.Dir{Path: f.ks}), f.sealer, f.clock,
		slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Argon2: auth.Argon2Params{Time: 1, Memory: 8 * 1024, Threads: 1}})
	if err != nil {
		f.t.Fatal(err)
	}
	return svc
}

const fixtureFrom = "0x00000000000000000000000000000000000000F1"

// rows stores one transaction in each state that matters on chainID, and
// takes three nonces for the wallet.
func (f *chainFixture) rows(chainID int64) { f.t.Helper(); f.rowsNamed("", chainID) }

// rowsNamed is rows with ids prefixed by prefix.
func (f *chainFixture) rowsNamed(prefix string, chainID int64) {
	f.t.Helper()
	ctx := context.Background()
	now := f.clock.Now().UTC()
	mk := func(id string, st countersign.Status, typ countersign.TxType) {
		t := &countersign.Transaction{ID: id, OwnerID: "u1", WalletID: "w1", ChainID: chainID, Type: typ,
			From: fixtureFrom, To: "0x00000000000000000000000000000000000000B0", Amount: "1", TxTo: "0x00000000000000000000000000000000000000B0",
			TxValue: "1", Digest: []byte{1}, ApprovedDigest: []byte{1}, Status: st, ExpiresAt: now.Add(time.Hour), CreatedAt: now, UpdatedAt: now}
		if st == countersign.StatusSubmitted || st == countersign.StatusConfirmed {
			n := uint64(len(id))
			t.Nonce, t.RawTx, t.TxHash = &n, []byte{0x02, 1, 2, 3}, "0x"+strings.Repeat("ab", 32)
			t.NextBroadcastAt = now.Add(time.Minute)
		}
		t.ID = prefix + t.ID
		if err := f.st.CreateTransaction(ctx, t); err != nil {
			f.t.Fatal(err)
		}
	}
	mk("pending", countersign.StatusPending, countersign.TxNative)
	mk("authorized", countersign.StatusAuthorized, countersign.TxNative)
	mk("submitted", countersign.StatusSubmitted, countersign.TxNative)
	mk("confirmed", countersign.StatusConfirmed, countersign.TxNative)
	mk("message", countersign.StatusAuthorized, countersign.TxPersonalSign)
	for range 3 {
		if _, err := f.st.NextNonce(ctx, chainID, fixtureFrom, 0); err != nil {
			f.t.Fatal(err)
		}
	}
}

func (f *chainFixture) identity() *countersign.ChainIdentity {
	f.t.Helper()
	id, err := f.st.ChainIdentity(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

func (f *chainFixture) status(id string) *countersign.Transaction {
	f.t.Helper()
	t, err := f.st.Transaction(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return t
}

func (f *chainFixture) counter(chainID int64) uint64 {
	f.t.Helper()
	n, err := f.st.NonceCounter(context.Background(), chainID, fixtureFrom)
	if err != nil {
		f.t.Fatal(err)
	}
	return n
}

func (f *chainFixture) auditActions(owner string) []string {
	f.t.Helper()
	l, err := f.st.AuditEntries(context.Background(), owner, 0, 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []string
	for _, e := range l {
		out = append(out, e.Action+" "+e.Subject)
	}
	return out
}

const (
	genesisA = "0xaaaa000000000000000000000000000000000000000000000000000000000001"
	genesisB = "0xbbbb000000000000000000000000000000000000000000000000000000000002"
)

// The first start records the chain; a start on the same chain changes
// nothing.
func TestMoney_ChainIdentityRecorded(t *testing.T) {
	f := newChainFixture(t)
	ctx := context.Background()
	ch, err := f.start(chainOf(8453, genesisA)).CheckChain(ctx, ChainCheck{})
	if err != nil || ch.Changed || ch.Previous != nil {
		t.Fatalf("first start: %+v %v", ch, err)
	}
	if id := f.identity(); id.ChainID != 8453 || id.GenesisHash != genesisA || id.Embedded {
		t.Fatalf("recorded %+v", id)
	}
	f.rows(8453)
	before := f.counts()
	ch, err = f.start(chainOf(8453, genesisA)).CheckChain(ctx, ChainCheck{})
	if err != nil || ch.Changed || ch.Dropped != 0 {
		t.Fatalf("same chain: %+v %v", ch, err)
	}
	if after := f.counts(); len(after) != len(before) || after[countersign.StatusSubmitted] != 1 || after[countersign.StatusAuthorized] != 2 {
		t.Fatalf("rows changed on the same chain: %v → %v", before, after)
	}
	if f.counter(8453) != 3 {
		t.Fatalf("nonce counter %d", f.counter(8453))
	}
	if got := f.auditActions(SystemOwner); len(got) != 1 || got[0] != "chain.record chain:8453" {
		t.Fatalf("system audit %v", got)
	}
}

// Restarting on another chain — another id, or the same id with another
// genesis (a testnet reset, a fresh geth --dev) — is refused, naming both,
// and changes nothing. On the old code the server started and signed the
// approvals for whatever chain it was connected to (a transaction approved
// on 1337 was signed for 11155111), and replayed the stored signed bytes
// of the same chain id onto the new chain.
func TestSecurity_StartOnAnotherChainRefused(t *testing.T) {
	for name, next := range map[string]struct {
		chain    identChain
		embedded bool
	}{
		"fail/same id, other genesis":                    {chain: chainOf(1337, genesisB)},
		"fail/other chain id":                            {chain: chainOf(11155111, genesisB)},
		"fail/embedded dev chain on a real chain's data": {chain: chainOf(1337, genesisB), embedded: true},
	} {
		t.Run(name, func(t *testing.T) {
			f := newChainFixture(t)
			ctx := context.Background()
			if _, err := f.start(chainOf(1337, genesisA)).CheckChain(ctx, ChainCheck{}); err != nil {
				t.Fatal(err)
			}
			f.rows(1337)
			before := f.counts()
			_, err := f.start(next.chain).CheckChain(ctx, ChainCheck{Embedded: next.embedded})
			if err == nil {
				t.Fatal("started on another chain than the data's")
			}
			for _, want := range []string{genesisA, next.chain.genesis, "--accept-new-chain", "ACCEPT_NEW_CHAIN"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error does not name %s: %v", want, err)
				}
			}
			if id := f.identity(); id.GenesisHash != genesisA || id.ChainID != 1337 {
				t.Fatalf("the refused start recorded %+v", id)
			}
			if after := f.counts(); after[countersign.StatusDropped] != 0 || after[countersign.StatusSubmitted] != before[countersign.StatusSubmitted] ||
				after[countersign.StatusAuthorized] != before[countersign.StatusAuthorized] {
				t.Fatalf("the refused start changed rows: %v → %v", before, after)
			}
			if f.counter(1337) != 3 {
				t.Fatalf("the refused start reset the nonce counter: %d", f.counter(1337))
			}
		})
	}
}

// With the operator's --accept-new-chain, transactions authorized or in
// flight on the old chain are dropped (audited on their owner's chain,
// with an event), the nonce counters of both chains are reset, the change
// is audited on the system chain, and the new chain is recorded. Pending
// requests, finished ones and message signatures are left alone.
func TestMoney_AcceptedChainChangeDropsInFlight(t *testing.T) {
	f := newChainFixture(t)
	ctx := context.Background()
	if _, err := f.start(chainOf(1337, genesisA)).CheckChain(ctx, ChainCheck{}); err != nil {
		t.Fatal(err)
	}
	f.rows(1337)
	svc := f.start(chainOf(1337, genesisB))
	events, _ := f.st.LastEventID(ctx, "u1")
	ch, err := svc.CheckChain(ctx, ChainCheck{AcceptNew: true})
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Changed || ch.Dropped != 2 || ch.Previous == nil || ch.Previous.GenesisHash != genesisA || ch.Nonces != 1 {
		t.Fatalf("change %+v", ch)
	}
	for id, want := range map[string]countersign.Status{"pending": countersign.StatusPending, "authorized": countersign.StatusDropped,
		"submitted": countersign.StatusDropped, "confirmed": countersign.StatusConfirmed, "message": countersign.StatusAuthorized} {
		got := f.status(id)
		if got.Status != want {
			t.Errorf("%s: %s, want %s", id, got.Status, want)
		}
		if want == countersign.StatusDropped && !strings.Contains(got.Error, "dropped") {
			t.Errorf("%s: no reason given: %q", id, got.Error)
		}
	}
	if f.counter(1337) != 0 {
		t.Fatalf("nonce counter not reset: %d", f.counter(1337))
	}
	if id := f.identity(); id.GenesisHash != genesisB {
		t.Fatalf("new chain not recorded: %+v", id)
	}
	drops := 0
	for _, a := range f.auditActions("u1") {
		if strings.HasPrefix(a, "transaction.drop ") {
			drops++
		}
	}
	if drops != 2 {
		t.Fatalf("%d drops audited, want 2: %v", drops, f.auditActions("u1"))
	}
	if got := f.auditActions(SystemOwner); len(got) != 2 || got[1] != "chain.change chain:1337" {
		t.Fatalf("system audit %v", got)
	}
	evs, err := f.st.EventsAfter(ctx, "u1", events, 100)
	if err != nil || len(evs) != 2 || evs[0].Type != "transaction.dropped" {
		t.Fatalf("events %+v %v", evs, err)
	}
	if n, err := VerifyAudit(ctx, f.st); err != nil || n < 4 {
		t.Fatalf("audit chain: %d %v", n, err)
	}
	// a dropped transaction is never executed again
	if _, err := svc.execute(ctx, "agent:x", f.status("authorized")); countersign.ErrorCode(err) != countersign.NotAuthorized {
		t.Fatalf("execute of a dropped transaction: %v", err)
	}
	// and the next start on the new chain is an ordinary one
	if ch, err := f.start(chainOf(1337, genesisB)).CheckChain(ctx, ChainCheck{}); err != nil || ch.Changed {
		t.Fatalf("second start on the accepted chain: %+v %v", ch, err)
	}
}

// The embedded dev chain is new on every start: a restart drops what was
// in flight on the previous one and resets the nonce counters without
// being told, so new transactions are not stuck behind the old chain's
// nonces and the old signed bytes are not replayed onto the new chain (on
// the old code both happened).
func TestMoney_EmbeddedRestartDropsInFlight(t *testing.T) {
	f := newChainFixture(t)
	ctx := context.Background()
	if _, err := f.start(chainOf(1337, genesisA)).CheckChain(ctx, ChainCheck{Embedded: true}); err != nil {
		t.Fatal(err)
	}
	f.rows(1337)
	ch, err := f.start(chainOf(1337, genesisB)).CheckChain(ctx, ChainCheck{Embedded: true})
	if err != nil {
		t.Fatal(err)
	}
	if !ch.Changed || ch.Dropped != 2 || f.counter(1337) != 0 {
		t.Fatalf("restart: %+v, counter %d", ch, f.counter(1337))
	}
	if c := f.counts(); c[countersign.StatusDropped] != 2 || c[countersign.StatusSubmitted] != 0 {
		t.Fatalf("rows %v", c)
	}
	if id := f.identity(); !id.Embedded || id.GenesisHash != genesisB {
		t.Fatalf("recorded %+v", id)
	}
	// an external node after the embedded chain is a change the operator
	// must accept: the data's transactions were play money
	if _, err := f.start(chainOf(1337, genesisA)).CheckChain(ctx, ChainCheck{}); err == nil {
		t.Fatal("moved from the embedded chain to a node without being told")
	}
}

// Data from before the chain was recorded: in-flight rows of another
// chain id say the data belongs elsewhere (refused); on the embedded
// chain they belong to a gone dev chain (dropped); on an external node of
// their own chain id nothing says otherwise (kept).
func TestMoney_UnrecordedChain(t *testing.T) {
	ctx := context.Background()
	t.Run("fail/in flight on another chain id", func(t *testing.T) {
		f := newChainFixture(t)
		f.rows(8453)
		_, err := f.start(chainOf(1, genesisB)).CheckChain(ctx, ChainCheck{})
		if err == nil || !strings.Contains(err.Error(), "8453") || !strings.Contains(err.Error(), "--accept-new-chain") {
			t.Fatalf("started: %v", err)
		}
		if _, err := f.st.ChainIdentity(ctx); countersign.ErrorCode(err) != countersign.NotFound {
			t.Fatalf("the refused start recorded a chain: %v", err)
		}
		if c := f.counts(); c[countersign.StatusDropped] != 0 {
			t.Fatalf("rows %v", c)
		}
	})
	t.Run("ok/accepted drops only the other chain's", func(t *testing.T) {
		f := newChainFixture(t)
		f.rowsNamed("base-", 8453)
		f.rowsNamed("eth-", 1)
		ch, err := f.start(chainOf(1, genesisB)).CheckChain(ctx, ChainCheck{AcceptNew: true})
		if err != nil || ch.Dropped != 2 {
			t.Fatalf("%+v %v", ch, err)
		}
		for id, want := range map[string]countersign.Status{"base-authorized": countersign.StatusDropped, "base-submitted": countersign.StatusDropped,
			"eth-authorized": countersign.StatusAuthorized, "eth-submitted": countersign.StatusSubmitted} {
			if got := f.status(id).Status; got != want {
				t.Errorf("%s: %s, want %s", id, got, want)
			}
		}
		if f.counter(1) != 3 || f.counter(8453) != 0 {
			t.Fatalf("counters: chain 1 %d (its kept rows hold nonces: want 3), chain 8453 %d (want 0)", f.counter(1), f.counter(8453))
		}
	})
	t.Run("ok/embedded drops", func(t *testing.T) {
		f := newChainFixture(t)
		f.rows(1337)
		ch, err := f.start(chainOf(1337, genesisB)).CheckChain(ctx, ChainCheck{Embedded: true})
		if err != nil || ch.Dropped != 2 || f.counter(1337) != 0 {
			t.Fatalf("%+v %v", ch, err)
		}
	})
	t.Run("ok/external same id keeps", func(t *testing.T) {
		f := newChainFixture(t)
		f.rows(8453)
		ch, err := f.start(chainOf(8453, genesisB)).CheckChain(ctx, ChainCheck{})
		if err != nil || ch.Dropped != 0 || ch.Changed || f.counter(8453) != 3 {
			t.Fatalf("%+v %v", ch, err)
		}
		if id := f.identity(); id.ChainID != 8453 || id.GenesisHash != genesisB {
			t.Fatalf("recorded %+v", id)
		}
	})
}

// After a restart every submitted transaction is due for rebroadcast at
// once: the previous process may have died between storing the signed
// bytes and sending them.
func TestMoney_RebroadcastAfterRestart(t *testing.T) {
	f := newChainFixture(t)
	ctx := context.Background()
	f.rows(1337)
	if f.status("submitted").NextBroadcastAt.IsZero() {
		t.Fatal("fixture: no backoff set")
	}
	n, err := f.start(chainOf(1337, genesisA)).RebroadcastAfterRestart(ctx)
	if err != nil || n != 1 {
		t.Fatalf("%d %v", n, err)
	}
	if got := f.status("submitted"); !got.NextBroadcastAt.IsZero() || got.Status != countersign.StatusSubmitted || got.TxHash == "" {
		t.Fatalf("after: %+v", got)
	}
	if got := f.status("confirmed"); got.NextBroadcastAt.IsZero() {
		t.Fatal("a confirmed row was touched")
	}
}
