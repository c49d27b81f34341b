-- +goose Up
ALTER TABLE transactions ADD COLUMN message TEXT NOT NULL DEFAULT '';
ALTER TABLE transactions ADD COLUMN signature BLOB;

-- +goose Down
ALTER TABLE transactions DROP COLUMN signature;
ALTER TABLE transactions DROP COLUMN message;
