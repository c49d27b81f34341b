-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00014_limits.sql: the same
-- tables, columns and constraints (times are unix nanoseconds in BIGINT).

CREATE TABLE limit_windows (
    key        TEXT PRIMARY KEY,
    n          BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX limit_windows_expiry ON limit_windows(expires_at);

CREATE TABLE limit_buckets (
    key        TEXT PRIMARY KEY,
    tokens     DOUBLE PRECISION NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_at BIGINT NOT NULL
);

ALTER TABLE webhook_deliveries ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_deliveries ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhook_deliveries DROP COLUMN claimed_until;
ALTER TABLE webhook_deliveries DROP COLUMN claimed_by;
DROP TABLE leases;
DROP TABLE limit_buckets;
DROP TABLE limit_windows;
