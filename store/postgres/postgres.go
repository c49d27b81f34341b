// Package postgres implements countersign.Store on PostgreSQL (pgx v5), so several replicas can share one database.
package postgres

// Concurrency. SQLite runs every write transaction alone (one writer, an
// immediate transaction): a read followed by a write inside InTx can never
// interleave with another writer. PostgreSQL runs transactions side by side
// at READ COMMITTED, so each read-then-write that relied on that takes a
// lock here, named at the method:
//   - row locks (SELECT … FOR UPDATE) on the rows core reads inside InTx to
//     decide a write: a transaction, a user (TOTP step and failure counters),
//     a login code, a sign-in request, ledger balances;
//   - single-statement upserts (INSERT … ON CONFLICT … RETURNING) where the
//     whole read-modify-write fits one statement: nonces, budget counters;
//   - one transaction-scoped advisory lock, the change lock, where no row
//     exists to lock yet: it is taken on reading an audit chain head and on
//     adding events, and held to commit, so audit chains never fork and
//     event ids commit in the order they were drawn. One lock for both (not
//     one per owner): a transaction that writes to two owners' chains takes
//     nothing a second time, so two such transactions cannot deadlock on
//     each other's chains. It serialises the tail of every state change, as
//     SQLite's writer lock serialises all of it.
// No method relies on SERIALIZABLE: a serialisation failure would have to
// re-run the caller's function, which may have signed or broadcast.

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/countersign/countersign"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a countersign.Store backed by a PostgreSQL database.
type Store struct {
	db      *sql.DB
	rebound sync.Map      // query text with ? → with $n
	txSlots chan struct{} // one per open transaction (see InTx)
}

var _ countersign.Store = (*Store)(nil)

// DefaultMaxConns is the pool size per process unless the URL's
// pool_max_conns parameter says otherwise: each replica holds at most this
// many connections (PostgreSQL's default max_connections is 100).
const DefaultMaxConns = 16

// Open connects to the database at dsn (postgres://…) and applies the
// migrations under a session advisory lock, so replicas starting together
// migrate once and the others wait for it.
func Open(ctx context.Context, dsn string) (*Store, error) {
	dsn, maxConns, err := poolSize(dsn)
	if err != nil {
		return nil, err
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx's parse error quotes the DSN, password included
		return nil, errors.New("postgres: the database URL does not parse")
	}
	if _, set := cfg.RuntimeParams["lock_timeout"]; !set {
		// A statement waiting for a lock longer than this fails, as a
		// SQLite writer gives up after its busy timeout: a stuck holder
		// shows as errors, not as every request hanging behind it.
		cfg.RuntimeParams["lock_timeout"] = "10s"
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &Store{db: db, txSlots: make(chan struct{}, txSlots(maxConns))}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect to %s:%d/%s: %w", cfg.Host, cfg.Port, cfg.Database, scrub(err, cfg.Password))
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: migrations: %w", scrub(err, cfg.Password))
	}
	return s, nil
}

// poolSize takes the pool_max_conns parameter (pgxpool's name for it) out
// of a postgres:// URL: pgx would send it to the server as a setting.
func poolSize(dsn string) (string, int, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return dsn, DefaultMaxConns, nil // a key=value DSN: pgx parses it
	}
	q := u.Query()
	if !q.Has("pool_max_conns") {
		return dsn, DefaultMaxConns, nil
	}
	n, err := strconv.Atoi(q.Get("pool_max_conns"))
	if err != nil || n < 1 || n > 1000 {
		return "", 0, errors.New("postgres: pool_max_conns must be a number from 1 to 1000")
	}
	q.Del("pool_max_conns")
	u.RawQuery = q.Encode()
	return u.String(), n, nil
}

// scrub removes the password from an error text that might quote it.
func scrub(err error, password string) error {
	if password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "***"))
}

func (s *Store) migrate(ctx context.Context) error {
	// A session-level advisory lock (pg_try_advisory_lock, goose's lock id)
	// held for the whole run: a second replica polls it every second, for
	// up to five minutes, until the first is done, then finds nothing to
	// apply.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return err
	}
	p, err := goose.NewProvider(goose.DialectPostgres, s.db, mustSub(migrations, "migrations"), goose.WithSessionLocker(locker))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// Close closes the pool.
func (s *Store) Close() error { return s.db.Close() }

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

type txKey struct{}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx reports whether ctx carries a transaction.
func inTx(ctx context.Context) bool {
	_, ok := ctx.Value(txKey{}).(*sql.Tx)
	return ok
}

// reader returns the transaction in ctx, or the pool.
func (s *Store) reader(ctx context.Context) querier { return s.writer(ctx) }

// writer returns the transaction in ctx, or the pool (each statement its
// own transaction).
func (s *Store) writer(ctx context.Context) querier {
	if tx, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return bound{s: s, q: tx}
	}
	return bound{s: s, q: s.db}
}

// bound rewrites the ? placeholders the queries share with the SQLite
// store into PostgreSQL's $1, $2, … (no query here has a ? inside a string
// literal). pgx caches the prepared statement per connection.
type bound struct {
	s *Store
	q querier
}

func (s *Store) rebind(q string) string {
	if v, ok := s.rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	out := b.String()
	s.rebound.Store(q, out)
	return out
}

func (b bound) ExecContext(ctx context.Context, q string, a ...any) (sql.Result, error) {
	res, err := b.q.ExecContext(ctx, b.s.rebind(q), a...)
	return res, badText(err)
}

// badText turns PostgreSQL's refusal of text it cannot store (a NUL, or
// bytes that are not UTF-8: SQLite stores both) into BadRequest: the input
// is refused, and nothing is written.
func badText(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && (pe.Code == "22021" || pe.Code == "22P05") {
		return countersign.Wrap(countersign.BadRequest, err, "text must be valid UTF-8 without NUL characters")
	}
	return err
}

func (b bound) QueryContext(ctx context.Context, q string, a ...any) (*sql.Rows, error) {
	return b.q.QueryContext(ctx, b.s.rebind(q), a...)
}

func (b bound) QueryRowContext(ctx context.Context, q string, a ...any) *sql.Row {
	return b.q.QueryRowContext(ctx, b.s.rebind(q), a...)
}

// forUpdate is " FOR UPDATE" inside a transaction (see the package comment)
// and "" outside, where a lock would end with the statement anyway.
func forUpdate(ctx context.Context) string {
	if inTx(ctx) {
		return " FOR UPDATE"
	}
	return ""
}

// txSlots is how many transactions may be open at once: a quarter of the
// pool (at least one connection) stays free for statements outside any
// transaction, so transactions whose functions also read outside their
// transaction cannot take every connection and wait on each other forever.
// (SQLite has one writer and a separate reader pool.)
func txSlots(maxConns int) int {
	return max(1, min(maxConns-1, maxConns*3/4))
}

