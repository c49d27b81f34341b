package postgres

// Limits, leases and webhook delivery claims (countersign.CoordinationStore):
// see limits.go in the root and migrations/00014_limits.sql.

import (
	"context"
	"database/sql"
	"errors"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/countersign/countersign"
)

var _ countersign.CoordinationStore = (*Store)(nil)

// errLimited rolls back a CountAttempt that found a key at its max, so a
// refused attempt changes nothing.
var errLimited = errors.New("limited")

// pruneBatch bounds the ended windows one call deletes: pruning is spread
// over the calls that follow a spray, never one long statement.
const pruneBatch = 500

func (s *Store) CountAttempt(ctx context.Context, keys []countersign.LimitKey, window time.Duration, now time.Time) (time.Duration, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	// One lock order for every caller: two attempts on overlapping keys
	// never wait on each other in a cycle.
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b countersign.LimitKey) int { return strings.Compare(a.Key, b.Key) })
	keys = slices.CompactFunc(keys, func(a, b countersign.LimitKey) bool { return a.Key == b.Key })
	nowN, endN := now.UnixNano(), now.Add(window).UnixNano()
	var wait time.Duration
	err := s.InTx(ctx, func(ctx context.Context) error {
		w := s.writer(ctx)
		for _, k := range keys {
			// Locks the key's row (creating it empty) and restarts an
			// ended window, in one statement.
			var n, exp int64
			if err := w.QueryRowContext(ctx, `INSERT INTO limit_windows (key, n, expires_at) VALUES (?, 0, ?)
 ON CONFLICT (key) DO UPDATE SET n = CASE WHEN limit_windows.expires_at <= ? THEN 0 ELSE limit_windows.n END,
 expires_at = CASE WHEN limit_windows.expires_at <= ? THEN excluded.expires_at ELSE limit_windows.expires_at END
 RETURNING n, expires_at`, k.Key, endN, nowN, nowN).Scan(&n, &exp); err != nil {
				return err
			}
			if n >= int64(max(k.Max, 1)) {
				wait = max(wait, time.Duration(exp-nowN))
			}
		}
		if wait > 0 {
			return errLimited
		}
		for _, k := range keys {
			if _, err := w.ExecContext(ctx, `UPDATE limit_windows SET n = n + 1 WHERE key = ?`, k.Key); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errLimited) {
		return max(wait, time.Nanosecond), nil
	}
	if err != nil {
		return 0, err
	}
	s.pruneWindows(ctx, nowN)
	return 0, nil
}

func (s *Store) RefundAttempt(ctx context.Context, keys []string) error {
	for _, k := range sortedUnique(keys) {
		if _, err := s.writer(ctx).ExecContext(ctx, `UPDATE limit_windows SET n = n - 1 WHERE key = ? AND n > 0`, k); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) ResetAttempts(ctx context.Context, keys []string) error {
	for _, k := range sortedUnique(keys) {
		if _, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM limit_windows WHERE key = ?`, k); err != nil {
			return err
		}
	}
	return nil
}

func sortedUnique(keys []string) []string {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	return slices.Compact(keys)
}

func (s *Store) TakeToken(ctx context.Context, key string, rate float64, burst int, now time.Time) (time.Duration, error) {
	if rate <= 0 || burst < 1 || math.IsNaN(rate) || math.IsInf(rate, 0) {
		return 0, countersign.Errorf(countersign.BadRequest, "a token bucket needs a positive rate and burst")
	}
	perNS := rate / 1e9
	nowN := now.UnixNano()
	var left float64
	err := s.writer(ctx).QueryRowContext(ctx, takeTokenSQL, key, float64(burst-1), nowN,
		float64(burst), nowN, perNS, nowN, float64(burst), nowN, perNS).Scan(&left)
	if err == nil {
		return 0, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, err
	}
	// Refused (nothing taken): how long until the bucket holds one token.
	var tokens float64
	var upd int64
	if err := s.reader(ctx).QueryRowContext(ctx, `SELECT tokens, updated_at FROM limit_buckets WHERE key = ?`, key).Scan(&tokens, &upd); err != nil {
		return 0, err
	}
	level := min(float64(burst), tokens+float64(max(nowN-upd, 0))*perNS)
	return max(time.Duration((1-level)/perNS), time.Nanosecond), nil
}

func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration, now time.Time) (string, time.Time, error) {
	if name == "" || holder == "" || ttl <= 0 {
		return "", time.Time{}, countersign.Errorf(countersign.BadRequest, "a lease needs a name, a holder and a positive ttl")
	}
	var by string
	var until int64
	err := s.writer(ctx).QueryRowContext(ctx, `INSERT INTO leases (name, holder, until_at) VALUES (?, ?, ?)
 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until_at = excluded.until_at
 WHERE leases.holder = excluded.holder OR leases.until_at <= ?
 RETURNING holder, until_at`, name, holder, now.Add(ttl).UnixNano(), now.UnixNano()).Scan(&by, &until)
	if errors.Is(err, sql.ErrNoRows) { // someone else's, and current
		err = s.reader(ctx).QueryRowContext(ctx, `SELECT holder, until_at FROM leases WHERE name = ?`, name).Scan(&by, &until)
	}
	if err != nil {
		return "", time.Time{}, err
	}
	return by, time.Unix(0, until).UTC(), nil
}

func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder)
	return err
}

func (s *Store) ClaimDeliveries(ctx context.Context, holder string, now, until time.Time, limit int) ([]*countersign.Delivery, error) {
	if holder == "" || !until.After(now) || limit < 1 {
		return nil, countersign.Errorf(countersign.BadRequest, "a claim needs a holder, a future end and a positive limit")
	}
	rows, err := s.writer(ctx).QueryContext(ctx, claimDeliveriesSQL, holder, ts(until), ts(now), ts(now), limit)
	if err != nil {
		return nil, err
	}
	list, err := collect(rows, scanDelivery)
	if err != nil {
		return nil, err
	}
	// RETURNING has no order of its own: oldest due first, as DueDeliveries.
	slices.SortFunc(list, func(a, b *countersign.Delivery) int {
		if c := a.NextAttemptAt.Compare(b.NextAttemptAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return list, nil
}

func (s *Store) FinishDelivery(ctx context.Context, d *countersign.Delivery, holder string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE webhook_deliveries SET status=?, attempts=?, next_attempt_at=?, last_status=?, last_error=?, delivered_at=?, claimed_by='', claimed_until=0
 WHERE id=? AND claimed_by=?`, d.Status, d.Attempts, ts(d.NextAttemptAt), d.LastStatus, d.LastError, ts(d.DeliveredAt), d.ID, holder)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		if err != nil {
			return err
		}
		return countersign.Errorf(countersign.Conflict, "delivery %s is no longer claimed by this worker", d.ID)
	}
	return nil
}

// takeTokenSQL refills the bucket for the time since its last take and
// takes one token, in one statement under the row's lock, so replicas
// taking at once never take more than the bucket holds; no row comes back
// when it holds less than one (nothing changes then).
const takeTokenSQL = `INSERT INTO limit_buckets (key, tokens, updated_at) VALUES (?, CAST(? AS DOUBLE PRECISION), CAST(? AS BIGINT))
 ON CONFLICT (key) DO UPDATE SET tokens = LEAST(CAST(? AS DOUBLE PRECISION), limit_buckets.tokens + GREATEST(0, CAST(? AS BIGINT) - limit_buckets.updated_at) * CAST(? AS DOUBLE PRECISION)) - 1,
 updated_at = GREATEST(limit_buckets.updated_at, CAST(? AS BIGINT))
 WHERE LEAST(CAST(? AS DOUBLE PRECISION), limit_buckets.tokens + GREATEST(0, CAST(? AS BIGINT) - limit_buckets.updated_at) * CAST(? AS DOUBLE PRECISION)) >= 1
 RETURNING tokens`

// claimDeliveriesSQL marks due, unclaimed deliveries as holder's in one
// statement: FOR UPDATE SKIP LOCKED passes over rows another replica is
// claiming this instant, and a row it claimed a moment ago fails the
// claimed_until test when it is re-checked after that claim commits.
const claimDeliveriesSQL = `UPDATE webhook_deliveries SET claimed_by = ?, claimed_until = ?
 WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? AND claimed_until <= ?
 ORDER BY next_attempt_at LIMIT ? FOR UPDATE SKIP LOCKED)
 RETURNING ` + deliveryCols

// pruneWindows deletes some ended windows. SKIP LOCKED: a window an
// attempt holds right now is not waited for (waiting here, holding other
// rows, could deadlock with it). Best effort: a failure leaves rows that
// the next call deletes, and no limit depends on it (an ended window
// counts as empty).
func (s *Store) pruneWindows(ctx context.Context, nowN int64) {
	_, _ = s.writer(ctx).ExecContext(ctx, `DELETE FROM limit_windows WHERE key IN (SELECT key FROM limit_windows WHERE expires_at <= ? LIMIT ? FOR UPDATE SKIP LOCKED)`, nowN, pruneBatch)
}
