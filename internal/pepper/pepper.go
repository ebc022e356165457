package pepper

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// LoadOrCreate reads the pepper from path. When the file does not
// exist and allowCreate is true it writes a new random pepper there,
// readable by its owner only, and reports created. The file holds the
// pepper in base64 on one line, so it can be backed up as text.
//
// A pepper file that others may read is refused, as ssh refuses such a key.
func LoadOrCreate(path string, allowCreate bool) (pepper []byte, created bool, err error) {
	pepper, err = readPepper(path)
	if err == nil {
		return pepper, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) || !allowCreate {
		return nil, false, err
	}
	pepper = make([]byte, MinLength)
	if _, err := rand.Read(pepper); err != nil {
		return nil, false, fmt.Errorf("make pepper: %w", err)
	}
	if err := writeNew(path, []byte(base64.StdEncoding.EncodeToString(pepper)+"\n")); err != nil {
		if errors.Is(err, fs.ErrExist) {
			// Another process won the race: use its pepper, never ours.
			pepper, err = readPepper(path)
			return pepper, false, err
		}
		return nil, false, err
	}
	return pepper, true, nil
}

func readPepper(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pepper file: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("pepper file %s is accessible by others (mode %v): chmod 600 it", path, info.Mode().Perm())
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pepper file: %w", err)
	}
	pepper, err := base64.StdEncoding.DecodeString(string(bytes.TrimSpace(raw)))
	if err != nil || len(pepper) < MinLength {
		// The contents are never echoed: they are the secret.
		return nil, fmt.Errorf("pepper file %s is not a base64 pepper of at least %d bytes", path, MinLength)
	}
	return pepper, nil
}

// writeNew writes data to path only if path does not exist, and atomically:
// a crash leaves either no file or the whole file, never a torn pepper.
func writeNew(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".pepper-*")
	if err != nil {
		return fmt.Errorf("create pepper file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("create pepper file: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write pepper file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write pepper file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write pepper file: %w", err)
	}
	// Link, unlike rename, fails when path exists.
	if err := os.Link(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
