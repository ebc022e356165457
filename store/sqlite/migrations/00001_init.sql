-- The first schema of Latchkey. Times are Unix nanoseconds (UTC); NULL
-- means "not set". Labels, permissions and CIDRs are JSON text.

-- +goose Up
CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    external_id     TEXT NOT NULL DEFAULT '',
    labels          TEXT NOT NULL DEFAULT '{}',
    operator        INTEGER NOT NULL DEFAULT 0,
    max_active_keys INTEGER NOT NULL DEFAULT 0,
    -- Keys not revoked, expired or not: kept by every issue and revoke so
    -- that the quota check reads one row instead of counting keys.
    unrevoked_keys  INTEGER NOT NULL DEFAULT 0,
    create_time     INTEGER NOT NULL,
    update_time     INTEGER NOT NULL,
    etag            TEXT NOT NULL
);
CREATE INDEX accounts_by_time ON accounts (create_time, id);
-- At most one operator account, whatever races at bootstrap.
CREATE UNIQUE INDEX accounts_one_operator ON accounts (operator) WHERE operator = 1;

CREATE TABLE profiles (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    type         INTEGER NOT NULL,
    name         TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    email        TEXT,
    external_id  TEXT NOT NULL DEFAULT '',
    labels       TEXT NOT NULL DEFAULT '{}',
    create_time  INTEGER NOT NULL,
    update_time  INTEGER NOT NULL,
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
    create_time INTEGER NOT NULL,
    update_time INTEGER NOT NULL,
    etag        TEXT NOT NULL
);
CREATE INDEX workspaces_by_account ON workspaces (account_id, status, create_time, id);

CREATE TABLE profile_workspaces (
    profile_id   TEXT NOT NULL REFERENCES profiles (id),
    workspace_id TEXT NOT NULL REFERENCES workspaces (id),
    account_id   TEXT NOT NULL REFERENCES accounts (id),
    create_time  INTEGER NOT NULL,
    PRIMARY KEY (profile_id, workspace_id)
) WITHOUT ROWID;
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
    system                  INTEGER NOT NULL DEFAULT 0,
    environment             INTEGER NOT NULL,
    expire_time             INTEGER,
    allowed_cidrs           TEXT NOT NULL DEFAULT '[]',
    created_by              TEXT NOT NULL DEFAULT '',
    token_prefix            TEXT NOT NULL,
    secret_hash             BLOB NOT NULL,
    pepper_version          INTEGER NOT NULL,
    previous_hash           BLOB,
    previous_pepper_version INTEGER,
    previous_expire_time    INTEGER,
    last_used_time          INTEGER,
    rotate_time             INTEGER,
    revoke_time             INTEGER,
    create_time             INTEGER NOT NULL,
    update_time             INTEGER NOT NULL,
    etag                    TEXT NOT NULL
);
CREATE INDEX api_keys_by_account ON api_keys (account_id, create_time, id);
-- Lists of unrevoked keys (the default) and the quota count read only these.
CREATE INDEX api_keys_unrevoked ON api_keys (account_id, create_time, id) WHERE revoke_time IS NULL;
CREATE INDEX api_keys_by_profile ON api_keys (profile_id);
-- Unrevoked keys that expire, so the quota check counts the expired ones
-- by a range scan.
CREATE INDEX api_keys_expiring ON api_keys (account_id, expire_time)
    WHERE revoke_time IS NULL AND expire_time IS NOT NULL;

CREATE TABLE audit_events (
    id          TEXT PRIMARY KEY,
    account_id  TEXT NOT NULL,
    time        INTEGER NOT NULL,
    actor_id    TEXT NOT NULL,
    actor_name  TEXT NOT NULL,
    action      TEXT NOT NULL,
    target_id   TEXT NOT NULL,
    target_name TEXT NOT NULL,
    request_id  TEXT NOT NULL
);
CREATE INDEX audit_events_by_account ON audit_events (account_id, time, id);
CREATE INDEX audit_events_by_target ON audit_events (account_id, target_id, time, id);

-- Facts about the database itself, such as the fingerprint of its pepper.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- +goose Down
-- Forward only: a key store never drops its tables.
