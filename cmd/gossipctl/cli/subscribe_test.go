package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

func TestSubscribe(t *testing.T) {
	n := startNode(t, "node-1")
	// -o table too: subscribe prints JSON lines whatever -o says.
	s := startSubscribe(t, n, "-o", "table", "--buffer", "16")

	wantOK(t, gossipctl(t, "publish", "--addr", n.addr, "--id", "m1", "hello <world>"))
	var m map[string]any
	line := s.out.next(t, 5*time.Second)
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	for k, want := range map[string]any{"id": "m1", "origin": "node-1", "from": "node-1", "payload": "hello <world>", "hops": 0.0} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v (line %s)", k, m[k], want, line)
		}
	}
	for _, k := range []string{"received_at", "created_at"} {
		s, _ := m[k].(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			t.Errorf("%s = %v: %v", k, m[k], err)
		}
	}
	for _, k := range []string{"missed", "payload_base64"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present in %s", k, line)
		}
	}

	// A payload that is not UTF-8 comes as payload_base64.
	binary := []byte{0xff, 0x00, 0xfe}
	if _, _, err := n.Publish(context.Background(), "m2", binary); err != nil {
		t.Fatal(err)
	}
	line = s.out.next(t, 5*time.Second)
	m = nil
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	if _, ok := m["payload"]; ok || m["id"] != "m2" || m["payload_base64"] != base64.StdEncoding.EncodeToString(binary) {
		t.Fatalf("line %s; want id m2, payload_base64 %q and no payload", line, base64.StdEncoding.EncodeToString(binary))
	}

	s.cancel() // SIGINT
	if code := s.wait(t, 5*time.Second); code != exitOK || s.stderr.Len() != 0 {
		t.Fatalf("after interrupt: exit %d, stderr %q; want 0 and nothing", code, s.stderr.String())
	}
}

func TestSubscribeDaemonShutsDown(t *testing.T) {
	n := startNode(t, "node-1")
	s := startSubscribe(t, n)
	n.Close()
	code := s.wait(t, 5*time.Second)
	wantOneLineError(t, result{code: code, stderr: s.stderr.String()}, exitFail,
		"subscribe: gossipd at "+n.addr+" ended the subscription: node is shutting down")
}

func TestSubscribeBadBuffer(t *testing.T) {
	n := startNode(t, "node-1")
	r := gossipctl(t, "subscribe", "--addr", n.addr, "--buffer", "4000000000")
	wantOneLineError(t, r, exitFail, "(InvalidArgument)")
}

// offsetOf decodes a line's offset.
func offsetOf(t *testing.T, line string) (uint64, string) {
	t.Helper()
	var m struct {
		Offset uint64 `json:"offset"`
		ID     string `json:"id"`
	}
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	return m.Offset, m.ID
}

// --from-earliest, --from-offset and --since start in the node's log;
// --offset-file resumes right after the last line printed.
func TestSubscribeStartPositions(t *testing.T) {
	n := startNode(t, "node-1")
	for i := 1; i <= 3; i++ {
		wantOK(t, gossipctl(t, "publish", "--addr", n.addr, "--id", fmt.Sprintf("m%d", i), "x"))
	}
	pos := filepath.Join(t.TempDir(), "pos")
	s := startSubscribe(t, n, "--from-earliest", "--offset-file", pos)
	for want := uint64(1); want <= 3; want++ {
		if o, id := offsetOf(t, s.out.next(t, 5*time.Second)); o != want || id != fmt.Sprintf("m%d", want) {
			t.Fatalf("got offset %d id %s, want %d", o, id, want)
		}
	}
	testutil.WaitFor(t, 5*time.Second, "the offset file", func() error {
		if b, _ := os.ReadFile(pos); string(b) != "3\n" {
			return fmt.Errorf("offset file holds %q", b)
		}
		return nil
	})
	s.cancel()
	s.wait(t, 5*time.Second)
	noSubscribers(t, n)

	for i := 4; i <= 5; i++ {
		wantOK(t, gossipctl(t, "publish", "--addr", n.addr, "--id", fmt.Sprintf("m%d", i), "x"))
	}
	// Run again: it resumes after offset 3 (the start flag is ignored).
	s = startSubscribe(t, n, "--from-earliest", "--offset-file", pos)
	for want := uint64(4); want <= 5; want++ {
		if o, _ := offsetOf(t, s.out.next(t, 5*time.Second)); o != want {
			t.Fatalf("resumed at offset %d, want %d", o, want)
		}
	}
	s.cancel()
	s.wait(t, 5*time.Second)
	noSubscribers(t, n)

	s = startSubscribe(t, n, "--from-offset", "5")
	if o, _ := offsetOf(t, s.out.next(t, 5*time.Second)); o != 5 {
		t.Fatalf("--from-offset 5: got %d", o)
	}
	s.cancel()
	s.wait(t, 5*time.Second)
	noSubscribers(t, n)

	s = startSubscribe(t, n, "--since", "1h")
	if o, _ := offsetOf(t, s.out.next(t, 5*time.Second)); o != 1 {
		t.Fatalf("--since 1h: got %d", o)
	}
	s.cancel()
	s.wait(t, 5*time.Second)
	noSubscribers(t, n)

	r := gossipctl(t, "subscribe", "--addr", n.addr, "--from-offset", "99")
	wantOneLineError(t, r, exitFail, "offset 99 is beyond the log; the next offset is 6 (OutOfRange)")
	if err := os.WriteFile(pos, []byte("oops"), 0o644); err != nil {
		t.Fatal(err)
	}
	r = gossipctl(t, "subscribe", "--addr", n.addr, "--offset-file", pos)
	wantOneLineError(t, r, exitFail, `is not an offset`)
}

// noSubscribers waits until the node has dropped every subscription.
func noSubscribers(t *testing.T, n *testNode) {
	t.Helper()
	testutil.WaitFor(t, 5*time.Second, "no subscribers", func() error {
		if k := n.Stats().Subscribers; k != 0 {
			return fmt.Errorf("%d subscribers", k)
		}
		return nil
	})
}
