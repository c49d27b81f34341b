-- +goose Up
CREATE TABLE identity_links (
    identity_type  TEXT NOT NULL,
    identity_value TEXT NOT NULL,
    omni_account   TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (identity_type, identity_value)
);
CREATE INDEX identity_links_omni ON identity_links(omni_account);

CREATE TABLE siwe_requests (
    id         TEXT PRIMARY KEY,
    address    TEXT NOT NULL,
    message    TEXT NOT NULL,
    nonce      TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE email_codes (
    email      TEXT NOT NULL,
    code_hash  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    used_at    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX email_codes_email ON email_codes(email, created_at);

-- +goose Down
DROP TABLE email_codes;
DROP TABLE siwe_requests;
DROP TABLE identity_links;
