-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00009_account_tags.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
-- Per-account tags (seed 001 §15: "payout", "ops", …), a JSON object of strings.
ALTER TABLE daemon_accounts ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE daemon_accounts DROP COLUMN tags;
