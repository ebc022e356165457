-- The change log moves from triggers into the shared store: every write
-- that can change a verification verdict appends a row in its own
-- transaction (internal/sqlstore/changes.go), with what a watcher needs
-- (account, kind, key, profile, workspace). Triggers now only notify.
-- The log is transient (kept ChangeRetention), so it is made anew; the
-- counter goes on, and a replica that still follows the old table finds
-- a hole and flushes its cache.

-- +goose Up
DROP TRIGGER api_keys_changed ON api_keys;
DROP TRIGGER workspaces_changed ON workspaces;
DROP FUNCTION api_keys_changed();
DROP FUNCTION workspaces_changed();
DROP FUNCTION record_key_change(TEXT);
DROP TABLE key_changes;

CREATE TABLE key_changes (
    seq          BIGINT PRIMARY KEY,
    account_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    key_id       TEXT NOT NULL DEFAULT '',
    profile_id   TEXT NOT NULL DEFAULT '',
    workspace_id TEXT NOT NULL DEFAULT '',
    change_time  BIGINT NOT NULL
);
CREATE INDEX key_changes_by_time ON key_changes (change_time);

-- +goose StatementBegin
CREATE FUNCTION notify_key_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('latchkey_key_changes', NEW.seq::text);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- Notifications are delivered at commit, so a listener that hears one
-- can read the change.
CREATE TRIGGER key_changes_notify AFTER INSERT ON key_changes
    FOR EACH ROW EXECUTE FUNCTION notify_key_change();

-- +goose Down
-- Forward only: a key store never drops its tables.
