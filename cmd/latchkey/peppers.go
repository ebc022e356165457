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

// loadHasher loads the pepper file and returns the hasher of token
// secrets and the key of page tokens, made from its current pepper.
func loadHasher(ctx context.Context, cfg config) (*pepper.Hasher, []byte, error) {
	peppers, err := loadPepper(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	hasher, err := pepper.NewHasherOf(peppers)
	if err != nil {
		return nil, nil, fmt.Errorf("pepper file %s: %w", cfg.pepperFile, err)
	}
	// Page tokens follow the current pepper: after a rotation, a token
	// made before it is refused as invalid, like any token not ours.
	return hasher, hasher.DeriveKey("latchkey page cursor v1"), nil
}

// checkPeppers refuses a pepper file that is not the one the database's
// hashes were made with, or that lacks a pepper the database's keys use;
// it returns the hasher without the peppers that were retired.
func checkPeppers(ctx context.Context, cfg config, store latchkey.Store, hasher *pepper.Hasher, logger *slog.Logger) (*pepper.Hasher, error) {
	retired, err := store.CheckPeppers(ctx, hasher.Fingerprints())
	if err != nil {
		var refused *latchkey.Error
		if errors.As(err, &refused) && refused.Code == latchkey.CodeFailedPrecondition {
			return nil, fmt.Errorf("the pepper file %s is not the one the database %s was made with (%s): restore the right one from backup, or give this server the same file as the others; with this one not every stored key can be verified",
				cfg.pepperFile, cfg.dbName(), refused.Message)
		}
		return nil, fmt.Errorf("check the pepper against %s: %w", cfg.dbName(), err)
	}
	if len(retired) == 0 {
		return hasher, nil
	}
	kept, err := hasher.Without(retired)
	if err != nil {
		return nil, fmt.Errorf("the pepper file %s: %w, but the database %s records it as retired: add a new pepper (latchkey pepper add)", cfg.pepperFile, err, cfg.dbName())
	}
	logger.Warn("the pepper file holds retired peppers, which this server does not use: remove them from the file (latchkey pepper retire ID, with --force if keys were stranded)", "peppers", retired, "pepper_file", cfg.pepperFile)
	return kept, nil
}

// loadPepper reads the pepper file, creating it only when the database
// holds no key: a new pepper would make every stored hash useless.
func loadPepper(ctx context.Context, cfg config) ([]pepper.Pepper, error) {
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
func loadPepperFile(path string, allowCreate bool) ([]pepper.Pepper, error) {
	peppers, _, err := pepper.LoadOrCreate(path, allowCreate)
	return peppers, err
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

// derive makes a purpose-bound key from key, so that one key never serves
// two purposes.
func derive(key []byte, purpose string) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(purpose))
	return mac.Sum(nil)
}
