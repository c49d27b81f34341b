-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00006_ledger.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
CREATE TABLE ledger_balances (
    address TEXT PRIMARY KEY,
    units   TEXT NOT NULL
);

CREATE TABLE ledger_txs (
    id         TEXT PRIMARY KEY,
    from_addr  TEXT NOT NULL,
    to_addr    TEXT NOT NULL,
    units      TEXT NOT NULL,
    memo       TEXT NOT NULL,
    canonical  TEXT NOT NULL,
    signature  BYTEA NOT NULL,
    public_key BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE ledger_txs;
DROP TABLE ledger_balances;
