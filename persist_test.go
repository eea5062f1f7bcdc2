package gossip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// offsetRecorder records the offsets a DeliveryHandler sees.
type offsetRecorder struct {
	mu   sync.Mutex
	offs []uint64
	ids  []string
}

func (r *offsetRecorder) handle(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.offs = append(r.offs, d.Offset)
	r.ids = append(r.ids, d.Hash)
}

func (r *offsetRecorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.offs)
}

// lonelyNode is a node without neighbours (publishes are delivered
// locally only), with a data dir when dir is not "".
func lonelyNode(t *testing.T, dir string, cfg Config, opts ...Option) (*GossipNode, *offsetRecorder) {
	t.Helper()
	rec := &offsetRecorder{}
	all := append([]Option{WithConfig(cfg), WithDeliveryHandler(rec.handle)}, opts...)
	if dir != "" {
		all = append(all, WithDataDir(dir, SyncAlways))
	}
	n, err := New("solo", "mem-solo", nil, nil, nil, nil, all...)
	if err != nil {
		t.Fatal(err)
	}
	return n, rec
}

func publishN(t *testing.T, n *GossipNode, prefix string, k int) {
	t.Helper()
	for i := range k {
		if _, _, err := n.Publish(context.Background(), fmt.Sprintf("%s-%03d", prefix, i), []byte("payload")); err != nil {
			t.Fatal(err)
		}
	}
}

// next receives one delivery from s or fails.
func next(t *testing.T, s *Subscription) Delivery {
	t.Helper()
	select {
	case d, ok := <-s.C():
		if !ok {
			t.Fatalf("subscription closed: %v", s.Err())
		}
		return d
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery within 10 s")
	}
	return Delivery{}
}

func forBoth(t *testing.T, f func(t *testing.T, dir string)) {
	t.Run("memory", func(t *testing.T) { synctest.Test(t, func(t *testing.T) { f(t, "") }) })
	t.Run("data-dir", func(t *testing.T) {
		dir := t.TempDir()
		synctest.Test(t, func(t *testing.T) { f(t, dir) })
	})
}

// Every delivery gets the next offset: dense, monotonic, the same for
// the handler and the subscriptions.
func TestDeliveryLogOffsets(t *testing.T) {
	forBoth(t, func(t *testing.T, dir string) {
		n, rec := lonelyNode(t, dir, Config{})
		defer n.Close()
		sub, err := n.Subscribe(0)
		if err != nil {
			t.Fatal(err)
		}
		publishN(t, n, "m", 50)
		for i := 1; i <= 50; i++ {
			if d := next(t, sub); d.Offset != uint64(i) || d.Hash != fmt.Sprintf("m-%03d", i-1) {
				t.Fatalf("delivery %d: offset %d id %s", i, d.Offset, d.Hash)
			}
		}
		synctest.Wait()
		rec.mu.Lock()
		for i, o := range rec.offs {
			if o != uint64(i+1) {
				t.Errorf("handler: delivery %d has offset %d", i+1, o)
			}
		}
		rec.mu.Unlock()
		if first, head := n.LogBounds(); first != 1 || head != 50 {
			t.Errorf("LogBounds = %d..%d, want 1..50", first, head)
		}
	})
}

