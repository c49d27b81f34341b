package core

import (
	"context"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// simChain counts the simulations it runs; its head is set by the test.
type simChain struct {
	countersign.Chain
	head      atomic.Uint64
	estimates atomic.Int64
	down      atomic.Bool
	heads     atomic.Int64                  // BlockNumber calls
	balances  atomic.Int64                  // BalanceAt calls
	hold      atomic.Pointer[chan struct{}] // BlockNumber waits on it when set
}

func (c *simChain) ChainID(context.Context) (*big.Int, error) { return big.NewInt(1337), nil }

func (c *simChain) BlockNumber(context.Context) (uint64, error) {
	c.heads.Add(1)
	if h := c.hold.Load(); h != nil {
		<-*h
	}
	return c.head.Load(), nil
}

// newBlock sets the head, and has the service read it at once (as it
// does once headFresh has passed).
func (c *simChain) newBlock(svc *Service, n uint64) {
	c.head.Store(n)
	svc.head.mu.Lock()
	svc.head.at = time.Time{}
	svc.head.mu.Unlock()
}

func (c *simChain) EstimateGas(context.Context, countersign.CallMsg) (uint64, error) {
	c.estimates.Add(1)
	if c.down.Load() {
		return 0, countersign.ErrUnavailable
	}
	return 21000, nil
}

func (c *simChain) BalanceAt(context.Context, string) (*big.Int, error) {
	c.balances.Add(1)
	return big.NewInt(1e18), nil
}

// historyStore counts the payment history questions asked of the store.
type historyStore struct {
	countersign.Store
	asked atomic.Int64
}

func (s *historyStore) PaymentHistory(ctx context.Context, q countersign.PaymentQuery) (countersign.PaymentSummary, error) {
	s.asked.Add(1)
	return s.Store.PaymentHistory(ctx, q)
}

// TestPollReview_HistoryAndBalanceOncePerHead: the reviews poll answers
// carry ask the owner's payment history and the wallet's balance once per
// question at one chain head, across requests (an agent preparing payment
// after payment to one recipient); a new block, another recipient, or the
// approver's page asks again. The warnings they give are the same.
func TestPollReview_HistoryAndBalanceOncePerHead(t *testing.T) {
	ch := &simChain{}
	ch.head.Store(1)
	svc, ctx := newStubService(t, ch)
	st := &historyStore{Store: svc.store}
	svc.store = st
	pay := func(id, to string) *countersign.Transaction {
		return &countersign.Transaction{ID: id, OwnerID: "u1", AgentID: "a1", WalletID: "w1", ChainID: 1337, Type: countersign.TxNative,
			From: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", To: to, TxTo: to, Amount: "5", Value: "5", TxValue: "5",
			Status: countersign.StatusPending, UpdatedAt: time.Unix(1_800_000_000, 0)}
	}
	bob, carol := "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB"
	agent := &Principal{User: &countersign.User{ID: "u1"}, Agent: &countersign.Agent{ID: "a1", OwnerID: "u1"}}
	check := func(what string, r *Review, history, balances int64) {
		t.Helper()
		if !hasWarning(r, WarnNewRecipient) {
			t.Fatalf("%s: no new-recipient warning: %+v", what, r.Warnings)
		}
		if r.Facts.Balance == "" {
			t.Fatalf("%s: no balance", what)
		}
		if n, m := st.asked.Load(), ch.balances.Load(); n != history || m != balances {
			t.Fatalf("%s: %d history questions and %d balance reads, want %d and %d", what, n, m, history, balances)
		}
	}
	check("first payment", svc.PollReview(ctx, agent, pay("t1", bob)), 1, 1)
	check("second payment to the same recipient", svc.PollReview(ctx, agent, pay("t2", bob)), 1, 1)
	check("another recipient", svc.PollReview(ctx, agent, pay("t3", carol)), 2, 1)
	ch.newBlock(svc, 2)
	check("a new block", svc.PollReview(ctx, agent, pay("t4", bob)), 3, 2)
	check("the page", svc.review(ctx, agent, pay("t5", bob), reviewPage), 4, 3)
	check("the page again", svc.review(ctx, agent, pay("t6", bob), reviewPage), 5, 4)
}

func hasWarning(r *Review, code string) bool {
	for _, w := range r.Warnings {
		if w.Code == code {
			return true
		}
	}
	return false
}

// TestSimulate_OncePerHead: prepare's fee binding and its review share one
// simulation at one head; a new block, another call or an unavailable node
// runs it again.
func TestSimulate_OncePerHead(t *testing.T) {
	ch := &simChain{}
	ch.head.Store(7)
	svc, ctx := newStubService(t, ch)
	msg := countersign.CallMsg{From: "0x01", To: "0x02", Value: big.NewInt(5)}
	for range 3 {
		if gas, err := svc.simulate(ctx, msg); err != nil || gas != 21000 {
			t.Fatalf("simulate: %d %v", gas, err)
		}
	}
	if n := ch.estimates.Load(); n != 1 {
		t.Fatalf("three simulations of one call at one head ran %d times, want 1", n)
	}
	other := msg
	other.Value = big.NewInt(6)
	svc.simulate(ctx, other)
	if n := ch.estimates.Load(); n != 2 {
		t.Fatalf("another value is another call: %d simulations, want 2", n)
	}
	ch.newBlock(svc, 8)
	svc.simulate(ctx, msg)
	if n := ch.estimates.Load(); n != 3 {
		t.Fatalf("a new block simulates again: %d simulations, want 3", n)
	}
	ch.newBlock(svc, 9)
	ch.down.Store(true)
	if _, err := svc.simulate(ctx, msg); err == nil {
		t.Fatal("an unavailable node answered a simulation")
	}
	ch.down.Store(false)
	if _, err := svc.simulate(ctx, msg); err != nil {
		t.Fatalf("an unavailable node's answer was remembered: %v", err)
	}
}

// TestPollReview_SameStateOnly: a poll's review is reused only for the same
// caller, request state and head, and not past reviewCacheTTL.
func TestPollReview_SameStateOnly(t *testing.T) {
	ch := &simChain{}
	ch.head.Store(1)
	svc, ctx := newStubService(t, ch)
	tx := &countersign.Transaction{ID: "t1", OwnerID: "u1", AgentID: "a1", WalletID: "w1", ChainID: 1337, Type: countersign.TxContractCall,
		From: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", ContractAddress: "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", TxTo: "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
		Value: "0", TxValue: "0", Status: countersign.StatusPending, UpdatedAt: time.Unix(1_800_000_000, 0)}
	agent := &Principal{User: &countersign.User{ID: "u1"}, Agent: &countersign.Agent{ID: "a1", OwnerID: "u1"}}
	owner := &Principal{User: &countersign.User{ID: "u1"}}
	first := svc.PollReview(ctx, agent, tx)
	if !first.Simulated || !first.SimOK {
		t.Fatalf("a pending call is simulated: %+v", first)
	}
	if again := svc.PollReview(ctx, agent, tx); again != first {
		t.Fatal("the same poll computed its review again")
	}
	if svc.PollReview(ctx, owner, tx) == first {
		t.Fatal("another caller got the agent's review")
	}
	changed := *tx
	changed.Status, changed.UpdatedAt = countersign.StatusAuthorized, tx.UpdatedAt.Add(time.Second)
	if svc.PollReview(ctx, agent, &changed) == first {
		t.Fatal("a request in another state got its old review")
	}
	ch.newBlock(svc, 2)
	if svc.PollReview(ctx, agent, tx) == first {
		t.Fatal("a new block did not compute the review again")
	}
	ch.newBlock(svc, 1)
	large := *tx
	large.ID, large.TxData = "t2", make([]byte, reviewCacheMaxBytes+1)
	if r1, r2 := svc.PollReview(ctx, agent, &large), svc.PollReview(ctx, agent, &large); r1 == r2 {
		t.Fatal("a request larger than reviewCacheMaxBytes was kept")
	}
	k := reviewKey{actor: agent.Actor(), id: tx.ID, status: tx.Status, updated: tx.UpdatedAt.UnixNano(), head: 1}
	if _, kept := svc.reviews.get(k, time.Now().Add(reviewCacheTTL)); kept {
		t.Fatal("a review outlived reviewCacheTTL")
	}
}

// feeChain is simChain with a fee reader whose base fee the test sets.
type feeChain struct {
	simChain
	reads    atomic.Int64
	base     atomic.Int64
	feesDown atomic.Bool // Fees fails (simChain's down fails EstimateGas)
}

func (c *feeChain) Fees(context.Context) (tip, feeCap, base *big.Int, err error) {
	c.reads.Add(1)
	if c.feesDown.Load() {
		return nil, nil, nil, countersign.ErrUnavailable
	}
	b := big.NewInt(c.base.Load())
	return big.NewInt(1), new(big.Int).Add(new(big.Int).Mul(b, big.NewInt(2)), big.NewInt(1)), b, nil
}

// TestQuoteFees_OncePerHead: prepare's fee binding reads the chain's fees
// once per head (for at most reviewCacheTTL); a new block reads them again,
// a failed read is not remembered, and without a head they are read every
// time.
func TestQuoteFees_OncePerHead(t *testing.T) {
	ch := &feeChain{}
	ch.head.Store(7)
	ch.base.Store(100)
	svc, ctx := newStubService(t, ch)
	at := func(head uint64) context.Context { return context.WithValue(ctx, headKey{}, head) }
	for range 3 {
		if _, _, base, err := svc.quoteFees(at(7)); err != nil || base.Int64() != 100 {
			t.Fatalf("quote at head 7: %v %v", base, err)
		}
	}
	if n := ch.reads.Load(); n != 1 {
		t.Fatalf("three quotes at one head read the fees %d times, want 1", n)
	}
	ch.base.Store(250)
	if _, _, base, _ := svc.quoteFees(at(8)); base.Int64() != 250 || ch.reads.Load() != 2 {
		t.Fatalf("a new block: base %v after %d reads, want 250 after 2", base, ch.reads.Load())
	}
	ch.feesDown.Store(true)
	if _, _, _, err := svc.quoteFees(at(9)); err == nil {
		t.Fatal("an unavailable node gave a fee quote")
	}
	ch.feesDown.Store(false)
	if _, _, base, err := svc.quoteFees(at(9)); err != nil || base.Int64() != 250 {
		t.Fatalf("a failed read was remembered: %v %v", base, err)
	}
	before := ch.reads.Load()
	svc.quoteFees(ctx)
	svc.quoteFees(ctx)
	if n := ch.reads.Load() - before; n != 2 {
		t.Fatalf("without a head: %d reads for 2 quotes, want 2", n)
	}
}

// countedHeads is feeChain counting its head reads.
type countedHeads struct {
	feeChain
	heads atomic.Int64
}

func (c *countedHeads) BlockNumber(ctx context.Context) (uint64, error) {
	c.heads.Add(1)
	return c.feeChain.BlockNumber(ctx)
}

// TestBindFees_OneHeadRead: prepare's fee binding reads the head once for
// its simulation and its fee quote, and two prepares at one head read the
// fees and simulate the same call once; the bound fee cap is the quote's.
func TestBindFees_OneHeadRead(t *testing.T) {
	ch := &countedHeads{}
	ch.head.Store(7)
	ch.base.Store(100)
	svc, ctx := newStubService(t, ch)
	for i := range 2 {
		tx := &countersign.Transaction{Type: countersign.TxNative, From: "0x01", TxTo: "0x02", TxValue: "5"}
		if err := svc.bindFees(ctx, tx); err != nil {
			t.Fatal(err)
		}
		if tx.GasLimit != 21000+21000/5 || tx.MaxFeePerGas != big.NewInt(201*feeHeadroom).String() {
			t.Fatalf("bound gas %d, fee cap %s", tx.GasLimit, tx.MaxFeePerGas)
		}
		if h := ch.heads.Load(); h != int64(i+1) {
			t.Fatalf("%d fee bindings read the head %d times", i+1, h)
		}
	}
	if r, e := ch.reads.Load(), ch.estimates.Load(); r != 1 || e != 1 {
		t.Fatalf("two bindings at one head: %d fee reads and %d simulations, want 1 and 1", r, e)
	}
}

// TestRecentHead: the caches' chain head is read once per headFresh,
// not once per poll, and callers that arrive while it is being read share
// that read (a hanging node holds each for one read, not one each in
// turn).
func TestRecentHead(t *testing.T) {
	ch := &simChain{}
	ch.head.Store(5)
	svc, ctx := newStubService(t, ch)
	for range 10 {
		if n, err := svc.recentHead(ctx); err != nil || n != 5 {
			t.Fatalf("head %d %v", n, err)
		}
	}
	if n := ch.heads.Load(); n != 1 {
		t.Fatalf("10 reads within headFresh asked the node %d times, want 1", n)
	}
	ch.head.Store(6)
	time.Sleep(headFresh)
	if n, _ := svc.recentHead(ctx); n != 6 || ch.heads.Load() != 2 {
		t.Fatalf("after headFresh: head %d, %d reads", n, ch.heads.Load())
	}
	hold := make(chan struct{})
	ch.hold.Store(&hold)
	ch.head.Store(7)
	time.Sleep(headFresh)
	var wg sync.WaitGroup
	got := make([]uint64, 8)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i], _ = svc.recentHead(ctx) }()
	}
	time.Sleep(50 * time.Millisecond) // all eight wait on the one read
	close(hold)
	wg.Wait()
	for _, n := range got {
		if n != 7 {
			t.Fatalf("heads %v, want 7 for each", got)
		}
	}
	if n := ch.heads.Load(); n != 3 {
		t.Fatalf("eight concurrent callers made the node reads %d in all, want 3 (one for the eight)", n)
	}
}
