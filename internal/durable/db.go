package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
)

// FormatVersion is the layout of gossip.db this build writes. A file of
// an older version is upgraded in place when opened (migrate); one of a
// newer version is refused (ErrNewerFormat), never rewritten.
const FormatVersion = 1

// Kinds of bad state. Every error Open returns wraps one of them (or is a
// plain I/O error); the daemon maps each to its own exit status.
var (
	ErrLocked      = errors.New("the database is locked by another process")
	ErrCorruptDB   = errors.New("the database is corrupt or truncated")
	ErrOtherNode   = errors.New("the database belongs to another node id")
	ErrNewerFormat = errors.New("the database was written by a newer gossipd (format version)")
	ErrDiskFull    = errors.New("no space left on the device")
)

// Error is a failure of the state file: which file, what kind, the
// detail and what to do.
type Error struct {
	Path string
	Kind error // one of the Err* kinds above
	Err  error // the detail
	Hint string
}

func (e *Error) Error() string {
	s := fmt.Sprintf("%s: %v", e.Path, e.Kind)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *Error) Unwrap() []error { return []error{e.Kind, e.Err} }

func (l *Log) stateErr(kind, err error, hint string) *Error {
	return &Error{Path: l.path, Kind: kind, Err: err, Hint: hint}
}

const hintCorrupt = "nothing was changed: move the file away to start this node as a new one (it then delivers only new messages), or restore a backup"

// Recovered is what Open found of the node's previous life.
type Recovered struct {
	// Existing is true when the file held state (a restart).
	Existing bool
	// Incarnation counts the node's lives on this data dir (1 for the
	// first).
	Incarnation uint64
	// Epoch is this life's dissemination epoch: above every epoch of a
	// previous life (and, for a new file, the clock's UnixNano), so that
	// no sequence number of a previous life is reused.
	Epoch uint64
	// LastAt is when the previous life last committed (zero if none).
	LastAt time.Time
	// Delivered is, per sequence, what the previous lives delivered
	// (sequences delivered to within KeepDelivered).
	Delivered map[Key]Delivered
	// Records are the retained records logged within KeepDelivered, in
	// offset order (to restore the de-duplication cache and the repair
	// store).
	Records []Record
	// Members are the other members' addresses the previous life saved
	// last (SaveMembers), to rejoin without seeds.
	Members []string
}

// SaveMembers records the other members' addresses for the next life
// (Recovered.Members), in a transaction of its own. In memory it does
// nothing.
func (l *Log) SaveMembers(addrs []string) error {
	if l.db == nil {
		return nil
	}
	v := []byte(strings.Join(addrs, "\n"))
	return l.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyMembers, v) })
}

var (
	bucketMeta      = []byte("meta")
	bucketLog       = []byte("log")
	bucketDelivered = []byte("delivered")

	keyFormat      = []byte("format")
	keyNodeID      = []byte("node_id")
	keyIncarnation = []byte("incarnation")
	keyEpoch       = []byte("epoch")
	keyLastAt      = []byte("last_at")
	keyLastOffset  = []byte("last_offset")
	keyMembers     = []byte("members")
)

