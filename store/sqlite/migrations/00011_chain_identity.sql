-- +goose Up
-- The chain this database's transactions live on, recorded at the first
-- start and checked at every start: a node of another chain (or the same
-- chain id with another genesis block) must not inherit nonce counters and
-- signed transactions that belong elsewhere. One row.
CREATE TABLE chain_identity (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    chain_id     INTEGER NOT NULL,
    genesis_hash TEXT NOT NULL,
    embedded     INTEGER NOT NULL DEFAULT 0,
    recorded_at  INTEGER NOT NULL
);

-- +goose Down
DROP TABLE chain_identity;
