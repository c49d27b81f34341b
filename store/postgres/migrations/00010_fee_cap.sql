-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00010_fee_cap.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
-- The network fee an approval binds (gas limit × max fee per gas, wei as a
-- decimal string): rows from before have none and must be prepared again.
ALTER TABLE transactions ADD COLUMN gas_limit BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN max_fee_per_gas TEXT NOT NULL DEFAULT '';
-- The receipt tracker's bookkeeping: least recently checked first, and a
-- per-row rebroadcast backoff.
ALTER TABLE transactions ADD COLUMN checked_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN broadcasts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN next_broadcast_at BIGINT NOT NULL DEFAULT 0;
CREATE INDEX transactions_status_checked ON transactions(status, checked_at, created_at);
CREATE INDEX transactions_sender ON transactions(owner_id, from_address, chain_id, status);

-- +goose Down
DROP INDEX transactions_sender;
DROP INDEX transactions_status_checked;
ALTER TABLE transactions DROP COLUMN next_broadcast_at;
ALTER TABLE transactions DROP COLUMN broadcasts;
ALTER TABLE transactions DROP COLUMN checked_at;
ALTER TABLE transactions DROP COLUMN max_fee_per_gas;
ALTER TABLE transactions DROP COLUMN gas_limit;