// Subscriptions start now, at an offset, at a time or at the earliest
// retained message, and continue live without a gap or a duplicate.
func TestSubscribeFromPositions(t *testing.T) {
	forBoth(t, func(t *testing.T, dir string) {
		n, _ := lonelyNode(t, dir, Config{})
		defer n.Close()
		publishN(t, n, "a", 5)
		time.Sleep(time.Minute)
		mid := time.Now()
		publishN(t, n, "b", 5)

		check := func(name string, from Position, want []uint64) {
			t.Helper()
			s, err := n.SubscribeFrom(0, from)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			defer s.Close()
			publishN(t, n, "live-"+name, 1) // delivered after the replay
			want = append(want, 11+uint64(len(liveSeen)))
			liveSeen = append(liveSeen, name)
			for _, w := range want {
				if d := next(t, s); d.Offset != w {
					t.Fatalf("%s: got offset %d, want %d", name, d.Offset, w)
				}
			}
		}
		liveSeen = nil
		check("offset", FromOffset(8), []uint64{8, 9, 10})
		check("earliest", FromEarliest(), []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
		check("time", FromTime(mid), []uint64{6, 7, 8, 9, 10, 11, 12})
		check("now", FromNow(), nil)
		check("next", FromOffset(15), nil) // the next offset: from now

		for _, o := range []uint64{0, 17} {
			_, err := n.SubscribeFrom(0, FromOffset(o))
			if !errors.Is(err, ErrOutOfRange) || statusCode(err).String() != "OutOfRange" {
				t.Errorf("FromOffset(%d): err = %v, want ErrOutOfRange", o, err)
			}
		}
	})
}

var liveSeen []string

// Retention drops the oldest messages by age and by bytes; an offset
// older than what is retained is OutOfRange, naming the earliest.
func TestLogRetention(t *testing.T) {
	forBoth(t, func(t *testing.T, dir string) {
		n, _ := lonelyNode(t, dir, Config{LogRetention: time.Minute, LogRetentionBytes: 10 << 10})
		defer n.Close()
		publishN(t, n, "old", 5)
		time.Sleep(2 * time.Minute)
		publishN(t, n, "new", 1)
		if first, head := n.LogBounds(); first != 6 || head != 6 {
			t.Fatalf("after the age limit: LogBounds = %d..%d, want 6..6", first, head)
		}
		_, err := n.SubscribeFrom(0, FromOffset(3))
		if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), "earliest available is 6") {
			t.Fatalf("FromOffset(3): %v", err)
		}
		// By bytes: each record counts 64 bytes + ids + payload.
		for i := range 200 {
			if _, _, err := n.Publish(context.Background(), fmt.Sprintf("big-%03d", i), make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
		}
		first, head := n.LogBounds()
		if head != 206 || first < 150 || first > 180 {
			t.Fatalf("after the byte limit: LogBounds = %d..%d", first, head)
		}
		s, err := n.SubscribeFrom(0, FromEarliest())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if d := next(t, s); d.Offset != first {
			t.Fatalf("earliest: offset %d, want %d", d.Offset, first)
		}
	})
}

// A restarted node keeps its log and its offsets, and a subscriber
// resuming from an offset of the previous life continues exactly.
func TestLogSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		n, _ := lonelyNode(t, dir, Config{})
		publishN(t, n, "one", 10)
		if n.Incarnation() != 1 || n.Restored() {
			t.Errorf("first life: incarnation %d restored %v", n.Incarnation(), n.Restored())
		}
		n.Close()
		n, rec := lonelyNode(t, dir, Config{})
		defer n.Close()
		if n.Incarnation() != 2 || !n.Restored() {
			t.Errorf("second life: incarnation %d restored %v", n.Incarnation(), n.Restored())
		}
		s, err := n.SubscribeFrom(0, FromOffset(7))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		publishN(t, n, "two", 3)
		for w := uint64(7); w <= 13; w++ {
			d := next(t, s)
			if d.Offset != w {
				t.Fatalf("offset %d, want %d", d.Offset, w)
			}
			if w <= 10 && d.Hash != fmt.Sprintf("one-%03d", w-1) {
				t.Fatalf("offset %d is %s", w, d.Hash)
			}
		}
		// An id delivered in the previous life is still de-duplicated.
		if _, _, err := n.Publish(context.Background(), "one-003", []byte("again")); !errors.Is(err, ErrAlreadySeen) {
			t.Errorf("republishing an id of the previous life: %v, want ErrAlreadySeen", err)
		}
		synctest.Wait()
		if rec.len() != 3 {
			t.Errorf("second life delivered %d, want 3", rec.len())
		}
	})
}

