package core

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/big"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign"
)

// reviewCacheTTL bounds how old a review that status and prepare answers
// carry may be. A review reads the chain (the simulation, balances) and the
// owner's history; an agent that polls its request asks for the same one
// again and again. A review is reused only for the same caller, the same
// request in the same state (status and last update) and the same chain
// head, and for at most this long. The approver's page and the decision
// do not use it (they share only simCache's simulations, keyed by the
// head's number: a reorg to another block at the same height within the
// second shows the simulation of the block it replaced), and execute
// simulates again before it signs.
const reviewCacheTTL = time.Second

// reviewCacheMax bounds each cache: past it, expired entries go, and if
// none has expired the cache starts again empty. Expired entries also go
// at most a TTL after they expire, whenever something is added.
const reviewCacheMax = 1024

// reviewCacheMaxBytes: a request whose calldata, ABI and message are
// larger is reviewed every time rather than kept (a review holds its
// request): the cache stays a few megabytes at most.
const reviewCacheMaxBytes = 16 << 10

type reviewKey struct {
	actor, id string
	status    countersign.Status
	updated   int64
	head      uint64
}

// ttlCache is a map whose entries live reviewCacheTTL. Expired entries go
// whenever something is added at least a TTL after the last sweep, and
// past reviewCacheMax entries the map starts again empty. Its zero value
// is ready to use; reviewCache and simCache are two of them.
type ttlCache[K comparable, V any] struct {
	mu    sync.Mutex
	m     map[K]ttlEntry[V]
	swept time.Time
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func (c *ttlCache[K, V]) get(k K, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[k]; ok && now.Before(e.expires) {
		return e.v, true
	}
	var zero V
	return zero, false
}

func (c *ttlCache[K, V]) put(k K, v V, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[K]ttlEntry[V]{}
	}
	if len(c.m) >= reviewCacheMax || now.Sub(c.swept) > reviewCacheTTL {
		c.swept = now
		for k, e := range c.m {
			if !now.Before(e.expires) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= reviewCacheMax {
			clear(c.m)
		}
	}
	c.m[k] = ttlEntry[V]{v: v, expires: now.Add(reviewCacheTTL)}
}

// reviewCache holds the reviews PollReview hands out.
type reviewCache = ttlCache[reviewKey, *Review]

// PollReview is Review for a request the caller has already loaded (and so
// may see): what status and prepare answers carry. The same caller asking
// again about the same request in the same state at the same chain head
// within reviewCacheTTL gets the same review; a new block, a change of the
// request or a second later computes it again. The result is shared:
// callers must not change it.
func (s *Service) PollReview(ctx context.Context, p *Principal, t *countersign.Transaction) *Review {
	if len(t.TxData)+len(t.ContractABI)+len(t.Message)+len(t.FunctionArgs) > reviewCacheMaxBytes {
		return s.review(ctx, p, t, reviewAnswer)
	}
	head, err := s.recentHead(ctx)
	if err != nil { // no head to key on: compute, do not cache
		return s.review(ctx, p, t, reviewAnswer)
	}
	k := reviewKey{actor: p.Actor(), id: t.ID, status: t.Status, updated: t.UpdatedAt.UnixNano(), head: head}
	now := time.Now()
	if r, ok := s.reviews.get(k, now); ok {
		return r
	}
	r := s.review(context.WithValue(ctx, headKey{}, head), p, t, reviewAnswer) // its simulation, history and balance key on the same head
	s.reviews.put(k, r, now)
	return r
}

// headKey carries the chain head PollReview read to simulate, which then
// need not read it again.
type headKey struct{}

// historyKey is one owner's payment history question at one chain head.
type historyKey struct {
	q    countersign.PaymentQuery
	head uint64
}

// historyCache remembers, for reviewCacheTTL at one chain head, the
// payment history a poll's review asks of the store (Store.PaymentHistory:
// whether the recipient was paid, the agent's largest payment), so that an
// agent preparing payments to one recipient, or polling several requests,
// asks it once a moment instead of once a request. Only confirmed payments
// count, and a payment is confirmed after its block is the head: the
// tracker may confirm it after the answer for that head was remembered,
// which the answer then misses for at most reviewCacheTTL (an
// informational warning). The approver's page and the decision read it
// every time.
type historyCache = ttlCache[historyKey, countersign.PaymentSummary]

// paymentHistory is Store.PaymentHistory of q, remembered at the head in
// ctx (headKey); without a head it reads it. A failed read is not
// remembered.
func (s *Service) paymentHistory(ctx context.Context, q countersign.PaymentQuery) (countersign.PaymentSummary, error) {
	head, ok := ctx.Value(headKey{}).(uint64)
	if !ok {
		return s.store.PaymentHistory(ctx, q)
	}
	return remembered(&s.histories, historyKey{q: q, head: head}, func() (countersign.PaymentSummary, error) {
		return s.store.PaymentHistory(ctx, q)
	})
}

// remembered is c's value at k while it lives, else fetch's, kept when
// fetch succeeds.
func remembered[K comparable, V any](c *ttlCache[K, V], k K, fetch func() (V, error)) (V, error) {
	now := time.Now()
	if v, ok := c.get(k, now); ok {
		return v, nil
	}
	v, err := fetch()
	if err == nil {
		c.put(k, v, now)
	}
	return v, err
}

// balanceKey is one address's native balance at one chain head.
type balanceKey struct {
	address string
	head    uint64
}

// balanceCache remembers, for reviewCacheTTL at one chain head, the native
// balance a poll's review shows (and warns on when it is short). Nothing
// that moves money reads it: execute checks funds against the chain.
type balanceCache = ttlCache[balanceKey, *big.Int]

// nativeBalance is the chain's balance of address, remembered at the head
// in ctx (headKey); without a head it reads it. The number is the
// cache's: callers must not change it.
func (s *Service) nativeBalance(ctx context.Context, address string) (*big.Int, error) {
	head, ok := ctx.Value(headKey{}).(uint64)
	if !ok {
		return s.chain.BalanceAt(ctx, address)
	}
	return remembered(&s.balances, balanceKey{address: strings.ToLower(address), head: head}, func() (*big.Int, error) {
		return s.chain.BalanceAt(ctx, address)
	})
}

// simKey is one simulation: the call and the chain head it ran against.
type simKey struct {
	head            uint64
	from, to, value string
	data            [sha256.Size]byte // of the calldata, which may be large
}

type simResult struct {
	gas uint64
	err error
}

// simCache remembers simulations for reviewCacheTTL at one chain head, so
// that prepare's fee binding and the review its answer carries run the
// call once. Execute never uses it: it simulates again before it signs.
type simCache = ttlCache[simKey, simResult]

// simulate is chain.EstimateGas of msg, remembered for a moment at the
// current head. An unavailable node is never remembered, nor is anything
// when the head cannot be read.
func (s *Service) simulate(ctx context.Context, msg countersign.CallMsg) (uint64, error) {
	head, ok := ctx.Value(headKey{}).(uint64)
	if !ok {
		var err error
		if head, err = s.recentHead(ctx); err != nil {
			return s.chain.EstimateGas(ctx, msg)
		}
	}
	value := ""
	if msg.Value != nil {
		value = msg.Value.String()
	}
	k := simKey{head: head, from: msg.From, to: msg.To, value: value, data: sha256.Sum256(msg.Data)}
	now := time.Now()
	if r, ok := s.sims.get(k, now); ok {
		return r.gas, r.err
	}
	gas, err := s.chain.EstimateGas(ctx, msg)
	if !errors.Is(err, countersign.ErrUnavailable) {
		s.sims.put(k, simResult{gas, err}, now)
	}
	return gas, err
}

// feeQuote is the chain's fee suggestion at one head: Service.fees.
type feeQuote struct{ tip, feeCap, base *big.Int }

// feeCache remembers prepare's fee quote for reviewCacheTTL at one chain
// head: the base fee is the head's, and the tip suggestion a node makes
// from the blocks behind it. Execute and the tracker's fee bump never use
// it: they read the fees again before they sign.
type feeCache = ttlCache[uint64, feeQuote]

// quoteFees is fees at the head in ctx (headKey), remembered for a moment;
// without a head it reads them. The numbers are the cache's: callers must
// not change them.
func (s *Service) quoteFees(ctx context.Context) (tip, feeCap, base *big.Int, err error) {
	head, ok := ctx.Value(headKey{}).(uint64)
	if !ok {
		return s.fees(ctx)
	}
	now := time.Now()
	if q, ok := s.quotes.get(head, now); ok {
		return q.tip, q.feeCap, q.base, nil
	}
	if tip, feeCap, base, err = s.fees(ctx); err != nil {
		return nil, nil, nil, err
	}
	s.quotes.put(head, feeQuote{tip, feeCap, base}, now)
	return tip, feeCap, base, nil
}

// headFresh is how long a chain head read for the caches' keys is used
// before it is read again.
const headFresh = 200 * time.Millisecond

// headMemo is the chain head the reviews and simulations key on, as read
// at most headFresh ago: reading it was one JSON-RPC call per status poll
// (about a seventh of a poll's CPU). One caller reads it at a time; the
// others waiting meanwhile share its answer (so a node that hangs holds
// each of them for one read, not one each in turn). Nothing that moves
// money reads it: execute and the tracker read the chain themselves.
type headMemo struct {
	mu       sync.Mutex
	n        uint64
	at       time.Time
	inflight *headRead
}

type headRead struct {
	done chan struct{}
	n    uint64
	err  error
}

var errHeadRead = errors.New("core: the chain head read did not finish")

// recentHead is the chain head, read at most headFresh ago.
func (s *Service) recentHead(ctx context.Context) (uint64, error) {
	m := &s.head
	m.mu.Lock()
	if !m.at.IsZero() && time.Since(m.at) < headFresh {
		n := m.n
		m.mu.Unlock()
		return n, nil
	}
	r := m.inflight
	if r == nil {
		r = &headRead{done: make(chan struct{}), err: errHeadRead}
		m.inflight = r
		m.mu.Unlock()
		defer func() { // also if the read panics: no caller may wait on it for ever
			m.mu.Lock()
			m.inflight = nil
			if r.err == nil {
				m.n, m.at = r.n, time.Now()
			}
			m.mu.Unlock()
			close(r.done)
		}()
		// not cancelled with this caller: the others wait for it (the
		// chain client bounds it with CHAIN_TIMEOUT)
		r.n, r.err = s.chain.BlockNumber(context.WithoutCancel(ctx))
		return r.n, r.err
	}
	m.mu.Unlock()
	select {
	case <-r.done:
		return r.n, r.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}
