package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"math/big"
	"time"

	"github.com/countersign/countersign"
)

// Policies, budget counters and reservations (countersign.PolicyStore).
// Amounts are decimal text: budgets go up to 2^256 − 1, which no SQL
// integer holds, so sums are made in Go, exactly.

var _ countersign.PolicyStore = (*Store)(nil)

func policyWarnings(s string) []string {
	if s == "" {
		return nil
	}
	var w []string
	if json.Unmarshal([]byte(s), &w) != nil {
		return []string{s}
	}
	return w
}

func policyWarningsJSON(w []string) string {
	if len(w) == 0 {
		return ""
	}
	b, _ := json.Marshal(w)
	return string(b)
}

func (s *Store) Policy(ctx context.Context, level countersign.PolicyLevel, subjectID string) (*countersign.PolicyRecord, error) {
	var r countersign.PolicyRecord
	var at int64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT level, subject_id, owner_id, document, hash, updated_by, updated_at FROM policies WHERE level = ? AND subject_id = ?`,
		level, subjectID).Scan(&r.Level, &r.SubjectID, &r.OwnerID, &r.Document, &r.Hash, &r.UpdatedBy, &at)
	if err != nil {
		return nil, notFound("policy", err)
	}
	r.UpdatedAt = fromTS(at)
	return &r, nil
}

func (s *Store) PutPolicy(ctx context.Context, r *countersign.PolicyRecord) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO policies (level, subject_id, owner_id, document, hash, updated_by, updated_at) VALUES (?,?,?,?,?,?,?)
 ON CONFLICT (level, subject_id) DO UPDATE SET owner_id = excluded.owner_id, document = excluded.document, hash = excluded.hash,
 updated_by = excluded.updated_by, updated_at = excluded.updated_at`,
		r.Level, r.SubjectID, r.OwnerID, r.Document, r.Hash, r.UpdatedBy, ts(r.UpdatedAt))
	return err
}

// LockBudget upserts the counter row: the write is the lock (SQLite's
// immediate transaction already holds the database's; on PostgreSQL the
// same statement holds the row's until commit).
func (s *Store) LockBudget(ctx context.Context, k countersign.BudgetKey) error {
	_, err := s.lockReserved(ctx, k)
	return err
}

func parseUnits(s string) (*big.Int, error) {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok || v.Sign() < 0 {
		return nil, countersign.Errorf(countersign.Internal, "stored budget amount %q is not a non-negative integer", s)
	}
	return v, nil
}

// lockReserved is LockBudget and reservedOf in one statement: the counter
// row upserted (the lock) and its open total as it then is.
func (s *Store) lockReserved(ctx context.Context, k countersign.BudgetKey) (*big.Int, error) {
	var text string
	if err := s.writer(ctx).QueryRowContext(ctx, `INSERT INTO policy_budgets (level, subject, rule_id, asset, locks) VALUES (?,?,?,?,1)
 ON CONFLICT (level, subject, rule_id, asset) DO UPDATE SET locks = locks + 1 RETURNING reserved`, k.Level, k.Subject, k.RuleID, k.Asset).Scan(&text); err != nil {
		return nil, err
	}
	return parseUnits(text)
}

// reservedOf reads a counter row's open total (0 without a row).
func (s *Store) reservedOf(ctx context.Context, k countersign.BudgetKey) (*big.Int, error) {
	var text string
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT reserved FROM policy_budgets WHERE level = ? AND subject = ? AND rule_id = ? AND asset = ?`,
		k.Level, k.Subject, k.RuleID, k.Asset).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		return new(big.Int), nil
	}
	if err != nil {
		return nil, err
	}
	return parseUnits(text)
}

func (s *Store) BudgetUsed(ctx context.Context, k countersign.BudgetKey, since time.Time) (*big.Int, *big.Int, error) {
	reserved, err := s.reservedOf(ctx, k)
	if err != nil {
		return nil, nil, err
	}
	spent, err := s.spentSince(ctx, k, since)
	return spent, reserved, err
}

// LockBudgetUsed is LockBudget and BudgetUsed, the lock and the open total
// in one statement (lockReserved).
func (s *Store) LockBudgetUsed(ctx context.Context, k countersign.BudgetKey, since time.Time) (*big.Int, *big.Int, error) {
	reserved, err := s.lockReserved(ctx, k)
	if err != nil {
		return nil, nil, err
	}
	spent, err := s.spentSince(ctx, k, since)
	return spent, reserved, err
}

// spentSince sums key's reservations spent after since.
func (s *Store) spentSince(ctx context.Context, k countersign.BudgetKey, since time.Time) (*big.Int, error) {
	var text string
	q := s.reader(ctx)
	rows, err := q.QueryContext(ctx, `SELECT amount FROM budget_reservations WHERE level = ? AND subject = ? AND rule_id = ? AND asset = ?
 AND state = 'spent' AND settled_at > ?`, k.Level, k.Subject, k.RuleID, k.Asset, ts(since))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	spent := new(big.Int)
	for rows.Next() {
		if err := rows.Scan(&text); err != nil {
			return nil, err
		}
		v, err := parseUnits(text)
		if err != nil {
			return nil, err
		}
		spent.Add(spent, v)
	}
	return spent, rows.Err()
}

// addReserved adds delta to a counter row's open total.
func (s *Store) addReserved(ctx context.Context, k countersign.BudgetKey, delta *big.Int) error {
	cur, err := s.lockReserved(ctx, k)
	if err != nil {
		return err
	}
	cur.Add(cur, delta)
	if cur.Sign() < 0 {
		return countersign.Errorf(countersign.Internal, "budget %s/%s would hold a negative reservation", k.RuleID, k.Asset)
	}
	_, err = s.writer(ctx).ExecContext(ctx, `UPDATE policy_budgets SET reserved = ? WHERE level = ? AND subject = ? AND rule_id = ? AND asset = ?`,
		cur.String(), k.Level, k.Subject, k.RuleID, k.Asset)
	return err
}

func (s *Store) AddReservation(ctx context.Context, r *countersign.BudgetReservation) error {
	if r.Amount == nil || r.Amount.Sign() < 0 {
		return countersign.Errorf(countersign.Internal, "a reservation needs a non-negative amount")
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO budget_reservations (transaction_id, owner_id, level, subject, rule_id, asset, amount, state, reserved_at)
 VALUES (?,?,?,?,?,?,?,?,?)`, r.TransactionID, r.OwnerID, r.Key.Level, r.Key.Subject, r.Key.RuleID, r.Key.Asset, r.Amount.String(), countersign.ReservationReserved, ts(r.ReservedAt))
		if err := conflict(err, "the transaction already holds this reservation"); err != nil {
			return err
		}
		return s.addReserved(ctx, r.Key, r.Amount)
	})
}

