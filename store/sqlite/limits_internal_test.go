package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/countersign/countersign"
)

// TestSecurity_LimitWindowsBoundedUnderSpray: a spray of fresh keys (one
// guess from each of many addresses) leaves rows only for windows that
// have not ended: each later attempt prunes ended ones, so the table does
// not grow with the spray's length.
func TestSecurity_LimitWindowsBoundedUnderSpray(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "l.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Unix(1700000000, 0)
	rows := func() int {
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT count(*) FROM limit_windows`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := range 1200 {
		at := now.Add(time.Duration(i/100) * time.Second) // 100 fresh keys a second, windows of one second
		if _, err := s.CountAttempt(ctx, []countersign.LimitKey{{Key: fmt.Sprintf("spray:%d", i), Max: 1}}, time.Second, at); err != nil {
			t.Fatal(err)
		}
	}
	if n := rows(); n > 200 {
		t.Fatalf("%d rows after a spray of 1200 keys with 100 live at a time", n)
	}
}
