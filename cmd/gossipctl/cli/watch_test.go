package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// watching is a gossipctl watch running in the background.
type watching struct {
	out    *lineWriter
	stderr bytes.Buffer
	cancel context.CancelFunc
	done   chan int
}

// startWatch runs gossipctl watch with args and returns once n has the
// watcher.
func startWatch(t *testing.T, n *testNode, args ...string) *watching {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &watching{out: newLineWriter(), cancel: cancel, done: make(chan int, 1)}
	go func() {
		w.done <- run(ctx, append([]string{"watch", "--addr", n.addr}, args...), strings.NewReader(""), w.out, &w.stderr, noEnv)
	}()
	t.Cleanup(func() {
		cancel()
		<-w.done
	})
	testutil.WaitFor(t, 5*time.Second, "the watcher", func() error {
		select {
		case code := <-w.done:
			t.Fatalf("watch exited early: %d, %s", code, w.stderr.String())
		default:
		}
		if got := n.Stats().Watchers; got == 0 {
			return fmt.Errorf("no watcher yet")
		}
		return nil
	})
	return w
}

// TestWatchText: neighbour changes and warnings as text lines; interrupt
// ends it with 0.
func TestWatchText(t *testing.T) {
	n := startNode(t, "node-1")
	w := startWatch(t, n)
	if err := n.AddNeighbor("peer-9", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	line := w.out.next(t, 5*time.Second)
	if f := strings.Fields(line); len(f) != 4 || f[1] != "neighbor-added" || f[2] != "peer-9" || f[3] != "127.0.0.1:1" {
		t.Errorf("line %q; want <time> neighbor-added peer-9 127.0.0.1:1", line)
	}
	if _, err := time.Parse(time.RFC3339Nano, strings.Fields(line)[0]); err != nil {
		t.Errorf("time of %q: %v", line, err)
	}
	n.RemoveNeighbor("peer-9")
	if line := w.out.next(t, 5*time.Second); !strings.Contains(line, "  neighbor-removed  peer-9") {
		t.Errorf("line %q; want neighbor-removed peer-9", line)
	}
	// An invalid message is rejected with a warning.
	if _, err := n.PutMessageToClient(context.Background(), &pb.GossipMessage{Hash: "", FromHash: "x"}); err == nil {
		t.Fatal("a message without a hash was accepted")
	}
	if line := w.out.next(t, 5*time.Second); !strings.Contains(line, "  warning           WARN rejected message") {
		t.Errorf("line %q; want a warning", line)
	}
	w.cancel()
	if code := testutil.Await(t, w.done, 5*time.Second, "watch to exit"); code != exitOK || w.stderr.Len() != 0 {
		t.Fatalf("after interrupt: exit %d, stderr %q", code, w.stderr.String())
	}
	w.done <- 0
}

// TestWatchJSON: -o json prints one object per event; the daemon's
// shutdown ends it with 1 and one line.
func TestWatchJSON(t *testing.T) {
	n := startNode(t, "node-1")
	w := startWatch(t, n, "-o", "json")
	if err := n.AddNeighbor("peer-9", "127.0.0.1:1"); err != nil {
		t.Fatal(err)
	}
	line := w.out.next(t, 5*time.Second)
	var m map[string]any
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	if m["kind"] != "neighbor-added" || m["peer"] != "peer-9" || m["address"] != "127.0.0.1:1" || m["at"] == nil {
		t.Errorf("line %s", line)
	}
	n.Close()
	code := testutil.Await(t, w.done, 5*time.Second, "watch to exit")
	w.done <- code
	wantOneLineError(t, result{code: code, stderr: w.stderr.String()}, exitFail,
		"watch: gossipd at "+n.addr+" ended the stream: node is shutting down")
}

func TestWatchKindNames(t *testing.T) {
	want := map[pb.WatchEventKind]string{
		pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_JOINED:    "joined",
		pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_SUSPECT:   "suspect",
		pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_REFUTED:   "refuted",
		pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_DEAD:      "dead",
		pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_LEFT:      "left",
		pb.WatchEventKind_WATCH_EVENT_KIND_NEIGHBOR_REMOVED: "neighbor-removed",
		pb.WatchEventKind_WATCH_EVENT_KIND_WARNING:          "warning",
	}
	for k, name := range want {
		if got := watchKind(k); got != name {
			t.Errorf("%v prints as %q, want %q", k, got, name)
		}
	}
	e := &pb.WatchEvent{Kind: pb.WatchEventKind_WATCH_EVENT_KIND_MEMBER_DEAD, Member: &pb.Member{Id: "node-3", Address: "127.0.0.1:9005", State: pb.MemberState_MEMBER_STATE_DEAD}}
	if got := watchText(e); got != "-  dead              node-3  127.0.0.1:9005  incarnation 0" {
		t.Errorf("text %q", got)
	}
}
