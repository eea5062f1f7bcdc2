package cli

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/internal/daemon"
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

// TestPublishTooLarge publishes to a real gossipd payloads over its max
// payload: slightly over (the node's validation refuses it, naming its
// limit) and far over (gRPC's receive limit refuses the request). Both
// are reported in our words, with the numbers, and nothing is published.
func TestPublishTooLarge(t *testing.T) {
	addr := startDaemon(t)
	small := startDaemon(t, "--max-payload", "64KiB")
	tests := []struct {
		name string
		addr string
		size int
		want string
	}{
		{"just over the default", addr, 1<<20 + 1,
			"gossipctl: payload is 1.0 MiB (1048577 bytes), more than node " + addr + " accepts (1 MiB: its --max-payload); nothing was published\n"},
		{"twice the default", addr, 2 << 20,
			"gossipctl: payload is 2 MiB, more than node " + addr + " accepts: it takes requests of at most 1.1 MiB (1114880 bytes), its --max-payload plus room for ids; nothing was published\n"},
		{"the most gossipctl reads", addr, maxStdinPayload,
			"gossipctl: payload is 16 MiB, more than node " + addr + " accepts: it takes requests of at most 1.1 MiB (1114880 bytes), its --max-payload plus room for ids; nothing was published\n"},
		{"just over a lowered limit", small, 64<<10 + 100,
			"gossipctl: payload is 64.1 KiB (65636 bytes), more than node " + small + " accepts (64 KiB: its --max-payload); nothing was published\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runWith(t, context.Background(), io.LimitReader(endless{}, int64(tt.size)), noEnv, "publish", "--addr", tt.addr, "-")
			if r.code != exitFail || r.stderr != tt.want || r.stdout != "" {
				t.Errorf("exit %d, stdout %q, stderr\n %q\nwant 1 and\n %q", r.code, r.stdout, r.stderr, tt.want)
			}
			// The argument path says the same.
			if tt.size <= 1<<20+1 {
				r := gossipctl(t, "publish", "--addr", tt.addr, strings.Repeat("x", tt.size))
				if r.stderr != tt.want {
					t.Errorf("payload as argument: stderr %q", r.stderr)
				}
			}
		})
	}
	// Nothing was published, and a payload at the limit still is.
	st := gossipctl(t, "status", "--addr", addr, "-o", "json")
	wantOK(t, st)
	if !strings.Contains(st.stdout, `"delivered": 0,`) {
		t.Errorf("a refused payload was delivered: %s", st.stdout)
	}
	r := runWith(t, context.Background(), io.LimitReader(endless{}, 1<<20), noEnv, "publish", "--addr", addr, "-")
	wantOK(t, r)
}

// TestTooLargeOnlyForSize: other ResourceExhausted answers (a saturated
// node) and other codes keep the node's own words.
func TestTooLargeOnlyForSize(t *testing.T) {
	g := &globals{addr: "n:1"}
	for _, err := range []error{
		status.Error(codes.ResourceExhausted, "node saturated: neighbours' stream queues full"),
		status.Error(codes.InvalidArgument, "payload exceeds the maximum size: 5 bytes, limit 4"),
		errors.New("payload exceeds the maximum size"),
	} {
		if got := g.tooLarge(5, err); got != nil {
			t.Errorf("tooLarge(%v) = %v, want nil", err, got)
		}
	}
	// A node that words it without the numbers.
	got := g.tooLarge(5, status.Error(codes.ResourceExhausted, "payload exceeds the maximum size"))
	if want := "payload is 5 bytes, more than node n:1 accepts (its --max-payload); nothing was published"; got == nil || got.Error() != want {
		t.Errorf("tooLarge without numbers = %v, want %q", got, want)
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int]string{
		0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 1536: "1.5 KiB (1536 bytes)",
		1 << 20: "1 MiB", 1<<20 + 1: "1.0 MiB (1048577 bytes)", 1114880: "1.1 MiB (1114880 bytes)", 16 << 20: "16 MiB",
	} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestPublishHelpStatesTheLimits: publish --help says what decides the
// largest payload (the node's --max-payload, with gossipd's default) and
// how much gossipctl reads from stdin, and those numbers are gossipd's.
func TestPublishHelpStatesTheLimits(t *testing.T) {
	if daemonDefaultMaxPayload != daemon.DefaultMaxPayload || maxStdinPayload != daemon.MaxPayloadLimit {
		t.Errorf("gossipctl assumes gossipd's default max payload %d and its largest %d; gossipd has %d and %d",
			daemonDefaultMaxPayload, maxStdinPayload, daemon.DefaultMaxPayload, daemon.MaxPayloadLimit)
	}
	r := gossipctl(t, "publish", "--help")
	wantOK(t, r)
	help := strings.Join(strings.Fields(r.stdout), " ")
	for _, w := range []string{
		"The node refuses a payload larger than its --max-payload (gossipd's default: " + sizeText(daemon.DefaultMaxPayload) + ")",
		"gossipctl reads at most " + sizeText(daemon.MaxPayloadLimit) + " from stdin, the largest --max-payload gossipd allows",
	} {
		if !strings.Contains(help, w) {
			t.Errorf("publish --help lacks %q:\n%s", w, r.stdout)
		}
	}
	// It reads that much: a payload of exactly the bound gets as far as
	// dialling.
	addr := closedAddr(t)
	r = runWith(t, context.Background(), io.LimitReader(endless{}, maxStdinPayload), noEnv, "publish", "--addr", addr, "-")
	wantOneLineError(t, r, exitFail, "cannot reach gossipd at "+addr)
}
