// Package durable is a node's delivery log and, under a data directory,
// its state on disk (one bbolt file, gossip.db): identity and
// incarnation, what it delivered per dissemination sequence, and the log
// itself. See docs/DESIGN.md §13 ("Persistence and the delivery log").
//
// The log gives every message the node delivers a dense, monotonic,
// node-local offset (1, 2, 3, …). Appends are committed in groups by one
// goroutine (group commit); OnCommit sees each batch, in offset order,
// once it is on disk as the sync policy promises. Without a directory
// the log lives in memory with the same API and OnCommit runs inline.
package durable

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
)

// SyncMode says when commits reach stable storage.
type SyncMode int

const (
	// SyncAlways fsyncs every group commit before OnCommit: what OnCommit
	// saw survives a power loss.
	SyncAlways SyncMode = iota
	// SyncInterval writes every group commit to the file (the OS page
	// cache) before OnCommit and fsyncs every Every: a process crash loses
	// nothing OnCommit saw, a power loss up to Every of it.
	SyncInterval
	// SyncNever writes every group commit to the file and leaves flushing
	// to the OS: a process crash loses nothing OnCommit saw; a power loss
	// may lose anything not yet flushed.
	SyncNever
)

// SyncPolicy is the --sync setting: "always", "never" or a duration.
type SyncPolicy struct {
	Mode  SyncMode
	Every time.Duration // SyncInterval only
}

// ParseSync parses "always", "never" or a positive duration ("100ms").
func ParseSync(s string) (SyncPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "always":
		return SyncPolicy{Mode: SyncAlways}, nil
	case "never":
		return SyncPolicy{Mode: SyncNever}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return SyncPolicy{}, fmt.Errorf("%q is not always, never or a positive duration such as 100ms", s)
	}
	return SyncPolicy{Mode: SyncInterval, Every: d}, nil
}

func (p SyncPolicy) String() string {
	switch p.Mode {
	case SyncNever:
		return "never"
	case SyncInterval:
		return p.Every.String()
	}
	return "always"
}

// Key names a dissemination sequence (core.SeqKey).
type Key struct {
	Node  string
	Epoch uint64
}

// Options configure a Log.
type Options struct {
	// Dir is the data directory; "" keeps the log in memory.
	Dir string
	// NodeID is this node's id; a file written by another id is refused.
	NodeID string
	// Retention and RetentionBytes bound what the log keeps: records
	// older than Retention, and the oldest beyond RetentionBytes (Record.Size),
	// are dropped. Both must be positive.
	Retention      time.Duration
	RetentionBytes int64
	// KeepDelivered is how long a sequence's delivered set is kept after
	// its last delivery (the node's LongTTL: no peer serves it longer).
	KeepDelivered time.Duration
	Sync          SyncPolicy
	// OpenTimeout bounds the wait for the file lock (another process
	// holding gossip.db). Default 1 s.
	OpenTimeout time.Duration
	// MaxPending bounds the records waiting for a commit; Append blocks
	// past it. Default 8192.
	MaxPending int
	// OnCommit receives every committed batch, in offset order, from one
	// goroutine (the committer's, or Append's caller without Dir). It may
	// block: appends then wait (MaxPending). The slice is valid only
	// during the call (in memory it is reused): copy the records that
	// must outlive it.
	OnCommit func([]Record)
	// OnFailure is called once, from the committer, when a commit fails
	// (e.g. the disk is full), with the records that were not committed
	// (the failed batch and those pending): the log then refuses appends.
	OnFailure func(err error, lost []Record)
	// Now is the clock (nil: time.Now); tests inject one.
	Now func() time.Time
}

// FileName is the database file under Options.Dir.
const FileName = "gossip.db"

