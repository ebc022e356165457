-- Accounts gain the permissions a key issued without any gets, and a
-- suspension (its time, NULL while active, and the operator's reason).
-- Audit events gain the reason of the actions that take one.

-- +goose Up
ALTER TABLE accounts ADD COLUMN default_key_permissions TEXT NOT NULL DEFAULT '[]';
ALTER TABLE accounts ADD COLUMN suspend_time BIGINT;
ALTER TABLE accounts ADD COLUMN suspend_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN reason TEXT NOT NULL DEFAULT '';

-- +goose Down
-- Forward only: a key store never drops its tables.
