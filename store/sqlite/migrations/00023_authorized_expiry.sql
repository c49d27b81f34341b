-- +goose Up
-- The AUTHORIZED_TTL sweeper asks, every poll interval, for the authorized
-- requests authorized before a cutoff: this index holds only authorized
-- rows, by when they were authorized (the decision's time; for one no
-- human decided, the later of its creation and its delay's end), so the
-- sweeper reads the due ones alone however many wait for their agent.
CREATE INDEX transactions_authorized_at ON transactions((CASE WHEN decided_at <> 0 THEN decided_at WHEN authorize_at > created_at THEN authorize_at ELSE created_at END))
 WHERE status = 'authorized';

-- +goose Down
DROP INDEX transactions_authorized_at;
