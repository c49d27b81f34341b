package daemon

import (
	"context"
	"math/big"
	"time"

	"golang.org/x/time/rate"

	"github.com/countersign/countersign"
)

// SignBucket is the store's token bucket that SharedRateLimited takes
// from: one per server (every replica's daemon signs against it).
const SignBucket = "daemon.sign"

// RateLimited wraps a keyring so that its signatures (SignMessage, SignTx)
// are limited to perSecond with bursts of burst, process-wide (SIGN_RATE,
// SIGN_BURST): a signature past the limit is refused with RateLimit and
// Retry-After 1 before the keyring is called. Everything else passes
// through. The bucket is this process's memory: right for SQLite, which is
// one process by construction, and free of a database write per signature
// (which would cost most of the daemon's speed).
func RateLimited(k countersign.HDKeyring, perSecond float64, burst int) countersign.HDKeyring {
	l := rate.NewLimiter(rate.Limit(perSecond), burst)
	return &rateLimited{HDKeyring: k, allow: func(context.Context) error {
		if !l.Allow() {
			return tooFast(time.Second)
		}
		return nil
	}}
}

// SharedRateLimited is RateLimited over the store's token bucket
// SignBucket: replicas on one PostgreSQL share one SIGN_RATE/SIGN_BURST
// instead of each granting its own (DAEMON_MODE=sticky serves the daemon
// on every replica). Zero perSecond or burst take daemon.New's defaults. A
// bucket that cannot be read refuses the signature (fail closed). clock
// nil is the wall clock.
func SharedRateLimited(k countersign.HDKeyring, st countersign.LimitStore, clock countersign.Clock, perSecond float64, burst int) countersign.HDKeyring {
	if perSecond == 0 {
		perSecond = defaultSignRate
	}
	if burst == 0 {
		burst = defaultSignBurst
	}
	if clock == nil {
		clock = countersign.SystemClock{}
	}
	return &rateLimited{HDKeyring: k, allow: func(ctx context.Context) error {
		wait, err := st.TakeToken(context.WithoutCancel(ctx), SignBucket, perSecond, burst, clock.Now())
		if err != nil {
			return &countersign.Error{Code: countersign.Unavailable, RetryAfter: 1,
				Detail: "the signing rate limit could not be checked; try again in a moment", Err: err}
		}
		if wait > 0 {
			return tooFast(wait)
		}
		return nil
	}}
}

// The defaults of daemon.New (Config.SignRate, SignBurst).
const (
	defaultSignRate  = 100
	defaultSignBurst = 200
)

func tooFast(wait time.Duration) error {
	secs := max(int((wait+time.Second-1)/time.Second), 1)
	return &countersign.Error{Code: countersign.RateLimit, RetryAfter: secs, Detail: "too many signing requests; slow down"}
}

type rateLimited struct {
	countersign.HDKeyring
	allow func(ctx context.Context) error
}

func (r *rateLimited) SignMessage(ctx context.Context, a *countersign.DaemonAccount, msg []byte) ([]byte, string, error) {
	if err := r.allow(ctx); err != nil {
		return nil, "", err
	}
	return r.HDKeyring.SignMessage(ctx, a, msg)
}

func (r *rateLimited) SignTx(ctx context.Context, a *countersign.DaemonAccount, typ string, tx []byte, chainID *big.Int) (*countersign.HDSignedTx, error) {
	if err := r.allow(ctx); err != nil {
		return nil, err
	}
	return r.HDKeyring.SignTx(ctx, a, typ, tx, chainID)
}
