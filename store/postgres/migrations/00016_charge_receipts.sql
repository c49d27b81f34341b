-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00016_charge_receipts.sql (times are unix
-- nanoseconds in BIGINT, as there).
-- Charge receipts: one per confirmed spend (the operator wallet design's
-- off-chain budget tracking), written with the confirmation.
CREATE TABLE charge_receipts (
    id             TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL,
    agent_id       TEXT NOT NULL DEFAULT '',
    wallet_id      TEXT NOT NULL,
    transaction_id TEXT NOT NULL UNIQUE,
    reason         TEXT NOT NULL,
    amount         TEXT NOT NULL,
    asset          TEXT NOT NULL,
    usd_estimate   TEXT NOT NULL DEFAULT '',
    tx_hash        TEXT NOT NULL DEFAULT '',
    rule_id        TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL
);
CREATE INDEX charge_receipts_owner ON charge_receipts(owner_id, created_at);

-- +goose Down
DROP TABLE charge_receipts;
