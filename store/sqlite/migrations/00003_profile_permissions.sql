-- Permissions move onto profiles: a principal is a profile, and an API
-- key's permissions are those of its own profile (the system key's, of the
-- account's system profile). A user profile starts with none.

-- +goose Up
ALTER TABLE profiles ADD COLUMN permissions TEXT NOT NULL DEFAULT '[]';
UPDATE profiles SET permissions = (SELECT api_keys.permissions FROM api_keys WHERE api_keys.profile_id = profiles.id)
    WHERE EXISTS (SELECT 1 FROM api_keys WHERE api_keys.profile_id = profiles.id);
ALTER TABLE api_keys DROP COLUMN permissions;

-- +goose Down
-- Forward only: a key store never drops its tables.
