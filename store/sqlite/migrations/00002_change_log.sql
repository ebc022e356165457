-- The change log: every write that can change a verification verdict
-- appends a row in its own transaction (internal/sqlstore/changes.go). The
-- verifier's cache follows it, and so will other services that watch.

-- +goose Up
-- change_counter is one row that every change updates, so sequence
-- numbers are given in commit order, without holes.
CREATE TABLE change_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO change_counter (id, seq) VALUES (1, 0);

CREATE TABLE key_changes (
    seq          INTEGER PRIMARY KEY,
    account_id   TEXT NOT NULL,
    kind         TEXT NOT NULL,
    key_id       TEXT NOT NULL DEFAULT '',
    profile_id   TEXT NOT NULL DEFAULT '',
    workspace_id TEXT NOT NULL DEFAULT '',
    change_time  INTEGER NOT NULL
);
CREATE INDEX key_changes_by_time ON key_changes (change_time);

-- +goose Down
-- Forward only: a key store never drops its tables.