// InTx runs fn in one READ COMMITTED transaction. Nested calls join the
// outer transaction.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if inTx(ctx) {
		return fn(ctx)
	}
	select {
	case s.txSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.txSlots }()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	ctx = context.WithValue(ctx, heldKey{}, &heldLocks{})
	if err := fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// changeLock is the advisory lock key of audit appends and event ids.
const changeLock = "countersign:changes"

// heldKey carries a transaction's heldLocks.
type heldKey struct{}

// heldLocks remembers that a transaction holds the change lock, so that
// a group's head reads and its event insert (one per owner, and one more)
// take it in one round trip instead of one each.
type heldLocks struct{ change atomic.Bool }

// advisoryLock takes a transaction-scoped advisory lock on key (released
// at commit or rollback). Outside a transaction it does nothing: there is
// nothing to hold the lock for. The change lock, once taken outside any
// savepoint, is not asked for again in that transaction; inside a
// Savepoint (a part of a group) it is always asked for, since rolling the
// savepoint back releases a lock taken under it.
func (s *Store) advisoryLock(ctx context.Context, key string) error {
	if !inTx(ctx) {
		return nil
	}
	held, _ := ctx.Value(heldKey{}).(*heldLocks)
	part, _ := ctx.Value(partKey{}).(bool)
	memo := key == changeLock && held != nil && !part
	if memo && held.change.Load() {
		return nil
	}
	if _, err := s.writer(ctx).ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, key); err != nil {
		return err
	}
	if memo {
		held.change.Store(true)
	}
	return nil
}

func ts(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromTS(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func notFound(what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return countersign.Errorf(countersign.NotFound, "%s not found", what)
	}
	return err
}

// conflict maps a unique violation (a primary key or a UNIQUE constraint,
// SQLSTATE 23505) to Conflict, as the SQLite store does.
func conflict(err error, detail string) error {
	if isUnique(err) {
		return countersign.Wrap(countersign.Conflict, err, detail)
	}
	return err
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// unique returns the querier for an insert whose unique violation the
// caller maps to Conflict. Inside a transaction the statement runs under a
// savepoint: a failed statement aborts a PostgreSQL transaction, where
// SQLite's goes on, and callers do go on after a Conflict (a concurrent
// twin won; load it).
//
// Inside a Savepoint (a part of a group transaction) it needs none: a
// failed statement there fails the whole part, which Savepoint undoes and
// its caller runs again alone, where this savepoint is taken — the same
// answer, two round trips fewer per insert on the common path.
func (s *Store) unique(ctx context.Context) querier {
	tx, ok := ctx.Value(txKey{}).(*sql.Tx)
	if !ok {
		return s.writer(ctx)
	}
	if part, _ := ctx.Value(partKey{}).(bool); part {
		return bound{s: s, q: tx}
	}
	return savepointed{bound{s: s, q: tx}}
}

type savepointed struct{ bound }

func (sp savepointed) ExecContext(ctx context.Context, q string, a ...any) (sql.Result, error) {
	if _, err := sp.q.ExecContext(ctx, `SAVEPOINT countersign_unique`); err != nil {
		return nil, err
	}
	res, err := sp.bound.ExecContext(ctx, q, a...)
	if err != nil {
		if _, rerr := sp.q.ExecContext(ctx, `ROLLBACK TO SAVEPOINT countersign_unique`); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		return nil, err
	}
	if _, err := sp.q.ExecContext(ctx, `RELEASE SAVEPOINT countersign_unique`); err != nil {
		return nil, err
	}
	return res, nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ---- users

const userCols = `id, username, password_hash, mfa_sealed, mfa_enabled, mfa_last_step, mfa_failures, mfa_locked_until, created_at, mfa_pending`

func scanUser(row interface{ Scan(...any) error }) (*countersign.User, error) {
	var u countersign.User
	dest, done := userFields(&u)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	done()
	return &u, nil
}

// userFields are the scan destinations of userCols into u, and what
// finishes u once they are filled.
func userFields(u *countersign.User) (dest []any, done func()) {
	var enabled int
	var locked, created int64
	return []any{&u.ID, &u.Username, &u.PasswordHash, &u.MFASealed, &enabled, &u.MFALastStep, &u.MFAFailures, &locked, &created, &u.MFAPending}, func() {
		u.MFAEnabled = enabled == 1
		u.MFALockedUntil = fromTS(locked)
		u.CreatedAt = fromTS(created)
	}
}

func (s *Store) CreateUser(ctx context.Context, u *countersign.User) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		u.ID, u.Username, u.PasswordHash, u.MFASealed, b2i(u.MFAEnabled), u.MFALastStep, u.MFAFailures, ts(u.MFALockedUntil), ts(u.CreatedAt), u.MFAPending)
	return conflict(err, "username is taken")
}

// UserByID, inside a transaction, locks the row (FOR UPDATE): the TOTP
// step and failure counters are read, checked and written back in one
// transaction, and two concurrent checks of one code must not both pass.
func (s *Store) UserByID(ctx context.Context, id string) (*countersign.User, error) {
	u, err := scanUser(s.reader(ctx).QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`+forUpdate(ctx), id))
	return u, notFound("user", err)
}

func (s *Store) UserByName(ctx context.Context, name string) (*countersign.User, error) {
	// a row lock inside a transaction, as UserByID
	u, err := scanUser(s.reader(ctx).QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`+forUpdate(ctx), name))
	return u, notFound("user", err)
}

func (s *Store) UpdateUserMFA(ctx context.Context, u *countersign.User) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE users SET mfa_sealed=?, mfa_enabled=?, mfa_last_step=?, mfa_failures=?, mfa_locked_until=?, mfa_pending=? WHERE id=?`,
		u.MFASealed, b2i(u.MFAEnabled), u.MFALastStep, u.MFAFailures, ts(u.MFALockedUntil), u.MFAPending, u.ID)
	return mustAffect(res, err, "user")
}

func mustAffect(res sql.Result, err error, what string) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return countersign.Errorf(countersign.NotFound, "%s not found", what)
	}
	return nil
}

// ---- wallets

const walletCols = `id, owner_id, name, address, key_format, key_sealed, created_at`

func scanWallet(row interface{ Scan(...any) error }) (*countersign.Wallet, error) {
	var w countersign.Wallet
	var created int64
	if err := row.Scan(&w.ID, &w.OwnerID, &w.Name, &w.Address, &w.KeyFormat, &w.KeySealed, &created); err != nil {
		return nil, err
	}
	w.CreatedAt = fromTS(created)
	return &w, nil
}

func (s *Store) CreateWallet(ctx context.Context, w *countersign.Wallet) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO wallets (`+walletCols+`) VALUES (?,?,?,?,?,?,?)`,
		w.ID, w.OwnerID, w.Name, w.Address, w.KeyFormat, w.KeySealed, ts(w.CreatedAt))
	return conflict(err, "wallet already exists")
}

