package core

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/countersign/countersign"
)

// groupCommit runs small write transactions of concurrent callers together:
// a caller hands over its work and waits; one worker runs every piece that
// is waiting in a single store transaction and commits once. Each caller
// returns only after the transaction holding its rows has committed, so
// nothing is acknowledged that is not durable — but N concurrent
// signatures cost one commit instead of N. A failing piece rolls the batch
// back and each piece is retried alone, so one caller's error is never
// another's.
type groupCommit struct {
	svc   *Service
	max   int
	queue chan *commitItem
	stop  chan struct{}
	done  sync.WaitGroup

	mu     sync.RWMutex // held for reading while enqueuing, for writing to close
	closed bool

	// heads are the audit chain heads the worker's last committed batch
	// left, so the next batch need not read them. A head can be stale —
	// another writer appended since — but then the next entry's (owner,
	// seq) is taken, the batch fails, and its pieces are retried alone
	// with fresh reads: the chain never forks. Only the worker uses it.
	heads map[string]*countersign.AuditEntry

	// changes groups whole state changes (changeGrouped); nil when the
	// store cannot undo part of a transaction.
	changes *changeGroups
}

// commitItem is one caller's work: fn, and/or the changes to record, which
// a batch records together (one statement for the audit entries, one for
// the events).
type commitItem struct {
	ctx     context.Context
	fn      func(ctx context.Context) error
	changes *changeSet
	done    chan error
}

// newGroupCommit starts the worker; batches hold at most max pieces.
func newGroupCommit(svc *Service, max int) *groupCommit {
	g := &groupCommit{svc: svc, max: max, queue: make(chan *commitItem, 4*max), stop: make(chan struct{})}
	g.done.Add(1)
	go g.run()
	if sp, ok := svc.store.(countersign.Savepointer); ok {
		g.changes = newChangeGroups(svc, sp, changeGroupMax, changeGroupWorkers)
	}
	return g
}

func (g *groupCommit) submit(ctx context.Context, it *commitItem) error {
	if _, nested := ctx.Value(notifyKey{}).(*[]string); nested {
		// Already inside a transaction, which holds the only writer: queueing
		// would wait for a worker that waits for us. Join the caller's.
		return g.apply(ctx, []*commitItem{it})
	}
	it.done = make(chan error, 1)
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return g.alone(it) // stopped: alone, as before batching
	}
	select {
	case g.queue <- it:
	case <-ctx.Done():
		g.mu.RUnlock()
		return ctx.Err()
	}
	g.mu.RUnlock()
	return <-it.done // queued before close: the worker answers it
}

// apply does a batch's work inside the current transaction: every fn, then
// every change recorded by the state-change path's writeChanges (record.go).
func (g *groupCommit) apply(ctx context.Context, batch []*commitItem) error {
	all := &changeSet{}
	for _, it := range batch {
		if it.fn != nil {
			if err := it.fn(ctx); err != nil {
				return err
			}
		}
		if it.changes != nil {
			all.merge(it.changes)
		}
	}
	return g.svc.writeChanges(ctx, all)
}

// alone runs one item in its own transaction.
func (g *groupCommit) alone(it *commitItem) error {
	return g.svc.inTx(it.ctx, func(ctx context.Context) error { return g.apply(ctx, []*commitItem{it}) })
}

// maxYields is how often the worker yields the processor, while its queue
// is empty, before committing what it has: once lets signers that are
// already runnable join the batch (measured: batches of ~1.8 → ~2.6 and
// 78 → 62 µs per signature with 32 clients on 2 cores); more did not help.
const maxYields = 1