func (l *Log) openDB() (rec *Recovered, err error) {
	l.path = filepath.Join(l.opts.Dir, FileName)
	if fi, serr := os.Stat(l.path); serr == nil && fi.Size() < 4096*2 {
		// bbolt would initialise an empty file as a new database: a file
		// cut to nothing is not silently reset.
		return nil, l.stateErr(ErrCorruptDB, fmt.Errorf("file is %d bytes, too short for a database", fi.Size()), hintCorrupt)
	}
	db, err := bolt.Open(l.path, 0o600, &bolt.Options{Timeout: l.opts.OpenTimeout, NoSync: l.opts.Sync.Mode != SyncAlways, NoFreelistSync: true, FreelistType: bolt.FreelistMapType})
	if err != nil {
		switch {
		case errors.Is(err, bolt.ErrTimeout):
			return nil, l.stateErr(ErrLocked, fmt.Errorf("gave up after %s", l.opts.OpenTimeout), "another process has it open: stop it, or use another --data-dir")
		case isDiskFull(err):
			return nil, l.stateErr(ErrDiskFull, err, "free space on its file system")
		case errors.Is(err, os.ErrPermission):
			return nil, err
		}
		return nil, l.stateErr(ErrCorruptDB, err, hintCorrupt)
	}
	l.db = db
	defer func() {
		if err != nil {
			db.Close()
			l.db = nil
		}
	}()
	// bbolt panics on some damaged pages: a damaged file is an error.
	defer func() {
		if p := recover(); p != nil {
			err = l.stateErr(ErrCorruptDB, fmt.Errorf("%v", p), hintCorrupt)
		}
	}()
	if err := db.View(func(tx *bolt.Tx) error {
		fi, err := os.Stat(l.path)
		if err != nil {
			return err
		}
		if fi.Size() < tx.Size() {
			return fmt.Errorf("file is %d bytes, its pages reach %d: truncated", fi.Size(), tx.Size())
		}
		var first error
		for cerr := range tx.Check() { // drained: the checker's goroutine ends
			if first == nil {
				first = cerr
			}
		}
		return first
	}); err != nil {
		return nil, l.stateErr(ErrCorruptDB, err, hintCorrupt)
	}
	now := l.opts.Now()
	rec = &Recovered{Delivered: make(map[Key]Delivered)}
	err = db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			if tx.Bucket(bucketLog) != nil || tx.Bucket(bucketDelivered) != nil {
				return l.stateErr(ErrCorruptDB, errors.New("no meta bucket"), hintCorrupt)
			}
			return l.initDB(tx, now, rec)
		}
		return l.loadDB(tx, meta, now, rec)
	})
	if err != nil {
		var se *Error
		if errors.As(err, &se) {
			return nil, err
		}
		if isDiskFull(err) {
			return nil, l.stateErr(ErrDiskFull, err, "free space on its file system")
		}
		return nil, l.stateErr(ErrCorruptDB, err, hintCorrupt)
	}
	return rec, nil
}

// initDB writes a new file's meta and buckets.
func (l *Log) initDB(tx *bolt.Tx, now time.Time, rec *Recovered) error {
	meta, err := tx.CreateBucket(bucketMeta)
	if err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bucketLog); err != nil {
		return err
	}
	if _, err := tx.CreateBucket(bucketDelivered); err != nil {
		return err
	}
	rec.Incarnation = 1
	rec.Epoch = uint64(now.UnixNano()) | 1
	l.delivered, l.dirty = make(map[Key]*Delivered), make(map[Key]bool)
	return errors.Join(
		meta.Put(keyFormat, []byte(itoa(FormatVersion))),
		meta.Put(keyNodeID, []byte(l.opts.NodeID)),
		meta.Put(keyIncarnation, []byte(itoa(rec.Incarnation))),
		meta.Put(keyEpoch, []byte(itoa(rec.Epoch))),
	)
}

func metaUint(meta *bolt.Bucket, key []byte, must bool) (uint64, error) {
	v := meta.Get(key)
	if v == nil {
		if must {
			return 0, fmt.Errorf("meta %s missing", key)
		}
		return 0, nil
	}
	var n uint64
	if _, err := fmt.Sscan(string(v), &n); err != nil {
		return 0, fmt.Errorf("meta %s = %q: not a number", key, v)
	}
	return n, nil
}

// migrate upgrades a file of format version from to FormatVersion, in
// the open transaction. Version 1 is the first: there is nothing older.
func migrate(tx *bolt.Tx, from uint64) error {
	if from < 1 {
		return fmt.Errorf("format version %d does not exist", from)
	}
	return nil
}

