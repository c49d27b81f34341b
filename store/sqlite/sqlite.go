// Package sqlite implements countersign.Store on SQLite (pure Go, no cgo),
// the embedded default. Writes go through one connection so SQLite's single
// writer never sees lock contention; reads use a separate pool.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/countersign/countersign"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Store is a countersign.Store backed by one SQLite file.
type Store struct {
	w           *sql.DB       // one connection: every write transaction
	r           *sql.DB       // readers
	ck          *sql.DB       // one connection: WAL checkpoints, off the writer's path
	stmts       sync.Map      // stmtKey → *sql.Stmt
	pending     sync.Map      // stmtKey → struct{}: seen inside a transaction, to prepare after it
	hasPending  atomic.Bool   // pending may hold a statement
	prepareKick chan struct{} // wakes checkpoints to prepare what is pending

	stopCheckpoints chan struct{}
	checkpointsDone chan struct{}
}

// CheckpointEvery is how often the WAL is copied back into the database
// file. The writer never checkpoints itself (wal_autocheckpoint is off on
// its connection): a checkpoint fsyncs, and a commit that runs one makes
// every caller waiting on that commit wait for the disk too. A separate
// connection runs PASSIVE checkpoints, which never block writers.
var CheckpointEvery = time.Second

// walRestartFrames is the WAL size (in frames, 4 KiB each) beyond which a
// checkpoint may briefly wait for readers so the WAL starts over: it
// bounds the file under sustained writes.
const walRestartFrames = 16384

var _ countersign.Store = (*Store)(nil)

// Open opens (creating if needed) the database at path and applies
// migrations. path ":memory:" is refused: readers and the writer must share
// a file.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" {
		return nil, errors.New("sqlite: a file path is required")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "foreign_keys(1)")
	// FULL, not NORMAL: in WAL mode NORMAL does not fsync the WAL at commit,
	// so a power loss or OS crash can roll back a commit that was already
	// acted on. The commit that stores a signed transaction and its nonce
	// is followed by the broadcast; rolled back, the row is authorized
	// again with the nonce counter behind, and a retried execute signs a
	// second transaction — paid twice. The same goes for approvals, TOTP
	// steps (a code accepted twice) and the daemon's group commit, which
	// acknowledges a signature once its audit row is committed. The cost
	// is one fsync per commit (BENCHMARKS.md, "synchronous=FULL").
	q.Add("_pragma", "synchronous(FULL)")
	// The savepoints a group of changes runs its parts in keep their undo
	// pages in a statement journal, a temporary file by default: a write
	// syscall per page, 6 % of a prepare's CPU. In memory it is the same
	// journal (it rolls a part back, it plays no part in crash recovery:
	// the WAL does) without the syscalls.
	q.Add("_pragma", "temp_store(MEMORY)")
	q.Set("_txlock", "immediate")
	dsn := "file:" + path + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn+"&_pragma=wal_autocheckpoint(0)")
	if err != nil {
		return nil, err
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, err
	}
	r.SetMaxOpenConns(8)
	// Keep every reader open: database/sql keeps two idle by default, so
	// under load the others were closed and reopened per query, each new
	// connection running the pragmas and preparing its statements again
	// (a quarter of a status request's CPU).
	r.SetMaxIdleConns(8)
	// The checkpointer waits at most 100 ms for a lock: a RESTART checkpoint
	// holds writers back while it waits for readers, and must not for long.
	ck, err := sql.Open("sqlite", checkpointDSN(dsn))
	if err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	ck.SetMaxOpenConns(1)
	s := &Store{w: w, r: r, ck: ck, stopCheckpoints: make(chan struct{}), checkpointsDone: make(chan struct{}), prepareKick: make(chan struct{}, 1)}
	if err := s.migrate(ctx); err != nil {
		close(s.checkpointsDone)
		s.Close()
		return nil, err
	}
	go s.checkpoints()
	return s, nil
}

