package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/internal/daemon"
	"github.com/grpc-gossip/gossip/internal/testutil"
)

// testNode is a real node served on 127.0.0.1:0 by a gRPC server of the
// test's own (so that it can carry the health service too, as gossipd's
// does).
type testNode struct {
	*gossip.GossipNode
	addr   string
	health *health.Server
}

// startNode starts a node named id; it is closed when the test ends.
func startNode(t *testing.T, id string) *testNode {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n, err := gossip.New(id, lis.Addr().String(), nil, nil, nil, nil)
	if err != nil {
		lis.Close()
		t.Fatal(err)
	}
	srv := grpc.NewServer(n.ServerOptions()...)
	n.Register(srv)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	n.MarkReady()
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		hs.Shutdown()
		n.Close() // ends subscriptions: their streams end with Unavailable
		srv.Stop()
		<-served
	})
	return &testNode{GossipNode: n, addr: lis.Addr().String(), health: hs}
}

// result is what one gossipctl run produced.
type result struct {
	code           int
	stdout, stderr string
}

// stderrLines is stderr split into lines (no trailing empty one).
func (r result) stderrLines() []string {
	s := strings.TrimSuffix(r.stderr, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// gossipctl runs the CLI with args, no environment and an empty stdin.
func gossipctl(t *testing.T, args ...string) result {
	t.Helper()
	return runWith(t, context.Background(), strings.NewReader(""), noEnv, args...)
}

func noEnv(string) string { return "" }

func runWith(t *testing.T, ctx context.Context, stdin io.Reader, getenv func(string) string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, stdin, &stdout, &stderr, getenv)
	return result{code, stdout.String(), stderr.String()}
}

// wantOK fails the test unless r succeeded with nothing on stderr.
func wantOK(t *testing.T, r result) {
	t.Helper()
	if r.code != exitOK || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q; want 0 and no stderr", r.code, r.stderr, r.stdout)
	}
}

// wantOneLineError fails the test unless r exited with code and printed
// exactly one stderr line containing want.
func wantOneLineError(t *testing.T, r result, code int, want string) {
	t.Helper()
	lines := r.stderrLines()
	if r.code != code || len(lines) != 1 || !strings.Contains(lines[0], want) || !strings.HasPrefix(lines[0], "gossipctl: ") {
		t.Fatalf("exit %d, stderr %q; want exit %d and one line \"gossipctl: …%s…\"", r.code, r.stderr, code, want)
	}
}

// lineWriter hands every complete line written to it to lines (for the
// output of a subscribe running in another goroutine).
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines chan string
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 100)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.lines <- string(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

// next returns the next line, failing the test after timeout.
func (w *lineWriter) next(t *testing.T, timeout time.Duration) string {
	t.Helper()
	return testutil.Await(t, w.lines, timeout, "an output line")
}

// subscription is a gossipctl subscribe running in the background.
type subscription struct {
	out    *lineWriter
	stderr bytes.Buffer
	cancel context.CancelFunc
	done   chan int // the exit status
}

// startSubscribe runs gossipctl subscribe with args in the background and
// returns once n has the subscription. The test must end it (cancel, or
// close n) and wait for it.
func startSubscribe(t *testing.T, n *testNode, args ...string) *subscription {
	t.Helper()
	before := n.Stats().Subscribers
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscription{out: newLineWriter(), cancel: cancel, done: make(chan int, 1)}
	go func() {
		s.done <- run(ctx, append([]string{"subscribe", "--addr", n.addr}, args...), strings.NewReader(""), s.out, &s.stderr, noEnv)
	}()
	t.Cleanup(func() {
		cancel()
		<-s.done
	})
	testutil.WaitFor(t, 5*time.Second, "the subscription", func() error {
		select {
		case code := <-s.done:
			s.done <- code
			return nil // ended early: wait reports it
		default:
		}
		if got := n.Stats().Subscribers; got <= before {
			return fmt.Errorf("%d subscribers, as before", got)
		}
		return nil
	})
	return s
}

// wait returns the exit status, failing the test after timeout.
func (s *subscription) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	code := testutil.Await(t, s.done, timeout, "subscribe to exit")
	s.done <- code // for the cleanup
	return code
}

// closedAddr returns an address on which nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// silentAddr returns the address of a TCP listener that accepts
// connections and never says anything (a hung daemon, or something that
// is not gRPC).
func silentAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return lis.Addr().String()
}

// startDaemon runs a real gossipd in-process (daemon.Load and daemon.Run,
// as cmd/gossipd does) on 127.0.0.1:0, without an admin server, with
// extra flags args, and returns its gRPC address once it serves. It is
// stopped when the test ends.
func startDaemon(t *testing.T, args ...string) string {
	t.Helper()
	cfg, err := daemon.Load(append([]string{"--id", "gossipd-1", "--listen", "127.0.0.1:0", "--admin-listen", "", "--shutdown-timeout", "5s"}, args...), nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h := &startedHandler{addr: make(chan string, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- daemon.Run(ctx, cfg, slog.New(h)) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gossipd: %v", err)
		}
	})
	select {
	case addr := <-h.addr:
		return addr
	case err := <-done:
		done <- err
		t.Fatalf("gossipd exited at start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("gossipd did not start within 10s")
	}
	return ""
}

// startedHandler is a slog.Handler that hands on the addr of gossipd's
// "gossipd started" line and drops everything else.
type startedHandler struct{ addr chan string }

func (h *startedHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *startedHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *startedHandler) WithGroup(string) slog.Handler            { return h }
func (h *startedHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "gossipd started" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "addr" {
			select {
			case h.addr <- a.Value.String():
			default:
			}
		}
		return true
	})
	return nil
}
