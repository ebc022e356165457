-- People sign in: a user profile records the OpenID identity bound at the
-- person's first sign-in (issuer and subject, unique within an account),
-- and may be suspended.

-- +goose Up
ALTER TABLE profiles ADD COLUMN suspend_time BIGINT;
ALTER TABLE profiles ADD COLUMN identity_issuer TEXT;
ALTER TABLE profiles ADD COLUMN identity_subject TEXT;
ALTER TABLE profiles ADD COLUMN bind_time BIGINT;
CREATE UNIQUE INDEX profiles_identity ON profiles (identity_issuer, identity_subject, account_id)
    WHERE identity_subject IS NOT NULL;
-- The first sign-in looks for unbound user profiles by email, in any case.
CREATE INDEX profiles_unbound_email ON profiles (lower(email))
    WHERE type = 1 AND identity_subject IS NULL;

-- +goose Down
-- Forward only: a key store never drops its tables.