// persistentCluster is a cluster whose nodes keep their state in dirs[i]
// (swapped by the test to simulate a lost disk) and start with catch-up 0.
func persistentCluster(t *testing.T, n int, dirs []string) *dcluster {
	return newDClusterWith(t, n, Config{}, DefaultLANMembershipConfig(), 7, func(i int) []Option {
		return []Option{WithDataDir(dirs[i], SyncAlways), WithCatchUp(0)}
	})
}

// Restarted with the same state, a node delivers exactly what it missed
// while it was down: nothing twice (across its lives), nothing missed,
// its offsets continuing. With its state lost, it is a new node: only
// what is published after it started.
func TestRestartWithState(t *testing.T) {
	const N = 4
	dirs := make([]string, N+1)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	synctest.Test(t, func(t *testing.T) {
		c := persistentCluster(t, N, dirs)
		defer c.close()
		all := []int{0, 1, 2, 3}
		one := ids("one", 20)
		for i, id := range one {
			c.publish(i%2, id, []byte(id))
		}
		c.awaitDelivered(time.Minute, all, one)

		c.crash(2)
		c.crash(3)
		two := ids("two", 20)
		for i, id := range two {
			c.publish(i%2, id, []byte(id))
		}
		c.awaitDelivered(time.Minute, []int{0, 1}, two)
		time.Sleep(5 * time.Second)

		c.restart(2, 7) // same state
		dirs[3] = dirs[N]
		c.restart(3, 7) // state lost: a new node
		three := ids("three", 10)
		for i, id := range three {
			c.publish(i%2, id, []byte(id))
		}
		c.awaitDelivered(time.Minute, []int{2}, append(append([]string{}, two...), three...))
		c.awaitDelivered(time.Minute, all, three)
		time.Sleep(10 * time.Second) // let repair settle: anything extra would arrive now

		for _, id := range append(append(append([]string{}, one...), two...), three...) {
			if k := c.seen[2].has(id); k != 1 {
				t.Errorf("restarted node delivered %s %d times over its lives, want 1", id, k)
			}
		}
		for _, id := range append(append([]string{}, one...), two...) {
			if k := c.recs[3].has(id); k != 0 {
				t.Errorf("node with lost state delivered %s, published before it started", id)
			}
		}
		if st := c.node(3).Stats(); st.Historic == 0 {
			t.Errorf("node with lost state counted no historic messages: %+v", st.Historic)
		}
		// Node 2's log: every message once, offsets 1..50 dense.
		first, head := c.node(2).LogBounds()
		if first != 1 || head != 50 {
			t.Fatalf("restarted node's log: %d..%d, want 1..50", first, head)
		}
		s, err := c.node(2).SubscribeFrom(0, FromEarliest())
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		got := map[string]int{}
		for w := uint64(1); w <= 50; w++ {
			d := next(t, s)
			if d.Offset != w {
				t.Fatalf("log offset %d, want %d", d.Offset, w)
			}
			got[d.Hash]++
		}
		if len(got) != 50 {
			t.Errorf("the log holds %d distinct messages, want 50", len(got))
		}
	})
}

