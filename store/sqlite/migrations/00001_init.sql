-- +goose Up
CREATE TABLE users (
    id               TEXT PRIMARY KEY,
    username         TEXT NOT NULL UNIQUE,
    password_hash    TEXT NOT NULL,
    mfa_sealed       BLOB,
    mfa_enabled      INTEGER NOT NULL DEFAULT 0,
    mfa_last_step    INTEGER NOT NULL DEFAULT 0,
    mfa_failures     INTEGER NOT NULL DEFAULT 0,
    mfa_locked_until INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL
);

CREATE TABLE wallets (
    id         TEXT PRIMARY KEY,
    owner_id   TEXT NOT NULL REFERENCES users(id),
    name       TEXT NOT NULL,
    address    TEXT NOT NULL UNIQUE,
    key_sealed BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX wallets_owner ON wallets(owner_id);

CREATE TABLE agents (
    id           TEXT PRIMARY KEY,
    owner_id     TEXT NOT NULL REFERENCES users(id),
    name         TEXT NOT NULL,
    wallet_id    TEXT NOT NULL REFERENCES wallets(id),
    key_hash     BLOB NOT NULL UNIQUE,
    key_prefix   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0,
    revoked_at   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX agents_owner ON agents(owner_id);

CREATE TABLE transactions (
    id               TEXT PRIMARY KEY,
    owner_id         TEXT NOT NULL REFERENCES users(id),
    agent_id         TEXT NOT NULL DEFAULT '',
    wallet_id        TEXT NOT NULL REFERENCES wallets(id),
    chain_id         INTEGER NOT NULL,
    type             TEXT NOT NULL,
    from_address     TEXT NOT NULL,
    to_address       TEXT NOT NULL,
    amount           TEXT NOT NULL,
    token_address    TEXT NOT NULL DEFAULT '',
    contract_address TEXT NOT NULL DEFAULT '',
    contract_abi     TEXT NOT NULL DEFAULT '',
    function_name    TEXT NOT NULL DEFAULT '',
    function_args    TEXT NOT NULL DEFAULT '',
    value            TEXT NOT NULL DEFAULT '',
    memo             TEXT NOT NULL DEFAULT '',
    tx_to            TEXT NOT NULL,
    tx_value         TEXT NOT NULL,
    tx_data          BLOB,
    digest           BLOB NOT NULL,
    approved_digest  BLOB,
    decided_by       TEXT NOT NULL DEFAULT '',
    decided_at       INTEGER NOT NULL DEFAULT 0,
    reason           TEXT NOT NULL DEFAULT '',
    status           TEXT NOT NULL,
    nonce            INTEGER,
    raw_tx           BLOB,
    tx_hash          TEXT NOT NULL DEFAULT '',
    block_number     INTEGER,
    error            TEXT NOT NULL DEFAULT '',
    idempotency_key  TEXT NOT NULL DEFAULT '',
    request_hash     BLOB,
    expires_at       INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
CREATE INDEX transactions_owner ON transactions(owner_id, created_at);
CREATE INDEX transactions_status ON transactions(status);
CREATE UNIQUE INDEX transactions_idempotency ON transactions(agent_id, idempotency_key) WHERE idempotency_key <> '';

CREATE TABLE nonces (
    chain_id   INTEGER NOT NULL,
    address    TEXT NOT NULL,
    next_nonce INTEGER NOT NULL,
    PRIMARY KEY (chain_id, address)
);

CREATE TABLE audit (
    owner_id  TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subject   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL,
    PRIMARY KEY (owner_id, seq)
);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id   TEXT NOT NULL,
    type       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    payload    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX events_owner ON events(owner_id, id);

CREATE TABLE revoked_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

CREATE TABLE signing_keys (
    kid        TEXT PRIMARY KEY,
    alg        TEXT NOT NULL,
    sealed     BLOB NOT NULL,
    public     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE signing_keys;
DROP TABLE revoked_tokens;
DROP TABLE events;
DROP TABLE audit;
DROP TABLE nonces;
DROP TABLE transactions;
DROP TABLE agents;
DROP TABLE wallets;
DROP TABLE users;
