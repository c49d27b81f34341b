-- +goose Up
-- Transaction tracking: every signature of a transaction's nonce (the
-- first, fee-bump replacements, an on-chain cancel), any of which may be
-- the one mined; the block hash of the receipt (a reorg that removes the
-- block changes it); when the transaction was reported stuck (once); and
-- the claim that keeps two trackers off one transaction.
CREATE TABLE transaction_attempts (
    transaction_id TEXT NOT NULL REFERENCES transactions(id),
    n              INTEGER NOT NULL,
    tx_hash        TEXT NOT NULL,
    raw_tx         BLOB NOT NULL,
    tip            TEXT NOT NULL,
    fee_cap        TEXT NOT NULL,
    kind           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (transaction_id, n)
);
ALTER TABLE transactions ADD COLUMN block_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN stuck_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE transactions DROP COLUMN claimed_until;
ALTER TABLE transactions DROP COLUMN stuck_at;
ALTER TABLE transactions DROP COLUMN block_hash;
DROP TABLE transaction_attempts;