// Log is a node's delivery log. It is safe for concurrent use.
type Log struct {
	opts Options
	db   *bolt.DB // nil: in memory
	path string

	appendMu sync.Mutex // serialises Append (offset order = commit order)
	one      [1]Record  // in memory: the batch Append hands OnCommit (under appendMu), so that it allocates none

	mu      sync.Mutex
	wake    *sync.Cond // pending grew, or closing
	room    *sync.Cond // pending shrank
	pending []Record
	next    uint64 // the next offset to assign
	lastAt  int64  // the last record's At (At never decreases)
	failed  error
	closed  bool

	// The committed view: offsets first..head are retained (first =
	// head+1 when the log is empty).
	first, head uint64
	bytes       int64
	mem         memLog // in memory: the retained records, first at index 0

	delivered map[Key]*Delivered // durable only: what the node delivered, per sequence
	dirty     map[Key]bool
	lastPrune int64

	done     chan struct{} // the committer ended
	syncDone chan struct{} // the interval flusher ended (closed at once without one)
	unsynced atomic.Bool   // a commit wrote since the last fsync (SyncInterval)
	fault    error         // FailCommits; guarded by mu
}

// FailCommits makes the next commit fail with err (wrapped as a write
// error would be), as a full disk does: for tests of what happens then.
func (l *Log) FailCommits(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fault = err
}

// Open opens the log: in memory without opts.Dir, else dir/gossip.db
// (created if missing). The returned Recovered describes the previous
// life (Existing false for a new file or in memory). Errors are *Error
// values wrapping ErrLocked, ErrCorruptDB, ErrOtherNode, ErrNewerFormat
// or ErrDiskFull.
func Open(opts Options) (*Log, *Recovered, error) {
	if opts.OpenTimeout <= 0 {
		opts.OpenTimeout = time.Second
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = 8192
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Retention <= 0 || opts.RetentionBytes <= 0 {
		return nil, nil, errors.New("durable: Retention and RetentionBytes must be positive")
	}
	l := &Log{opts: opts, next: 1, first: 1, done: make(chan struct{})}
	l.wake, l.room = sync.NewCond(&l.mu), sync.NewCond(&l.mu)
	rec := &Recovered{Epoch: uint64(opts.Now().UnixNano()) | 1, Incarnation: 1}
	if opts.Dir == "" {
		close(l.done)
		return l, rec, nil
	}
	rec, err := l.openDB()
	if err != nil {
		return nil, nil, err
	}
	l.syncDone = make(chan struct{})
	go l.commitLoop()
	if opts.Sync.Mode == SyncInterval {
		go l.syncLoop()
	} else {
		close(l.syncDone)
	}
	return l, rec, nil
}

// Durable reports whether the log is on disk.
func (l *Log) Durable() bool { return l.db != nil }

// Path is the database file ("" in memory).
func (l *Log) Path() string { return l.path }

// Append logs r (Offset and At are assigned; the At of r is the clock's
// now, clamped so At never decreases) and returns its offset. It blocks
// while MaxPending records wait for a commit. In memory, OnCommit runs
// before Append returns. It fails after a commit failure or Close.
func (l *Log) Append(r Record) (uint64, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	for l.db != nil && len(l.pending) >= l.opts.MaxPending && l.failed == nil && !l.closed {
		l.room.Wait()
	}
	if err := l.usable(); err != nil {
		l.mu.Unlock()
		return 0, err
	}
	r.Offset = l.next
	l.next++
	r.At = max(l.opts.Now().UnixNano(), l.lastAt)
	l.lastAt = r.At
	if l.db != nil {
		l.pending = append(l.pending, r)
		l.wake.Signal()
		l.mu.Unlock()
		return r.Offset, nil
	}
	l.mem.push(r)
	l.head = r.Offset
	l.bytes += int64(r.Size())
	l.retainMem(r.At)
	l.mu.Unlock()
	if l.opts.OnCommit != nil {
		l.one[0] = r
		l.opts.OnCommit(l.one[:])
		l.one[0] = Record{} // keeps no payload alive
	}
	return r.Offset, nil
}

// MarkHandled records, with the next commit, that number seq of
// sequence k was handled without being logged (a historic message the
// node chose not to deliver): a later life treats it as delivered. In
// memory it does nothing (no later life reads it).
func (l *Log) MarkHandled(k Key, seq uint64) {
	if l.db == nil || seq == 0 || k.Node == "" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.usable() != nil {
		return
	}
	l.pending = append(l.pending, Record{SeqNode: k.Node, SeqEpoch: k.Epoch, Seq: seq, handled: true, At: l.lastAt})
	l.wake.Signal()
}

func (l *Log) usable() error {
	switch {
	case l.failed != nil:
		return l.failed
	case l.closed:
		return ErrClosed
	}
	return nil
}

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("durable: log closed")

// retainMem drops the in-memory records retention no longer keeps.
// l.mu is held.
func (l *Log) retainMem(now int64) {
	cut := now - int64(l.opts.Retention)
	for l.mem.len() > 1 {
		if r := l.mem.at(0); r.At >= cut && l.bytes <= l.opts.RetentionBytes {
			break
		}
		l.bytes -= int64(l.mem.at(0).Size())
		l.mem.drop()
		l.first = l.mem.at(0).Offset
	}
}

// Bounds returns the committed offsets retained: first..head, with
// first = head+1 when none is.
func (l *Log) Bounds() (first, head uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.first, l.head
}

// Read returns up to limit committed records from offset from on, at
// most up to offset upto. A from below the retained range starts at the
// first retained one (the caller checks Bounds for OutOfRange).
func (l *Log) Read(from, upto uint64, limit int) ([]Record, error) {
	l.mu.Lock()
	upto = min(upto, l.head)
	from = max(from, l.first)
	if from > upto {
		l.mu.Unlock()
		return nil, nil
	}
	if l.db == nil {
		i := int(from - l.first)
		j := min(int(upto-l.first)+1, i+limit)
		out := make([]Record, 0, j-i)
		for k := i; k < j; k++ {
			out = append(out, *l.mem.at(k))
		}
		l.mu.Unlock()
		return out, nil
	}
	l.mu.Unlock()
	return l.readDB(from, upto, limit)
}

// FindTime returns the first committed offset logged at or after t
// (head+1 when there is none).
func (l *Log) FindTime(t time.Time) (uint64, error) {
	ns := t.UnixNano()
	l.mu.Lock()
	first, head := l.first, l.head
	if l.db == nil {
		i := sort.Search(l.mem.len(), func(i int) bool { return l.mem.at(i).At >= ns })
		l.mu.Unlock()
		return first + uint64(i), nil
	}
	l.mu.Unlock()
	var ferr error
	n := int(head - first + 1)
	i := sort.Search(n, func(i int) bool {
		if ferr != nil {
			return true
		}
		at, err := l.atOf(first + uint64(i))
		if err != nil {
			ferr = err
			return true
		}
		return at >= ns
	})
	return first + uint64(i), ferr
}

// Err is the commit failure that stopped the log, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.failed
}

