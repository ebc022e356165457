// Package tmpfstest gives tests a small file system of their own that
// they can fill, to see what the store does when its disk is full.
package tmpfstest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/latchkey/latchkey/internal/testenv"
)

// Mount mounts a tmpfs of sizeKiB kibibytes on a new directory and returns
// it; it is unmounted when the test ends, after the cleanups registered
// later (such as stopping a server that holds files on it). Mounting needs
// root: where it is refused, the test is skipped.
func Mount(t testing.TB, sizeKiB int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "tmpfs")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(sizeKiB)+"k,mode=0700", "tmpfs", dir).CombinedOutput()
	if err != nil {
		testenv.Skip(t, fmt.Sprintf("a full disk needs a small tmpfs, and mounting one is not permitted here (run as root to test it): %v: %s", err, out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Free returns the bytes an unprivileged writer may still use in dir's
// file system.
func Free(t testing.TB, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// Fill writes a filler file into dir until only about leave bytes of its
// file system are free, and returns the file's path: removing it frees
// the space again.
func Fill(t testing.TB, dir string, leave int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// Real bytes, not a sparse Truncate: tmpfs counts only written pages.
	chunk := make([]byte, 4096)
	for Free(t, dir) > leave {
		if _, err := f.Write(chunk); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				break
			}
			t.Fatal(err)
		}
	}
	return path
}
