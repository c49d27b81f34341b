package daemon

import (
	"context"
	"math/big"

	"golang.org/x/time/rate"

	"github.com/countersign/countersign"
)

// RateLimited wraps a keyring so that its signatures (SignMessage, SignTx)
// are limited to perSecond with bursts of burst, process-wide (SIGN_RATE,
// SIGN_BURST): a signature past the limit is refused with RateLimit and
// Retry-After 1 before the keyring is called. Everything else passes
// through.
func RateLimited(k countersign.HDKeyring, perSecond float64, burst int) countersign.HDKeyring {
	return &rateLimited{HDKeyring: k, limiter: rate.NewLimiter(rate.Limit(perSecond), burst)}
}

type rateLimited struct {
	countersign.HDKeyring
	limiter *rate.Limiter
}

func (r *rateLimited) allow() error {
	if !r.limiter.Allow() {
		return &countersign.Error{Code: countersign.RateLimit, RetryAfter: 1, Detail: "too many signing requests; slow down"}
	}
	return nil
}

func (r *rateLimited) SignMessage(ctx context.Context, a *countersign.DaemonAccount, msg []byte) ([]byte, string, error) {
	if err := r.allow(); err != nil {
		return nil, "", err
	}
	return r.HDKeyring.SignMessage(ctx, a, msg)
}

func (r *rateLimited) SignTx(ctx context.Context, a *countersign.DaemonAccount, typ string, tx []byte, chainID *big.Int) (*countersign.HDSignedTx, error) {
	if err := r.allow(); err != nil {
		return nil, err
	}
	return r.HDKeyring.SignTx(ctx, a, typ, tx, chainID)
}
