package core

import (
	"context"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/google/uuid"

	"github.com/countersign/countersign"
)

// racyClaims is a store whose claims behave as a database driver's can
// when the caller's context ends while the statement runs: the claim
// commits, and the call reports the context's error anyway (the SQLite
// driver does exactly this). claimErr, when set, is reported after every
// claim that committed, as a connection lost after the commit would.
type racyClaims struct {
	countersign.Store
	claimErr     error
	afterTracked func() // runs after ClaimTracked has claimed (a shutdown arriving then)
}

func (s *racyClaims) ClaimTopup(ctx context.Context, id, holder string, now time.Time, lease time.Duration) (bool, error) {
	ok, err := s.Store.ClaimTopup(context.WithoutCancel(ctx), id, holder, now, lease)
	switch {
	case err != nil:
		return ok, err
	case ctx.Err() != nil:
		return false, ctx.Err()
	case s.claimErr != nil:
		return false, s.claimErr
	}
	return ok, nil
}

func (s *racyClaims) ClaimTracked(ctx context.Context, q countersign.ClaimQuery) ([]*countersign.Transaction, error) {
	out, err := s.Store.ClaimTracked(context.WithoutCancel(ctx), q)
	if s.afterTracked != nil {
		s.afterTracked()
	}
	if err == nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return out, err
}

// openTopup stores a pending top-up of e's agent.
func openTopup(e *moneyEnv) *countersign.Topup {
	e.t.Helper()
	now := e.clock.Now()
	tp := &countersign.Topup{ID: uuid.NewString(), OwnerID: e.user.ID, AgentID: e.agent.Agent.ID, WalletID: e.wallet.ID, Provider: "openrouter",
		AmountCents: 500, Status: countersign.TopupPending, CreatedAt: now, UpdatedAt: now}
	if err := e.svc.store.CreateTopup(e.ctx, tp); err != nil {
		e.t.Fatal(err)
	}
	return tp
}

// A worker stopped (its context cancelled) while it claims a top-up, or
// whose claim commits and then fails, leaves no lease behind: at the same
// instant another holder can take the top-up. Before, such a lease was
// held until it ended, so a server restarted within the lease (and one
// whose clock stands still, in the restart tests) did not resume it.
func TestMoney_TopupClaimLeavesNoOrphanLease(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	racy := &racyClaims{Store: e.svc.store}
	e.svc.store = racy
	lease := e.svc.cfg.Topups.Lease
	if lease <= 0 {
		t.Fatalf("the top-up lease defaults to %v", lease)
	}
	for name, run := range map[string]func(id string) error{
		"cancelled while claiming": func(id string) error {
			ctx, cancel := context.WithCancel(e.ctx)
			cancel()
			return e.svc.advanceTopup(ctx, id)
		},
		"claim committed, then failed": func(id string) error {
			racy.claimErr = errors.New("connection reset after the commit")
			defer func() { racy.claimErr = nil }()
			return e.svc.advanceTopup(e.ctx, id)
		},
	} {
		t.Run(name, func(t *testing.T) {
			tp := openTopup(e)
			if err := run(tp.ID); err == nil {
				t.Fatal("the interrupted pass reports no error")
			}
			ok, err := racy.Store.ClaimTopup(e.ctx, tp.ID, "another-replica", e.clock.Now(), lease)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				got, _ := racy.Store.Topup(e.ctx, tp.ID)
				t.Fatalf("the top-up is still leased to %q until %s (now %s): nobody resumes it within the lease",
					got.ClaimedBy, got.ClaimedUntil, e.clock.Now())
			}
		})
	}
}

