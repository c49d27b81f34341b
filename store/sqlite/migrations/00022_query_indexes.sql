-- +goose Up
-- A review's history warnings (a new recipient, an unusual amount) ask about
-- one owner's confirmed payments of one kind: this index finds them without
-- reading the owner's other requests.
CREATE INDEX transactions_owner_status ON transactions(owner_id, status, type, agent_id);

-- +goose Down
DROP INDEX transactions_owner_status;
