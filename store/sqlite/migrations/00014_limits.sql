-- +goose Up
-- State replicas coordinate through (limits.go in the root): fixed-window
-- attempt counters (password guesses), token buckets (signing rates),
-- leases (the wallet daemon's one replica) and claims on webhook
-- deliveries. Times are unix nanoseconds, as everywhere.

-- One row per counter key while its window lasts; rows of ended windows
-- are pruned by expires_at, so a spray of fresh keys stays bounded.
CREATE TABLE limit_windows (
    key        TEXT PRIMARY KEY,
    n          INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX limit_windows_expiry ON limit_windows(expires_at);

-- Token buckets: tokens as of updated_at (refilled lazily on each take);
-- one row per limited signer, a handful in all.
CREATE TABLE limit_buckets (
    key        TEXT PRIMARY KEY,
    tokens     REAL NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE leases (
    name     TEXT PRIMARY KEY,
    holder   TEXT NOT NULL,
    until_at INTEGER NOT NULL
);

-- A delivery in progress is claimed: another worker skips it until
-- claimed_until passes (a worker that died frees it then).
ALTER TABLE webhook_deliveries ADD COLUMN claimed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE webhook_deliveries ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE webhook_deliveries DROP COLUMN claimed_until;
ALTER TABLE webhook_deliveries DROP COLUMN claimed_by;
DROP TABLE leases;
DROP TABLE limit_buckets;
DROP TABLE limit_windows;
