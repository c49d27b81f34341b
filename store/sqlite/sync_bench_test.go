package sqlite

import (
	"context"
	"database/sql"
	"net/url"
	"path/filepath"
	"testing"
)

// BenchmarkSQLiteCommit measures what synchronous=FULL costs a commit: the
// same one-row write transaction, with the pragmas Open sets (WAL, an
// immediate transaction lock), under FULL — which fsyncs the WAL at every
// commit, what the store ships — and under NORMAL, which does not (and so
// can lose a commit to a power loss). The difference is one fsync of this
// machine's disk per commit. Run:
//
//	go test ./store/sqlite -run '^$' -bench SQLiteCommit -benchtime 2s
func BenchmarkSQLiteCommit(b *testing.B) {
	for _, mode := range []string{"FULL", "NORMAL"} {
		b.Run("synchronous="+mode, func(b *testing.B) {
			ctx := context.Background()
			q := url.Values{}
			q.Add("_pragma", "journal_mode(WAL)")
			q.Add("_pragma", "busy_timeout(10000)")
			q.Add("_pragma", "synchronous("+mode+")")
			q.Set("_txlock", "immediate")
			db, err := sql.Open("sqlite", "file:"+filepath.Join(b.TempDir(), "bench.db")+"?"+q.Encode())
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			db.SetMaxOpenConns(1)
			if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)`); err != nil {
				b.Fatal(err)
			}
			row := make([]byte, 512) // about a transaction row with its signed bytes
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tx, err := db.BeginTx(ctx, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO t (v) VALUES (?)`, row); err != nil {
					b.Fatal(err)
				}
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "commits/s")
		})
	}
}