func (s *Store) SettleReservations(ctx context.Context, txID, state string, at time.Time) (int, error) {
	if state != countersign.ReservationSpent && state != countersign.ReservationReleased {
		return 0, countersign.Errorf(countersign.Internal, "a reservation settles as spent or released, not %q", state)
	}
	n := 0
	err := s.InTx(ctx, func(ctx context.Context) error {
		n = 0
		open, err := s.Reservations(ctx, txID)
		if err != nil {
			return err
		}
		for _, r := range open {
			// released takes back a spent one too (a broadcast the node
			// refused spent nothing); spent only settles open ones.
			if r.State == state || r.State == countersign.ReservationReleased {
				continue
			}
			if _, err := s.writer(ctx).ExecContext(ctx, `UPDATE budget_reservations SET state = ?, settled_at = ?
 WHERE transaction_id = ? AND level = ? AND subject = ? AND rule_id = ? AND asset = ?`,
				state, ts(at), txID, r.Key.Level, r.Key.Subject, r.Key.RuleID, r.Key.Asset); err != nil {
				return err
			}
			if r.State == countersign.ReservationReserved {
				if err := s.addReserved(ctx, r.Key, new(big.Int).Neg(r.Amount)); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	return n, err
}

func (s *Store) Reservations(ctx context.Context, txID string) ([]*countersign.BudgetReservation, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT transaction_id, owner_id, level, subject, rule_id, asset, amount, state, reserved_at, settled_at
 FROM budget_reservations WHERE transaction_id = ? ORDER BY level, subject, rule_id, asset`, txID)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(row interface{ Scan(...any) error }) (*countersign.BudgetReservation, error) {
		var r countersign.BudgetReservation
		var amount string
		var reserved, settled int64
		if err := row.Scan(&r.TransactionID, &r.OwnerID, &r.Key.Level, &r.Key.Subject, &r.Key.RuleID, &r.Key.Asset, &amount, &r.State, &reserved, &settled); err != nil {
			return nil, err
		}
		v, err := parseUnits(amount)
		if err != nil {
			return nil, err
		}
		r.Amount, r.ReservedAt, r.SettledAt = v, fromTS(reserved), fromTS(settled)
		return &r, nil
	})
}

func (s *Store) PaidBefore(ctx context.Context, walletID, address string) (bool, error) {
	var one int
	err := s.reader(ctx).QueryRowScan(ctx, `SELECT 1 FROM transactions WHERE wallet_id = ? AND to_address = ? COLLATE NOCASE
 AND status IN ('submitted', 'confirmed') LIMIT 1`, walletID, address).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// dueDelayedFrom is DueDelayed's query after its columns. INDEXED BY: left
// to itself, SQLite's planner took the index on (status, expires_at) and
// read every pending request on each poll of the delay worker, however
// few were delayed (TestQueryPlans).
const dueDelayedFrom = ` FROM transactions INDEXED BY transactions_delayed WHERE status = 'pending' AND authorize_at > 0 AND authorize_at <= ?
 ORDER BY authorize_at, id LIMIT ?`

func (s *Store) DueDelayed(ctx context.Context, now time.Time, limit int) ([]*countersign.Transaction, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+txCols+dueDelayedFrom, ts(now), limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTx)
}
