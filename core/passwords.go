package core

import (
	"bufio"
	"context"
	"net/netip"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
)

// Password checks: every Argon2id run of the server (login, registration,
// the re-checks of sensitive actions) goes through one bounded pool, and
// every password guess through one limiter.
//
// Why a pool: each Argon2id run allocates its memory cost (64 MiB by
// default) and anonymous callers can start them, so without a bound forty
// parallel logins for a user that does not exist take gigabytes. Why count
// before verifying: the check takes a third of a second, and a limiter that
// counts the failure afterwards lets every guess already in flight through.

// hashPool bounds how many Argon2id computations run at once, with a short
// queue in front; beyond it callers are told to come back later.
type hashPool struct {
	slots   chan struct{}
	mu      sync.Mutex
	waiting int
	queue   int
	wait    time.Duration
	idle    *time.Timer // returns the hashing memory to the OS once idle
	running int
}

// DefaultHashConcurrency sizes the pool from the machine: a quarter of its
// memory divided by one hash's memory cost, at most two per core, at least 1.
func DefaultHashConcurrency(memKiB uint32) int {
	n := 2 * runtime.NumCPU()
	if total := systemMemory(); total > 0 && memKiB > 0 {
		if byMem := int(total / 4 / (uint64(memKiB) * 1024)); byMem < n {
			n = byMem
		}
	}
	return max(n, 1)
}

// systemMemory returns the machine's memory in bytes (Linux), or 0.
func systemMemory() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

func newHashPool(concurrency, queue int, wait time.Duration) *hashPool {
	return &hashPool{slots: make(chan struct{}, concurrency), queue: queue, wait: wait}
}

// do runs f in a slot. It answers UNAVAILABLE with Retry-After when the
// queue is full or no slot frees up in time; f then never runs.
func (p *hashPool) do(ctx context.Context, f func()) error {
	busy := &countersign.Error{Code: countersign.Unavailable, RetryAfter: 1,
		Detail: "the server is busy checking passwords; try again in a moment"}
	select {
	case p.slots <- struct{}{}:
	default:
		p.mu.Lock()
		if p.waiting >= p.queue {
			p.mu.Unlock()
			return busy
		}
		p.waiting++
		p.mu.Unlock()
		t := time.NewTimer(p.wait)
		var err error
		select {
		case p.slots <- struct{}{}:
		case <-t.C:
			err = busy
		case <-ctx.Done():
			err = busy
		}
		t.Stop()
		p.mu.Lock()
		p.waiting--
		p.mu.Unlock()
		if err != nil {
			return err
		}
	}
	p.mu.Lock()
	p.running++
	if p.idle != nil {
		p.idle.Stop()
	}
	p.mu.Unlock()
	defer func() {
		<-p.slots
		// The hash's blocks (64 MiB by default) are garbage now. Without a
		// collection before the next hashes allocate, the heap grows to twice
		// what is live, so a burst of logins held several hundred MB more
		// than the pool's bound (slots × the memory cost); a collection of
		// this small heap costs about a millisecond, against ~140 ms of CPU
		// for the hash, and lets the next hashes reuse the same pages. It
		// runs after the slot is given back, so the pool's throughput and
		// its queue are as before.
		runtime.GC()
		p.mu.Lock()
		p.running--
		if p.running == 0 {
			// Argon2's blocks are garbage now, but the runtime keeps the pages
			// for reuse for minutes: give them back once hashing has been idle
			// for a moment, so one burst of logins does not hold its peak.
			p.idle = time.AfterFunc(2*time.Second, func() {
				p.mu.Lock()
				idle := p.running == 0
				p.mu.Unlock()
				if idle {
					debug.FreeOSMemory()
				}
			})
		}
		p.mu.Unlock()
	}()
	f()
	return nil
}

// hashPassword hashes a new password in the pool.
func (s *Service) hashPassword(ctx context.Context, password string) (string, error) {
	var hash string
	var herr error
	if err := s.hashes.do(ctx, func() { hash, herr = auth.HashPassword(password, s.cfg.Argon2) }); err != nil {
		return "", err
	}
	return hash, herr
}

// dummyHash is verified against when the username does not exist, so a
// failed login takes the same time (and the same pool slot) whether or not
// the user exists.
var (
	dummyOnce sync.Once
	dummyHash string
)

// verifyPassword checks password against u's hash in the pool; a nil u
// verifies against a dummy hash of the same cost and never matches.
func (s *Service) verifyPassword(ctx context.Context, u *countersign.User, password string) (bool, error) {
	hash := ""
	if u != nil {
		hash = u.PasswordHash
	} else {
		dummyOnce.Do(func() { dummyHash, _ = auth.HashPassword("countersign-dummy-password", s.cfg.Argon2) })
		hash = dummyHash
	}
	var ok bool
	var verr error
	if err := s.hashes.do(ctx, func() { ok, verr = auth.VerifyPassword(password, hash) }); err != nil {
		return false, err
	}
	return ok && u != nil, verr
}

