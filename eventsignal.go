package countersign

import "context"

// SignalAll is the owner an EventSignal reports when it cannot say whose
// events it may have missed (it has just connected or reconnected): every
// listener of every owner re-reads the outbox.
const SignalAll = "*"

// EventSignal carries "the outbox has grown" between the processes that
// share one store (several replicas on one PostgreSQL), so a change one
// replica commits wakes the live listeners (SSE streams, long polls,
// WebSockets) of every replica. It carries no events, only whose: the
// outbox stays the one source of truth, and a lost signal delays a
// listener (until the polling fallback or the next signal) but never loses
// an event. An optional ability of a store: a single-process store (SQLite)
// needs none.
type EventSignal interface {
	// Listen calls fn with an owner id each time a transaction that added
	// events for that owner commits, in this process or any other, and
	// with SignalAll each time it has (re)connected, since signals sent
	// while it was not listening are gone. A signal is sent only at
	// commit: never for a change that rolled back. Listen blocks until ctx
	// ends (returning ctx's error) or the connection it listens on breaks
	// (returning that error; the caller listens again after a pause). fn
	// must not block.
	Listen(ctx context.Context, fn func(owner string)) error
}
