package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"

	"github.com/latchkey/latchkey"
	"github.com/latchkey/latchkey/internal/pepper"
	"github.com/latchkey/latchkey/store/sqlite"
)

// pepperVersion is recorded with every hash, so that a later pepper
// rotation can tell old hashes from new ones.
const pepperVersion = 1

// loadHasher loads the pepper file and returns the hasher of token
// secrets and the key of page tokens, both made from it.
func loadHasher(ctx context.Context, cfg config) (*pepper.Hasher, []byte, error) {
	secret, err := loadPepper(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	hasher, err := pepper.NewHasher(secret, pepperVersion)
	if err != nil {
		return nil, nil, err
	}
	return hasher, derive(secret, "latchkey page cursor v1"), nil
}

// checkPeppers refuses a pepper file that is not the one the database's
// hashes were made with.
func checkPeppers(ctx context.Context, cfg config, store latchkey.Store, hasher *pepper.Hasher, logger *slog.Logger) error {
	if err := store.CheckPepper(ctx, hasher.Fingerprint()); err != nil {
		if latchkey.ErrorCode(err) == latchkey.CodeFailedPrecondition {
			return fmt.Errorf("the pepper file %s is not the one the database %s was made with: restore the right one from backup; with this one no stored key can be verified", cfg.pepperFile, cfg.dbName())
		}
		return fmt.Errorf("check the pepper against %s: %w", cfg.dbName(), err)
	}
	return nil
}

// loadPepper reads the pepper file, creating it only when the database
// holds no key: a new pepper would make every stored hash useless.
func loadPepper(ctx context.Context, cfg config) ([]byte, error) {
	if cfg.postgres() {
		// Replicas share one pepper, so none of them may make its own.
		secret, err := loadPepperFile(cfg.pepperFile, false)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("the pepper file %s is missing: with PostgreSQL, make it once (umask 077; head -c 32 /dev/urandom | base64 > %s) and give every replica the same file", cfg.pepperFile, cfg.pepperFile)
		}
		return secret, err
	}
	if _, err := os.Stat(cfg.pepperFile); err == nil {
		return loadPepperFile(cfg.pepperFile, false)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	hasKeys, err := databaseHasKeys(ctx, cfg.db)
	if err != nil {
		return nil, err
	}
	if hasKeys {
		return nil, fmt.Errorf("the database %s holds keys but the pepper file %s is missing: restore it from backup; without it no key can be verified", cfg.db, cfg.pepperFile)
	}
	return loadPepperFile(cfg.pepperFile, true)
}

// loadPepperFile reads the pepper file, creating it when allowed.
func loadPepperFile(path string, allowCreate bool) ([]byte, error) {
	secret, _, err := pepper.LoadOrCreate(path, allowCreate)
	return secret, err
}

// databaseHasKeys opens the database just to ask whether it holds keys. It
// opens with a throw-away cursor key: no page token is made here.
func databaseHasKeys(ctx context.Context, path string) (bool, error) {
	store, err := sqlite.Open(ctx, path, sqlite.Options{CursorKey: []byte("unused: the database is only asked whether it has keys")})
	if err != nil {
		return false, fmt.Errorf("open database %s: %w", path, err)
	}
	defer store.Close()
	return store.HasKeys(ctx)
}

// derive makes a purpose-bound key from the pepper, so the pepper itself
// never keys anything but token hashes.
func derive(pepper []byte, purpose string) []byte {
	mac := hmac.New(sha256.New, pepper)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}