func (g *groupCommit) run() {
	defer g.done.Done()
	batch := make([]*commitItem, 0, g.max)
	for {
		var first *commitItem
		select {
		case first = <-g.queue:
		case <-g.stop:
			// answer whatever is still queued, then exit
			for {
				select {
				case it := <-g.queue:
					it.done <- g.alone(it)
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		yields := 0
	fill:
		for len(batch) < g.max {
			select {
			case it := <-g.queue:
				batch = append(batch, it)
			default:
				if yields == maxYields {
					break fill
				}
				// let runnable signers reach the queue before committing
				runtime.Gosched()
				yields++
			}
		}
		g.commit(batch)
	}
}

func (g *groupCommit) commit(batch []*commitItem) {
	// The shared transaction must not die with one caller's context: it
	// runs without cancellation, and a caller that has gone away simply
	// does not read its answer.
	ctx := withTxMemo(context.WithoutCancel(batch[0].ctx))
	memo := memoOf(ctx)
	for owner, h := range g.heads {
		memo.heads[owner] = h
	}
	err := g.svc.inTx(ctx, func(ctx context.Context) error { return g.apply(ctx, batch) })
	if err == nil {
		g.heads = memo.heads
		for _, it := range batch {
			it.done <- nil
		}
		return
	}
	g.heads = nil // perhaps stale: read afresh
	for _, it := range batch {
		it.done <- g.alone(it)
	}
}

// close stops the worker after answering every queued caller.
func (g *groupCommit) close() {
	if g.changes != nil {
		g.changes.close()
	}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	g.mu.Unlock()
	close(g.stop) // every item is queued by now: the worker drains them all
	g.done.Wait()
}

// Group commit of whole state changes. On PostgreSQL every state change
// ends under the change lock (store/postgres: audit chain heads and event
// ids), held through its fsynced commit, so state changes commit one at a
// time: one commit latency each. changeGrouped (record.go) queues a change
// here instead; a worker runs every change that is waiting in one store
// transaction, each part under a savepoint (countersign.Savepointer), then
// records all their audit entries and events in one writeChanges and
// commits once. The change lock is still taken once, last, and held to
// commit — the chains and the event order are the same as change alone
// gives — but N changes share it and the fsync.
//
// A part that fails inside the group (its own error, or a lock it would
// have waited on: see Savepointer) is undone by its savepoint and its
// caller runs it again alone, with change, whose answer is the one it gets;
// if the group itself fails to record or commit, every part is run again
// alone. So a part's apply may run twice, and only changes whose apply is
// written for that (it derives everything from what it reads in ctx and
// resets what it sets outside) may be grouped. The parts of one group see
// each other's writes in order, as if each had committed before the next
// began; every caller returns only after the commit that holds its change.
//
// Two workers: while one group waits for the change lock and its commit,
// the next group's parts run on another connection. One group of
// a process at a time records and commits (its turn): the change lock
// serialises that tail anyway, across every replica, and a group waiting
// for its turn keeps running the parts that arrive meanwhile, up to the
// group's size. So groups grow while the lock is busy — with several
// replicas on one database each replica's next group gathers everything
// that arrives while the others commit, instead of each worker bringing
// the lock a group of one or two — and the fixed cost of a commit (the
// lock, the chain heads, the fsync) is shared by more changes. (A third
// and fourth worker only split the waiting changes into smaller groups:
// BenchmarkPrepareConcurrent on PostgreSQL, BENCHMARKS.md.)
//
// The turn is invisible to PostgreSQL's deadlock detector, and a group
// waiting for it holds its parts' row locks. So what a group does once it
// holds the turn — writeChanges, the commit — must never wait for a row a
// grouped part may have locked: it writes its own new rows, locks its own
// transactions' rows and takes the change lock, which no part takes.

const (
	changeGroupMax     = 16 // parts per group: each waits for the whole group
	changeGroupWorkers = 2
)

// errRunAlone tells a grouped change's caller to run it alone.
var errRunAlone = errors.New("core: run the change alone")

type changeGroups struct {
	svc *Service
	sp  countersign.Savepointer
	max int
	// serial: the store runs one write transaction at a time, so a worker
	// takes the turn before it begins one, gathering while it waits (the
	// other worker's group meanwhile holds the writer). Otherwise it
	// begins, runs its parts and takes the turn to record and commit,
	// gathering while it waits then.
	serial    bool
	gathering chan struct{} // serial: held by the one worker gathering the next group
	groups    atomic.Int64  // groups committed or undone (tests)
	queue     chan *groupedChange
	turn      chan struct{} // holds a token while a group records and commits
	stop      chan struct{}
	done      sync.WaitGroup

	mu     sync.RWMutex // held for reading while enqueuing, for writing to close
	closed bool
}

// groupedChange is one caller's state change.
type groupedChange struct {
	ctx   context.Context
	apply func(ctx context.Context, cs *changeSet) error
	done  chan error // nil: committed; errRunAlone: run it alone
}

func newChangeGroups(svc *Service, sp countersign.Savepointer, max, workers int) *changeGroups {
	g := &changeGroups{svc: svc, sp: sp, max: max, queue: make(chan *groupedChange, 4*max), turn: make(chan struct{}, 1), stop: make(chan struct{})}
	if sw, ok := sp.(countersign.SerialWriter); ok && sw.SerialWrites() {
		g.serial, g.gathering = true, make(chan struct{}, 1)
	}
	for range workers {
		g.done.Add(1)
		go g.run()
	}
	return g
}

// submit queues apply and waits for its group: nil once the group holding
// it has committed, errRunAlone when the caller must run it alone.
func (g *changeGroups) submit(ctx context.Context, apply func(ctx context.Context, cs *changeSet) error) error {
	it := &groupedChange{ctx: ctx, apply: apply, done: make(chan error, 1)}
	g.mu.RLock()
	if g.closed {
		g.mu.RUnlock()
		return errRunAlone
	}
	select {
	case g.queue <- it:
	case <-ctx.Done():
		g.mu.RUnlock()
		return ctx.Err()
	}
	g.mu.RUnlock()
	return <-it.done // queued before close: a worker answers it
}

func (g *changeGroups) run() {
	defer g.done.Done()
	batch := make([]*groupedChange, 0, g.max)
	for {
		if g.serial {
			select {
			case g.gathering <- struct{}{}: // this worker gathers the next group
			case <-g.stop:
				g.drain()
				return
			}
		}
		var first *groupedChange
		select {
		case first = <-g.queue:
		case <-g.stop:
			if g.serial {
				<-g.gathering
			}
			g.drain()
			return
		}
		batch = append(batch[:0], first)
		yields := 0
	fill:
		for len(batch) < g.max {
			select {
			case it := <-g.queue:
				batch = append(batch, it)
			default:
				if yields == maxYields {
					break fill
				}
				runtime.Gosched() // let runnable callers reach the queue
				yields++
			}
		}
		if g.serial {
			g.takeTurn(&batch, nil)
			<-g.gathering // the other worker gathers the next group while this one commits
		}
		g.commit(batch, g.serial)
	}
}

// takeTurn waits for the group's turn, adding each change that arrives
// meanwhile to batch (up to max) and handing it to arrived (nil: only
// gathered); it returns holding the turn.
func (g *changeGroups) takeTurn(batch *[]*groupedChange, arrived func(*groupedChange)) {
	for len(*batch) < g.max {
		select {
		case g.turn <- struct{}{}:
			return
		case it := <-g.queue:
			*batch = append(*batch, it)
			if arrived != nil {
				arrived(it)
			}
		}
	}
	g.turn <- struct{}{}
}

// drain has the callers of what is still queued run it alone.
func (g *changeGroups) drain() {
	for {
		select {
		case it := <-g.queue:
			it.done <- errRunAlone
		default:
			return
		}
	}
}

// commit runs batch in one transaction and answers each part. Unless the
// group already holds the turn (serial: run took it before, gathering),
// once the batch's parts have run it waits for the group's turn to record
// and commit, running the parts that arrive meanwhile (up to max). The
// turn is given back when the transaction is over.
func (g *changeGroups) commit(batch []*groupedChange, turn bool) { // turn: the group already holds it (serial)
	g.groups.Add(1)
	in := make([]bool, 0, g.max) // in[i]: batch[i] is in the committed group
	// The group's transaction starts from an empty context, so that in a
	// part's context (grouped) only the transaction's own values come from
	// it; and it runs without cancellation: it must not die with one
	// caller, and a caller that has gone simply does not read its answer.
	err := g.svc.inTx(context.Background(), func(tx context.Context) error {
		all := &changeSet{}
		run := func(it *groupedChange) {
			cs := &changeSet{}
			err := g.sp.Savepoint(grouped{Context: tx, caller: it.ctx}, func(ctx context.Context) error { return runPart(ctx, it.apply, cs) })
			in = append(in, err == nil) // an error undid the part: its caller runs it alone
			if err == nil {
				all.merge(cs)
			}
		}
		for _, it := range batch {
			run(it)
		}
		if !turn {
			g.takeTurn(&batch, run)
			turn = true
		}
		// A memo from here on only (the parts are done, none can roll back
		// what it remembers): each owner's webhooks and chain head once.
		return g.svc.writeChanges(withTxMemo(tx), all)
	})
	// The turn is given back once the transaction is over: a group that
	// waits for it holds a transaction open (on SQLite, the one writer
	// connection), so nothing past the commit may wait for that.
	if turn {
		<-g.turn
	}
	for i, it := range batch {
		if err == nil && in[i] {
			it.done <- nil
		} else {
			it.done <- errRunAlone
		}
	}
}

// runPart runs one part's apply. A panic fails the part instead of the
// worker (and with it the process): its caller runs it again alone, where
// the panic reaches the caller's own recovery, as without grouping.
func runPart(ctx context.Context, apply func(ctx context.Context, cs *changeSet) error, cs *changeSet) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errPartPanicked
		}
	}()
	return apply(ctx, cs)
}

var errPartPanicked = errors.New("core: a grouped change panicked")

// close stops the workers; callers still queued run their changes alone.
func (g *changeGroups) close() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	g.mu.Unlock()
	close(g.stop)
	g.done.Wait()
}

// grouped is a grouped part's context: the group transaction's values
// (the store's transaction, the owners to wake after commit) over the
// caller's (its logger, request id, principal…), and the transaction's
// lack of cancellation and deadline.
type grouped struct {
	context.Context // the group's transaction, from context.Background
	caller          context.Context
}

func (c grouped) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.caller.Value(key)
}
