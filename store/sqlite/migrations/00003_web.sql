-- +goose Up
CREATE TABLE web_sessions (
    token_hash BLOB PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES users(id),
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);

CREATE TABLE recovery_codes (
    user_id    TEXT NOT NULL REFERENCES users(id),
    code_hash  BLOB NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, code_hash)
);

ALTER TABLE users ADD COLUMN mfa_pending BLOB;

-- +goose Down
ALTER TABLE users DROP COLUMN mfa_pending;
DROP TABLE recovery_codes;
DROP TABLE web_sessions;
