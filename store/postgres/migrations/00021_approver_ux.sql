-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00021_approver_ux.sql (times are unix
-- nanoseconds in BIGINT, as there).
CREATE TABLE address_labels (
    owner_id   TEXT NOT NULL REFERENCES users(id),
    address    TEXT NOT NULL,
    label      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, address)
);

-- Passkeys (WebAuthn credentials) as an approval factor, and their
-- ceremonies: each challenge is used once and expires; an approval's
-- challenge commits to one transaction's digest.
CREATE TABLE passkeys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    credential   BYTEA NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX passkeys_user ON passkeys (user_id);
CREATE TABLE passkey_challenges (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    tx_id      TEXT NOT NULL DEFAULT '',
    digest     BYTEA,
    nonce      BYTEA,
    session    BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);

-- +goose Down
DROP TABLE passkey_challenges;
DROP TABLE passkeys;
DROP TABLE address_labels;