// loadDB reads a previous life's state and starts the next life.
func (l *Log) loadDB(tx *bolt.Tx, meta *bolt.Bucket, now time.Time, rec *Recovered) error {
	corrupt := func(err error) error { return l.stateErr(ErrCorruptDB, err, hintCorrupt) }
	format, err := metaUint(meta, keyFormat, true)
	if err != nil {
		return corrupt(err)
	}
	if format > FormatVersion {
		return l.stateErr(ErrNewerFormat, fmt.Errorf("format version %d, this build reads up to %d", format, FormatVersion), "run the newer gossipd, or move the file away to start this node as a new one")
	}
	if id := string(meta.Get(keyNodeID)); id != l.opts.NodeID {
		return l.stateErr(ErrOtherNode, fmt.Errorf("it was written by node %q, this is node %q", id, l.opts.NodeID), "give each node its own --data-dir, or start with --id "+fmt.Sprintf("%q", id))
	}
	if format < FormatVersion {
		if err := migrate(tx, format); err != nil {
			return corrupt(err)
		}
	}
	inc, err := metaUint(meta, keyIncarnation, true)
	if err != nil {
		return corrupt(err)
	}
	epoch, err := metaUint(meta, keyEpoch, true)
	if err != nil {
		return corrupt(err)
	}
	lastAt, err := metaUint(meta, keyLastAt, false)
	if err != nil {
		return corrupt(err)
	}
	lb, db := tx.Bucket(bucketLog), tx.Bucket(bucketDelivered)
	if lb == nil || db == nil {
		return corrupt(errors.New("log or delivered bucket missing"))
	}
	rec.Existing = true
	if v := meta.Get(keyMembers); len(v) > 0 {
		rec.Members = strings.Split(string(v), "\n")
	}
	rec.Incarnation = inc + 1
	rec.Epoch = max(epoch+1, uint64(now.UnixNano())|1)
	if lastAt > 0 {
		rec.LastAt = time.Unix(0, int64(lastAt))
	}
	// The log: offsets must be dense; the newest records are restored.
	keepFrom := now.Add(-l.opts.KeepDelivered).UnixNano()
	c := lb.Cursor()
	var prev uint64
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, err := UnmarshalRecord(v)
		if err != nil {
			return corrupt(fmt.Errorf("log record %x: %w", k, err))
		}
		if len(k) != 8 || r.Offset != beUint(k) || (prev != 0 && r.Offset != prev+1) {
			return corrupt(fmt.Errorf("log offsets not dense at key %x (record offset %d, previous %d)", k, r.Offset, prev))
		}
		if prev == 0 {
			l.first = r.Offset
		}
		prev = r.Offset
		l.head = r.Offset
		l.bytes += int64(r.Size())
		l.lastAt = max(l.lastAt, r.At)
		if r.At >= keepFrom {
			rec.Records = append(rec.Records, r)
		}
	}
	if prev == 0 { // empty: continue after the last offset ever given
		last, err := metaUint(meta, keyLastOffset, false)
		if err != nil {
			return corrupt(err)
		}
		l.head, l.first = last, last+1
	}
	l.next = l.head + 1
	l.delivered, l.dirty = make(map[Key]*Delivered), make(map[Key]bool)
	if err := db.ForEach(func(k, v []byte) error {
		key, ok := parseKey(k)
		if !ok {
			return fmt.Errorf("delivered key %x malformed", k)
		}
		d, err := UnmarshalDelivered(v)
		if err != nil {
			return fmt.Errorf("delivered %s/%d: %w", key.Node, key.Epoch, err)
		}
		if lastAt > 0 && d.Last < int64(lastAt)-int64(l.opts.KeepDelivered) {
			return nil // the previous life would have forgotten it: the next prune does
		}
		rec.Delivered[key] = d
		cp := d
		l.delivered[key] = &cp
		return nil
	}); err != nil {
		return corrupt(err)
	}
	return errors.Join(
		meta.Put(keyIncarnation, []byte(itoa(rec.Incarnation))),
		meta.Put(keyEpoch, []byte(itoa(rec.Epoch))),
	)
}

