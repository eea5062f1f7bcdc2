//go:build !unix

package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// LockFileName is the lock file gossipd keeps in its data dir.
const LockFileName = "gossipd.lock"

// lockDataDir creates dir (mode 0700) if missing and creates
// dir/gossipd.lock exclusively, with this process's pid, so that a second
// daemon on the same directory fails at start. Without flock a crash
// leaves the file behind; the error says which pid held it, to be removed
// by hand. unlock removes it.
func lockDataDir(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		b, _ := os.ReadFile(path)
		return nil, fmt.Errorf("--data-dir %s is in use by pid %s: remove %s if that process is gone", dir, strings.TrimSpace(string(b)), path)
	}
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	_, werr := f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	if err := errors.Join(werr, f.Close()); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("--data-dir: write %s: %w", path, err)
	}
	return func() error { return os.Remove(path) }, nil
}