func (s *Store) WalletsByKeyFormat(ctx context.Context, format string) ([]*countersign.Wallet, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+walletCols+` FROM wallets WHERE key_format = ? ORDER BY created_at, id COLLATE "C"`, format)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanWallet)
}

func (s *Store) SwapWalletKey(ctx context.Context, id, from, to string, sealed []byte) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE wallets SET key_format = ?, key_sealed = ? WHERE id = ? AND key_format = ?`, to, sealed, id, from)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return countersign.Errorf(countersign.Conflict, "wallet %s is not in key format %s", id, from)
	}
	return nil
}

func (s *Store) WalletByID(ctx context.Context, id string) (*countersign.Wallet, error) {
	w, err := scanWallet(s.reader(ctx).QueryRowContext(ctx, `SELECT `+walletCols+` FROM wallets WHERE id = ?`, id))
	return w, notFound("wallet", err)
}

func (s *Store) WalletByAddress(ctx context.Context, addr string) (*countersign.Wallet, error) {
	w, err := scanWallet(s.reader(ctx).QueryRowContext(ctx, `SELECT `+walletCols+` FROM wallets WHERE address = ?`, addr))
	return w, notFound("wallet", err)
}

func (s *Store) WalletsByOwner(ctx context.Context, owner string) ([]*countersign.Wallet, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+walletCols+` FROM wallets WHERE owner_id = ? ORDER BY created_at, id COLLATE "C"`, owner)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanWallet)
}

func collect[T any](rows *sql.Rows, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// ---- agents

const agentCols = `id, owner_id, name, wallet_id, key_hash, key_prefix, created_at, last_used_at, revoked_at`

func scanAgent(row interface{ Scan(...any) error }) (*countersign.Agent, error) {
	var a countersign.Agent
	dest, done := agentFields(&a)
	if err := row.Scan(dest...); err != nil {
		return nil, err
	}
	done()
	return &a, nil
}

// agentFields are the scan destinations of agentCols into a, and what
// finishes a once they are filled.
func agentFields(a *countersign.Agent) (dest []any, done func()) {
	var created, used, revoked int64
	return []any{&a.ID, &a.OwnerID, &a.Name, &a.WalletID, &a.KeyHash, &a.KeyPrefix, &created, &used, &revoked}, func() {
		a.CreatedAt, a.LastUsedAt, a.RevokedAt = fromTS(created), fromTS(used), fromTS(revoked)
	}
}

// prefixed qualifies each column of cols with table alias t.
func prefixed(t, cols string) string {
	return t + "." + strings.ReplaceAll(cols, ", ", ", "+t+".")
}

func (s *Store) CreateAgent(ctx context.Context, a *countersign.Agent) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO agents (`+agentCols+`) VALUES (?,?,?,?,?,?,?,?,?)`,
		a.ID, a.OwnerID, a.Name, a.WalletID, a.KeyHash, a.KeyPrefix, ts(a.CreatedAt), ts(a.LastUsedAt), ts(a.RevokedAt))
	return conflict(err, "agent already exists")
}

func (s *Store) AgentByID(ctx context.Context, id string) (*countersign.Agent, error) {
	a, err := scanAgent(s.reader(ctx).QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE id = ?`, id))
	return a, notFound("agent", err)
}

func (s *Store) AgentByKeyHash(ctx context.Context, h []byte) (*countersign.Agent, error) {
	a, err := scanAgent(s.reader(ctx).QueryRowContext(ctx, `SELECT `+agentCols+` FROM agents WHERE key_hash = ?`, h))
	return a, notFound("agent", err)
}

var agentWithOwnerSQL = `SELECT ` + prefixed("a", agentCols) + `, ` + prefixed("u", userCols) + `
 FROM agents a JOIN users u ON u.id = a.owner_id WHERE a.key_hash = ?`

// AgentWithOwner is AgentByKeyHash and its owner's UserByID in one
// query: every agent request authenticates with both.
func (s *Store) AgentWithOwner(ctx context.Context, h []byte) (*countersign.Agent, *countersign.User, error) {
	var a countersign.Agent
	var u countersign.User
	ad, adone := agentFields(&a)
	ud, udone := userFields(&u)
	err := s.reader(ctx).QueryRowContext(ctx, agentWithOwnerSQL, h).Scan(append(ad, ud...)...)
	if err != nil {
		return nil, nil, notFound("agent", err)
	}
	adone()
	udone()
	return &a, &u, nil
}

func (s *Store) AgentsByOwner(ctx context.Context, owner string) ([]*countersign.Agent, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+agentCols+` FROM agents WHERE owner_id = ? ORDER BY created_at, id COLLATE "C"`, owner)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAgent)
}

func (s *Store) RevokeAgent(ctx context.Context, id string, at time.Time) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE agents SET revoked_at = ? WHERE id = ? AND revoked_at = 0`, ts(at), id)
	return mustAffect(res, err, "agent")
}

func (s *Store) TouchAgent(ctx context.Context, id string, at time.Time) error {
	_, err := s.writer(ctx).ExecContext(ctx, `UPDATE agents SET last_used_at = ? WHERE id = ?`, ts(at), id)
	return err
}

// ---- transactions

const txCols = `id, owner_id, agent_id, wallet_id, chain_id, type, from_address, to_address, amount, token_address,
 contract_address, contract_abi, function_name, function_args, value, memo, tx_to, tx_value, tx_data, digest,
 approved_digest, decided_by, decided_at, reason, status, nonce, raw_tx, tx_hash, block_number, error,
 idempotency_key, request_hash, expires_at, created_at, updated_at, message, signature,
 gas_limit, max_fee_per_gas, checked_at, broadcasts, next_broadcast_at,
 decision, rule_id, policy_warnings, authorize_at, approvals_needed`

