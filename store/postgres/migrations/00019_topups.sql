-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00019_topups.sql (times are unix
-- nanoseconds in BIGINT, as there).
-- Credit top-ups (countersign.TopupStore): the provider's charge, the
-- requests that pay it and the state the top-up is in, so a restart
-- resumes it; claimed_by/claimed_until lease it to one replica at a time.
CREATE TABLE topups (
    id                      TEXT PRIMARY KEY,
    owner_id                TEXT NOT NULL REFERENCES users(id),
    agent_id                TEXT NOT NULL,
    wallet_id               TEXT NOT NULL REFERENCES wallets(id),
    provider                TEXT NOT NULL,
    amount_cents            BIGINT NOT NULL CHECK (amount_cents > 0),
    automatic               BOOLEAN NOT NULL DEFAULT FALSE,
    status                  TEXT NOT NULL,
    charge_id               TEXT NOT NULL DEFAULT '',
    charge                  TEXT NOT NULL DEFAULT '',
    charge_expires_at       BIGINT NOT NULL DEFAULT 0,
    approval_transaction_id TEXT NOT NULL DEFAULT '',
    transaction_id          TEXT NOT NULL DEFAULT '',
    tx_hash                 TEXT NOT NULL DEFAULT '',
    error                   TEXT NOT NULL DEFAULT '',
    attempts                INTEGER NOT NULL DEFAULT 0,
    claimed_by              TEXT NOT NULL DEFAULT '',
    claimed_until           BIGINT NOT NULL DEFAULT 0,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL
);
-- A charge is paid by one top-up only.
CREATE UNIQUE INDEX topups_charge ON topups (provider, charge_id) WHERE charge_id <> '';
-- Never more than one open automatic top-up per wallet and provider.
CREATE UNIQUE INDEX topups_one_open_automatic ON topups (wallet_id, provider) WHERE automatic AND status NOT IN ('confirmed', 'failed');
CREATE INDEX topups_owner ON topups (owner_id, created_at);
CREATE INDEX topups_open ON topups (status, created_at) WHERE status NOT IN ('confirmed', 'failed');
CREATE INDEX topups_transaction ON topups (transaction_id) WHERE transaction_id <> '';
CREATE INDEX topups_approval_transaction ON topups (approval_transaction_id) WHERE approval_transaction_id <> '';

-- +goose Down
DROP TABLE topups;
