package sqlite

import (
	"net/url"
	"strings"
	"testing"
)

func TestCheckpointDSN(t *testing.T) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "busy_timeout(10000)")
	dsn := "file:/x/y.db?" + q.Encode()
	got := checkpointDSN(dsn)
	if got == dsn || !strings.Contains(got, url.QueryEscape("busy_timeout(100)")) || strings.Contains(got, "10000") {
		t.Fatalf("checkpoint DSN %q", got)
	}
}