func beUint(b []byte) uint64 {
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

func isDiskFull(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// commitLoop is the group commit: it takes every record pending, writes
// them in one transaction, syncs as the policy says, then hands them to
// OnCommit.
func (l *Log) commitLoop() {
	defer close(l.done)
	for {
		l.mu.Lock()
		for len(l.pending) == 0 && !l.closed {
			l.wake.Wait()
		}
		if len(l.pending) == 0 || l.failed != nil { // closed and drained, or failed
			l.mu.Unlock()
			return
		}
		batch := l.pending
		l.pending = nil
		l.room.Broadcast()
		l.mu.Unlock()

		first, bytes, err := l.commit(batch)
		if err == nil {
			l.unsynced.Store(true)
		}
		if err != nil {
			if isDiskFull(err) {
				err = l.stateErr(ErrDiskFull, err, "free space on its file system, then restart: what was not committed is fetched again from the peers")
			} else {
				err = &Error{Path: l.path, Kind: errors.New("commit failed"), Err: err}
			}
			l.mu.Lock()
			l.failed = err
			lost := append(batch, l.pending...)
			l.pending = nil
			l.room.Broadcast()
			l.mu.Unlock()
			if l.opts.OnFailure != nil {
				l.opts.OnFailure(err, lost)
			}
			return
		}
		logged := batch[:0:0]
		for _, r := range batch {
			if !r.handled {
				logged = append(logged, r)
			}
		}
		l.mu.Lock()
		if len(logged) > 0 {
			l.head = logged[len(logged)-1].Offset
		}
		l.first, l.bytes = first, bytes
		l.mu.Unlock()
		if l.opts.OnCommit != nil && len(logged) > 0 {
			l.opts.OnCommit(logged)
		}
	}
}

// commit writes batch, the delivered sets it changes and the retention
// deletions in one transaction; it returns the new first offset and byte
// count.
func (l *Log) commit(batch []Record) (first uint64, bytes int64, err error) {
	l.mu.Lock()
	first, bytes = l.first, l.bytes
	fault := l.fault
	l.mu.Unlock()
	if fault != nil {
		return 0, 0, &os.PathError{Op: "write", Path: l.path, Err: fault}
	}
	now, last := batch[len(batch)-1].At, uint64(0)
	for _, r := range batch {
		if !r.handled {
			last = r.Offset
		}
		if r.SeqNode == "" || r.Seq == 0 {
			continue
		}
		k := Key{r.SeqNode, r.SeqEpoch}
		d := l.delivered[k]
		if d == nil {
			d = &Delivered{}
			l.delivered[k] = d
		}
		d.Spans.Add(r.Seq)
		d.Last = r.At
		l.dirty[k] = true
	}
	err = l.db.Update(func(tx *bolt.Tx) error {
		lb, db, meta := tx.Bucket(bucketLog), tx.Bucket(bucketDelivered), tx.Bucket(bucketMeta)
		for i := range batch {
			if batch[i].handled {
				continue
			}
			if err := lb.Put(offsetKey(batch[i].Offset), MarshalRecord(&batch[i])); err != nil {
				return err
			}
			bytes += int64(batch[i].Size())
		}
		// Retention, from the head.
		cut := now - int64(l.opts.Retention)
		c := lb.Cursor()
		for k, v := c.First(); k != nil && beUint(k) < last; k, v = c.First() {
			r, err := UnmarshalRecord(v)
			if err != nil {
				return err
			}
			if r.At >= cut && bytes <= l.opts.RetentionBytes {
				break
			}
			if err := c.Delete(); err != nil {
				return err
			}
			bytes -= int64(r.Size())
		}
		if k, _ := c.First(); k != nil {
			first = beUint(k)
		}
		for k := range l.dirty {
			if err := db.Put(keyBytes(k), MarshalDelivered(l.delivered[k])); err != nil {
				return err
			}
		}
		// Sequences delivered to longer ago than KeepDelivered are
		// forgotten (at most once a second).
		if now-l.lastPrune >= int64(time.Second) {
			keep := now - int64(l.opts.KeepDelivered)
			for k, d := range l.delivered {
				if d.Last < keep {
					if err := db.Delete(keyBytes(k)); err != nil {
						return err
					}
				}
			}
		}
		if last == 0 {
			return meta.Put(keyLastAt, []byte(itoa(uint64(now))))
		}
		return errors.Join(
			meta.Put(keyLastAt, []byte(itoa(uint64(now)))),
			meta.Put(keyLastOffset, []byte(itoa(last))),
		)
	})
	if err != nil {
		return 0, 0, err
	}
	clear(l.dirty)
	if now-l.lastPrune >= int64(time.Second) {
		keep := now - int64(l.opts.KeepDelivered)
		for k, d := range l.delivered {
			if d.Last < keep {
				delete(l.delivered, k)
			}
		}
		l.lastPrune = now
	}
	return first, bytes, nil
}

// syncLoop is SyncInterval's flusher: every Every, it fsyncs the file if
// a commit wrote to it since the last time. It ends with the committer.
func (l *Log) syncLoop() {
	defer close(l.syncDone)
	tk := time.NewTicker(l.opts.Sync.Every)
	defer tk.Stop()
	for {
		select {
		case <-tk.C:
			if l.unsynced.Swap(false) {
				if err := l.db.Sync(); err != nil {
					l.unsynced.Store(true) // tried again; a lasting failure shows at the next commit
				}
			}
		case <-l.done:
			return
		}
	}
}

func (l *Log) readDB(from, upto uint64, limit int) (out []Record, err error) {
	err = l.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.Seek(offsetKey(from)); k != nil && beUint(k) <= upto && len(out) < limit; k, v = c.Next() {
			r, err := UnmarshalRecord(v)
			if err != nil {
				return l.stateErr(ErrCorruptDB, fmt.Errorf("log record %d: %w", beUint(k), err), hintCorrupt)
			}
			out = append(out, r)
		}
		return nil
	})
	return out, err
}

// atOf is the At of the record at offset o.
func (l *Log) atOf(o uint64) (int64, error) {
	var at int64
	err := l.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketLog).Get(offsetKey(o))
		if v == nil {
			return fmt.Errorf("log record %d missing", o)
		}
		r, err := UnmarshalRecord(v)
		at = r.At
		return err
	})
	return at, err
}