// privateFiles creates the database file with mode 0600 before SQLite
// opens it, and narrows the database, WAL and shared-memory files an
// earlier run left to 0600. SQLite creates the -wal and -shm files with
// the mode of the database file: a database SQLite created itself under a
// umask of 022 had world-readable WAL files, and every row written (sealed
// keys, password hashes, audit details) passes through the WAL.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// checkpointDSN is dsn with a 100 ms busy timeout.
func checkpointDSN(dsn string) string {
	return strings.Replace(dsn, url.QueryEscape("busy_timeout(10000)"), url.QueryEscape("busy_timeout(100)"), 1)
}

// checkpoints runs a PASSIVE checkpoint every CheckpointEvery, and a
// RESTART one when the WAL has grown past walRestartFrames; woken by
// InTx, it also prepares the statements first met inside a transaction.
func (s *Store) checkpoints() {
	defer close(s.checkpointsDone)
	t := time.NewTicker(CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stopCheckpoints:
			return
		case <-s.prepareKick:
			s.preparePending()
		case <-t.C:
			var busy, frames, done int
			ctx := context.Background()
			if err := s.ck.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &done); err != nil {
				continue
			}
			if frames > walRestartFrames {
				_ = s.ck.QueryRowContext(ctx, `PRAGMA wal_checkpoint(RESTART)`).Scan(&busy, &frames, &done)
			}
		}
	}
}

func (s *Store) migrate(ctx context.Context) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, s.w, mustSub(migrations, "migrations"))
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// SerialWrites: a write transaction holds the one writer connection
// (countersign.SerialWriter).
func (s *Store) SerialWrites() bool { return true }

// Close stops checkpointing, closes the prepared statements and the pools
// (the last connection to close checkpoints the WAL into the file).
func (s *Store) Close() error {
	select {
	case <-s.stopCheckpoints:
	default:
		close(s.stopCheckpoints)
	}
	<-s.checkpointsDone
	s.stmts.Range(func(k, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return errors.Join(s.ck.Close(), s.r.Close(), s.w.Close())
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.r.PingContext(ctx) }

type txKey struct{}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryRowScan(ctx context.Context, query string, args ...any) *sql.Row // cached.QueryRowScan
}

// reader returns the transaction in ctx, or the read pool.
func (s *Store) reader(ctx context.Context) querier {
	if tx, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return cached{s: s, db: s.w, tx: tx}
	}
	return cached{s: s, db: s.r}
}

// writer returns the transaction in ctx, or the write connection.
func (s *Store) writer(ctx context.Context) querier {
	if tx, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return cached{s: s, db: s.w, tx: tx}
	}
	return cached{s: s, db: s.w}
}

// cached runs statements through prepared statements kept per pool and
// query text: SQLite otherwise parses the same SQL on every call, which was
// a fifth of the daemon's signing path.
type cached struct {
	s  *Store
	db *sql.DB
	tx *sql.Tx
}

type stmtKey struct {
	db *sql.DB
	q  string
}

func (c cached) stmt(ctx context.Context, q string) *sql.Stmt {
	k := stmtKey{c.db, q}
	if v, ok := c.s.stmts.Load(k); ok {
		st := v.(*sql.Stmt)
		if c.tx != nil {
			return c.tx.StmtContext(ctx, st)
		}
		return st
	}
	if c.tx != nil {
		// The writer's only connection is the transaction's: preparing on
		// the pool now would wait for it forever. Run this one unprepared
		// and prepare it once the transaction is over.
		c.s.pending.Store(k, struct{}{})
		c.s.hasPending.Store(true)
		return nil
	}
	st, err := c.db.PrepareContext(ctx, q) // the caller's context bounds the wait for a connection; the statement outlives it
	if err != nil {
		return nil // run unprepared (a caller whose context ended gets its error there)
	}
	if prev, loaded := c.s.stmts.LoadOrStore(k, st); loaded {
		st.Close()
		st = prev.(*sql.Stmt)
	}
	if c.tx != nil {
		return c.tx.StmtContext(ctx, st)
	}
	return st
}