// Close commits what is pending and closes the file. Appends fail after
// it. It is idempotent.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.wake.Broadcast()
	l.room.Broadcast()
	l.mu.Unlock()
	<-l.done
	if l.db == nil {
		return nil
	}
	<-l.syncDone
	var errs []error
	if l.opts.Sync.Mode != SyncAlways {
		errs = append(errs, l.db.Sync())
	}
	errs = append(errs, l.db.Close())
	return errors.Join(errs...)
}

// String describes the log for logs: where and how it syncs.
func (l *Log) String() string {
	if l.db == nil {
		return "memory"
	}
	return l.path + " (sync " + l.opts.Sync.String() + ")"
}

func offsetKey(o uint64) []byte {
	b := make([]byte, 8)
	for i := 7; i >= 0; i-- {
		b[i] = byte(o)
		o >>= 8
	}
	return b
}

func keyBytes(k Key) []byte {
	return append(append([]byte(k.Node), 0), offsetKey(k.Epoch)...)
}

func parseKey(b []byte) (Key, bool) {
	if len(b) < 9 || b[len(b)-9] != 0 {
		return Key{}, false
	}
	var e uint64
	for _, c := range b[len(b)-8:] {
		e = e<<8 | uint64(c)
	}
	return Key{Node: string(b[:len(b)-9]), Epoch: e}, true
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }
