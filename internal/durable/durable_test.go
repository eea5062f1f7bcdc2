package durable

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

type sink struct {
	mu   sync.Mutex
	offs []uint64
}

func (s *sink) commit(b []Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range b {
		s.offs = append(s.offs, r.Offset)
	}
}

func opts(dir, id string, s *sink) Options {
	o := Options{Dir: dir, NodeID: id, Retention: time.Hour, RetentionBytes: 1 << 20, KeepDelivered: time.Hour, OpenTimeout: 100 * time.Millisecond}
	if s != nil {
		o.OnCommit = s.commit
	}
	return o
}

func mustOpen(t *testing.T, o Options) (*Log, *Recovered) {
	t.Helper()
	l, rec, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return l, rec
}

func appendN(t *testing.T, l *Log, node string, epoch uint64, seqs ...uint64) {
	t.Helper()
	for _, s := range seqs {
		if _, err := l.Append(Record{Hash: node + itoa(s), SeqNode: node, SeqEpoch: epoch, Seq: s, Payload: "x"}); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReopenKeepsState(t *testing.T) {
	dir := t.TempDir()
	var s sink
	l, rec := mustOpen(t, opts(dir, "a", &s))
	if rec.Existing || rec.Incarnation != 1 {
		t.Fatalf("new file: %+v", rec)
	}
	epoch1 := rec.Epoch
	appendN(t, l, "x", 5, 1, 2, 3, 7)
	l.MarkHandled(Key{"x", 5}, 9)
	appendN(t, l, "y", 1, 1)
	if err := l.SaveMembers([]string{"10.0.0.1:9001", "10.0.0.2:9001"}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.offs, []uint64{1, 2, 3, 4, 5}) {
		t.Fatalf("committed offsets %v", s.offs)
	}
	l, rec = mustOpen(t, opts(dir, "a", nil))
	defer l.Close()
	if !rec.Existing || rec.Incarnation != 2 || rec.Epoch <= epoch1 || rec.LastAt.IsZero() {
		t.Fatalf("reopened: %+v", rec)
	}
	if !slices.Equal(rec.Members, []string{"10.0.0.1:9001", "10.0.0.2:9001"}) {
		t.Errorf("members %v", rec.Members)
	}
	want := Spans{{1, 3}, {7, 7}, {9, 9}}
	if got := rec.Delivered[Key{"x", 5}].Spans; !slices.Equal(got, want) {
		t.Errorf("delivered x/5 = %v, want %v", got, want)
	}
	if len(rec.Records) != 5 || rec.Records[4].Hash != "y1" {
		t.Errorf("restored records: %d", len(rec.Records))
	}
	if first, head := l.Bounds(); first != 1 || head != 5 {
		t.Errorf("Bounds %d..%d", first, head)
	}
	if o, err := l.Append(Record{Hash: "z"}); err != nil || o != 6 {
		t.Errorf("next offset %d, %v; want 6", o, err)
	}
}

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	l, _ := mustOpen(t, opts(dir, "a", nil))
	defer l.Close()
	start := time.Now()
	_, _, err := Open(opts(dir, "a", nil))
	if !errors.Is(err, ErrLocked) || time.Since(start) > 5*time.Second {
		t.Fatalf("second open: %v after %v, want ErrLocked at once", err, time.Since(start))
	}
	if !strings.Contains(err.Error(), filepath.Join(dir, FileName)) {
		t.Errorf("error does not name the file: %v", err)
	}
}

// Bad state is an error of its own kind, naming the file; the file is
// left as it was.
func TestBadState(t *testing.T) {
	write := func(t *testing.T, id string) string {
		dir := t.TempDir()
		l, _ := mustOpen(t, opts(dir, id, nil))
		appendN(t, l, "x", 1, 1, 2, 3)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	edit := func(t *testing.T, dir string, f func(tx *bolt.Tx) error) {
		db, err := bolt.Open(filepath.Join(dir, FileName), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Update(f); err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	cases := []struct {
		name  string
		setup func(t *testing.T) string
		kind  error
		id    string
	}{
		{"other node", func(t *testing.T) string { return write(t, "b") }, ErrOtherNode, "a"},
		{"newer format", func(t *testing.T) string {
			dir := write(t, "a")
			edit(t, dir, func(tx *bolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyFormat, []byte("2")) })
			return dir
		}, ErrNewerFormat, "a"},
		{"corrupt record", func(t *testing.T) string {
			dir := write(t, "a")
			edit(t, dir, func(tx *bolt.Tx) error { return tx.Bucket(bucketLog).Put(offsetKey(2), []byte("garbage!")) })
			return dir
		}, ErrCorruptDB, "a"},
		{"offsets not dense", func(t *testing.T) string {
			dir := write(t, "a")
			edit(t, dir, func(tx *bolt.Tx) error { return tx.Bucket(bucketLog).Delete(offsetKey(2)) })
			return dir
		}, ErrCorruptDB, "a"},
		{"truncated to nothing", func(t *testing.T) string {
			dir := write(t, "a")
			if err := os.Truncate(filepath.Join(dir, FileName), 0); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrCorruptDB, "a"},
		{"truncated", func(t *testing.T) string {
			dir := write(t, "a")
			fi, _ := os.Stat(filepath.Join(dir, FileName))
			if err := os.Truncate(filepath.Join(dir, FileName), fi.Size()/2); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrCorruptDB, "a"},
		{"garbage", func(t *testing.T) string {
			dir := t.TempDir()
			b := make([]byte, 64<<10)
			for i := range b {
				b[i] = byte(i * 7)
			}
			if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o600); err != nil {
				t.Fatal(err)
			}
			return dir
		}, ErrCorruptDB, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := c.setup(t)
			before, _ := os.ReadFile(filepath.Join(dir, FileName))
			l, _, err := Open(opts(dir, c.id, nil))
			if err == nil {
				l.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("err = %v, want %v", err, c.kind)
			}
			var se *Error
			if !errors.As(err, &se) || se.Path != filepath.Join(dir, FileName) || se.Hint == "" {
				t.Errorf("error does not name the file and what to do: %v", err)
			}
			after, _ := os.ReadFile(filepath.Join(dir, FileName))
			if c.kind != ErrCorruptDB || len(before) > 0 { // bbolt may not rewrite anything
				if !slices.Equal(before, after) {
					t.Errorf("the file was changed")
				}
			}
		})
	}
}

func TestMemoryLogRetention(t *testing.T) {
	now := time.Unix(1000, 0)
	var s sink
	o := opts("", "a", &s)
	o.Retention = time.Minute
	o.Now = func() time.Time { return now }
	l, _ := mustOpen(t, o)
	appendN(t, l, "x", 1, 1, 2, 3)
	now = now.Add(2 * time.Minute)
	appendN(t, l, "x", 1, 4)
	if first, head := l.Bounds(); first != 4 || head != 4 {
		t.Fatalf("Bounds %d..%d", first, head)
	}
	if len(s.offs) != 4 {
		t.Errorf("OnCommit saw %v", s.offs)
	}
	recs, _ := l.Read(1, 10, 10)
	if len(recs) != 1 || recs[0].Offset != 4 {
		t.Errorf("Read = %v", recs)
	}
}

func TestParseSync(t *testing.T) {
	for in, want := range map[string]string{"always": "always", "never": "never", "100ms": "100ms", "1s": "1s"} {
		p, err := ParseSync(in)
		if err != nil || p.String() != want {
			t.Errorf("ParseSync(%q) = %v, %v", in, p, err)
		}
	}
	for _, in := range []string{"", "sometimes", "-1s", "0s"} {
		if _, err := ParseSync(in); err == nil {
			t.Errorf("ParseSync(%q) accepted", in)
		}
	}
}

func TestSpansAdd(t *testing.T) {
	var s Spans
	for _, x := range []uint64{5, 1, 3, 2, 4, 9, 7, 8, 20} {
		if !s.Add(x) {
			t.Fatalf("Add(%d) not new", x)
		}
	}
	if s.Add(3) {
		t.Error("Add(3) twice")
	}
	if want := (Spans{{1, 5}, {7, 9}, {20, 20}}); !slices.Equal(s, want) {
		t.Errorf("spans %v, want %v", s, want)
	}
	if !s.Has(8) || s.Has(6) || s.Has(21) {
		t.Error("Has")
	}
}

// --sync with a duration: commits are written at once and fsynced by the
// flusher within the period, also when no commit follows.
func TestIntervalSync(t *testing.T) {
	var s sink
	o := opts(t.TempDir(), "a", &s)
	o.Sync, _ = ParseSync("20ms")
	l, _ := mustOpen(t, o)
	appendN(t, l, "x", 1, 1, 2)
	testutil.WaitFor(t, 10*time.Second, "the commits fsynced", func() error {
		s.mu.Lock()
		k := len(s.offs)
		s.mu.Unlock()
		if k != 2 || l.unsynced.Load() {
			return fmt.Errorf("%d committed, unsynced %v", k, l.unsynced.Load())
		}
		return nil
	})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// The in-memory log across chunk boundaries: retention by bytes keeps a
// sliding window, reads and time searches see it dense.
func TestMemoryLogWindow(t *testing.T) {
	now := time.Unix(1000, 0)
	o := opts("", "a", nil)
	o.RetentionBytes = 3000 * 66 // records of 66 bytes (64 + id "h" + payload "x")
	o.Now = func() time.Time { now = now.Add(time.Millisecond); return now }
	l, _ := mustOpen(t, o)
	for i := range 5000 {
		if _, err := l.Append(Record{Hash: "h", Payload: "x", Seq: uint64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	first, head := l.Bounds()
	if head != 5000 || first != 2001 {
		t.Fatalf("Bounds %d..%d, want 2001..5000", first, head)
	}
	recs, _ := l.Read(first, head, 5000)
	for i, r := range recs {
		if r.Offset != first+uint64(i) || r.Seq != r.Offset {
			t.Fatalf("record %d: offset %d seq %d", i, r.Offset, r.Seq)
		}
	}
	if len(recs) != 3000 {
		t.Fatalf("read %d records", len(recs))
	}
	mid := recs[1499]
	if o, _ := l.FindTime(time.Unix(0, mid.At)); o != mid.Offset {
		t.Errorf("FindTime = %d, want %d", o, mid.Offset)
	}
	if o, _ := l.FindTime(time.Unix(0, mid.At-1)); o != mid.Offset {
		t.Errorf("FindTime just before = %d, want %d", o, mid.Offset)
	}
}