func (c cached) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := c.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	if c.tx != nil {
		return c.tx.ExecContext(ctx, q, args...)
	}
	return c.db.ExecContext(ctx, q, args...)
}

func (c cached) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := c.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	if c.tx != nil {
		return c.tx.QueryContext(ctx, q, args...)
	}
	return c.db.QueryContext(ctx, q, args...)
}

func (c cached) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if _, deadline := ctx.Deadline(); c.tx == nil && c.db == c.s.r && !deadline {
		// A one-row read on the read pool is a lookup by key that takes
		// microseconds and, under WAL, waits on no writer. A context that
		// can end costs database/sql and the driver a watcher goroutine
		// each, which was a quarter of an agent's status poll: such reads
		// run to the end when their caller can only be cancelled (an HTTP
		// request whose client left). A caller with a deadline keeps it,
		// for the wait for a free read connection too; a write, a list
		// that may be long, and a one-row aggregate over many rows
		// (QueryRowScan) can still be cut short by their caller.
		ctx = context.WithoutCancel(ctx)
	}
	return c.queryRow(ctx, q, args...)
}

// QueryRowScan is QueryRowContext for a one-row answer that reads many
// rows (a count, an existence test over an owner's history): it always
// keeps the caller's context.
func (c cached) QueryRowScan(ctx context.Context, q string, args ...any) *sql.Row {
	return c.queryRow(ctx, q, args...)
}

func (c cached) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	if st := c.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	if c.tx != nil {
		return c.tx.QueryRowContext(ctx, q, args...)
	}
	return c.db.QueryRowContext(ctx, q, args...)
}

// InTx runs fn in one immediate (write-locked) transaction. Nested calls
// join the outer transaction.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, ok := ctx.Value(txKey{}).(*sql.Tx); ok {
		return fn(ctx)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer s.schedulePrepare()
	if err := fn(context.WithValue(ctx, txKey{}, tx)); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// schedulePrepare has the statements first met inside a transaction
// prepared once it is over, by the checkpoints goroutine rather than the
// caller: preparing on the writer needs its one connection, which the
// next transaction may hold while it waits for something this caller does
// after its commit (the grouped changes' turn, core/groupcommit.go).
func (s *Store) schedulePrepare() {
	if s.hasPending.Swap(false) {
		select {
		case s.prepareKick <- struct{}{}:
		default: // already woken: it will see every statement stored so far
		}
	}
}

// preparePending prepares, outside any transaction, the statements first
// met inside one.
func (s *Store) preparePending() {
	s.pending.Range(func(k, _ any) bool {
		s.pending.Delete(k)
		key := k.(stmtKey)
		if _, ok := s.stmts.Load(key); ok {
			return true
		}
		if st, err := key.db.Prepare(key.q); err == nil {
			if _, loaded := s.stmts.LoadOrStore(key, st); loaded {
				st.Close()
			}
		}
		return true
	})
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

func conflict(err error, detail string) error {
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return countersign.Wrap(countersign.Conflict, err, detail)
	}
	return err
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
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES (?,?,?,?,?,?,?,?,?,?)`,
		u.ID, u.Username, u.PasswordHash, u.MFASealed, b2i(u.MFAEnabled), u.MFALastStep, u.MFAFailures, ts(u.MFALockedUntil), ts(u.CreatedAt), u.MFAPending)
	return conflict(err, "username is taken")
}

func (s *Store) UserByID(ctx context.Context, id string) (*countersign.User, error) {
	u, err := scanUser(s.reader(ctx).QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	return u, notFound("user", err)
}

func (s *Store) UserByName(ctx context.Context, name string) (*countersign.User, error) {
	u, err := scanUser(s.reader(ctx).QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE username = ?`, name))
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
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO wallets (`+walletCols+`) VALUES (?,?,?,?,?,?,?)`,
		w.ID, w.OwnerID, w.Name, w.Address, w.KeyFormat, w.KeySealed, ts(w.CreatedAt))
	return conflict(err, "wallet already exists")
}

func (s *Store) WalletsByKeyFormat(ctx context.Context, format string) ([]*countersign.Wallet, error) {
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+walletCols+` FROM wallets WHERE key_format = ? ORDER BY created_at, id`, format)
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
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+walletCols+` FROM wallets WHERE owner_id = ? ORDER BY created_at, id`, owner)
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
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO agents (`+agentCols+`) VALUES (?,?,?,?,?,?,?,?,?)`,
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
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+agentCols+` FROM agents WHERE owner_id = ? ORDER BY created_at, id`, owner)
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