func scanTx(row interface{ Scan(...any) error }) (*countersign.Transaction, error) {
	var t countersign.Transaction
	var decided, expires, created, updated, checked, nextBroadcast, gasLimit, authorizeAt int64
	var nonce, block sql.NullInt64
	var warnings string
	if err := row.Scan(&t.ID, &t.OwnerID, &t.AgentID, &t.WalletID, &t.ChainID, &t.Type, &t.From, &t.To, &t.Amount, &t.TokenAddress,
		&t.ContractAddress, &t.ContractABI, &t.FunctionName, &t.FunctionArgs, &t.Value, &t.Memo, &t.TxTo, &t.TxValue, &t.TxData, &t.Digest,
		&t.ApprovedDigest, &t.DecidedBy, &decided, &t.Reason, &t.Status, &nonce, &t.RawTx, &t.TxHash, &block, &t.Error,
		&t.IdempotencyKey, &t.RequestHash, &expires, &created, &updated, &t.Message, &t.Signature,
		&gasLimit, &t.MaxFeePerGas, &checked, &t.Broadcasts, &nextBroadcast,
		&t.Decision, &t.RuleID, &warnings, &authorizeAt, &t.ApprovalsNeeded); err != nil {
		return nil, err
	}
	t.PolicyWarnings, t.AuthorizeAt = policyWarnings(warnings), fromTS(authorizeAt) // policy.go
	t.GasLimit, t.CheckedAt, t.NextBroadcastAt = uint64(gasLimit), fromTS(checked), fromTS(nextBroadcast)
	if nonce.Valid {
		n := uint64(nonce.Int64)
		t.Nonce = &n
	}
	if block.Valid {
		b := uint64(block.Int64)
		t.BlockNumber = &b
	}
	t.DecidedAt, t.ExpiresAt, t.CreatedAt, t.UpdatedAt = fromTS(decided), fromTS(expires), fromTS(created), fromTS(updated)
	return &t, nil
}

func nullU64(p *uint64) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func (s *Store) CreateTransaction(ctx context.Context, t *countersign.Transaction) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO transactions (`+txCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		t.ID, t.OwnerID, t.AgentID, t.WalletID, t.ChainID, t.Type, t.From, t.To, t.Amount, t.TokenAddress,
		t.ContractAddress, t.ContractABI, t.FunctionName, t.FunctionArgs, t.Value, t.Memo, t.TxTo, t.TxValue, t.TxData, t.Digest,
		t.ApprovedDigest, t.DecidedBy, ts(t.DecidedAt), t.Reason, t.Status, nullU64(t.Nonce), t.RawTx, t.TxHash, nullU64(t.BlockNumber), t.Error,
		t.IdempotencyKey, t.RequestHash, ts(t.ExpiresAt), ts(t.CreatedAt), ts(t.UpdatedAt), t.Message, t.Signature,
		int64(t.GasLimit), t.MaxFeePerGas, ts(t.CheckedAt), t.Broadcasts, ts(t.NextBroadcastAt),
		t.Decision, t.RuleID, policyWarningsJSON(t.PolicyWarnings), ts(t.AuthorizeAt), t.ApprovalsNeeded)
	return conflict(err, "a transaction with this Idempotency-Key already exists")
}

func (s *Store) Transaction(ctx context.Context, id string) (*countersign.Transaction, error) {
	// Inside InTx: SELECT … FOR UPDATE, the row lock the interface promises
	// (approve, execute and the tracker each read the row, decide, write).
	t, err := scanTx(s.reader(ctx).QueryRowContext(ctx, `SELECT `+txCols+` FROM transactions WHERE id = ?`+forUpdate(ctx), id))
	return t, notFound("transaction", err)
}

func (s *Store) TransactionByIdempotencyKey(ctx context.Context, agentID, key string) (*countersign.Transaction, error) {
	t, err := scanTx(s.reader(ctx).QueryRowContext(ctx, `SELECT `+txCols+` FROM transactions WHERE agent_id = ? AND idempotency_key = ?`, agentID, key))
	return t, notFound("transaction", err)
}

// UpdateTransaction writes the mutable fields: the decision, the execution
// record (with the rebroadcast backoff) and the status. The fields an
// approval binds to (the fee limit among them) never change.
func (s *Store) UpdateTransaction(ctx context.Context, t *countersign.Transaction) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE transactions SET approved_digest=?, decided_by=?, decided_at=?, reason=?, status=?,
 nonce=?, raw_tx=?, tx_hash=?, block_number=?, error=?, updated_at=?, signature=?, broadcasts=?, next_broadcast_at=?, expires_at=? WHERE id=?`,
		t.ApprovedDigest, t.DecidedBy, ts(t.DecidedAt), t.Reason, t.Status, nullU64(t.Nonce), t.RawTx, t.TxHash, nullU64(t.BlockNumber), t.Error, ts(t.UpdatedAt), t.Signature,
		t.Broadcasts, ts(t.NextBroadcastAt), ts(t.ExpiresAt), t.ID)
	return mustAffect(res, err, "transaction")
}

func (s *Store) Transactions(ctx context.Context, f countersign.TxFilter) ([]*countersign.Transaction, error) {
	q := `SELECT ` + txCols + ` FROM transactions WHERE owner_id = ?`
	args := []any{f.OwnerID}
	if len(f.ApproverOf) > 0 { // and the wallets the caller approves (approvers.go)
		q = `SELECT ` + txCols + ` FROM transactions WHERE (owner_id = ? OR wallet_id IN (?` + strings.Repeat(",?", len(f.ApproverOf)-1) + `))`
		for _, w := range f.ApproverOf {
			args = append(args, w)
		}
	}
	if f.AgentID != "" {
		q += ` AND agent_id = ?`
		args = append(args, f.AgentID)
	}
	if f.Status != "" {
		q += ` AND status = ?`
		args = append(args, f.Status)
	}
	if !f.Before.IsZero() {
		q += ` AND created_at < ?`
		args = append(args, ts(f.Before))
	}
	if !f.After.IsZero() {
		q += ` AND created_at >= ?`
		args = append(args, ts(f.After))
	}
	if f.From != "" {
		q += ` AND from_address = ?`
		args = append(args, f.From)
	}
	if f.ChainID != 0 {
		q += ` AND chain_id = ?`
		args = append(args, f.ChainID)
	}
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	q += fmt.Sprintf(` ORDER BY created_at DESC, id COLLATE "C" DESC LIMIT %d`, limit)
	rows, err := s.reader(ctx).QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTx)
}

// paymentHistorySQL answers PaymentHistory in one statement. The largest
// amount is the longest decimal string, then the greatest: amounts are
// stored canonical (big.Int.String), so this is the numeric order.
const paymentHistorySQL = `SELECT
 EXISTS(SELECT 1 FROM transactions WHERE owner_id = ? AND status = 'confirmed' AND type = ? AND lower(to_address) = lower(?)),
 (SELECT COUNT(*) FROM transactions WHERE owner_id = ? AND status = 'confirmed' AND type = ? AND agent_id = ? AND agent_id <> '' AND lower(token_address) = lower(?)),
 COALESCE((SELECT amount FROM transactions WHERE owner_id = ? AND status = 'confirmed' AND type = ? AND agent_id = ? AND agent_id <> '' AND lower(token_address) = lower(?)
  ORDER BY length(amount) DESC, amount DESC LIMIT 1), '')`

func (s *Store) PaymentHistory(ctx context.Context, q countersign.PaymentQuery) (countersign.PaymentSummary, error) {
	var out countersign.PaymentSummary
	var largest string
	err := s.reader(ctx).QueryRowContext(ctx, paymentHistorySQL,
		q.OwnerID, q.Type, q.To,
		q.OwnerID, q.Type, q.AgentID, q.Token,
		q.OwnerID, q.Type, q.AgentID, q.Token).Scan(&out.Paid, &out.Previous, &largest)
	if err != nil {
		return out, err
	}
	if out.Previous > 0 {
		if v, ok := new(big.Int).SetString(largest, 10); ok {
			out.Largest = v
		}
	}
	return out, nil
}

func (s *Store) TransactionsByStatus(ctx context.Context, st countersign.Status, limit int) ([]*countersign.Transaction, error) {
	// Least recently checked first, so rows that stay submitted cannot
	// starve newer ones out of the receipt tracker's batch.
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+txCols+` FROM transactions WHERE status = ? ORDER BY checked_at, created_at, id COLLATE "C" LIMIT ?`, st, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanTx)
}

func (s *Store) CountTransactionsByStatus(ctx context.Context) (map[countersign.Status]int64, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT status, COUNT(*) FROM transactions GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[countersign.Status]int64{}
	for rows.Next() {
		var st string
		var n int64
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[countersign.Status(st)] = n
	}
	return out, rows.Err()
}

// NextNonce allocates in one statement: the upsert takes the (chain,
// address) row's lock, so concurrent allocations queue on it and each sees
// the previous one's counter — gapless, never twice.
func (s *Store) NextNonce(ctx context.Context, chainID int64, addr string, floor uint64) (uint64, error) {
	var next int64
	err := s.writer(ctx).QueryRowContext(ctx, `INSERT INTO nonces (chain_id, address, next_nonce) VALUES (?, ?, ?::bigint + 1)
 ON CONFLICT (chain_id, address) DO UPDATE SET next_nonce = GREATEST(nonces.next_nonce, excluded.next_nonce - 1) + 1
 RETURNING next_nonce`, chainID, addr, int64(floor)).Scan(&next)
	if err != nil {
		return 0, err
	}
	return uint64(next - 1), nil
}

// ReleaseNonce is one conditional UPDATE (the row lock makes it atomic
// against a concurrent NextNonce).
func (s *Store) ReleaseNonce(ctx context.Context, chainID int64, addr string, nonce uint64) error {
	_, err := s.writer(ctx).ExecContext(ctx, `UPDATE nonces SET next_nonce = ? WHERE chain_id = ? AND address = ? AND next_nonce = ?`,
		int64(nonce), chainID, addr, int64(nonce+1))
	return err
}

func (s *Store) NonceCounter(ctx context.Context, chainID int64, addr string) (uint64, error) {
	var n int64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT next_nonce FROM nonces WHERE chain_id = ? AND address = ?`, chainID, addr).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	return uint64(n), err
}

func (s *Store) MarkChecked(ctx context.Context, at time.Time, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return s.InTx(ctx, func(ctx context.Context) error {
		for start := 0; start < len(ids); start += maxRowsPerInsert {
			chunk := ids[start:min(start+maxRowsPerInsert, len(ids))]
			args := []any{ts(at)}
			for _, id := range chunk {
				args = append(args, id)
			}
			q := `UPDATE transactions SET checked_at = ? WHERE id IN (?` + strings.Repeat(",?", len(chunk)-1) + `)`
			if _, err := s.writer(ctx).ExecContext(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
}

// ---- audit, events

// maxRowsPerInsert keeps multi-row inserts well under PostgreSQL's limit
// of 65535 bound parameters (and matches the SQLite store's batches).
const maxRowsPerInsert = 100

// valuesList is "(?,…,?),(?,…,?)…": rows groups of cols placeholders.
func valuesList(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

// AppendAudit inserts in one transaction (a batch is all or nothing). A
// taken (owner, seq) is Conflict; a concurrent appender that read the same
// head waits on the first one's row and then gets that Conflict — but core
// reads the head through AuditEntries(owner, -1, 1) inside its transaction,
// which serialises appenders first (see there), so both succeed in
// order.
func (s *Store) AppendAudit(ctx context.Context, entries ...*countersign.AuditEntry) error {
	return s.InTx(ctx, func(ctx context.Context) error { return s.appendAudit(ctx, entries) })
}

func (s *Store) appendAudit(ctx context.Context, entries []*countersign.AuditEntry) error {
	for len(entries) > 0 {
		n := min(len(entries), maxRowsPerInsert)
		args := make([]any, 0, 9*n)
		for _, e := range entries[:n] {
			args = append(args, e.OwnerID, e.Seq, ts(e.At), e.Actor, e.Action, e.Subject, e.Details, e.PrevHash, e.Hash)
		}
		_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO audit (owner_id, seq, at, actor, action, subject, details, prev_hash, hash) VALUES `+valuesList(n, 9), args...)
		if err != nil {
			return conflict(err, "audit sequence conflict")
		}
		entries = entries[n:]
	}
	return nil
}

func scanAudit(row interface{ Scan(...any) error }) (*countersign.AuditEntry, error) {
	var e countersign.AuditEntry
	var at int64
	if err := row.Scan(&e.OwnerID, &e.Seq, &at, &e.Actor, &e.Action, &e.Subject, &e.Details, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.At = fromTS(at)
	return &e, nil
}

// AuditEntries returns entries with seq > afterSeq in order. A negative
// afterSeq with limit 1 returns the newest entry (the chain head).
//
// Reading the head inside a transaction first takes the change lock (see
// the package comment): SQLite's single writer let no one append between
// this read and the append that follows it; here a second appender waits
// for the first to commit and then reads its entry as the head (READ
// COMMITTED: each statement sees what committed before it).
func (s *Store) AuditEntries(ctx context.Context, owner string, afterSeq int64, limit int) ([]*countersign.AuditEntry, error) {
	if afterSeq < 0 {
		if err := s.advisoryLock(ctx, changeLock); err != nil {
			return nil, err
		}
	}
	q := `SELECT owner_id, seq, at, actor, action, subject, details, prev_hash, hash FROM audit WHERE owner_id = ? AND seq > ? ORDER BY seq LIMIT ?`
	if afterSeq < 0 {
		q = `SELECT owner_id, seq, at, actor, action, subject, details, prev_hash, hash FROM audit WHERE owner_id = ? AND seq > ? ORDER BY seq DESC LIMIT ?`
	}
	rows, err := s.reader(ctx).QueryContext(ctx, q, owner, afterSeq, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanAudit)
}

func (s *Store) AuditOwners(ctx context.Context) ([]string, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT owner_id FROM audit GROUP BY owner_id ORDER BY owner_id COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (string, error) {
		var s string
		return s, r.Scan(&s)
	})
}

// AddEvent takes the change lock (see the package comment) before drawing
// ids, so ids commit in the order they are drawn: a reader that
// saw event n never later finds an event below n, which a sequence alone
// would allow (two transactions commit in the other order) and which
// EventsAfter's cursors would skip for good. SQLite's single writer gives
// the same order. The lock is held from here to commit.
func (s *Store) AddEvent(ctx context.Context, events ...*countersign.Event) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if err := s.advisoryLock(ctx, changeLock); err != nil {
			return err
		}
		if err := s.signalOwners(ctx, events); err != nil { // listen.go: delivered at commit, to every replica
			return err
		}
		for len(events) > 0 {
			n := min(len(events), maxRowsPerInsert)
			args := make([]any, 0, 5*n)
			for _, e := range events[:n] {
				args = append(args, e.OwnerID, e.Type, e.Subject, e.Payload, ts(e.CreatedAt))
			}
			// one multi-row insert draws its ids in VALUES order
			rows, err := s.writer(ctx).QueryContext(ctx, `INSERT INTO events (owner_id, type, subject, payload, created_at) VALUES `+valuesList(n, 5)+` RETURNING id`, args...)
			if err != nil {
				return err
			}
			ids, err := collect(rows, func(r interface{ Scan(...any) error }) (int64, error) {
				var id int64
				return id, r.Scan(&id)
			})
			if err != nil {
				return err
			}
			if len(ids) != n {
				return fmt.Errorf("postgres: %d ids for %d events", len(ids), n)
			}
			sort.Slice(ids, func(a, b int) bool { return ids[a] < ids[b] })
			for i, e := range events[:n] {
				e.ID = ids[i]
			}
			events = events[n:]
		}
		return nil
	})
}

func (s *Store) EventsAfter(ctx context.Context, owner string, after int64, limit int) ([]*countersign.Event, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT id, owner_id, type, subject, payload, created_at FROM events WHERE owner_id = ? AND id > ? ORDER BY id LIMIT ?`, owner, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.Event, error) {
		var e countersign.Event
		var at int64
		err := r.Scan(&e.ID, &e.OwnerID, &e.Type, &e.Subject, &e.Payload, &at)
		e.CreatedAt = fromTS(at)
		return &e, err
	})
}

func (s *Store) LastEventID(ctx context.Context, owner string) (int64, error) {
	var n sql.NullInt64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT MAX(id) FROM events WHERE owner_id = ?`, owner).Scan(&n)
	return n.Int64, err
}

// ---- web sessions and recovery codes

func (s *Store) CreateWebSession(ctx context.Context, w *countersign.WebSession) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO web_sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?,?,?,?,?)`,
		w.TokenHash, w.UserID, w.CSRF, ts(w.CreatedAt), ts(w.ExpiresAt))
	if err != nil {
		return err
	}
	_, err = s.writer(ctx).ExecContext(ctx, `DELETE FROM web_sessions WHERE expires_at < ?`, ts(w.CreatedAt))
	return err
}

func (s *Store) WebSession(ctx context.Context, h []byte, now time.Time) (*countersign.WebSession, error) {
	var w countersign.WebSession
	var created, expires int64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT token_hash, user_id, csrf, created_at, expires_at FROM web_sessions WHERE token_hash = ? AND expires_at > ?`, h, ts(now)).
		Scan(&w.TokenHash, &w.UserID, &w.CSRF, &created, &expires)
	w.CreatedAt, w.ExpiresAt = fromTS(created), fromTS(expires)
	return &w, notFound("session", err)
}

func (s *Store) DeleteWebSession(ctx context.Context, h []byte) error {
	_, err := s.writer(ctx).ExecContext(ctx, `DELETE FROM web_sessions WHERE token_hash = ?`, h)
	return err
}

// SetRecoveryCodes locks the user's row first: two concurrent
// regenerations must leave one set, not both.
func (s *Store) SetRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		if _, err := s.writer(ctx).ExecContext(ctx, `SELECT 1 FROM users WHERE id = ? FOR UPDATE`, userID); err != nil {
			return err
		}
		// replaced codes are kept as spent (used_at -1): a late copy of one is
		// a replay, not a guess
		if _, err := s.writer(ctx).ExecContext(ctx, `UPDATE recovery_codes SET used_at = -1 WHERE user_id = ? AND used_at = 0`, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, 0)
 ON CONFLICT (user_id, code_hash) DO UPDATE SET used_at = 0`, userID, h); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *Store) UseRecoveryCode(ctx context.Context, userID string, h []byte, at time.Time) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND code_hash = ? AND used_at = 0`, ts(at), userID, h)
	if err = mustAffect(res, err, "recovery code"); countersign.ErrorCode(err) != countersign.NotFound {
		return err
	}
	var n int
	if qerr := s.writer(ctx).QueryRowContext(ctx, `SELECT count(*) FROM recovery_codes WHERE user_id = ? AND code_hash = ?`, userID, h).Scan(&n); qerr != nil {
		return qerr
	}
	if n > 0 {
		return countersign.Errorf(countersign.Conflict, "recovery code already used")
	}
	return err
}

// ---- identities

func (s *Store) LinkIdentity(ctx context.Context, typ, value, omni string, at time.Time) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO identity_links (identity_type, identity_value, omni_account, created_at) VALUES (?,?,?,?)`, typ, value, omni, ts(at))
	return conflict(err, "this identity is already linked to an account")
}

func (s *Store) LinkedOmni(ctx context.Context, typ, value string) (string, error) {
	var omni string
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT omni_account FROM identity_links WHERE identity_type = ? AND identity_value = ?`, typ, value).Scan(&omni)
	return omni, notFound("identity", err)
}

func (s *Store) CreateSIWERequest(ctx context.Context, r *countersign.SIWERequest) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO siwe_requests (id, address, message, nonce, expires_at) VALUES (?,?,?,?,?)`, r.ID, r.Address, r.Message, r.Nonce, ts(r.ExpiresAt))
	return err
}

func (s *Store) TakeSIWERequest(ctx context.Context, id string, at time.Time) (*countersign.SIWERequest, error) {
	var r countersign.SIWERequest
	// FOR UPDATE: two concurrent takes of one request, one wins
	err := s.InTx(ctx, func(ctx context.Context) error {
		var exp, used int64
		err := s.writer(ctx).QueryRowContext(ctx, `SELECT id, address, message, nonce, expires_at, used_at FROM siwe_requests WHERE id = ? FOR UPDATE`, id).
			Scan(&r.ID, &r.Address, &r.Message, &r.Nonce, &exp, &used)
		if err != nil {
			return notFound("sign-in request", err)
		}
		if used != 0 {
			return countersign.Errorf(countersign.NotFound, "sign-in request was already used")
		}
		r.ExpiresAt = fromTS(exp)
		_, err = s.writer(ctx).ExecContext(ctx, `UPDATE siwe_requests SET used_at = ? WHERE id = ?`, ts(at), id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *Store) AddEmailCode(ctx context.Context, c *countersign.EmailCode) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO email_codes (email, code_hash, created_at, expires_at) VALUES (?,?,?,?)`, c.Email, c.CodeHash, ts(c.CreatedAt), ts(c.ExpiresAt))
	return err
}

