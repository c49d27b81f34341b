package sqlite

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestQueryPlans: the queries that run on every poll or every request find
// their rows through an index, and never read the whole transactions table
// or all of its pending requests.
func TestQueryPlans(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "plans.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, c := range map[string]struct {
		q     string
		index string
	}{
		"DueDelayed":        {`SELECT id` + dueDelayedFrom, "transactions_delayed"},
		"PaymentHistory":    {paymentHistorySQL, "transactions_owner_status"},
		"ClaimTracked":      {`SELECT id` + claimTrackedFrom, "transactions_status_block"},
		"AuthorizedExpired": {`SELECT id` + authorizedExpiredFrom, "transactions_authorized_at"},
	} {
		rows, err := s.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+c.q, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "; ")
		if !strings.Contains(all, "INDEX "+c.index) || strings.Contains(all, "SCAN transactions") {
			t.Errorf("%s: plan %q does not search %s", name, all, c.index)
		}
	}
}
