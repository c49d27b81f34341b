package countersign

import "context"

// Savepointer is an optional ability of a Store: undoing one part of a
// transaction and going on with the rest. Core uses it to run many
// callers' state changes in one transaction (one commit, one fsync) and
// still fail one of them alone (core/groupcommit.go): a Store without it
// commits every state change in its own transaction.
type Savepointer interface {
	// Savepoint runs fn inside the transaction ctx carries; outside one it
	// is an error and fn does not run. If fn returns an error, everything
	// fn wrote is undone, the transaction goes on, and fn's error is
	// returned; fn must not swallow a store error and return nil (the
	// store may refuse to go on, and then Savepoint fails too). While fn
	// runs, a lock it waits for longer than a short while fails fn: the
	// transaction holds the locks its earlier parts took, so a long wait
	// could be a wait on a transaction that waits for them. The caller
	// runs a failed fn again alone.
	Savepoint(ctx context.Context, fn func(ctx context.Context) error) error
}

// SerialWriter is the optional part of a store whose write transactions
// run one at a time (SQLite's one writer connection): a group of changes
// then gathers while it waits for its turn to begin, not after it began
// (core/groupcommit.go).
type SerialWriter interface {
	SerialWrites() bool
}
