-- +goose Up
-- Per-account tags (seed 001 §15: "payout", "ops", …), a JSON object of strings.
ALTER TABLE daemon_accounts ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';

-- +goose Down
ALTER TABLE daemon_accounts DROP COLUMN tags;