// Over gRPC: the response headers come as soon as the subscription is
// registered (a publish after them is never missed), messages carry
// their offsets, from_offset resumes, and an offset not retained is
// OUT_OF_RANGE naming the earliest.
func TestSubscribeOverGRPC(t *testing.T) {
	n, cc := startNode(t, "g", WithConfig(Config{LogRetentionBytes: 4 << 10}))
	api := pbgrpc.NewNodeServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for round := range 20 { // a publish right after the headers is never missed
		stream, err := api.Subscribe(ctx, &pb.SubscribeRequest{})
		if err != nil {
			t.Fatal(err)
		}
		md, err := stream.Header()
		if err != nil {
			t.Fatal(err)
		}
		nextOff := md.Get(NextOffsetHeader)
		if _, err := api.Publish(ctx, &pb.PublishRequest{Id: fmt.Sprintf("r%d", round), Payload: []byte("x")}); err != nil {
			t.Fatal(err)
		}
		got, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if got.GetId() != fmt.Sprintf("r%d", round) || fmt.Sprint(got.GetOffset()) != nextOff[0] {
			t.Fatalf("round %d: got %s at offset %d, header said %v", round, got.GetId(), got.GetOffset(), nextOff)
		}
	}
	stream, err := api.Subscribe(ctx, &pb.SubscribeRequest{Start: &pb.SubscribeRequest_FromOffset{FromOffset: 15}})
	if err != nil {
		t.Fatal(err)
	}
	for w := uint64(15); w <= 20; w++ {
		got, err := stream.Recv()
		if err != nil || got.GetOffset() != w || got.GetId() != fmt.Sprintf("r%d", w-1) {
			t.Fatalf("from_offset: got %v, %v; want offset %d", got, err, w)
		}
	}
	for i := range 100 { // past the byte retention
		n.Publish(ctx, fmt.Sprintf("fill-%d", i), make([]byte, 100))
	}
	first, _ := n.LogBounds()
	stream, err = api.Subscribe(ctx, &pb.SubscribeRequest{Start: &pb.SubscribeRequest_FromOffset{FromOffset: 1}})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.OutOfRange || !strings.Contains(err.Error(), fmt.Sprintf("earliest available is %d", first)) {
		t.Fatalf("from_offset 1 after retention: %v", err)
	}
}

// A full disk at run time: the publish waiting for the commit fails with
// ErrStateFailed (Unavailable), WithStateFailure is told (ErrDiskFull),
// and the node refuses to log anything more.
func TestStateFailure(t *testing.T) {
	dir := t.TempDir()
	synctest.Test(t, func(t *testing.T) {
		failed := make(chan error, 1)
		n, rec := lonelyNode(t, dir, Config{}, WithStateFailure(func(err error) { failed <- err }))
		defer n.Close()
		publishN(t, n, "ok", 3)
		n.dlog.FailCommits(syscall.ENOSPC)
		_, _, err := n.Publish(context.Background(), "lost", []byte("x"))
		if !errors.Is(err, ErrStateFailed) || !errors.Is(err, ErrDiskFull) || statusCode(err) != codes.Unavailable {
			t.Fatalf("publish on a full disk: %v", err)
		}
		select {
		case err := <-failed:
			if !errors.Is(err, ErrDiskFull) || !strings.Contains(err.Error(), dir) {
				t.Errorf("WithStateFailure got %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("WithStateFailure not called")
		}
		if _, _, err := n.Publish(context.Background(), "after", []byte("x")); !errors.Is(err, ErrStateFailed) {
			t.Errorf("publish after the failure: %v", err)
		}
		synctest.Wait()
		if rec.len() != 3 {
			t.Errorf("delivered %d, want the 3 committed", rec.len())
		}
	})
}

// A brand-new node delivers what its peers hold from the catch-up window
// before it started, and nothing older.
func TestNewNodeCatchUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDClusterWith(t, 2, Config{}, DefaultLANMembershipConfig(), 9, func(i int) []Option {
			if i == 2 {
				return []Option{WithCatchUp(3 * time.Minute)}
			}
			return []Option{WithCatchUp(0)}
		})
		defer c.close()
		old := ids("old", 5)
		for _, id := range old {
			c.publish(0, id, []byte(id))
		}
		time.Sleep(5 * time.Minute)
		recent := ids("recent", 5)
		for _, id := range recent {
			c.publish(1, id, []byte(id))
		}
		time.Sleep(time.Minute)
		c.grow(2, 9)
		c.awaitDelivered(time.Minute, []int{2}, recent)
		time.Sleep(10 * time.Second)
		for _, id := range old {
			if c.recs[2].has(id) != 0 {
				t.Errorf("new node delivered %s, published 6 min before it started (catch-up 3 min)", id)
			}
		}
		if st := c.node(2).Stats(); st.Historic != uint64(len(old)) {
			t.Errorf("historic %d, want %d", st.Historic, len(old))
		}
	})
}
