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
	e.fund(e.wallet.Address, eth(10))
	e.proxy.set(func(int, *types.Transaction) sendFault { return sendFault{} }) // answered, lost: stays submitted
	tx := e.pay(randomAddr(), big.NewInt(1000))
	if _, err := e.execute(tx.ID); err != nil {
		t.Fatal(err)
	}
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
