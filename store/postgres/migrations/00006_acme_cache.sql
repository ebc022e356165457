-- The certificates that ACME (latchkey serve --acme-domain) obtains, shared
-- by every replica so that one certificate is obtained once for all of
-- them: autocert's cache entries (the ACME account key, each domain's key
-- and chain, the TLS-ALPN-01 challenge certificates), each sealed with
-- AES-256-GCM under a key derived from the pepper (store/postgres/certcache.go),
-- so that a dump of the database alone does not hold a usable TLS key.

-- +goose Up
CREATE TABLE acme_cache (
    name        TEXT PRIMARY KEY,
    data        BYTEA NOT NULL,
    update_time BIGINT NOT NULL
);

-- +goose Down
-- Forward only: a key store never drops its tables.