// A tracker pass stopped right after its claim gives the rows it did not
// reach back at once, in their place in the queue, so the next pass (a
// restarted server's) tracks them without waiting for the lease.
func TestMoney_StoppedTrackerPassGivesBackItsClaims(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: -1, RebroadcastAfter: time.Minute, RebroadcastMax: time.Minute})
	tx := e.lostBroadcast()
	before := e.row(tx.ID)
	if before.Status != countersign.StatusSubmitted {
		t.Fatalf("status %s, want submitted", before.Status)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	racy := &racyClaims{Store: e.svc.store, afterTracked: cancel}
	e.svc.store = racy
	_ = e.svc.TrackReceipts(ctx)
	if ctx.Err() == nil {
		t.Fatal("the pass never claimed")
	}
	got, err := racy.Store.ClaimTracked(e.ctx, countersign.ClaimQuery{Now: e.clock.Now(), Lease: time.Minute, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != tx.ID {
		t.Fatalf("claimable after the stopped pass: %d rows, want the submitted transaction", len(got))
	}
	if !got[0].CheckedAt.Equal(before.CheckedAt) {
		t.Fatalf("checked_at moved from %s to %s: the row lost its place in the queue", before.CheckedAt, got[0].CheckedAt)
	}
}

// A pass that outlived its lease — another replica claimed its rows
// meanwhile — ends only its own claims: before, its release cleared the
// other pass's claim, and a third pass could work on the transaction
// while the second still did.
func TestMoney_LatePassKeepsOffAnotherPassesClaim(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{ReplaceAfter: -1, RebroadcastAfter: time.Minute, RebroadcastMax: time.Minute})
	tx := e.lostBroadcast()
	lease := e.svc.cfg.Money.TrackLease
	var second []*countersign.Transaction
	racy := &racyClaims{Store: e.svc.store}
	racy.afterTracked = func() {
		racy.afterTracked = nil
		e.clock.Advance(lease + time.Second) // this pass is slow: its lease ends, another replica's pass claims the row
		var err error
		if second, err = racy.Store.ClaimTracked(e.ctx, countersign.ClaimQuery{Now: e.clock.Now(), Lease: lease, Limit: 10}); err != nil {
			t.Error(err)
		}
	}
	e.svc.store = racy
	if err := e.svc.TrackReceipts(e.ctx); err != nil {
		t.Fatal(err)
	}
	if len(second) != 1 || second[0].ID != tx.ID {
		t.Fatalf("the second pass claimed %d rows", len(second))
	}
	if third, err := racy.Store.ClaimTracked(e.ctx, countersign.ClaimQuery{Now: e.clock.Now(), Lease: lease, Limit: 10}); err != nil || len(third) != 0 {
		t.Fatalf("a third pass claimed %d rows the second still holds (%v)", len(third), err)
	}
}

// lostBroadcast executes a payment whose broadcast the node answers and
// loses: it stays submitted, and each tracker pass has it to work on.
func (e *moneyEnv) lostBroadcast() *countersign.Transaction {
	e.t.Helper()
	e.fund(e.wallet.Address, eth(10))
	e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{} })
	tx := e.pay(randomAddr(), big.NewInt(1000))
	if _, err := e.execute(tx.ID); err != nil {
		e.t.Fatal(err)
	}
	return tx
}

// blockingSender answers no POST: each waits for its context to end, as a
// slow receiver's does when the server shuts down.
type blockingSender struct{ started chan struct{} }

func (b *blockingSender) Post(ctx context.Context, _ string, _ map[string]string, _ []byte) (int, error) {
	b.started <- struct{}{}
	<-ctx.Done()
	return 0, ctx.Err()
}

// A delivery pass stopped in the middle of a POST gives that delivery
// back as it was — due at once, no attempt counted (the receiver did not
// fail) — so a restarted server sends it at once, not after the claim's
// lease (two minutes): before, the claim stayed.
func TestWebhookDeliveryStoppedMidPostKeepsNoClaim(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	w := &countersign.Webhook{ID: uuid.NewString(), OwnerID: e.user.ID, URL: "https://hooks.example.com/cs", Events: []string{"signed"}, CreatedAt: e.clock.Now()}
	var err error
	if w.SecretSealed, err = e.svc.sealer.Seal("webhook:"+w.ID, []byte("0123456789abcdef0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.store.CreateWebhook(e.ctx, w); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Record(e.ctx, countersign.Change{Owner: e.user.ID, Actor: "test", Action: "test.sign", Subject: "s",
		Events: []countersign.ChangeEvent{{Type: "signed", Subject: "s", Payload: map[string]string{"k": "v"}}}}, nil); err != nil {
		t.Fatal(err)
	}
	sender := &blockingSender{started: make(chan struct{}, 1)}
	e.svc.webhooks = sender
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- e.svc.DeliverDue(ctx) }()
	select {
	case <-sender.started:
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery was sent")
	}
	cancel() // the shutdown
	<-done
	list, err := e.svc.store.Deliveries(e.ctx, w.ID, 10)
	if err != nil || len(list) != 1 {
		t.Fatalf("deliveries %d, %v", len(list), err)
	}
	if d := list[0]; d.Status != countersign.DeliveryPending || d.Attempts != 0 {
		t.Fatalf("after the stopped POST: status %s, %d attempts; want pending with no attempt counted", d.Status, d.Attempts)
	}
	now := e.clock.Now()
	got, err := e.svc.store.ClaimDeliveries(e.ctx, "another-pass", now, now.Add(time.Minute), 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d deliveries claimable after the stopped pass: it kept its claim", len(got))
	}
}

