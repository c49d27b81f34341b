package main

import (
	"context"
	"errors"
	"net/url"
	"strings"

	"github.com/countersign/countersign"
	"github.com/countersign/countersign/store/postgres"
)

// isPostgres reports whether DATABASE_URL / --db names a PostgreSQL
// database (postgres://… or postgresql://…) rather than a SQLite file.
func isPostgres(db string) bool {
	return strings.HasPrefix(db, "postgres://") || strings.HasPrefix(db, "postgresql://")
}

// openPostgres opens the PostgreSQL store: migrations run once, under an
// advisory lock, however many replicas start together.
func openPostgres(ctx context.Context, db string) (countersign.Store, error) {
	return postgres.Open(ctx, db)
}

// checkPostgresURL refuses a URL that does not parse, without quoting it
// (it holds the password).
func checkPostgresURL(db string) error {
	if _, err := url.Parse(db); err != nil {
		return errors.New("DATABASE_URL: the postgres:// URL does not parse (postgres://USER:PASSWORD@HOST:5432/DB?sslmode=verify-full)")
	}
	return nil
}

// redactDB is db fit for logs and errors: a PostgreSQL URL's password (in
// the userinfo or a password= parameter) is replaced with "xxxxx".
func redactDB(db string) string {
	if !isPostgres(db) {
		return db
	}
	u, err := url.Parse(db)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
