package auth

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// tokenCheckEvery bounds how often the token file is stat'ed for changes
// (requests in between use the list as it was).
const tokenCheckEvery = time.Second

// maxTokenBytes bounds a token, in the file and in a request.
const maxTokenBytes = 4096

// tokenFile is the list of accepted bearer tokens, as SHA-256 digests (so
// that comparing does not depend on a token's length), reloaded when the
// file changes (checked at most every tokenCheckEvery) or on reload.
type tokenFile struct {
	path   string
	logger *slog.Logger
	w      *watched[[][32]byte]

	mu      sync.Mutex
	checked time.Time
	digests [][32]byte
}

func newTokenFile(path string, logger *slog.Logger) (*tokenFile, error) {
	t := &tokenFile{path: path, logger: logger}
	var err error
	t.w, err = newWatched(t.load, func(err error) {
		logger.Error("auth: reloading --auth-token-file failed; still using the previous tokens", "err", err.Error())
	}, path)
	if err != nil {
		return nil, err
	}
	t.digests, _ = t.w.get()
	t.checked = time.Now()
	return t, nil
}

// load parses the file: one token per line; blank lines and lines
// starting with '#' are skipped; surrounding spaces are trimmed.
func (t *tokenFile) load() ([][32]byte, error) {
	b, err := readFile("--auth-token-file", t.path)
	if err != nil {
		return nil, err
	}
	var out [][32]byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		tok := strings.TrimSpace(sc.Text())
		if tok == "" || strings.HasPrefix(tok, "#") {
			continue
		}
		if len(tok) > maxTokenBytes || strings.ContainsAny(tok, " \t") {
			return nil, fmt.Errorf("--auth-token-file %s, line %d: a token is one word of at most %d bytes", t.path, line, maxTokenBytes)
		}
		out = append(out, sha256.Sum256([]byte(tok)))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--auth-token-file %s: %w", t.path, err)
	}
	if len(out) == 0 {
		t.logger.Warn("auth: --auth-token-file has no token: every bearer token is refused", "file", t.path)
	} else {
		t.logger.Info("auth: loaded bearer tokens", "file", t.path, "tokens", len(out))
	}
	return out, nil
}

// reload re-reads the file now, whether or not it changed.
func (t *tokenFile) reload() error {
	d, err := t.w.force()
	if err != nil {
		t.logger.Error("auth: reloading --auth-token-file failed; still using the previous tokens", "err", err.Error())
		return err
	}
	t.mu.Lock()
	t.digests, t.checked = d, time.Now()
	t.mu.Unlock()
	return nil
}

func (t *tokenFile) current() [][32]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	if now := time.Now(); now.Sub(t.checked) >= tokenCheckEvery {
		t.checked = now
		if d, err := t.w.get(); err == nil {
			t.digests = d
		}
	}
	return t.digests
}

// valid reports whether tok is one of the tokens, in time independent of
// which one matched and of tok's content.
func (t *tokenFile) valid(tok string) bool {
	d := sha256.Sum256([]byte(tok))
	ok := 0
	for _, x := range t.current() {
		ok |= subtle.ConstantTimeCompare(d[:], x[:])
	}
	return ok == 1
}
