package auth

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"time"
)

// watched is a value loaded from files and loaded again when one of them
// changes size or modification time. get is called on every handshake (a
// few stat calls); a load that fails keeps the previous value, so a
// rotation caught half-written (the new certificate, the old key) goes on
// with the old credentials until the files agree again.
type watched[T any] struct {
	paths []string
	load  func() (T, error)
	// onErr reports a failed reload (the old value stays in use).
	onErr func(err error)

	mu    sync.Mutex
	stamp []fileStamp
	val   T
	ok    bool
	err   error // the last load's error, reported once per change
}

type fileStamp struct {
	size int64
	mod  time.Time
}

func newWatched[T any](load func() (T, error), onErr func(error), paths ...string) (*watched[T], error) {
	w := &watched[T]{paths: paths, load: load, onErr: onErr}
	if _, err := w.force(); err != nil {
		return nil, err
	}
	return w, nil
}

// get returns the current value, reloading it if a file changed.
func (w *watched[T]) get() (T, error) {
	stamp := make([]fileStamp, len(w.paths))
	for i, p := range w.paths {
		fi, err := os.Stat(p)
		if err != nil {
			// A file briefly missing (replaced by rename) keeps the old value.
			w.mu.Lock()
			defer w.mu.Unlock()
			if w.ok {
				return w.val, nil
			}
			var zero T
			return zero, err
		}
		stamp[i] = fileStamp{fi.Size(), fi.ModTime()}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ok && equalStamps(stamp, w.stamp) {
		return w.val, nil
	}
	// A change: load once per change (a failed load is not retried until
	// the files change again, and is reported once).
	v, err := w.load()
	w.stamp = stamp
	if err != nil {
		if w.onErr != nil {
			w.onErr(err)
		}
		w.err = err
		if w.ok {
			return w.val, nil
		}
		var zero T
		return zero, err
	}
	w.val, w.ok, w.err = v, true, nil
	return v, nil
}

func equalStamps(a, b []fileStamp) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].size != b[i].size || !a[i].mod.Equal(b[i].mod) {
			return false
		}
	}
	return true
}

// readFile reads path for setting (a flag name), with an error that names
// both.
func readFile(setting, path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s %s: %w", setting, path, err)
	}
	return b, nil
}

// force loads the value now, whether or not a file changed. On error the
// previous value stays in use and the error is returned.
func (w *watched[T]) force() (T, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v, err := w.load()
	if err != nil {
		return w.val, err
	}
	stamp := make([]fileStamp, len(w.paths))
	for i, p := range w.paths {
		if fi, err := os.Stat(p); err == nil {
			stamp[i] = fileStamp{fi.Size(), fi.ModTime()}
		}
	}
	w.val, w.ok, w.err, w.stamp = v, true, nil, stamp
	return v, nil
}
