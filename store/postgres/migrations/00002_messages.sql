-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00002_messages.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
ALTER TABLE transactions ADD COLUMN message TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN signature BYTEA;

-- +goose Down
ALTER TABLE transactions DROP COLUMN signature;
ALTER TABLE transactions DROP COLUMN message;
