package postgres_test

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/store/postgres"
	"github.com/countersign/countersign/store/postgres/pgtest"
	"github.com/countersign/countersign/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

func open(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// migrated is a fresh database with the migrations applied (copied from a
// template migrated once).
func migrated(t *testing.T) string {
	return pgtest.StartFrom(t, "migrated", func(dsn string) error {
		s, err := postgres.Open(context.Background(), dsn)
		if err != nil {
			return err
		}
		return s.Close()
	})
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) countersign.Store { return open(t, migrated(t)) })
}

// Replicas starting together migrate once: the advisory lock makes the
// others wait, then find nothing to apply; reopening applies nothing.
func TestMigrationsConcurrentOpen(t *testing.T) {
	dsn := pgtest.Start(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := postgres.Open(context.Background(), dsn)
			if err == nil {
				err = s.Ping(context.Background())
				s.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	s := open(t, dsn)
	if err := s.CreateUser(context.Background(), &countersign.User{ID: "u", Username: "u"}); err != nil {
		t.Fatal(err)
	}
}

// A DSN's password never reaches the error text.
func TestOpenErrorHidesPassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:s3cret-pw@127.0.0.1:1/db?sslmode=disable&connect_timeout=2")
	if err == nil {
		t.Fatal("connected to a closed port")
	}
	if contains(err.Error(), "s3cret-pw") {
		t.Fatalf("password in error: %v", err)
	}
	_, err = postgres.Open(context.Background(), "postgres://u:s3cret-pw@[::1/db")
	if err == nil || contains(err.Error(), "s3cret-pw") {
		t.Fatalf("bad DSN: %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

// Text PostgreSQL cannot store (a NUL: SQLite stores it) is bad input, not
// an internal error, and nothing is written.
func TestNULIsBadRequest(t *testing.T) {
	s := open(t, pgtest.Start(t))
	err := s.CreateUser(context.Background(), &countersign.User{ID: "u", Username: "a\x00b"})
	if countersign.ErrorCode(err) != countersign.BadRequest {
		t.Fatalf("NUL in a username: %v", err)
	}
	if _, err := s.UserByID(context.Background(), "u"); countersign.ErrorCode(err) != countersign.NotFound {
		t.Fatalf("the refused user was stored: %v", err)
	}
}

// pool_max_conns sizes the pool and is not sent to the server; a bad value
// is refused without quoting the URL.
func TestPoolMaxConns(t *testing.T) {
	dsn := pgtest.Start(t)
	s := open(t, dsn+"&pool_max_conns=3")
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := postgres.Open(context.Background(), dsn+"&pool_max_conns=zero"); err == nil || !contains(err.Error(), "pool_max_conns") {
		t.Fatalf("bad pool_max_conns: %v", err)
	}
}

// Transactions whose functions also read outside their transaction (a
// context without it) cannot take the whole pool and wait on each other:
// a quarter of it stays free for such reads. On a pool of 4 without that,
// 4 transactions hold every connection and each waits for a fifth.
func TestPoolReadsOutsideTransactionsDoNotDeadlock(t *testing.T) {
	s := open(t, migrated(t)+"&pool_max_conns=4")
	bg := context.Background()
	if err := s.CreateUser(bg, &countersign.User{ID: "u", Username: "u"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make([]error, 12)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.InTx(ctx, func(txctx context.Context) error {
				if _, err := s.UserByID(txctx, "u"); err != nil && countersign.ErrorCode(err) != countersign.NotFound {
					return err
				}
				time.Sleep(20 * time.Millisecond)
				_, err := s.UserByID(ctx, "u") // outside the transaction
				return err
			})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("deadlocked or failed: %v", err)
		}
	}
}

// A lock held too long fails the waiter (lock_timeout, 10 s unless the URL
// sets it) instead of hanging it.
func TestLockTimeout(t *testing.T) {
	s := open(t, migrated(t)+"&lock_timeout=300ms")
	bg := context.Background()
	if err := s.CreateUser(bg, &countersign.User{ID: "u", Username: "u"}); err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	go s.InTx(bg, func(ctx context.Context) error {
		s.UserByID(ctx, "u") // FOR UPDATE
		close(held)
		<-release
		return nil
	})
	<-held
	defer close(release)
	start := time.Now()
	err := s.InTx(bg, func(ctx context.Context) error { _, err := s.UserByID(ctx, "u"); return err })
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("waited %v for a held row lock: %v", time.Since(start), err)
	}
}

// The AUTHORIZED_TTL sweeper's query can search the partial index of
// migration 00023: the planner matches the expression as the query writes
// it (written any other way, it would read every authorized row each poll).
func TestAuthorizedExpiredUsesItsIndex(t *testing.T) {
	s := open(t, migrated(t))
	plan, err := s.AuthorizedExpiredPlanForTest(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// searched by the expression, not read whole for its status alone
	if !strings.Contains(plan, `"Index Name": "transactions_authorized_at"`) || !strings.Contains(plan, `"Index Cond": "(CASE WHEN`) {
		t.Fatalf("plan does not search transactions_authorized_at by when a request was authorized: %s", plan)
	}
}
