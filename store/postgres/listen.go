package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/countersign/countersign"
)

// eventChannel is the NOTIFY channel of event wake-ups; the payload is the
// owner id whose outbox grew. AddEvent sends it inside the transaction
// that appends the events, so PostgreSQL delivers it at commit, and never
// for a transaction that rolls back.
const eventChannel = "countersign_events"

// notifySQL signals the owners of new events (AddEvent), one notification
// each, in one statement.
const notifySQL = `SELECT pg_notify('` + eventChannel + `', owner) FROM unnest(?::text[]) AS owner`

var _ countersign.EventSignal = (*Store)(nil)

// listenCheck is how long Listen waits for a notification before it checks
// the connection is alive: a connection whose peer vanished without a
// reset (a failover, a dropped NAT entry) would otherwise wait forever
// while looking healthy.
const listenCheck = 30 * time.Second

// Listen listens on its own connection, outside the pool (a LISTEN holds
// its session; a pooled connection would be handed to other queries), for
// the wake-ups AddEvent sends. It calls fn(SignalAll) once LISTEN is in
// place, then fn(owner) per notification, until ctx ends or the connection
// breaks.
func (s *Store) Listen(ctx context.Context, fn func(owner string)) error {
	cfg, err := s.connConfig(ctx)
	if err != nil {
		return err
	}
	// A cancelled wait only sets a deadline on the socket (the default
	// handler would also open a connection to send a cancel request, every
	// listenCheck, for a wait that runs no query).
	cfg.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
	}
	cfg.RuntimeParams["application_name"] = "countersign-listen" // one per replica in pg_stat_activity
	// The copied configuration still delivers notifications to the pool
	// connection it was read from: this connection must buffer its own.
	cfg.OnNotification = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("postgres: listen: connect: %w", scrub(err, cfg.Password))
	}
	defer func() {
		closing, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(closing)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+eventChannel); err != nil {
		return fmt.Errorf("postgres: listen: %w", scrub(err, cfg.Password))
	}
	fn(countersign.SignalAll) // whatever was sent before this LISTEN is gone
	for {
		wait, cancel := context.WithTimeout(ctx, listenCheck)
		n, err := conn.WaitForNotification(wait)
		cancel()
		switch {
		case err == nil && n != nil:
			fn(n.Payload)
		case err == nil:
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
			ping, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Ping(ping)
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return fmt.Errorf("postgres: listen: the connection does not answer: %w", scrub(err, cfg.Password))
			}
		default:
			return fmt.Errorf("postgres: listen: %w", scrub(err, cfg.Password))
		}
	}
}

// connConfig is the configuration the pool's connections were opened with
// (Open parsed it from the URL and set its runtime parameters), read from
// one of them.
func (s *Store) connConfig(ctx context.Context) (*pgx.ConnConfig, error) {
	c, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: listen: %w", err)
	}
	defer c.Close()
	var cfg *pgx.ConnConfig
	err = c.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("postgres: listen: a %T is not a pgx connection", dc)
		}
		cfg = sc.Conn().Config() // a copy
		return nil
	})
	return cfg, err
}

// signalOwners sends one wake-up per owner of events, inside the caller's
// transaction (AddEvent): PostgreSQL queues it and delivers it at commit,
// drops it on rollback, and folds repeats of one payload into one.
func (s *Store) signalOwners(ctx context.Context, events []*countersign.Event) error {
	seen := map[string]bool{}
	var owners []string
	for _, e := range events {
		if !seen[e.OwnerID] {
			seen[e.OwnerID] = true
			owners = append(owners, e.OwnerID)
		}
	}
	if len(owners) == 0 {
		return nil
	}
	// one round trip under the change lock, however many owners
	_, err := s.writer(ctx).ExecContext(ctx, notifySQL, owners)
	return err
}
