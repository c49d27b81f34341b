-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00005_daemon.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
CREATE TABLE key_blobs (
    wallet_id  TEXT PRIMARY KEY,
    blob       BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE daemon_accounts (
    id          TEXT PRIMARY KEY,
    wallet_id   TEXT NOT NULL,
    curve       TEXT NOT NULL,
    path        TEXT NOT NULL,
    address     TEXT NOT NULL,
    public_key  BYTEA NOT NULL,
    evm_address TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL,
    UNIQUE (wallet_id, curve, path)
);

-- +goose Down
DROP TABLE daemon_accounts;
DROP TABLE key_blobs;
