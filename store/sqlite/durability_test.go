package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/store/sqlite"
)

// withUmask runs the test under umask 022 (the usual default), which is
// what made SQLite create world-readable -wal and -shm files.
func withUmask(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
}

func writeSomething(t *testing.T, s *sqlite.Store) {
	t.Helper()
	err := s.AppendAudit(context.Background(), &countersign.AuditEntry{OwnerID: "o", Seq: 1, At: time.Now(), Actor: "a", Action: "x",
		Details: "{}", PrevHash: []byte{0}, Hash: []byte{1}})
	if err != nil {
		t.Fatal(err)
	}
}

func assertPrivate(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if m := info.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %v, want 0600: others could read what passes through it", filepath.Base(p), m)
		}
	}
}

// The database, its WAL and its shared-memory file are all 0600 while the
// store is open and written to. On the old code SQLite created the -wal
// and -shm files 0644 under umask 022 (the database was chmod-ed only
// after opening), so every row written was readable by any local user.
func TestSecurity_SQLiteFilesPrivate(t *testing.T) {
	withUmask(t)
	p := filepath.Join(t.TempDir(), "db", "c.db")
	s, err := sqlite.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeSomething(t, s)
	assertPrivate(t, p, p+"-wal", p+"-shm")
}

// Files an older version (or a copy) left readable are narrowed at open,
// before SQLite reads the WAL.
func TestSecurity_SQLiteExistingFilesNarrowed(t *testing.T) {
	withUmask(t)
	p := filepath.Join(t.TempDir(), "c.db")
	s, err := sqlite.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	writeSomething(t, s)
	s.Close()
	for _, f := range []string{p, p + "-wal", p + "-shm"} {
		if err := os.WriteFile(f, nil, 0o644); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// an empty -wal and -shm are valid leftovers: SQLite rebuilds them
	s, err = sqlite.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeMore(t, s)
	assertPrivate(t, p, p+"-wal", p+"-shm")
}

func writeMore(t *testing.T, s *sqlite.Store) {
	t.Helper()
	if err := s.AddSigningKey(context.Background(), &countersign.SigningKey{KID: "k", Alg: "ES256", Sealed: []byte{1}, Public: []byte{2}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
}