func nullU64(p *uint64) any {
	if p == nil {
		return nil
	}
	return int64(*p)
}

func (s *Store) CreateTransaction(ctx context.Context, t *countersign.Transaction) error {
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO transactions (`+txCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		t.ID, t.OwnerID, t.AgentID, t.WalletID, t.ChainID, t.Type, t.From, t.To, t.Amount, t.TokenAddress,
		t.ContractAddress, t.ContractABI, t.FunctionName, t.FunctionArgs, t.Value, t.Memo, t.TxTo, t.TxValue, t.TxData, t.Digest,
		t.ApprovedDigest, t.DecidedBy, ts(t.DecidedAt), t.Reason, t.Status, nullU64(t.Nonce), t.RawTx, t.TxHash, nullU64(t.BlockNumber), t.Error,
		t.IdempotencyKey, t.RequestHash, ts(t.ExpiresAt), ts(t.CreatedAt), ts(t.UpdatedAt), t.Message, t.Signature,
		int64(t.GasLimit), t.MaxFeePerGas, ts(t.CheckedAt), t.Broadcasts, ts(t.NextBroadcastAt),
		t.Decision, t.RuleID, policyWarningsJSON(t.PolicyWarnings), ts(t.AuthorizeAt), t.ApprovalsNeeded)
	return conflict(err, "a transaction with this Idempotency-Key already exists")
}

func (s *Store) Transaction(ctx context.Context, id string) (*countersign.Transaction, error) {
	// Inside InTx the immediate transaction already holds SQLite's write
	// lock, which serialises every writer: that is the row lock.
	t, err := scanTx(s.reader(ctx).QueryRowContext(ctx, `SELECT `+txCols+` FROM transactions WHERE id = ?`, id))
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
	q += fmt.Sprintf(` ORDER BY created_at DESC, id DESC LIMIT %d`, limit)
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
	err := s.reader(ctx).QueryRowScan(ctx, paymentHistorySQL,
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
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+txCols+` FROM transactions WHERE status = ? ORDER BY checked_at, created_at, id LIMIT ?`, st, limit)
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

func (s *Store) NextNonce(ctx context.Context, chainID int64, addr string, floor uint64) (uint64, error) {
	var n uint64
	err := s.InTx(ctx, func(ctx context.Context) error {
		var stored sql.NullInt64
		err := s.writer(ctx).QueryRowContext(ctx, `SELECT next_nonce FROM nonces WHERE chain_id = ? AND address = ?`, chainID, addr).Scan(&stored)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		n = floor
		if stored.Valid && uint64(stored.Int64) > n {
			n = uint64(stored.Int64)
		}
		_, err = s.writer(ctx).ExecContext(ctx, `INSERT INTO nonces (chain_id, address, next_nonce) VALUES (?,?,?)
 ON CONFLICT (chain_id, address) DO UPDATE SET next_nonce = excluded.next_nonce`, chainID, addr, int64(n+1))
		return err
	})
	return n, err
}

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

// maxRowsPerInsert keeps multi-row inserts well under SQLite's limit of
// bound parameters.
const maxRowsPerInsert = 100

// valuesList is "(?,…,?),(?,…,?)…": rows groups of cols placeholders.
func valuesList(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", rows), ",")
}

func (s *Store) AppendAudit(ctx context.Context, entries ...*countersign.AuditEntry) error {
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
func (s *Store) AuditEntries(ctx context.Context, owner string, afterSeq int64, limit int) ([]*countersign.AuditEntry, error) {
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
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT DISTINCT owner_id FROM audit ORDER BY owner_id`)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r interface{ Scan(...any) error }) (string, error) {
		var s string
		return s, r.Scan(&s)
	})
}

