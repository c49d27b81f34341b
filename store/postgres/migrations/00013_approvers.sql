-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00013_approvers.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
-- Approvers of a wallet besides its owner (who is always one and has no
-- row), the invitations that make them, their approvals of transactions,
-- and the kill switch's freezes.
CREATE TABLE wallet_approvers (
    wallet_id TEXT NOT NULL REFERENCES wallets(id),
    user_id   TEXT NOT NULL REFERENCES users(id),
    added_by  TEXT NOT NULL,
    added_at  BIGINT NOT NULL,
    PRIMARY KEY (wallet_id, user_id)
);
CREATE INDEX wallet_approvers_user ON wallet_approvers(user_id);

CREATE TABLE approver_invitations (
    id          TEXT PRIMARY KEY,
    wallet_id   TEXT NOT NULL REFERENCES wallets(id),
    owner_id    TEXT NOT NULL,
    invitee_id  TEXT NOT NULL REFERENCES users(id),
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    accepted_at BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX approver_invitations_invitee ON approver_invitations(invitee_id, accepted_at);

-- One row per (transaction, approver): one person's codes never count
-- twice. A withdrawn approval keeps its row with withdrawn_at set.
CREATE TABLE tx_approvals (
    transaction_id TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    digest         BYTEA NOT NULL,
    at             BIGINT NOT NULL,
    withdrawn_at   BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (transaction_id, user_id)
);

-- wallet_id '' freezes every wallet of the owner.
CREATE TABLE freezes (
    id        TEXT PRIMARY KEY,
    owner_id  TEXT NOT NULL,
    wallet_id TEXT NOT NULL DEFAULT '',
    by_actor  TEXT NOT NULL,
    at        BIGINT NOT NULL,
    UNIQUE (owner_id, wallet_id)
);

CREATE TABLE freeze_lifts (
    freeze_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (freeze_id, user_id)
);

-- A policy change that loosens a quorum wallet's rules, waiting for the
-- quorum, and its approvals (one per person).
CREATE TABLE policy_changes (
    id          TEXT PRIMARY KEY,
    owner_id    TEXT NOT NULL,
    wallet_id   TEXT NOT NULL,
    level       TEXT NOT NULL,
    subject_id  TEXT NOT NULL,
    document    TEXT NOT NULL,
    hash        TEXT NOT NULL,
    base_hash   TEXT NOT NULL DEFAULT '',
    proposed_by TEXT NOT NULL,
    needed      BIGINT NOT NULL,
    status      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    decided_at  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX policy_changes_wallet ON policy_changes(wallet_id, status, created_at);

CREATE TABLE policy_change_approvals (
    change_id TEXT NOT NULL,
    user_id   TEXT NOT NULL,
    at        BIGINT NOT NULL,
    PRIMARY KEY (change_id, user_id)
);

-- +goose Down
DROP TABLE policy_change_approvals;
DROP TABLE policy_changes;
DROP TABLE freeze_lifts;
DROP TABLE freezes;
DROP TABLE tx_approvals;
DROP TABLE approver_invitations;
DROP TABLE wallet_approvers;
