package sqlite

import (
	"context"
	"path/filepath"
	"testing"
)

// Every write goes through the writer connection, and it commits with
// synchronous=FULL: in WAL mode NORMAL does not fsync the WAL at commit,
// so a power loss could roll back a commit that stored a signed
// transaction after it was broadcast (a retried execute then signs a
// second one), an approval, or an accepted TOTP step. The old code set
// NORMAL (1). What a power loss itself does cannot be tested here: this
// checks the setting SQLite documents as durable.
func TestMoney_SQLiteWritesSynchronousFull(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode int
	if err := s.w.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != 2 { // 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA
		t.Fatalf("writer connection: synchronous=%d, want 2 (FULL)", mode)
	}
	// and inside a write transaction, on the connection the store hands out
	err = s.InTx(ctx, func(ctx context.Context) error {
		return s.writer(ctx).QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&mode)
	})
	if err != nil || mode != 2 {
		t.Fatalf("in a transaction: synchronous=%d %v, want 2 (FULL)", mode, err)
	}
	var journal string
	if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil || journal != "wal" {
		t.Fatalf("journal_mode %q %v", journal, err)
	}
	// a group's savepoints journal their pages in memory, not in a
	// temporary file written page by page (0 DEFAULT, 1 FILE, 2 MEMORY)
	var temp int
	if err := s.w.QueryRowContext(ctx, `PRAGMA temp_store`).Scan(&temp); err != nil || temp != 2 {
		t.Fatalf("temp_store=%d %v, want 2 (MEMORY)", temp, err)
	}
}
