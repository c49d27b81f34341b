package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