func (s *Store) AddEvent(ctx context.Context, events ...*countersign.Event) error {
	for len(events) > 0 {
		n := min(len(events), maxRowsPerInsert)
		args := make([]any, 0, 5*n)
		for _, e := range events[:n] {
			args = append(args, e.OwnerID, e.Type, e.Subject, e.Payload, ts(e.CreatedAt))
		}
		res, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO events (owner_id, type, subject, payload, created_at) VALUES `+valuesList(n, 5), args...)
		if err != nil {
			return err
		}
		// One statement, one writer: AUTOINCREMENT gives the rows
		// consecutive ids in VALUES order, ending at the last insert id.
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for i, e := range events[:n] {
			e.ID = last - int64(n-1-i)
		}
		events = events[n:]
	}
	return nil
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

func (s *Store) SetRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	return s.InTx(ctx, func(ctx context.Context) error {
		// replaced codes are kept as spent (used_at -1): a late copy of one is
		// a replay, not a guess
		if _, err := s.writer(ctx).ExecContext(ctx, `UPDATE recovery_codes SET used_at = -1 WHERE user_id = ? AND used_at = 0`, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := s.writer(ctx).ExecContext(ctx, `INSERT OR REPLACE INTO recovery_codes (user_id, code_hash, used_at) VALUES (?, ?, 0)`, userID, h); err != nil {
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
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO identity_links (identity_type, identity_value, omni_account, created_at) VALUES (?,?,?,?)`, typ, value, omni, ts(at))
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
	err := s.InTx(ctx, func(ctx context.Context) error {
		var exp, used int64
		err := s.writer(ctx).QueryRowContext(ctx, `SELECT id, address, message, nonce, expires_at, used_at FROM siwe_requests WHERE id = ?`, id).
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

func (s *Store) LatestEmailCode(ctx context.Context, email string, now time.Time) (*countersign.EmailCode, error) {
	var c countersign.EmailCode
	var created, exp, used int64
	err := s.reader(ctx).QueryRowContext(ctx, `SELECT email, code_hash, created_at, expires_at, attempts, used_at FROM email_codes
 WHERE email = ? AND used_at = 0 AND expires_at > ? ORDER BY created_at DESC LIMIT 1`, email, ts(now)).
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
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT wallet_id FROM key_blobs ORDER BY wallet_id`)
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
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO daemon_accounts (`+daemonAccountCols+`) VALUES (?,?,?,?,?,?,?,?,?)`,
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
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+daemonAccountCols+` FROM daemon_accounts WHERE wallet_id = ? ORDER BY created_at, id`, walletID)
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

func (s *Store) LedgerMove(ctx context.Context, from, to string, units *big.Int) error {
	return s.InTx(ctx, func(ctx context.Context) error {
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
	rows, err := s.reader(ctx).QueryContext(ctx, `SELECT `+deliveryCols+` FROM webhook_deliveries WHERE webhook_id = ? ORDER BY created_at DESC, id LIMIT ?`, webhookID, limit)
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
	_, err := s.writer(ctx).ExecContext(ctx, `INSERT INTO signing_keys (kid, alg, sealed, public, created_at) VALUES (?,?,?,?,?)`, k.KID, k.Alg, k.Sealed, k.Public, ts(k.CreatedAt))
	return conflict(err, "signing key exists")
}
