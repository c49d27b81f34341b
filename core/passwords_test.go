package core

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/auth"
	"github.com/countersign/countersign/store/sqlite"
)

func TestHashPoolBoundsConcurrencyAndQueue(t *testing.T) {
	p := newHashPool(2, 3, time.Second)
	var running, peak, ran, busy atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.do(context.Background(), func() {
				n := running.Add(1)
				for {
					old := peak.Load()
					if n <= old || peak.CompareAndSwap(old, n) {
						break
					}
				}
				time.Sleep(50 * time.Millisecond)
				running.Add(-1)
				ran.Add(1)
			})
			if err != nil {
				var ce *countersign.Error
				if countersign.ErrorCode(err) != countersign.Unavailable || !asError(err, &ce) || ce.RetryAfter < 1 {
					t.Errorf("busy answer: %v", err)
				}
				busy.Add(1)
			}
		}()
	}
	wg.Wait()
	if peak.Load() > 2 {
		t.Fatalf("%d hashes ran at once, want at most 2", peak.Load())
	}
	if ran.Load() < 2 || ran.Load() > 5 || busy.Load() != 20-ran.Load() {
		t.Fatalf("ran %d, busy %d: want 2 running + at most 3 queued, the rest refused", ran.Load(), busy.Load())
	}
}

func asError(err error, ce **countersign.Error) bool {
	e, ok := err.(*countersign.Error)
	*ce = e
	return ok
}

func TestHashPoolQueueTimesOut(t *testing.T) {
	p := newHashPool(1, 5, 20*time.Millisecond)
	release := make(chan struct{})
	go func() { _ = p.do(context.Background(), func() { <-release }) }()
	time.Sleep(10 * time.Millisecond)
	err := p.do(context.Background(), func() { t.Error("ran although the slot was taken") })
	close(release)
	if countersign.ErrorCode(err) != countersign.Unavailable {
		t.Fatalf("want UNAVAILABLE after the queue wait, got %v", err)
	}
}

// An unknown user costs one hash in the pool, like a known one.
func TestUnknownUserCostsOneHash(t *testing.T) {
	s := &Service{cfg: Config{Argon2: auth.Argon2Params{Time: 1, Memory: 1024, Threads: 1}}, hashes: newHashPool(1, 0, time.Second)}
	hash, err := auth.HashPassword("correct horse battery", s.cfg.Argon2)
	if err != nil {
		t.Fatal(err)
	}
	known := &countersign.User{PasswordHash: hash}
	for name, u := range map[string]*countersign.User{"known": known, "unknown": nil} {
		// hold the only slot: verification must wait for it, whoever the user is
		release := make(chan struct{})
		started := make(chan struct{})
		go func() { _ = s.hashes.do(context.Background(), func() { close(started); <-release }) }()
		<-started
		if _, err := s.verifyPassword(context.Background(), u, "wrong password!"); countersign.ErrorCode(err) != countersign.Unavailable {
			t.Fatalf("%s user: verification did not go through the pool: %v", name, err)
		}
		close(release)
		time.Sleep(5 * time.Millisecond)
	}
	if ok, _ := s.verifyPassword(context.Background(), nil, "countersign-dummy-password"); ok {
		t.Fatal("the dummy hash's password logs in as nobody")
	}
	if ok, _ := s.verifyPassword(context.Background(), known, "correct horse battery"); !ok {
		t.Fatal("the right password is refused")
	}
}

func TestLoginLimiterCountsAttemptsBeforeVerifying(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_700_000_000, 0)
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	attempt := func(l *loginLimiter, user, addr string, at time.Time) time.Duration {
		t.Helper()
		w, err := l.attempt(ctx, st, user, addr, at)
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	l := newLoginLimiter(5, 20, 50, 15*time.Minute)
	for i := range 5 {
		if w := attempt(l, "Alice", "1.2.3.4", now); w != 0 {
			t.Fatalf("attempt %d refused", i+1)
		}
	}
	if w := attempt(l, "alice", "1.2.3.4", now); w <= 0 {
		t.Fatal("a sixth attempt from the same pair was let through")
	}
	if w := attempt(l, "alice", "5.6.7.8", now); w != 0 {
		t.Fatal("another address is locked out by this pair's failures")
	}
	// a success forgives the pair and gives the attempt back
	if err := l.succeed(ctx, st, "alice", "5.6.7.8"); err != nil {
		t.Fatal(err)
	}
	if w := attempt(l, "alice", "1.2.3.4", now.Add(15*time.Minute)); w != 0 {
		t.Fatal("the window did not end")
	}
	// the per-user ceiling, from many addresses
	l = newLoginLimiter(5, 20, 10, 15*time.Minute)
	for i := range 10 {
		if w := attempt(l, "bob", string(rune('a'+i)), now); w != 0 {
			t.Fatalf("attempt %d refused", i)
		}
	}
	if w := attempt(l, "bob", "z", now); w <= 0 {
		t.Fatal("the per-user ceiling was not applied")
	}
}

func TestLimitAddrGroupsIPv6By64(t *testing.T) {
	for in, want := range map[string]string{
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"192.0.2.7":            "192.0.2.7",
		"::1":                  "::/64",
		"not an address":       "not an address",
	} {
		if got := limitAddr(in); got != want {
			t.Errorf("limitAddr(%q) = %q, want %q", in, got, want)
		}
	}
}
