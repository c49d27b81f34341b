package evm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/ethereum/go-ethereum/rpc"
)

// DefaultTimeout bounds one call to the node (CHAIN_TIMEOUT): long enough
// for a loaded provider, short enough that a request to countersign does
// not hang on a node that stopped answering.
const DefaultTimeout = 10 * time.Second

// RetryPolicy says how idempotent reads are retried. Only failures that
// say nothing about the answer are retried: transport errors, HTTP 5xx and
// 429, and an attempt that ran out of time. A JSON-RPC error, a revert or
// "not found" is the node's answer and is returned at once. A broadcast is
// never retried here: core stores the signed bytes first and its tracker
// rebroadcasts them, so a retry in the client would only hide the outcome.
type RetryPolicy struct {
	Attempts int           // attempts in all (1: no retry)
	Base     time.Duration // backoff before the second attempt; it doubles with each one after
	Max      time.Duration // cap on one backoff
	Total    time.Duration // no read takes longer, retries included (and never past the caller's context)
}

// DefaultRetry is the policy of a client with the given per-call timeout:
// four attempts, backoff 200 ms doubling up to 2 s with jitter, at most two
// timeouts in all.
func DefaultRetry(timeout time.Duration) RetryPolicy {
	return RetryPolicy{Attempts: 4, Base: 200 * time.Millisecond, Max: 2 * time.Second, Total: 2 * timeout}
}

// Option configures a Chain (Dial, New).
type Option func(*Chain)

// WithTimeout sets the timeout of one call to the node (one attempt of a
// read, or one broadcast). The read retry policy is rescaled to it unless
// WithRetry is also given.
func WithTimeout(d time.Duration) Option {
	return func(c *Chain) {
		if d > 0 {
			c.timeout = d
			if !c.customRetry {
				c.retry = DefaultRetry(d)
			}
		}
	}
}

// WithRetry sets how idempotent reads are retried.
func WithRetry(p RetryPolicy) Option {
	return func(c *Chain) {
		if p.Attempts < 1 {
			p.Attempts = 1
		}
		if p.Total <= 0 {
			p.Total = 2 * c.timeout
		}
		c.retry, c.customRetry = p, true
	}
}

// withNode names the node in error details, as nodeName shows it.
func withNode(rawURL string) Option {
	return func(c *Chain) { c.node = nodeName(rawURL) }
}

// nodeName is the node as error details and logs may show it: scheme and
// host only. Providers put API keys in the path (Infura's /v3/KEY), the
// query or the user info, so none of those is shown.
func nodeName(rawURL string) string {
	if !strings.Contains(rawURL, "://") {
		return "ipc:" + rawURL // a local socket path holds no credential
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host
}

// read runs an idempotent call to the node under the retry policy: each
// attempt gets the per-call timeout, the whole at most RetryPolicy.Total
// and never more than ctx allows.
func read[T any](c *Chain, ctx context.Context, call func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, c.retry.Total)
	defer cancel()
	for attempt := 1; ; attempt++ {
		actx, acancel := context.WithTimeout(ctx, c.timeout)
		v, err := call(actx)
		acancel()
		if err == nil || attempt >= c.retry.Attempts || !retryable(err) || ctx.Err() != nil {
			return v, err
		}
		wait := c.backoff(attempt)
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return v, err // the last attempt's error says more than "deadline"
		case <-timer.C:
		}
	}
}

// once runs a call that must not be repeated (a broadcast) with the
// per-call timeout.
func (c *Chain) once(ctx context.Context, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	return call(ctx)
}

// backoff is the wait after attempt n (1-based): Base·2^(n-1) capped at
// Max, with jitter in [d/2, d] so replicas that lost the node together do
// not come back in step.
func (c *Chain) backoff(n int) time.Duration {
	d := c.retry.Max
	if n < 30 && c.retry.Base<<(n-1) < d {
		d = c.retry.Base << (n - 1)
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// retryable reports whether err says nothing about the node's answer, so
// asking again may get one.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true // this attempt's timeout (read checks the caller's own)
	}
	var he rpc.HTTPError
	if errors.As(err, &he) {
		return he.StatusCode >= 500 || he.StatusCode == 429
	}
	var re rpc.Error
	if errors.As(err, &re) {
		return false // the node answered
	}
	return transport(err)
}

// transport reports whether err is a failure to reach the node.
func transport(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, rpc.ErrClientQuit)
}

// why says, safely for a client, what went wrong between countersign and
// the node: never the node's own message (it may echo the request) nor
// the node's full URL (it may hold an API key).
func (c *Chain) why(err error) string {
	node := "the chain node"
	if c.node != "" {
		node += " " + c.node
	}
	var he rpc.HTTPError
	var re rpc.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("%s did not answer in time (CHAIN_TIMEOUT %s)", node, c.timeout)
	case errors.Is(err, context.Canceled):
		return "the request was cancelled before " + node + " answered"
	case errors.As(err, &he):
		return fmt.Sprintf("%s answered HTTP %d", node, he.StatusCode)
	case errors.As(err, &re):
		return fmt.Sprintf("%s answered JSON-RPC error %d", node, re.ErrorCode())
	case transport(err):
		return node + " is unreachable"
	default:
		return node + " gave an answer countersign cannot read"
	}
}

// scrubbed is a cause whose text names the node as nodeName does: the
// http client puts the request URL in its errors (with the password
// masked, but not a key in the path), and causes are logged.
type scrubbed struct {
	err error
	msg string
}

func (s scrubbed) Error() string { return s.msg }
func (s scrubbed) Unwrap() error { return s.err }

func (c *Chain) scrub(err error) error {
	var ue *url.Error
	if c.node == "" || !errors.As(err, &ue) || ue.URL == "" {
		return err
	}
	return scrubbed{err: err, msg: strings.ReplaceAll(err.Error(), ue.URL, c.node)}
}
