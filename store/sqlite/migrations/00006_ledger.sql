-- +goose Up
CREATE TABLE ledger_balances (
    address TEXT PRIMARY KEY,
    units   TEXT NOT NULL
);

CREATE TABLE ledger_txs (
    id         TEXT PRIMARY KEY,
    from_addr  TEXT NOT NULL,
    to_addr    TEXT NOT NULL,
    units      TEXT NOT NULL,
    memo       TEXT NOT NULL,
    canonical  TEXT NOT NULL,
    signature  BLOB NOT NULL,
    public_key BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE ledger_txs;
DROP TABLE ledger_balances;
