package cli

import (
	"context"
	"encoding/json"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

func TestPublishArgument(t *testing.T) {
	n := startNode(t, "node-1")
	r := gossipctl(t, "publish", "--addr", n.addr, "hello")
	wantOK(t, r)
	if !regexp.MustCompile(`^published [0-9a-f]{32} \(ack from node-1\)\n$`).MatchString(r.stdout) {
		t.Fatalf("stdout %q; want \"published <id> (ack from node-1)\"", r.stdout)
	}
	if got := n.Stats().Delivered; got != 1 {
		t.Fatalf("node delivered %d messages, want 1", got)
	}
}

func TestPublishStdinJSON(t *testing.T) {
	n := startNode(t, "node-1")
	sub, err := n.Subscribe(0)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	payload := "line one\nline two\n"
	r := runWith(t, context.Background(), strings.NewReader(payload), noEnv,
		"publish", "--addr", n.addr, "-o", "json", "--id", "from-stdin", "-")
	wantOK(t, r)
	var got struct {
		ID  string `json:"id"`
		Ack struct {
			Hash string `json:"hash"`
			From string `json:"from"`
		} `json:"ack"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	if got.ID != "from-stdin" || got.Ack.Hash != "from-stdin" || got.Ack.From != "node-1" {
		t.Fatalf("got %+v; want id and ack.hash from-stdin, ack.from node-1", got)
	}
	d := testutil.Await(t, sub.C(), 5*time.Second, "the delivery")
	if d.Hash != "from-stdin" || d.Payload != payload {
		t.Fatalf("delivered %q with payload %q; want from-stdin with %q", d.Hash, d.Payload, payload)
	}
}

func TestPublishSameIDTwice(t *testing.T) {
	n := startNode(t, "node-1")
	wantOK(t, gossipctl(t, "publish", "--addr", n.addr, "--id", "once", "first"))
	r := gossipctl(t, "publish", "--addr", n.addr, "--id", "once", "second")
	wantOneLineError(t, r, exitFail, "gossipctl: publish: ")
	if !strings.HasSuffix(r.stderr, "(AlreadyExists)\n") || r.stdout != "" {
		t.Fatalf("stderr %q, stdout %q; want an AlreadyExists line and no output", r.stderr, r.stdout)
	}
}

// endless is an endless stream of 'x'.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestPublishStdinTooLarge(t *testing.T) {
	r := runWith(t, context.Background(), io.LimitReader(endless{}, maxStdinPayload+1), noEnv,
		"publish", "--addr", closedAddr(t), "-")
	wantOneLineError(t, r, exitFail, "larger than 16 MiB")
}

func TestPublishNodeLimit(t *testing.T) {
	n := startNode(t, "node-1")
	big := strings.Repeat("x", n.Config().MaxPayloadBytes+1)
	r := runWith(t, context.Background(), strings.NewReader(big), noEnv, "publish", "--addr", n.addr, "-")
	wantOneLineError(t, r, exitFail, "(ResourceExhausted)")
}
