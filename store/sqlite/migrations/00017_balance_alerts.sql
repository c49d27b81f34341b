-- +goose Up
-- Low-balance thresholds per wallet and asset, and what their last check saw.
CREATE TABLE balance_alerts (
    wallet_id    TEXT NOT NULL REFERENCES wallets(id),
    owner_id     TEXT NOT NULL,
    asset        TEXT NOT NULL,
    below        TEXT NOT NULL,
    low          INTEGER NOT NULL DEFAULT 0,
    last_balance TEXT NOT NULL DEFAULT '',
    checked_at   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (wallet_id, asset)
);

-- +goose Down
DROP TABLE balance_alerts;
