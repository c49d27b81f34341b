-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00008_wallet_keystore.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
-- API wallets' keys move into the KeyStore (v1-kdb, like the daemon's);
-- key_sealed then holds the keystore file's sealed unlock secret. Existing
-- rows keep their sealed key ('sealed') until the server migrates them.
ALTER TABLE wallets ADD COLUMN key_format TEXT NOT NULL DEFAULT 'sealed';

-- +goose Down
ALTER TABLE wallets DROP COLUMN key_format;