// guessPassword is the one path for every password guess: the attempt is
// counted before the hash is checked (so parallel guesses cannot outrun
// the limit), a correct password gives the attempt back, and a wrong one
// is audited. what names the check in the audit entry.
func (s *Service) guessPassword(ctx context.Context, username string, u *countersign.User, password, what string) error {
	addr := limitAddr(ClientAddrFrom(ctx))
	now := s.clock.Now()
	wait, err := s.logins.attempt(ctx, s.store, username, addr, now)
	if err != nil {
		return err // fail closed: no count, no check
	}
	if wait > 0 {
		return &countersign.Error{Code: countersign.RateLimit, RetryAfter: int(wait.Seconds()) + 1,
			Detail: "too many wrong passwords; try again later"}
	}
	ok, err := s.verifyPassword(ctx, u, password)
	if err != nil {
		// not a guess: the pool was busy or the hash unreadable
		if rerr := s.logins.refund(context.WithoutCancel(ctx), s.store, username, addr); rerr != nil {
			s.log.WarnContext(ctx, "password limiter: refund failed", "err", rerr)
		}
		return err
	}
	if ok {
		if err := s.logins.succeed(context.WithoutCancel(ctx), s.store, username, addr); err != nil {
			// The password was right; a limiter row left counted only
			// makes the limit stricter, never looser.
			s.log.WarnContext(ctx, "password limiter: forgiving the attempt failed", "err", err)
		}
		return nil
	}
	owner := SystemOwner
	if u != nil {
		owner = u.ID
	}
	if err := s.Record(ctx, countersign.Change{Owner: owner, Actor: "anonymous", Action: what, Subject: username, Details: map[string]string{"client": addr}}, nil); err != nil {
		return err
	}
	return errWrongPassword
}

var errWrongPassword = countersign.Errorf(countersign.Unauthorized, "invalid username or password")

// loginLimiter counts password attempts in fixed windows per (username,
// client address) pair, per client address, and, more loosely, per
// username from anywhere: an attacker at one address locks out only that
// pair, so the owner elsewhere can still log in, while a spray from many
// addresses still meets the per-user ceiling. The counters are rows of the
// store (countersign.LimitStore), not this process's memory: behind
// several replicas on one PostgreSQL every replica counts against the same
// windows, so adding a replica adds no guesses. The limiter itself holds
// only the limits.
type loginLimiter struct {
	perPair, perAddr, perUs int
	window                  time.Duration
}

func newLoginLimiter(perPair, perAddr, perUser int, window time.Duration) *loginLimiter {
	return &loginLimiter{perPair: perPair, perAddr: perAddr, perUs: perUser, window: window}
}

// The store keys of the three counters. The prefixes keep the kinds apart
// (a username that looks like an address is not that address), and name
// the counters as login ones among the store's other limits. Each part is
// quoted: the pair's two parts stay apart whatever they hold, and a NUL
// or invalid UTF-8 from a client cannot make the key unstorable
// (PostgreSQL text holds neither), which would fail every login from it.
func pairKey(user, addr string) string {
	return "login:pair:" + strconv.Quote(addr) + strconv.Quote(strings.ToLower(user))
}
func addrKey(addr string) string { return "login:addr:" + strconv.Quote(addr) }
func userKey(user string) string { return "login:user:" + strconv.Quote(strings.ToLower(user)) }

func (l *loginLimiter) keys(user, addr string) []countersign.LimitKey {
	return []countersign.LimitKey{{Key: pairKey(user, addr), Max: l.perPair}, {Key: addrKey(addr), Max: l.perAddr}, {Key: userKey(user), Max: l.perUs}}
}

// attempt counts one attempt, or, when any limit is reached, counts
// nothing and returns how long to wait.
func (l *loginLimiter) attempt(ctx context.Context, st countersign.LimitStore, user, addr string, now time.Time) (time.Duration, error) {
	return st.CountAttempt(ctx, l.keys(user, addr), l.window, now)
}

// refund gives back one attempt.
func (l *loginLimiter) refund(ctx context.Context, st countersign.LimitStore, user, addr string) error {
	return st.RefundAttempt(ctx, []string{pairKey(user, addr), addrKey(addr), userKey(user)})
}

// succeed records a correct password: the pair's failures are forgiven,
// and this attempt is given back to the address and the user.
func (l *loginLimiter) succeed(ctx context.Context, st countersign.LimitStore, user, addr string) error {
	if err := st.RefundAttempt(ctx, []string{addrKey(addr), userKey(user)}); err != nil {
		return err
	}
	return st.ResetAttempts(ctx, []string{pairKey(user, addr)})
}

// limitAddr is the address the limiter counts against: IPv6 clients by
// their /64 (one host usually holds a whole /64, so counting single
// addresses would give it billions of allowances), IPv4-mapped addresses as
// IPv4.
func limitAddr(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

type clientAddrKey struct{}

// WithClientAddr returns ctx carrying the caller's network address, which
// the password limiter keys on.
func WithClientAddr(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, clientAddrKey{}, addr)
}

// ClientAddrFrom returns the address WithClientAddr stored, or "".
func ClientAddrFrom(ctx context.Context) string {
	a, _ := ctx.Value(clientAddrKey{}).(string)
	return a
}