func (s *Store) EmailCodesSince(ctx context.Context, email string, t time.Time) (int, error) {
	var n int
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT COUNT(*) FROM email_codes WHERE email = ? AND created_at >= ?`, email, ts(t)).Scan(&n)
	return n, err
}

// LatestEmailCode locks the row inside a transaction: its attempts counter
// is read, checked and written back.
func (s *Store) LatestEmailCode(ctx context.Context, email string, now time.Time) (*countersign.EmailCode, error) {
	var c countersign.EmailCode
	var created, exp, used int64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT email, code_hash, created_at, expires_at, attempts, used_at FROM email_codes
 WHERE email = ? AND used_at = 0 AND expires_at > ? ORDER BY created_at DESC LIMIT 1`+forUpdate(ctx), email, ts(now)).
		Scan(&c.Email, &c.CodeHash, &created, &exp, &c.Attempts, &used)
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromTS(created), fromTS(exp), fromTS(used)
	return &c, notFound("login code", err)
}

func (s *Store) UpdateEmailCode(ctx context.Context, c *countersign.EmailCode) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE email_codes SET attempts = ?, used_at = ? WHERE email = ? AND code_hash = ?`, c.Attempts, ts(c.UsedAt), c.Email, c.CodeHash)
	return mustAffect(res, err, "login code")
}

// ---- daemon key blobs and accounts

func (s *Store) PutKeyBlob(ctx context.Context, id string, blob []byte) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO key_blobs (wallet_id, blob, updated_at) VALUES (?,?,?)
 ON CONFLICT (wallet_id) DO UPDATE SET blob = excluded.blob, updated_at = excluded.updated_at`, id, blob, ts(time.Now()))
	return err
}

func (s *Store) KeyBlob(ctx context.Context, id string) ([]byte, error) {
	var b []byte
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT blob FROM key_blobs WHERE wallet_id = ?`, id).Scan(&b)
	return b, notFound("wallet", err)
}

func (s *Store) KeyBlobIDs(ctx context.Context) ([]string, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT wallet_id FROM key_blobs ORDER BY wallet_id COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (string, error) {
		var id string
		return id, r.Scan(&id)
	})
}

const daemonAccountCols = `id, wallet_id, curve, path, address, public_key, evm_address, tags, created_at`

func scanDaemonAccount(r interface{ Scan(...any) error }) (*countersign.DaemonAccount, error) {
	var a countersign.DaemonAccount
	var at int64
	var tags string
	if err := r.Scan(&a.ID, &a.WalletID, &a.Curve, &a.Path, &a.Address, &a.PublicKey, &a.EVMAddress, &tags, &at); err != nil {
		return nil, err
	}
	a.CreatedAt = fromTS(at)
	a.Tags = map[string]string{}
	if err := json.Unmarshal([]byte(tags), &a.Tags); err != nil {
		return nil, fmt.Errorf("account %s: tags: %w", a.ID, err)
	}
	return &a, nil
}

func tagsJSON(tags map[string]string) string {
	if tags == nil {
		return "{}"
	}
	b, _ := json.Marshal(tags)
	return string(b)
}

func (s *Store) CreateDaemonAccount(ctx context.Context, a *countersign.DaemonAccount) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO daemon_accounts (`+daemonAccountCols+`) VALUES (?,?,?,?,?,?,?,?,?)`,
		a.ID, a.WalletID, a.Curve, a.Path, a.Address, a.PublicKey, a.EVMAddress, tagsJSON(a.Tags), ts(a.CreatedAt))
	return conflict(err, "this account is already derived")
}

func (s *Store) SetDaemonAccountTags(ctx context.Context, id string, tags map[string]string) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE daemon_accounts SET tags = ? WHERE id = ?`, tagsJSON(tags), id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return countersign.Errorf(countersign.NotFound, "account not found")
	}
	return nil
}

func (s *Store) DaemonAccount(ctx context.Context, id string) (*countersign.DaemonAccount, error) {
	a, err := scanDaemonAccount(s.reader(ctx).QueryRowContext(ctx, `SELECT `+daemonAccountCols+` FROM daemon_accounts WHERE id = ?`, id))
	return a, notFound("account", err)
}

func (s *Store) DaemonAccounts(ctx context.Context, walletID string) ([]*countersign.DaemonAccount, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+daemonAccountCols+` FROM daemon_accounts WHERE wallet_id = ? ORDER BY created_at, id COLLATE "C"`, walletID)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDaemonAccount)
}

func (s *Store) DaemonAccountByAddress(ctx context.Context, addr string) (*countersign.DaemonAccount, error) {
	a, err := scanDaemonAccount(s.reader(ctx).QueryRowContext(ctx, `SELECT `+daemonAccountCols+` FROM daemon_accounts WHERE address = ? ORDER BY created_at LIMIT 1`, addr))
	return a, notFound("account", err)
}

// ---- mock ledger

func (s *Store) LedgerBalance(ctx context.Context, addr string) (*big.Int, error) {
	var u string
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT units FROM ledger_balances WHERE address = ?`, addr).Scan(&u)
	if errors.Is(err, sql.ErrNoRows) {
		return new(big.Int), nil
	}
	if err != nil {
		return nil, err
	}
	v, ok := new(big.Int).SetString(u, 10)
	if !ok {
		return nil, fmt.Errorf("ledger: corrupt balance for %s", addr)
	}
	return v, nil
}

// LedgerMove locks both balance rows (created at 0 when missing, in
// address order so two opposite moves cannot deadlock) and then reads,
// checks and writes them: two concurrent moves from one address cannot
// both spend the same balance.
func (s *Store) LedgerMove(ctx context.Context, from, to string, units *big.Int) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		addrs := []string{to}
		if from != "" && from != to {
			addrs = append(addrs, from)
		}
		sort.Strings(addrs)
		for _, a := range addrs {
			if _, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO ledger_balances (address, units) VALUES (?, '0') ON CONFLICT (address) DO NOTHING`, a); err != nil {
				return err
			}
			if _, err := s.writer(ctx).ExecContext(ctx, `SELECT 1 FROM ledger_balances WHERE address = ? FOR UPDATE`, a); err != nil {
				return err
			}
		}
		if from != "" {
			bal, err := s.LedgerBalance(ctx, from)
			if err != nil {
				return err
			}
			if bal.Cmp(units) < 0 {
				return countersign.Errorf(countersign.InsufficientFunds, "%s holds less than the amount", from)
			}
			if err := s.setLedger(ctx, from, new(big.Int).Sub(bal, units)); err != nil {
				return err
			}
		}
		bal, err := s.LedgerBalance(ctx, to)
		if err != nil {
			return err
		}
		return s.setLedger(ctx, to, new(big.Int).Add(bal, units))
	})
}

func (s *Store) setLedger(ctx context.Context, addr string, v *big.Int) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO ledger_balances (address, units) VALUES (?, ?)
 ON CONFLICT (address) DO UPDATE SET units = excluded.units`, addr, v.String())
	return err
}

