package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/store/sqlite"
)

func openTemp(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "c.db")
	s, err := sqlite.Open(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, p
}

func addUser(t *testing.T, s *sqlite.Store, i int, sealed []byte) {
	t.Helper()
	u := &countersign.User{ID: fmt.Sprintf("u%03d", i), Username: fmt.Sprintf("user%03d", i), PasswordHash: "x", MFASealed: sealed, CreatedAt: time.Now()}
	if err := s.CreateUser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
}

// SealedValues pages through one kind in id order and leaves out empty
// values; ReplaceSealed swaps only a value still as read (a value the
// server changed meanwhile is left alone).
func TestResealer(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	for i := range 5 {
		var sealed []byte
		if i != 2 {
			sealed = []byte(fmt.Sprintf("sealed-%d", i))
		}
		addUser(t, s, i, sealed)
	}
	if err := s.CreateWallet(ctx, &countersign.Wallet{ID: "w1", OwnerID: "u000", Name: "w", Address: "0x01", KeySealed: []byte("k"), KeyFormat: countersign.WalletKeyKDB, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	page1, err := s.SealedValues(ctx, countersign.SealedMFA, "", 2)
	if err != nil || len(page1) != 2 || page1[0].ID != "u000" || page1[1].ID != "u001" {
		t.Fatalf("page 1: %v %v", page1, err)
	}
	page2, err := s.SealedValues(ctx, countersign.SealedMFA, page1[1].ID, 10)
	if err != nil || len(page2) != 2 || page2[0].ID != "u003" {
		t.Fatalf("page 2 (u002 has no MFA): %v %v", page2, err)
	}
	ws, err := s.SealedValues(ctx, countersign.SealedWallet, "", 10)
	if err != nil || len(ws) != 1 || ws[0].Format != countersign.WalletKeyKDB || ws[0].RecordID() != "wallet-kdb-secret:w1" {
		t.Fatalf("wallets: %+v %v", ws, err)
	}
	if _, err := s.SealedValues(ctx, "users; DROP TABLE users", "", 1); err == nil {
		t.Fatal("an unknown kind accepted")
	}
	v := page1[0]
	if ok, err := s.ReplaceSealed(ctx, v, []byte("new")); err != nil || !ok {
		t.Fatalf("replace: %v %v", ok, err)
	}
	if ok, err := s.ReplaceSealed(ctx, v, []byte("newer")); err != nil || ok {
		t.Fatalf("replace of a stale value: %v %v", ok, err)
	}
	u, _ := s.UserByID(ctx, "u000")
	if string(u.MFASealed) != "new" {
		t.Fatalf("stored %q", u.MFASealed)
	}
}

// BackupTo writes a snapshot (0600) that opens as a database while a
// writer keeps committing, and never overwrites a file.
func TestBackupToWhileWriting(t *testing.T) {
	s, _ := openTemp(t)
	for i := range 10 {
		addUser(t, s, i, []byte("s"))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 100; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			addUser(t, s, i, []byte("s"))
		}
	}()
	out := filepath.Join(t.TempDir(), "snap.db")
	err := s.BackupTo(context.Background(), out)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(out)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot: %v %v", info, err)
	}
	if err := s.BackupTo(context.Background(), out); err == nil {
		t.Fatal("BackupTo overwrote a file")
	}
	snap, err := sqlite.Open(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Close()
	vs, err := snap.SealedValues(context.Background(), countersign.SealedMFA, "", 100000)
	if err != nil || len(vs) < 10 {
		t.Fatalf("snapshot holds %d users: %v", len(vs), err)
	}
}
