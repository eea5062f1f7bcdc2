package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig is the default config on ephemeral ports, without progress
// lines, with a generous timeout (a complete run ends as soon as the last
// delivery arrives, an incomplete one when gossip stops).
func testConfig(topology string, nodes int) config {
	cfg := defaultConfig()
	cfg.BasePort = 0
	cfg.Nodes = nodes
	cfg.Topology = topology
	cfg.Quiet = true
	cfg.Timeout = 60 * time.Second
	notTerminal := false
	cfg.Terminal = &notTerminal
	return cfg
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// runOK runs the demo and checks that every node delivered every message.
func runOK(t *testing.T, cfg config) (summary, string) {
	t.Helper()
	var out bytes.Buffer
	s, err := run(t.Context(), cfg, &out, testLogger(t))
	if err != nil {
		t.Fatalf("run: %v\noutput:\n%s", err, out.String())
	}
	want := cfg.Nodes * cfg.Nodes * cfg.Messages
	if s.Expected != want || s.Delivered != want || len(s.Missing) != 0 || s.DuplicateDeliveries != 0 {
		t.Fatalf("delivered %d/%d (expected field %d), missing %v, duplicate deliveries %d\noutput:\n%s",
			s.Delivered, want, s.Expected, s.Missing, s.DuplicateDeliveries, out.String())
	}
	if s.exitCode() != exitOK || s.TimedOut || s.Interrupted || s.Stalled {
		t.Fatalf("exit code %d (timed out %v, interrupted %v, stalled %v)\noutput:\n%s",
			s.exitCode(), s.TimedOut, s.Interrupted, s.Stalled, out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("delivered %d/%d (100.0%%)", want, want)) ||
		!strings.HasSuffix(out.String(), "result: OK\n") {
		t.Fatalf("summary does not say OK:\n%s", out.String())
	}
	if !s.Settled {
		t.Logf("forwards still in flight after the last delivery:\n%s", out.String())
	} else if s.Sent != s.Acked+s.AckFailed || s.StreamCopies != s.StreamAcked {
		t.Errorf("settled, but RPCs sent %d != acked %d + failed %d, or stream copies %d != acked %d",
			s.Sent, s.Acked, s.AckFailed, s.StreamCopies, s.StreamAcked)
	}
	return s, out.String()
}

// TestRunRing20 is the seed's demo, over streams (the default) and over
// the seed's unary RPC.
func TestRunRing20(t *testing.T) {
	for _, unary := range []bool{false, true} {
		t.Run(fmt.Sprintf("unary=%v", unary), func(t *testing.T) {
			cfg := testConfig(topoRing, 20)
			cfg.Unary = unary
			s, out := runOK(t, cfg)
			if s.Expected != 1200 {
				t.Errorf("expected %d deliveries, want 1200", s.Expected)
			}
			// In a ring every message travels N-1 hops, once each: N × M ×
			// (N-1) copies. Over streams, the node behind a source also hears
			// of the message by IHAVE straight from it; when the copy going
			// round the ring (19 hops, in real time on a loaded machine) is
			// later than that node's graft timeout, it grafts, and gets one
			// extra copy, suppressed as a duplicate; likewise when an
			// anti-entropy digest finds the gap first (a repair). Every
			// extra copy must be such an answer; nothing else may add one.
			copies, acked := s.StreamCopies, s.StreamAcked
			header := "gossip-demo: 20 nodes, ring, streams (Plumtree), 3 messages per node\n"
			if unary {
				copies, acked = s.Sent, s.Acked
				header = "gossip-demo: 20 nodes, ring, unary transport, fanout 3, 3 messages per node\n"
			}
			extra := uint64(0) // copies a timer-driven repair may add
			if !unary {
				extra = s.GraftsServed + s.Repaired
			}
			if s.Settled && (copies < 20*3*19 || copies-20*3*19 != s.Duplicates || s.Duplicates > extra || acked != copies) {
				t.Errorf("ring: sent %d acked %d duplicates %d grafts served %d repaired %d, want 1140 + duplicates, all acked, duplicates <= grafts served + repaired (unary: 0)\n%s",
					copies, acked, s.Duplicates, s.GraftsServed, s.Repaired, out)
			} else if s.Duplicates > 0 {
				t.Logf("ring: %d extra copies, each answering a graft or a digest (the ring's copy was later than the graft timeout)", s.Duplicates)
			}
			// The estimate is the longest path seen + 1: 20 when some node
			// got a message over all 19 hops; 19 when each message's last
			// node got it by graft, straight from the source's neighbour.
			if s.DiameterMax != 20 && (s.GraftsServed+s.Repaired == 0 || s.DiameterMax != 19) {
				t.Errorf("diameter estimate %d..%d, want ..20 (19 hops + 1)", s.DiameterMin, s.DiameterMax)
			}
			if !strings.HasPrefix(out, header) {
				t.Errorf("header:\n%s", out)
			}
			if len(s.Endpoints) != 20 || slices.Contains(s.Endpoints, "127.0.0.1:0") {
				t.Errorf("endpoints %v: want 20 bound addresses", s.Endpoints)
			}
		})
	}
}

func TestRunRandom30(t *testing.T) {
	cfg := testConfig(topoRandom, 30)
	cfg.Degree = 4
	s, out := runOK(t, cfg)
	if s.MaxDegree != 4 || !strings.Contains(out, "random 4-regular graph") {
		t.Errorf("max degree %d, header:\n%s", s.MaxDegree, out)
	}
}

// TestRunFull8 floods a full mesh with the unary transport: with fanout
// N-1 every node forwards to every other, so delivery is certain. (With
// the default fanout 3 a full mesh of 8 misses a delivery in about half
// the runs: push with a fanout below the degree is probabilistic; see
// TestRunStalls. Streams deliver everywhere whatever the fanout.)
func TestRunFull8(t *testing.T) {
	for _, unary := range []bool{false, true} {
		cfg := testConfig(topoFull, 8)
		cfg.Fanout = 7
		cfg.Unary = unary
		s, _ := runOK(t, cfg)
		if s.MaxDegree != 7 {
			t.Errorf("max degree %d, want 7", s.MaxDegree)
		}
	}
}

// TestRunFull8StreamsFanout1: the fanout limits only the unary push;
// streams deliver every message everywhere (Plumtree with repair).
func TestRunFull8StreamsFanout1(t *testing.T) {
	cfg := testConfig(topoFull, 8)
	cfg.Fanout = 1
	runOK(t, cfg)
}

// TestRunStalls checks the incomplete path: with fanout 1 on a full mesh a
// message travels a single random path that almost surely ends before
// reaching every node (each message reaches all 8 with probability
// 24/625; all 24 of them: about 1e-34). The run must notice that gossip
// stopped (not wait for the timeout), list the missing deliveries and exit 1.
func TestRunStalls(t *testing.T) {
	cfg := testConfig(topoFull, 8)
	cfg.Fanout = 1
	cfg.Unary = true
	var out bytes.Buffer
	s, err := run(t.Context(), cfg, &out, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if s.exitCode() != exitIncomplete || !s.Stalled || s.TimedOut || len(s.Missing) == 0 || s.Delivered >= s.Expected {
		t.Fatalf("exit %d stalled %v timed out %v missing %v delivered %d/%d\n%s",
			s.exitCode(), s.Stalled, s.TimedOut, s.Missing, s.Delivered, s.Expected, out.String())
	}
	missing := 0
	for _, m := range s.Missing {
		missing += m.Count
	}
	if missing != s.Expected-s.Delivered {
		t.Errorf("missing counts sum to %d, want %d", missing, s.Expected-s.Delivered)
	}
	for _, want := range []string{"missing (node: messages not delivered, of 24 each): node-", "result: INCOMPLETE (gossip stopped", "--fanout 7 floods"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out bytes.Buffer
	s, err := run(ctx, testConfig(topoRing, 3), &out, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Interrupted || s.exitCode() != exitIncomplete {
		t.Fatalf("interrupted %v exit %d\n%s", s.Interrupted, s.exitCode(), out.String())
	}
}

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    summary
		want int
	}{
		{"complete", summary{Expected: 12, Delivered: 12}, exitOK},
		{"missing", summary{Expected: 12, Delivered: 11}, exitIncomplete},
		{"nothing", summary{Expected: 12}, exitIncomplete},
		{"interrupted before publishing", summary{Interrupted: true}, exitIncomplete},
		{"duplicate delivery", summary{Expected: 12, Delivered: 12, DuplicateDeliveries: 1}, exitIncomplete},
		// Interrupted after the last delivery (during --serve): complete.
		{"complete then interrupted", summary{Expected: 12, Delivered: 12, Interrupted: true}, exitOK},
	} {
		if got := tc.s.exitCode(); got != tc.want {
			t.Errorf("%s: exit code %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestRealMainPortInUse(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	port := strconv.Itoa(lis.Addr().(*net.TCPAddr).Port)
	var stdout, stderr bytes.Buffer
	code := realMain(t.Context(), []string{"--base-port", port, "--nodes", "1", "--quiet"}, &stdout, &stderr)
	if code != exitSetup {
		t.Errorf("exit %d, want %d", code, exitSetup)
	}
	want := "gossip-demo: 127.0.0.1:" + port + " is already in use (needed by node-01)"
	if !strings.HasPrefix(stderr.String(), want) || strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("stderr %q: want one line starting %q", stderr.String(), want)
	}
}

func TestRealMainExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--base-port", "0", "--nodes", "4", "--quiet"}, exitOK},
		{[]string{"--base-port", "0", "--nodes", "6", "--topology", "full", "--fanout", "1", "--quiet", "--transport", "unary"}, exitIncomplete},
		{[]string{"--base-port", "0", "--nodes", "6", "--topology", "full", "--fanout", "1", "--quiet"}, exitOK},
		{[]string{"--transport", "carrier-pigeon"}, exitSetup},
		{[]string{"--nodes", "0"}, exitSetup},
		{[]string{"--topology", "star"}, exitSetup},
		{[]string{"--topology", "random", "--nodes", "5", "--degree", "3"}, exitSetup},
		{[]string{"--no-such-flag"}, exitSetup},
		{[]string{"stray"}, exitSetup},
		{[]string{"-h"}, exitOK},
	} {
		var stdout, stderr bytes.Buffer
		if got := realMain(t.Context(), tc.args, &stdout, &stderr); got != tc.want {
			t.Errorf("%v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tc.args, got, tc.want, stdout.String(), stderr.String())
		}
	}
}

// lines is an io.Writer that hands every complete line to a channel.
type lines struct {
	mu  sync.Mutex
	buf []byte
	ch  chan string
}

func (l *lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		l.ch <- string(l.buf[:i])
		l.buf = l.buf[i+1:]
	}
}

// waitLine returns the first line containing substr, failing at the deadline.
func (l *lines) waitLine(t *testing.T, substr string, deadline <-chan time.Time) string {
	t.Helper()
	for {
		select {
		case line := <-l.ch:
			if strings.Contains(line, substr) {
				return line
			}
		case <-deadline:
			t.Fatalf("no output line containing %q", substr)
		}
	}
}

// TestServe runs with --serve, publishes a message from outside with a
// gRPC client, waits for the demo to report that it reached every node,
// then stops it as SIGINT would.
func TestServe(t *testing.T) {
	cfg := testConfig(topoRing, 5)
	cfg.Serve = true
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out := &lines{ch: make(chan string, 1000)}
	type result struct {
		s   summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		s, err := run(ctx, cfg, out, testLogger(t))
		done <- result{s, err}
	}()
	deadline := time.After(30 * time.Second)
	out.waitLine(t, "result: OK", deadline)
	dline := out.waitLine(t, "dashboard of node-01: http://", deadline)
	url := strings.Fields(dline)[len(strings.Fields(dline))-1]
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("dashboard %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d", url, resp.StatusCode)
	}
	line := out.waitLine(t, "grpcurl -plaintext", deadline)
	f := strings.Fields(line)
	addr := f[len(f)-2] // … '{json}' <addr> gossip.v1.Gossip/PutMessageToClient
	if _, _, err := net.SplitHostPort(addr); err != nil {
		t.Fatalf("grpcurl line %q: address %q: %v", line, addr, err)
	}

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ack, err := pbgrpc.NewGossipClient(conn).PutMessageToClient(ctx, &pb.GossipMessage{Hash: "h1", FromHash: "x", Payload: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if ack.GetHash() != "h1" || ack.GetFrom() != "node-01" {
		t.Errorf("ack %v", ack)
	}
	out.waitLine(t, `message "h1" delivered on all 5 nodes`, deadline)

	cancel() // what SIGINT does
	select {
	case r := <-done:
		if r.err != nil || r.s.exitCode() != exitOK {
			t.Errorf("run after SIGINT: err %v, exit %d", r.err, r.s.exitCode())
		}
	case <-deadline:
		t.Fatal("run did not return after its context ended")
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := config{
		Nodes: 20, BasePort: 6001, Host: "127.0.0.1", Topology: "ring", Degree: 4, Seed: 1,
		Messages: 3, Fanout: 3, Timeout: 30 * time.Second, LogLevel: slog.LevelWarn,
	}
	if cfg != want {
		t.Errorf("defaults\n got %+v\nwant %+v", cfg, want)
	}
	if got := nodeIDs(20); got[0] != "node-01" || got[19] != "node-20" {
		t.Errorf("ids %v", got)
	}
	if got := nodeIDs(100); got[0] != "node-001" || got[99] != "node-100" {
		t.Errorf("ids %v", got[:2])
	}
	if got := listenAddr(cfg, 19); got != "127.0.0.1:6020" {
		t.Errorf("node 20 listens on %s", got)
	}

	cfg, err = parseFlags([]string{"--nodes", "8", "--base-port", "0", "--topology", "random", "--degree", "3",
		"--seed", "7", "--messages", "2", "--fanout", "5", "--timeout", "5s", "--serve", "--quiet", "--log-level", "debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want = config{
		Nodes: 8, BasePort: 0, Host: "127.0.0.1", Topology: "random", Degree: 3, Seed: 7,
		Messages: 2, Fanout: 5, Timeout: 5 * time.Second, Serve: true, Quiet: true, LogLevel: slog.LevelDebug,
	}
	if cfg != want {
		t.Errorf("flags\n got %+v\nwant %+v", cfg, want)
	}
	if got := listenAddr(cfg, 3); got != "127.0.0.1:0" {
		t.Errorf("base port 0: node listens on %s", got)
	}

	for _, args := range [][]string{
		{"--nodes", "0"}, {"--base-port", "65530"}, {"--base-port", "-1"}, {"--topology", "mesh"},
		{"--messages", "0"}, {"--fanout", "0"}, {"--timeout", "0s"}, {"--host", ""}, {"--log-level", "loud"}, {"x"},
	} {
		if _, err := parseFlags(args, io.Discard); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
	if _, err := parseFlags([]string{"--help"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v, want flag.ErrHelp", err)
	}
}

func TestProgress(t *testing.T) {
	start := time.Unix(1000, 0)
	var buf bytes.Buffer
	p := progress{w: &buf, start: start, total: 100}
	for i := 1; i <= 12; i++ { // 3 s in 250 ms ticks
		p.update(start.Add(time.Duration(i)*progressEvery), i)
	}
	got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(got) != 3 || got[0] != "delivered 4/100 (4.0%) · 1s elapsed" {
		t.Errorf("plain progress: want 3 lines, one per second, got %q", got)
	}

	buf.Reset()
	p = progress{w: &buf, terminal: true, start: start, total: 100}
	p.update(start.Add(progressEvery), 1)
	p.update(start.Add(2*progressEvery), 2)
	p.clear()
	if want := "\r\x1b[Kdelivered 1/100 (1.0%) · 250ms elapsed\r\x1b[Kdelivered 2/100 (2.0%) · 500ms elapsed\r\x1b[K"; buf.String() != want {
		t.Errorf("terminal progress %q, want %q", buf.String(), want)
	}

	buf.Reset()
	p = progress{w: &buf, quiet: true, terminal: true, start: start, total: 100}
	p.update(start.Add(5*time.Second), 1)
	p.clear()
	if buf.Len() != 0 {
		t.Errorf("quiet progress printed %q", buf.String())
	}
}

// TestRunTLS: the demo with --tls (mutual TLS, a node certificate each)
// delivers everything, and its temporary CA directory is removed.
func TestRunTLS(t *testing.T) {
	cfg := testConfig(topoRing, 8)
	cfg.TLS = true
	_, out := runOK(t, cfg)
	line, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(line, "gossip-demo: mutual TLS, node certificates spiffe://gossip/node/<id>") {
		t.Fatalf("first line %q", line)
	}
	dir := line[strings.Index(line, "(")+1 : strings.Index(line, ", removed")]
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("%s left behind: %v", dir, err)
	}
}
