//go:build unix

package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFileName is the lock file gossipd keeps in its data dir.
const LockFileName = "gossipd.lock"

// lockDataDir creates dir (mode 0700) if missing and takes an exclusive
// lock on dir/gossipd.lock, writing this process's pid into it, so that a
// second daemon on the same directory fails at start. The lock is an
// flock: the kernel releases it when the process dies, so a crash leaves no
// stale lock. unlock releases it (and empties the file).
func lockDataDir(dir string) (unlock func() error, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			holder := "another process"
			if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil {
				holder = fmt.Sprintf("another gossipd (pid %d)", pid)
			}
			return nil, fmt.Errorf("--data-dir %s is in use by %s: %s is locked", dir, holder, path)
		}
		return nil, fmt.Errorf("--data-dir: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("--data-dir: write %s: %w", path, err)
	}
	return func() error {
		// Empty the file rather than remove it: removing it would let a
		// new daemon lock a new file while another still holds the old one.
		terr := f.Truncate(0)
		return errors.Join(terr, f.Close()) // closing releases the lock
	}, nil
}
