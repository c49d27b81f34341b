-- +goose Up
-- The approver's half (docs/APPROVER.md): each user's address book, whose
-- labels the review pages show beside addresses. Times are unix nanoseconds.
CREATE TABLE address_labels (
    owner_id   TEXT NOT NULL REFERENCES users(id),
    address    TEXT NOT NULL,
    label      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (owner_id, address)
);

-- Passkeys (WebAuthn credentials) as an approval factor, and their
-- ceremonies: each challenge is used once and expires; an approval's
-- challenge commits to one transaction's digest.
CREATE TABLE passkeys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    credential   BLOB NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX passkeys_user ON passkeys (user_id);
CREATE TABLE passkey_challenges (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    purpose    TEXT NOT NULL,
    tx_id      TEXT NOT NULL DEFAULT '',
    digest     BLOB,
    nonce      BLOB,
    session    BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE passkey_challenges;
DROP TABLE passkeys;
DROP TABLE address_labels;