// okSender answers every POST 200 and counts them by URL.
type okSender struct{ posts map[string]int }

func (o *okSender) Post(_ context.Context, url string, _ map[string]string, _ []byte) (int, error) {
	o.posts[url]++
	return 200, nil
}

// A delivery that fails the same way on every pass (its webhook's secret
// cannot be opened) keeps its claim to the lease's end, so the next pass
// delivers the others instead of claiming it first again and stopping.
func TestWebhookFailingDeliveryDoesNotHoldUpTheRest(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	hook := func(url string, sealed bool) {
		w := &countersign.Webhook{ID: uuid.NewString(), OwnerID: e.user.ID, URL: url, Events: []string{"signed"}, CreatedAt: e.clock.Now()}
		w.SecretSealed = []byte("not a sealed secret")
		if sealed {
			var err error
			if w.SecretSealed, err = e.svc.sealer.Seal("webhook:"+w.ID, []byte("0123456789abcdef0123456789abcdef")); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.svc.store.CreateWebhook(e.ctx, w); err != nil {
			t.Fatal(err)
		}
		if err := e.svc.Record(e.ctx, countersign.Change{Owner: e.user.ID, Actor: "test", Action: "test.sign", Subject: w.ID,
			Events: []countersign.ChangeEvent{{Type: "signed", Subject: w.ID, Payload: map[string]string{"k": "v"}}}}, nil); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(time.Second) // the broken one is due first
	}
	hook("https://broken.example.com/cs", false)
	hook("https://good.example.com/cs", true)
	sender := &okSender{posts: map[string]int{}}
	e.svc.webhooks = sender
	for range 3 {
		_ = e.svc.DeliverDue(e.ctx)
	}
	if n := sender.posts["https://good.example.com/cs"]; n != 1 {
		t.Fatalf("the good webhook got %d deliveries, want 1: the failing one held it up", n)
	}
}

// stoppingProvider makes its charge and, as it answers, the server begins
// to stop (stop cancels the pass's context).
type stoppingProvider struct {
	charge  *countersign.TopupCharge
	stop    func()
	charges int
}

func (p *stoppingProvider) Name() string                           { return "openrouter" }
func (p *stoppingProvider) Credits(context.Context) (int64, error) { return 0, nil }
func (p *stoppingProvider) CreateCharge(context.Context, countersign.TopupChargeRequest) (*countersign.TopupCharge, error) {
	p.charges++
	p.stop()
	c := *p.charge
	return &c, nil
}

// A charge the provider made while the server was stopping is recorded:
// the top-up is charge_created with that charge, so the next pass pays it
// instead of asking for a second one. Before, the pass's cancelled context
// failed the write and the charge was forgotten.
func TestMoney_TopupChargeMadeDuringShutdownIsKept(t *testing.T) {
	e := newMoneyEnv(t, MoneyConfig{})
	const contract = "0x131642c019AF815Ae5F9926272A70C84AE5C37ab"
	e.svc.topups.contract = mustAddr(contract)
	ctx, cancel := context.WithCancel(e.ctx)
	intent := testIntent
	intent.RefundDestination = e.wallet.Address
	prov := &stoppingProvider{stop: cancel, charge: &countersign.TopupCharge{ID: "charge-during-shutdown", Contract: contract,
		Sender: e.wallet.Address, ChainID: e.svc.chainID.Int64(), Intent: intent}}
	e.svc.topups.providers = map[string]countersign.TopupProvider{prov.Name(): prov}
	tp := openTopup(e)
	_ = e.svc.advanceTopup(ctx, tp.ID)
	if prov.charges != 1 {
		t.Fatalf("%d charges asked for", prov.charges)
	}
	got, err := e.svc.store.Topup(e.ctx, tp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != countersign.TopupChargeCreated || got.ChargeID != "charge-during-shutdown" {
		t.Fatalf("after the stopped pass: status %s, charge %q (%s); want charge_created with the provider's charge", got.Status, got.ChargeID, got.Error)
	}
	if got.ClaimedBy != "" {
		t.Fatalf("still leased to %q", got.ClaimedBy)
	}
}
