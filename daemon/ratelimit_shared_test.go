package daemon

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/store/sqlite"
)

// TestSecurity_SharedRateLimitedOneBucketForAllReplicas: two daemons (two
// replicas) over one store share SIGN_BURST: together they sign burst
// times, not burst each, and the refusal comes before the keyring.
func TestSecurity_SharedRateLimitedOneBucketForAllReplicas(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "r.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	clock := &stepClock{t: time.Unix(1700000000, 0)}
	inner := &fakeKeyring{}
	a := SharedRateLimited(inner, st, clock, 1, 3)
	b := SharedRateLimited(inner, st, clock, 1, 3)
	replicas := []countersign.HDKeyring{a, b}
	refused := 0
	for i := range 6 {
		_, _, err := replicas[i%2].SignMessage(ctx, testAccount, []byte("m"))
		var e *countersign.Error
		switch {
		case err == nil:
		case countersign.ErrorCode(err) == countersign.RateLimit && asError(err, &e) && e.RetryAfter >= 1:
			refused++
		default:
			t.Fatalf("signature %d: %v", i, err)
		}
	}
	if refused != 3 || inner.calls != 3 {
		t.Fatalf("two replicas with a shared burst of 3: %d refused, %d signed", refused, inner.calls)
	}
	clock.Advance(time.Second) // 1/s: one more
	if _, err := b.SignTx(ctx, testAccount, "aitbc_v0", []byte{1}, nil); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
}

type brokenLimits struct{ countersign.LimitStore }

func (brokenLimits) TakeToken(context.Context, string, float64, int, time.Time) (time.Duration, error) {
	return 0, errors.New("connection refused")
}

// TestSecurity_SharedRateLimitedFailsClosed: a bucket that cannot be read
// refuses the signature.
func TestSecurity_SharedRateLimitedFailsClosed(t *testing.T) {
	inner := &fakeKeyring{}
	k := SharedRateLimited(inner, brokenLimits{}, nil, 1, 3)
	if _, _, err := k.SignMessage(context.Background(), testAccount, []byte("m")); countersign.ErrorCode(err) != countersign.Unavailable || inner.calls != 0 {
		t.Fatalf("with the store down: %v (keyring called %d times)", err, inner.calls)
	}
}

// stepClock is a clock the test moves by hand.
type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time          { return c.t }
func (c *stepClock) Advance(d time.Duration) { c.t = c.t.Add(d) }
