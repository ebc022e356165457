-- The first schema of Latchkey on PostgreSQL: the tables of the SQLite
-- store, with the same columns, so that store/sqlstore's queries run on
-- both. Times are Unix nanoseconds (UTC); NULL means "not set". Labels,
-- permissions and CIDRs are JSON text.

-- +goose Up
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    external_id     TEXT NOT NULL DEFAULT '',
    labels          TEXT NOT NULL DEFAULT '{}',
    operator        BOOLEAN NOT NULL DEFAULT false,
    max_active_keys BIGINT NOT NULL DEFAULT 0,
    -- Keys not revoked, expired or not: kept by every issue and revoke so
    -- that the quota check reads one row instead of counting keys.
    unrevoked_keys  BIGINT NOT NULL DEFAULT 0,
    create_time     BIGINT NOT NULL,
    update_time     BIGINT NOT NULL,
    etag            TEXT NOT NULL
);
CREATE INDEX accounts_by_time ON accounts (create_time, id);
-- At most one operator account, however many replicas bootstrap at once.
CREATE UNIQUE INDEX accounts_one_operator ON accounts (operator) WHERE operator;

CREATE TABLE profiles (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    type         INTEGER NOT NULL,
    name         TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    email        TEXT,
    external_id  TEXT NOT NULL DEFAULT '',
    labels       TEXT NOT NULL DEFAULT '{}',
    create_time  BIGINT NOT NULL,
    update_time  BIGINT NOT NULL,
    etag         TEXT NOT NULL
);
CREATE INDEX profiles_by_account ON profiles (account_id, create_time, id);
CREATE UNIQUE INDEX profiles_email ON profiles (account_id, email) WHERE email IS NOT NULL;

CREATE TABLE workspaces (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL REFERENCES accounts (id),
    name        TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status      INTEGER NOT NULL,
    external_id TEXT NOT NULL DEFAULT '',
    labels      TEXT NOT NULL DEFAULT '{}',
    create_time BIGINT NOT NULL,
    update_time BIGINT NOT NULL,
    etag        TEXT NOT NULL
);
CREATE INDEX workspaces_by_account ON workspaces (account_id, status, create_time, id);

CREATE TABLE profile_workspaces (
    profile_id   TEXT NOT NULL REFERENCES profiles (id),
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    create_time  BIGINT NOT NULL,
    PRIMARY KEY (profile_id, workspace_id)
);
CREATE INDEX profile_workspaces_by_workspace ON profile_workspaces (workspace_id, profile_id);

CREATE TABLE api_keys (
    id                      TEXT PRIMARY KEY,
    account_id              TEXT NOT NULL REFERENCES accounts (id),
    profile_id              TEXT NOT NULL REFERENCES profiles (id),
    name                    TEXT NOT NULL,
    external_id             TEXT NOT NULL DEFAULT '',
    labels                  TEXT NOT NULL DEFAULT '{}',
    description             TEXT NOT NULL DEFAULT '',
    permissions             TEXT NOT NULL DEFAULT '[]',
    system                  BOOLEAN NOT NULL DEFAULT false,
    environment             INTEGER NOT NULL,
    expire_time             BIGINT,
    allowed_cidrs           TEXT NOT NULL DEFAULT '[]',
    created_by              TEXT NOT NULL DEFAULT '',
    token_prefix            TEXT NOT NULL,
    secret_hash             BYTEA NOT NULL,
    pepper_version          INTEGER NOT NULL,
    previous_hash           BYTEA,
    previous_pepper_version INTEGER,
    previous_expire_time    BIGINT,
    last_used_time          BIGINT,
    rotate_time             BIGINT,
    revoke_time             BIGINT,
    create_time             BIGINT NOT NULL,
    update_time             BIGINT NOT NULL,
    etag                    TEXT NOT NULL
);
CREATE INDEX api_keys_by_account ON api_keys (account_id, create_time, id);
CREATE INDEX api_keys_unrevoked ON api_keys (account_id, create_time, id) WHERE revoke_time IS NULL;
CREATE INDEX api_keys_by_profile ON api_keys (profile_id);
CREATE INDEX api_keys_expiring ON api_keys (account_id, expire_time)
    WHERE revoke_time IS NULL AND expire_time IS NOT NULL;

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    time        BIGINT NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    target_name TEXT NOT NULL,
    request_id  TEXT NOT NULL
);
CREATE INDEX audit_events_by_account ON audit_events (account_id, time, id);
CREATE INDEX audit_events_by_target ON audit_events (account_id, target_id, time, id);

CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The change feed of verification verdicts, for the caches of every
-- replica. Each change that can alter how a key verifies appends a row and
-- sends a notification; a replica applies notifications as they come and
-- polls for rows past the last one it saw, so a lost notification is
-- caught by the next poll.
--
-- change_counter is one row that every change updates: its row lock is
-- held to commit, so sequence numbers commit in order and a poll for
-- "seq > last" can never step over a change that commits late (a plain
-- sequence would allow that).
CREATE TABLE change_counter (
    id  INTEGER PRIMARY KEY CHECK (id = 1),
    seq BIGINT NOT NULL
);
INSERT INTO change_counter (id, seq) VALUES (1, 0);

CREATE TABLE key_changes (
    seq         BIGINT PRIMARY KEY,
    key_id      TEXT, -- NULL: every key (a workspace was archived)
    change_time TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose StatementBegin
CREATE FUNCTION record_key_change(changed TEXT) RETURNS void AS $$
DECLARE
    next BIGINT;
BEGIN
    UPDATE change_counter SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO next;
    INSERT INTO key_changes (seq, key_id) VALUES (next, changed);
    PERFORM pg_notify('latchkey_key_changes', next::text || ' ' || coalesce(changed, '*'));
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE FUNCTION api_keys_changed() RETURNS trigger AS $$
BEGIN
    PERFORM record_key_change(NEW.id);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- Every change of a key's verdict gives it a new etag: an update, a
-- rotation, a revocation, a change of its profile's grants. Recording a
-- last use does not, and is no change.
CREATE TRIGGER api_keys_changed AFTER UPDATE ON api_keys
    FOR EACH ROW WHEN (OLD.etag IS DISTINCT FROM NEW.etag)
    EXECUTE FUNCTION api_keys_changed();

-- +goose StatementBegin
CREATE FUNCTION workspaces_changed() RETURNS trigger AS $$
BEGIN
    PERFORM record_key_change(NULL);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
-- +goose StatementEnd

-- Archiving a workspace changes the verdict of every key granted it.
CREATE TRIGGER workspaces_changed AFTER UPDATE ON workspaces
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION workspaces_changed();

-- +goose Down
-- Forward only: a key store never drops its tables.