func (s *Store) AddLedgerTx(ctx context.Context, t *countersign.LedgerTx) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO ledger_txs (id, from_addr, to_addr, units, memo, canonical, signature, public_key, created_at) VALUES (?,?,?,?,?,?,?,?,?)`,
		t.ID, t.From, t.To, t.Units.String(), t.Memo, t.Canonical, t.Signature, t.PublicKey, ts(t.CreatedAt))
	return err
}

func (s *Store) LedgerTxByID(ctx context.Context, id string) (*countersign.LedgerTx, error) {
	var t countersign.LedgerTx
	var units string
	var at int64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT id, from_addr, to_addr, units, memo, canonical, signature, public_key, created_at FROM ledger_txs WHERE id = ?`, id).
		Scan(&t.ID, &t.From, &t.To, &units, &t.Memo, &t.Canonical, &t.Signature, &t.PublicKey, &at)
	if err != nil {
		return nil, notFound("ledger transaction", err)
	}
	t.Units, _ = new(big.Int).SetString(units, 10)
	t.CreatedAt = fromTS(at)
	return &t, nil
}

// ---- webhooks

func (s *Store) CreateWebhook(ctx context.Context, w *countersign.Webhook) error {
	ev, _ := json.Marshal(w.Events)
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO webhooks (id, owner_id, url, events, secret_sealed, created_at) VALUES (?,?,?,?,?,?)`,
		w.ID, w.OwnerID, w.URL, string(ev), w.SecretSealed, ts(w.CreatedAt))
	return err
}

func scanWebhook(r interface{ Scan(...any) error }) (*countersign.Webhook, error) {
	var w countersign.Webhook
	var ev string
	var at int64
	if err := r.Scan(&w.ID, &w.OwnerID, &w.URL, &ev, &w.SecretSealed, &at); err != nil {
		return nil, err
	}
	_ = json.Unmarshal([]byte(ev), &w.Events)
	w.CreatedAt = fromTS(at)
	return &w, nil
}

func (s *Store) Webhook(ctx context.Context, id string) (*countersign.Webhook, error) {
	w, err := scanWebhook(s.reader(ctx).QueryRowContext(ctx, `SELECT id, owner_id, url, events, secret_sealed, created_at FROM webhooks WHERE id = ?`, id))
	return w, notFound("webhook", err)
}

func (s *Store) WebhooksFor(ctx context.Context, owner string) ([]*countersign.Webhook, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT id, owner_id, url, events, secret_sealed, created_at FROM webhooks WHERE owner_id = ? OR owner_id = 'daemon' ORDER BY created_at`, owner)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanWebhook)
}

const deliveryCols = `id, webhook_id, event_id, event_type, payload, status, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at`

func scanDelivery(r interface{ Scan(...any) error }) (*countersign.Delivery, error) {
	var d countersign.Delivery
	var next, created, delivered int64
	err := r.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.EventType, &d.Payload, &d.Status, &d.Attempts, &next, &d.LastStatus, &d.LastError, &created, &delivered)
	d.NextAttemptAt, d.CreatedAt, d.DeliveredAt = fromTS(next), fromTS(created), fromTS(delivered)
	return &d, err
}

func (s *Store) AddDelivery(ctx context.Context, d *countersign.Delivery) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO webhook_deliveries (`+deliveryCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
		d.ID, d.WebhookID, d.EventID, d.EventType, d.Payload, d.Status, d.Attempts, ts(d.NextAttemptAt), d.LastStatus, d.LastError, ts(d.CreatedAt), ts(d.DeliveredAt))
	return err
}

func (s *Store) DueDeliveries(ctx context.Context, now time.Time, limit int) ([]*countersign.Delivery, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`, ts(now), limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDelivery)
}

func (s *Store) UpdateDelivery(ctx context.Context, d *countersign.Delivery) error {
	res, err := s.writer(ctx).ExecContext(ctx, `UPDATE webhook_deliveries SET status=?, attempts=?, next_attempt_at=?, last_status=?, last_error=?, delivered_at=? WHERE id=?`,
		d.Status, d.Attempts, ts(d.NextAttemptAt), d.LastStatus, d.LastError, ts(d.DeliveredAt), d.ID)
	return mustAffect(res, err, "delivery")
}

func (s *Store) Deliveries(ctx context.Context, webhookID string, limit int) ([]*countersign.Delivery, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE webhook_id = ? ORDER BY created_at DESC, id COLLATE "C" LIMIT ?`, webhookID, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, scanDelivery)
}

func (s *Store) AllEventsAfter(ctx context.Context, after int64, limit int) ([]*countersign.Event, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT id, owner_id, type, subject, payload, created_at FROM events WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.Event, error) {
		var e countersign.Event
		var at int64
		err := r.Scan(&e.ID, &e.OwnerID, &e.Type, &e.Subject, &e.Payload, &at)
		e.CreatedAt = fromTS(at)
		return &e, err
	})
}

func (s *Store) LastEventIDAll(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT MAX(id) FROM events`).Scan(&n)
	return n.Int64, err
}

// ---- tokens and keys

func (s *Store) RevokeToken(ctx context.Context, jti string, exp time.Time) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING`, jti, ts(exp))
	if err != nil {
		return err
	}
	// Expired tokens fail verification anyway; keep the table small.
	_, err = s.writer(ctx).ExecContext(ctx, `DELETE FROM revoked_tokens WHERE expires_at < ?`, ts(time.Now().Add(-time.Hour)))
	return err
}

func (s *Store) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	var n int
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT COUNT(*) FROM revoked_tokens WHERE jti = ?`, jti).Scan(&n)
	return n > 0, err
}

func (s *Store) SigningKeys(ctx context.Context) ([]*countersign.SigningKey, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT kid, alg, sealed, public, created_at FROM signing_keys ORDER BY created_at DESC`)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (*countersign.SigningKey, error) {
		var k countersign.SigningKey
		var at int64
		err := r.Scan(&k.KID, &k.Alg, &k.Sealed, &k.Public, &at)
		k.CreatedAt = fromTS(at)
		return &k, err
	})
}

func (s *Store) AddSigningKey(ctx context.Context, k *countersign.SigningKey) error {
	_, err := s.unique(ctx).ExecContext(ctx, `INSERT INTO signing_keys (kid, alg, sealed, public, created_at) VALUES (?,?,?,?,?)`, k.KID, k.Alg, k.Sealed, k.Public, ts(k.CreatedAt))
	return conflict(err, "signing key exists")
}
