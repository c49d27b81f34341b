-- +goose Up
CREATE TABLE key_blobs (
    wallet_id  TEXT PRIMARY KEY,
    blob       BLOB NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE daemon_accounts (
    id          TEXT PRIMARY KEY,
    wallet_id   TEXT NOT NULL,
    curve       TEXT NOT NULL,
    path        TEXT NOT NULL,
    address     TEXT NOT NULL,
    public_key  BLOB NOT NULL,
    evm_address TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL,
    UNIQUE (wallet_id, curve, path)
);

-- +goose Down
DROP TABLE daemon_accounts;
DROP TABLE key_blobs;
