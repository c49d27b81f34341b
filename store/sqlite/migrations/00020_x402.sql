-- +goose Up
-- x402 payments: the EIP-3009 authorizations built for paid resources.
-- The nonce is unique, so no authorization nonce is ever handed out twice.
CREATE TABLE x402_payments (
    transaction_id TEXT PRIMARY KEY,
    owner_id       TEXT NOT NULL,
    agent_id       TEXT NOT NULL DEFAULT '',
    wallet_id      TEXT NOT NULL,
    nonce          TEXT NOT NULL UNIQUE,
    resource       TEXT NOT NULL,
    method         TEXT NOT NULL,
    version        INTEGER NOT NULL,
    requirement    TEXT NOT NULL,
    resource_info  TEXT NOT NULL DEFAULT '',
    quote          TEXT NOT NULL,
    amount         TEXT NOT NULL,
    asset          TEXT NOT NULL,
    pay_to         TEXT NOT NULL,
    network        TEXT NOT NULL,
    valid_before   INTEGER NOT NULL,
    status         TEXT NOT NULL,
    settlement_tx  TEXT NOT NULL DEFAULT '',
    settlement     TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX x402_payments_owner ON x402_payments(owner_id, created_at);

-- +goose Down
DROP TABLE x402_payments;
