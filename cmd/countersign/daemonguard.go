package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/gofrs/flock"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/daemon"
	cshttp "github.com/countersign/countersign/http"
)

// The wallet daemon on several replicas (DAEMON_MODE). Its unlocked
// wallets are keys in one process's memory: they cannot be shared, and a
// client that unlocks on replica A and signs on replica B gets "locked".
// So on PostgreSQL (the only store several replicas share) the daemon
// routes run on one replica unless the operator says otherwise:
//
//   - single (default): the replica holding the store's lease "daemon"
//     serves them; the others answer UNAVAILABLE naming the holder. The
//     lease is renewed every TTL/3; a holder that stops renewing (crash,
//     lost database) loses it after the TTL and another replica takes
//     over. On SQLite the process holding a lock on the file beside the
//     database serves them (guardDaemonFile).
//   - sticky: every replica serves them; the operator routes each daemon
//     client to one replica (a sticky load balancer). The signing rate is
//     shared through the store either way (daemon.SharedRateLimited).
//   - off: they answer NOT_FOUND everywhere.

// DAEMON_MODE values.
const (
	daemonSingle = "single"
	daemonSticky = "sticky"
	daemonOff    = "off"
)

// daemonLeaseName is the store lease the single-mode replicas compete for.
const daemonLeaseName = "daemon"

// defaultDaemonLeaseTTL is how long a replica holds the daemon without
// renewing: how long the daemon is unavailable after its holder dies.
const defaultDaemonLeaseTTL = 30 * time.Second

// checkDaemonMode refuses an unknown DAEMON_MODE.
func checkDaemonMode(mode string) error {
	switch mode {
	case "", daemonSingle, daemonSticky, daemonOff:
		return nil
	}
	return fmt.Errorf("DAEMON_MODE must be single, sticky or off, not %q", mode)
}

// daemonKeyring puts the daemon's signatures behind the signing rate
// limit every replica shares on PostgreSQL. On SQLite (one process) the
// in-memory limit of daemon.New is the whole limit, and no signature pays
// for a database write.
func daemonKeyring(cfg *Config, st countersign.Store, k countersign.HDKeyring) countersign.HDKeyring {
	if !isPostgres(cfg.DB) {
		return k
	}
	return daemon.SharedRateLimited(k, st, cfg.Clock, cfg.SignRate, cfg.SignBurst)
}

// guardDaemon applies DAEMON_MODE to srv's daemon routes. In single mode
// on PostgreSQL it takes the lease (or learns who holds it) before the
// first request, and keeps renewing it until the app closes, when it gives
// it up for the next replica.
func (a *App) guardDaemon(ctx context.Context, cfg *Config, st countersign.Store, srv *cshttp.Server, log *slog.Logger) error {
	mode := or(cfg.DaemonMode, daemonSingle)
	switch {
	case mode == daemonOff:
		srv.SetDaemonGate(func() error {
			return countersign.Errorf(countersign.NotFound, "the wallet daemon is off on this server (DAEMON_MODE=off)")
		})
		a.closers = append(a.closers, func() error { srv.SetDaemonGate(nil); return nil })
		return nil
	case !isPostgres(cfg.DB) && mode == daemonSticky:
		return nil // one database file: sticky is every process's own daemon
	case !isPostgres(cfg.DB):
		a.guardDaemonFile(cfg, srv, log)
		return nil
	case mode == daemonSticky:
		log.Warn("DAEMON_MODE=sticky: the wallet daemon answers on every replica, and unlocked wallets live in each replica's memory: route each daemon client to one replica (sticky sessions)")
		return nil
	}
	g := &daemonGuard{st: st, holder: replicaID(a.URL), ttl: cfg.DaemonLeaseTTL, log: log,
		onLost: func() { _, _ = srv.Daemon.Lock(context.WithoutCancel(ctx), "") }}
	if g.ttl <= 0 {
		g.ttl = defaultDaemonLeaseTTL
	}
	g.renew(ctx)
	if ok, by := g.holds(); !ok {
		log.Warn("wallet daemon: another replica serves it; this one answers its routes with 503 (DAEMON_MODE=single; sticky serves it on every replica)",
			"holder", by, "replica", g.holder)
	}
	srv.SetDaemonGate(g.gate)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); g.run(runCtx) }()
	a.closers = append(a.closers, func() error {
		cancel()
		<-done
		srv.SetDaemonGate(nil)
		return nil
	})
	return nil
}

// replicaID names this replica in the lease and in the standby's answers:
// the host, the address it serves and a random suffix (two processes with
// one host name and port, in two containers, are still two holders).
func replicaID(url string) string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s %s pid %d #%s", host, url, os.Getpid(), hex.EncodeToString(b))
}

// daemonGuard holds, renews and reports the daemon lease of one replica.
type daemonGuard struct {
	st     countersign.LimitStore
	holder string
	ttl    time.Duration
	log    *slog.Logger
	onLost func() // zeroes the unlocked wallets when the lease goes

	mu      sync.Mutex
	until   time.Time // the lease is ours until then (zero: not ours)
	otherBy string    // the holder last seen, when not us
	serving bool      // as of the last renewal (to lock wallets on losing it)
}

