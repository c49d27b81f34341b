-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00004_identity.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
CREATE TABLE identity_links (
    identity_type  TEXT NOT NULL,
    identity_value TEXT NOT NULL,
    omni_account   TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (identity_type, identity_value)
);
CREATE INDEX identity_links_omni ON identity_links(omni_account);

CREATE TABLE siwe_requests (
    id         TEXT PRIMARY KEY,
    address    TEXT NOT NULL,
    message    TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE email_codes (
    email      TEXT NOT NULL,
    code_hash  BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    attempts   BIGINT NOT NULL DEFAULT 0,
    used_at    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX email_codes_email ON email_codes(email, created_at);

-- +goose Down
DROP TABLE email_codes;
DROP TABLE siwe_requests;
DROP TABLE identity_links;
