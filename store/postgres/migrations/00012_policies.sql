-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00012_policies.sql: the same tables, columns
-- and constraints (times are unix nanoseconds in BIGINT, as there).
-- Policies (docs/POLICY.md): one document per agent and one per wallet,
-- stored in the policy package's canonical form with its SHA-256.
CREATE TABLE policies (
    level      TEXT NOT NULL,          -- agent | wallet
    subject_id TEXT NOT NULL,          -- the agent's or the wallet's id
    owner_id   TEXT NOT NULL,
    document   TEXT NOT NULL,
    hash       TEXT NOT NULL,
    updated_by TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (level, subject_id)
);

-- One row per budget counter. Every prepare that counts against a budget
-- updates its row before it reads the reservations: the update takes the
-- row's lock (SQLite: the database's write lock; PostgreSQL: the row lock),
-- so concurrent prepares against one budget are serialised and can never
-- together reserve past its max.
CREATE TABLE policy_budgets (
    level    TEXT NOT NULL,
    subject  TEXT NOT NULL,            -- agent:<id> | wallet:<id>
    rule_id  TEXT NOT NULL,
    asset    TEXT NOT NULL,
    reserved TEXT NOT NULL DEFAULT '0', -- the open reservations' sum (base units, decimal)
    locks    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (level, subject, rule_id, asset)
);

-- A request's claims on budgets, written in the same transaction as the
-- request row; settled once (spent on signing, released when the request
-- ends without moving money).
CREATE TABLE budget_reservations (
    transaction_id TEXT NOT NULL,
    owner_id       TEXT NOT NULL,
    level          TEXT NOT NULL,
    subject        TEXT NOT NULL,
    rule_id        TEXT NOT NULL,
    asset          TEXT NOT NULL,
    amount         TEXT NOT NULL,       -- base units, decimal
    state          TEXT NOT NULL,       -- reserved | spent | released
    reserved_at    BIGINT NOT NULL,
    settled_at     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (transaction_id, level, subject, rule_id, asset)
);
CREATE INDEX budget_reservations_spent ON budget_reservations(level, subject, rule_id, asset, state, settled_at);

ALTER TABLE transactions ADD COLUMN decision TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN rule_id TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN policy_warnings TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN authorize_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE transactions ADD COLUMN approvals_needed BIGINT NOT NULL DEFAULT 0;
CREATE INDEX transactions_delayed ON transactions(authorize_at) WHERE status = 'pending' AND authorize_at > 0;
CREATE INDEX transactions_paid ON transactions(wallet_id, to_address);

-- +goose Down
DROP INDEX transactions_paid;
DROP INDEX transactions_delayed;
ALTER TABLE transactions DROP COLUMN approvals_needed;
ALTER TABLE transactions DROP COLUMN authorize_at;
ALTER TABLE transactions DROP COLUMN policy_warnings;
ALTER TABLE transactions DROP COLUMN rule_id;
ALTER TABLE transactions DROP COLUMN decision;
DROP TABLE budget_reservations;
DROP TABLE policy_budgets;
DROP TABLE policies;
