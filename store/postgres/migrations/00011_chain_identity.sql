-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00011_chain_identity.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
-- The chain this database's transactions live on, recorded at the first
-- start and checked at every start: a node of another chain (or the same
-- chain id with another genesis block) must not inherit nonce counters and
-- signed transactions that belong elsewhere. One row.
CREATE TABLE chain_identity (
    id           BIGINT PRIMARY KEY CHECK (id = 1),
    chain_id     BIGINT NOT NULL,
    genesis_hash TEXT NOT NULL,
    embedded     BIGINT NOT NULL DEFAULT 0,
    recorded_at  BIGINT NOT NULL
);

-- +goose Down
DROP TABLE chain_identity;