// holds reports whether this replica holds the lease now, and otherwise
// who did when last asked.
func (g *daemonGuard) holds() (bool, string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return time.Now().Before(g.until), g.otherBy
}

// gate answers the daemon routes of a replica without the lease. It looks
// at the lease's end, not at a flag: a replica whose renewals stall stops
// serving when its lease ends, before another replica can take it over.
func (g *daemonGuard) gate() error {
	ok, by := g.holds()
	if ok {
		return nil
	}
	if by == "" {
		by = "no replica at the moment (the lease is being handed over; try again shortly)"
	}
	return &countersign.Error{Code: countersign.Unavailable, RetryAfter: max(int(g.ttl/time.Second)/3, 1),
		Detail: fmt.Sprintf("the wallet daemon runs on one replica (DAEMON_MODE=single) and this is not it: it is held by %s. Send daemon clients there, or run DAEMON_MODE=sticky behind a sticky load balancer", by)}
}

// renew takes or renews the lease once and records the outcome. A failed
// renewal changes nothing: the lease runs out on its own, and the wallets
// are locked when it has.
func (g *daemonGuard) renew(ctx context.Context) {
	by, until, err := g.st.AcquireLease(ctx, daemonLeaseName, g.holder, g.ttl, time.Now())
	g.mu.Lock()
	if err == nil && by == g.holder {
		// A margin below the stored end: replicas' clocks differ a little,
		// and this one must stop before another may start.
		g.until, g.otherBy = until.Add(-g.ttl/6), ""
	} else if err == nil {
		g.until, g.otherBy = time.Time{}, by
	}
	has := time.Now().Before(g.until)
	had := g.serving
	g.serving = has
	g.mu.Unlock()
	if err != nil {
		g.log.Warn("wallet daemon lease: renewal failed", "err", err)
	}
	switch {
	case has && !had:
		g.log.Info("wallet daemon lease: this replica serves the daemon now", "replica", g.holder)
	case had && !has:
		g.log.Warn("wallet daemon lease: lost; locking this replica's unlocked wallets", "holder", by)
		g.onLost()
	}
}

// run renews the lease every ttl/3 until ctx ends, then gives it up, so
// the next replica need not wait for the TTL (the workers lock the
// wallets at shutdown).
func (g *daemonGuard) run(ctx context.Context) {
	t := time.NewTicker(max(g.ttl/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			g.mu.Lock()
			g.until = time.Time{}
			g.mu.Unlock()
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := g.st.ReleaseLease(rctx, daemonLeaseName, g.holder); err != nil {
				g.log.Warn("wallet daemon lease: release failed (it runs out by itself)", "err", err)
			}
			cancel()
			return
		case <-t.C:
			g.renew(ctx)
		}
	}
}

// guardDaemonFile is single mode on SQLite: of the processes serving one
// database file (a rolling deploy on a shared volume, a second serve
// started by mistake), the one holding an exclusive lock on the file
// beside it serves the daemon routes; the others answer 503 and take the
// lock over when it is free. The kernel releases it when its process
// ends, however it ends: no lease to wait out after a crash.
func (a *App) guardDaemonFile(cfg *Config, srv *cshttp.Server, log *slog.Logger) {
	db := sqlitePath(cfg.DB)
	if db == "" {
		return
	}
	// TryLock answers at once, true while this process holds the lock.
	fl := flock.New(db+".daemon.lock", flock.SetPermissions(0o600))
	// A file system without locks (some network mounts) keeps the daemon
	// off, not the server: the rest serves, and the answer says why.
	if ok, err := fl.TryLock(); err != nil {
		log.Warn("wallet daemon: cannot lock the file beside the database; its routes answer 503 (DAEMON_MODE=sticky serves them without the lock)", "lock", fl.Path(), "err", err)
	} else if !ok {
		log.Warn("wallet daemon: another process on this database serves it; this one answers its routes with 503 until that process ends (DAEMON_MODE=single)", "lock", fl.Path())
	}
	srv.SetDaemonGate(func() error {
		ok, err := fl.TryLock()
		switch {
		case ok:
			return nil
		case err != nil:
			return &countersign.Error{Code: countersign.Unavailable, RetryAfter: 5,
				Detail: "the wallet daemon runs in the one process holding the lock beside the database (DAEMON_MODE=single), and this file system refuses the lock: set DAEMON_MODE=sticky to serve it without one"}
		}
		return &countersign.Error{Code: countersign.Unavailable, RetryAfter: 5,
			Detail: "the wallet daemon runs in one process per database (DAEMON_MODE=single), and another countersign process on this SQLite database serves it: send daemon clients there"}
	})
	a.closers = append(a.closers, func() error {
		srv.SetDaemonGate(nil)
		return fl.Close()
	})
}
