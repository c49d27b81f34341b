-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00003_web.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
CREATE TABLE web_sessions (
    token_hash BYTEA PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    csrf       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id),
    code_hash  BYTEA NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, code_hash)
);

ALTER TABLE users ADD COLUMN mfa_pending BYTEA;

-- +goose Down
ALTER TABLE users DROP COLUMN mfa_pending;
DROP TABLE recovery_codes;
DROP TABLE web_sessions;
