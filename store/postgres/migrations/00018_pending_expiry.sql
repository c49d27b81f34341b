-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00018_pending_expiry.sql.
-- The expiry sweeper reads only the pending requests that are due.
CREATE INDEX transactions_pending_expiry ON transactions(status, expires_at);

-- +goose Down
DROP INDEX transactions_pending_expiry;
