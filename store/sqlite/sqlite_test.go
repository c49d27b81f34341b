package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/store/sqlite"
	"github.com/countersign/countersign/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) countersign.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db", "test.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestFileModeAndReopen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.db")
	s, err := sqlite.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	info, _ := os.Stat(p)
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("database mode %v", info.Mode().Perm())
	}
	s, err = sqlite.Open(context.Background(), p) // migrations are idempotent
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := sqlite.Open(context.Background(), ":memory:"); err == nil {
		t.Fatal(":memory: accepted")
	}
}

// The writer does not checkpoint; the background checkpointer copies the
// WAL into the database file, and closing leaves no WAL behind.
func TestBackgroundCheckpoints(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "ck.db")
	s, err := sqlite.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(p)
	big := strings.Repeat("x", 4000)
	var entries []*countersign.AuditEntry
	for i := int64(1); i <= 1000; i++ {
		entries = append(entries, &countersign.AuditEntry{OwnerID: "o", Seq: i, At: time.Now(), Actor: "a", Action: "x", Details: big, PrevHash: []byte{0}, Hash: []byte{1}})
	}
	for i := 0; i < len(entries); i += 50 {
		if err := s.AppendAudit(ctx, entries[i:i+50]...); err != nil {
			t.Fatal(err)
		}
	}
	// about 4 MB went to the WAL; within a few checkpoint periods it is in the file
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, _ := os.Stat(p)
		if info.Size() > before.Size()+3<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("database file is %d bytes: the WAL was not checkpointed", info.Size())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p + "-wal"); !os.IsNotExist(err) {
		t.Fatalf("WAL left after close: %v", err)
	}
	s, err = sqlite.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if l, _ := s.AuditEntries(ctx, "o", 0, 2000); len(l) != 1000 {
		t.Fatalf("%d entries after reopening", len(l))
	}
}
