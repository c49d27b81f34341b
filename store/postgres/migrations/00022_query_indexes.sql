-- +goose Up
-- PostgreSQL twin of store/sqlite/migrations/00022_query_indexes.sql.
-- A review's history warnings (a new recipient, an unusual amount) ask about
-- one owner's confirmed payments of one kind: this index finds them without
-- reading the owner's other requests.
CREATE INDEX IF NOT EXISTS transactions_owner_status ON transactions(owner_id, status, type, agent_id);

-- The receipt tracker claims submitted rows and the confirmed rows of the
-- last blocks (the reorg window): by block, not by reading every confirmed
-- row there ever was.
CREATE INDEX IF NOT EXISTS transactions_status_block ON transactions(status, block_number);

-- +goose Down
DROP INDEX transactions_status_block;
DROP INDEX transactions_owner_status;
