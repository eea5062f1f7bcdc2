// Package e2e tests the binaries as a user runs them: real gossipd
// processes on loopback, driven with gossipctl and plain gRPC clients.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gossip-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/grpc-gossip/gossip/cmd/gossipd", "github.com/grpc-gossip/gossip/cmd/gossipctl")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the binaries:", err)
		os.Exit(1)
	}
	code := 0
	func() {
		defer os.RemoveAll(dir)
		defer func() {
			if err := goleak.Find(); err != nil {
				fmt.Fprintln(os.Stderr, "goleak:", err)
				code = 1
			}
		}()
		code = m.Run()
	}()
	os.Exit(code)
}

// lines collects the lines a process writes, and signals each new one.
type lines struct {
	mu    sync.Mutex
	all   []string
	added chan struct{}
}

func newLines() *lines { return &lines{added: make(chan struct{}, 1)} }

func (l *lines) read(r io.Reader, done chan<- struct{}) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		l.mu.Lock()
		l.all = append(l.all, sc.Text())
		l.mu.Unlock()
		select {
		case l.added <- struct{}{}:
		default:
		}
	}
	close(done)
}

func (l *lines) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.all...)
}

// waitLine waits for a line that match accepts, and returns it.
func (l *lines) waitLine(t *testing.T, what string, timeout time.Duration, match func(string) bool) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		for _, s := range l.snapshot() {
			if match(s) {
				return s
			}
		}
		select {
		case <-l.added:
		case <-deadline:
			t.Fatalf("timed out waiting for %s; lines so far:\n%s", what, strings.Join(l.snapshot(), "\n"))
		}
	}
}

// proc is a running binary.
type proc struct {
	cmd      *exec.Cmd
	out, err *lines
	outDone  chan struct{}
	errDone  chan struct{}
	exited   chan struct{}
	exitErr  error
}

func start(t *testing.T, stdin io.Reader, name string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, name), args...)
	cmd.Stdin = stdin
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: newLines(), err: newLines(), outDone: make(chan struct{}), errDone: make(chan struct{}), exited: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go p.out.read(stdout, p.outDone)
	go p.err.read(stderr, p.errDone)
	go func() {
		<-p.outDone
		<-p.errDone
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			cmd.Process.Kill()
			<-p.exited
		}
	})
	return p
}

// stop sends sig and waits for the exit; it returns the exit code.
func (p *proc) stop(t *testing.T, sig os.Signal, timeout time.Duration) int {
	t.Helper()
	p.cmd.Process.Signal(sig)
	testutil.Await(t, p.exited, timeout, fmt.Sprintf("%s to exit after %v", filepath.Base(p.cmd.Path), sig))
	return p.cmd.ProcessState.ExitCode()
}

// daemon is a running gossipd.
type daemon struct {
	*proc
	id, addr, admin string
}

func startDaemon(t *testing.T, id string, extra ...string) *daemon {
	t.Helper()
	args := append([]string{"--id", id, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--log-format", "json"}, extra...)
	p := start(t, nil, "gossipd", args...)
	line := p.err.waitLine(t, id+" started", 15*time.Second, func(s string) bool { return strings.Contains(s, `"gossipd started"`) })
	var rec struct {
		Addr  string `json:"addr"`
		Admin string `json:"admin_addr"`
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Addr == "" || rec.Admin == "" {
		t.Fatalf("start line %q: %v", line, err)
	}
	return &daemon{proc: p, id: id, addr: rec.Addr, admin: rec.Admin}
}

// ctl runs gossipctl to completion.
func ctl(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "gossipctl"), args...)
	cmd.Stdin = stdin
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

func statusOf(t *testing.T, d *daemon) map[string]any {
	t.Helper()
	out, errOut, code := ctl(t, nil, "--addr", d.addr, "-o", "json", "status")
	if code != 0 {
		t.Fatalf("gossipctl status on %s: exit %d: %s", d.id, code, errOut)
	}
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status json %q: %v", out, err)
	}
	// The counters also by their full names (group.name).
	groups, _ := st["counters"].(map[string]any)
	for g, cs := range groups {
		for name, v := range cs.(map[string]any) {
			st[g+"."+name] = v
		}
	}
	return st
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func httpStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestCluster: four gossipd processes joined through the first; messages
// published with gossipctl (argument and stdin), with a plain NodeService
// client and with the seed's PutMessageToClient are delivered exactly once
// on every node's `gossipctl subscribe` stream; SIGTERM exits 0.
func TestCluster(t *testing.T) {
	seed := startDaemon(t, "node-1")
	nodes := []*daemon{seed}
	for i := 2; i <= 4; i++ {
		nodes = append(nodes, startDaemon(t, fmt.Sprintf("node-%d", i), "--join", seed.addr))
	}
	for _, d := range nodes {
		testutil.WaitFor(t, 15*time.Second, d.id+" SERVING", func() error {
			if out, _, code := ctl(t, nil, "--addr", d.addr, "health"); code != 0 {
				return fmt.Errorf("health: %s", out)
			}
			return nil
		})
		if c := httpStatus("http://" + d.admin + "/readyz"); c != http.StatusOK {
			t.Errorf("%s /readyz = %d", d.id, c)
		}
	}

	subs := make([]*proc, len(nodes))
	for i, d := range nodes {
		subs[i] = start(t, nil, "gossipctl", "--addr", d.addr, "subscribe")
		testutil.WaitFor(t, 10*time.Second, d.id+" subscriber registered", func() error {
			if n := statusOf(t, d)["core.subscribers"]; n != float64(1) {
				return fmt.Errorf("subscribers = %v", n)
			}
			return nil
		})
	}

	// Publish four ways, through four different nodes.
	if out, errOut, code := ctl(t, nil, "--addr", nodes[0].addr, "publish", "--id", "e2e-arg", "hello from an argument"); code != 0 || !strings.Contains(out, "e2e-arg") {
		t.Fatalf("publish: exit %d: %s %s", code, out, errOut)
	}
	if _, errOut, code := ctl(t, strings.NewReader("hello\nfrom stdin"), "--addr", nodes[1].addr, "publish", "--id", "e2e-stdin", "-"); code != 0 {
		t.Fatalf("publish -: exit %d: %s", code, errOut)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pubResp, err := pbgrpc.NewNodeServiceClient(dial(t, nodes[2].addr)).Publish(ctx, &pb.PublishRequest{Payload: []byte{0xff, 0x00, 0x01}})
	if err != nil {
		t.Fatal(err)
	}
	grpcID := pubResp.GetId()
	ack, err := pbgrpc.NewGossipClient(dial(t, nodes[3].addr)).PutMessageToClient(ctx, &pb.GossipMessage{Hash: "e2e-seed-rpc", FromHash: "client", Payload: "seed API"})
	if err != nil || ack.GetFrom() != "node-4" {
		t.Fatalf("PutMessageToClient: %v %v", ack, err)
	}
	want := map[string]string{
		"e2e-arg":      "hello from an argument",
		"e2e-stdin":    "hello\nfrom stdin",
		grpcID:         "\xff\x00\x01",
		"e2e-seed-rpc": "seed API",
	}

	// Wait until every node delivered all four and no forward is pending,
	// then end the subscribers and read everything they printed.
	for _, d := range nodes {
		testutil.WaitFor(t, 20*time.Second, d.id+" settled", func() error {
			st := statusOf(t, d)
			if st["core.delivered"] != float64(len(want)) || st["stream.copies_sent"] != st["stream.copies_acked"] || st["stream.queued_bytes"] != float64(0) {
				return fmt.Errorf("delivered %v, stream copies sent %v acked %v, queued %v bytes",
					st["core.delivered"], st["stream.copies_sent"], st["stream.copies_acked"], st["stream.queued_bytes"])
			}
			return nil
		})
	}
	for i, s := range subs {
		if code := s.stop(t, syscall.SIGINT, 10*time.Second); code != 0 {
			t.Errorf("subscribe on %s: exit %d: %v", nodes[i].id, code, s.err.snapshot())
		}
		got := map[string]int{}
		for _, l := range s.out.snapshot() {
			var m struct {
				ID      string `json:"id"`
				Origin  string `json:"origin"`
				Payload string `json:"payload"`
				B64     []byte `json:"payload_base64"`
			}
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("subscribe line %q: %v", l, err)
			}
			got[m.ID]++
			if p := m.Payload + string(m.B64); p != want[m.ID] {
				t.Errorf("%s: %s payload %q, want %q", nodes[i].id, m.ID, p, want[m.ID])
			}
		}
		for id := range want {
			if got[id] != 1 {
				t.Errorf("%s delivered %s %d times on its subscribe stream", nodes[i].id, id, got[id])
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s subscribe stream had %v", nodes[i].id, got)
		}
	}

	for _, d := range nodes {
		if code := d.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
			t.Errorf("%s exit %d after SIGTERM; log:\n%s", d.id, code, strings.Join(d.err.snapshot(), "\n"))
		}
		d.err.waitLine(t, d.id+" stopped", time.Second, func(s string) bool { return strings.Contains(s, `"gossipd stopped"`) })
	}
}

// TestBadInput: each kind of bad input gets a clear error and the daemon
// keeps serving.
func TestBadInput(t *testing.T) {
	d := startDaemon(t, "solo", "--max-payload", "1024")
	cc := dial(t, d.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, err := pbgrpc.NewGossipClient(cc).PutMessageToClient(ctx, &pb.GossipMessage{FromHash: "x", Payload: "no id"})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "hash is empty") {
		t.Errorf("empty hash: %v", err)
	}
	_, errOut, code := ctl(t, bytes.NewReader(bytes.Repeat([]byte("x"), 2048)), "--addr", d.addr, "publish", "-")
	if want := "gossipctl: payload is 2 KiB, more than node " + d.addr + " accepts (1 KiB: its --max-payload); nothing was published\n"; code != 1 || errOut != want {
		t.Errorf("oversized publish: exit %d, stderr %q", code, errOut)
	}
	_, errOut, code = ctl(t, nil, "--addr", d.addr, "publish", "--id", strings.Repeat("i", 300), "p")
	if code != 1 || !strings.Contains(errOut, "InvalidArgument") {
		t.Errorf("over-long id: exit %d, stderr %q", code, errOut)
	}

	// A subscriber killed mid-stream.
	sub := start(t, nil, "gossipctl", "--addr", d.addr, "subscribe")
	testutil.WaitFor(t, 10*time.Second, "subscriber registered", func() error {
		if n := statusOf(t, d)["core.subscribers"]; n != float64(1) {
			return fmt.Errorf("subscribers = %v", n)
		}
		return nil
	})
	sub.stop(t, syscall.SIGKILL, 5*time.Second)
	testutil.WaitFor(t, 10*time.Second, "subscriber gone", func() error {
		if n := statusOf(t, d)["core.subscribers"]; n != float64(0) {
			return fmt.Errorf("subscribers = %v", n)
		}
		return nil
	})

	// Still serving: a good message goes through.
	if _, errOut, code := ctl(t, nil, "--addr", d.addr, "publish", "fine"); code != 0 {
		t.Fatalf("publish after bad input: exit %d: %s", code, errOut)
	}
	st := statusOf(t, d)
	if st["core.invalid"] != float64(3) || st["core.delivered"] != float64(1) { // empty hash, oversized payload, over-long id
		t.Errorf("invalid %v delivered %v", st["core.invalid"], st["core.delivered"])
	}
	if code := d.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestUnreachableJoin: a daemon whose seed never answers keeps retrying,
// reports not ready, still serves, and stops cleanly.
func TestUnreachableJoin(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := l.Addr().String()
	l.Close()

	d := startDaemon(t, "lonely", "--join", nowhere)
	d.err.waitLine(t, "a failed join attempt", 15*time.Second, func(s string) bool {
		return strings.Contains(s, nowhere) && strings.Contains(strings.ToLower(s), "join")
	})
	if out, _, code := ctl(t, nil, "--addr", d.addr, "health"); code == 0 || !strings.Contains(out, "NOT_SERVING") {
		t.Errorf("health while joining: exit %d, %q", code, out)
	}
	if c := httpStatus("http://" + d.admin + "/readyz"); c != http.StatusServiceUnavailable {
		t.Errorf("/readyz while joining = %d", c)
	}
	if c := httpStatus("http://" + d.admin + "/healthz"); c != http.StatusOK {
		t.Errorf("/healthz while joining = %d", c)
	}
	if st := statusOf(t, d); st["ready"] != false {
		t.Errorf("ready = %v", st["ready"])
	}
	// A node that has not joined refuses publishes instead of acking
	// what it could not pass on (fault 4 of issue 10: "ack from lonely",
	// exit 0).
	if out, errOut, code := ctl(t, nil, "--addr", d.addr, "publish", "too early"); code == 0 || !strings.Contains(out+errOut, "not joined") {
		t.Errorf("publish on a node that has not joined: exit %d, %q %q; want a refusal that says it has not joined", code, out, errOut)
	}
	if code := d.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestDaemonNotRunning: gossipctl against an address where nothing
// listens prints one line naming it and exits non-zero, quickly.
func TestDaemonNotRunning(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, cmd := range [][]string{{"status"}, {"members"}, {"publish", "x"}, {"health"}, {"subscribe"}} {
		start := time.Now()
		_, errOut, code := ctl(t, nil, append([]string{"--addr", addr}, cmd...)...)
		if code == 0 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, addr) || time.Since(start) > 10*time.Second {
			t.Errorf("%v: exit %d after %v, stderr %q", cmd, code, time.Since(start), errOut)
		}
	}
}

// membersOf is `gossipctl members -o json` on d.
func membersOf(t *testing.T, d *daemon) map[string]memberRow {
	t.Helper()
	out, errOut, code := ctl(t, nil, "--addr", d.addr, "-o", "json", "members")
	if code != 0 {
		t.Fatalf("gossipctl members on %s: exit %d: %s", d.id, code, errOut)
	}
	var rows []memberRow
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("members json %q: %v", out, err)
	}
	m := map[string]memberRow{}
	for _, r := range rows {
		m[r.ID] = r
	}
	return m
}

type memberRow struct {
	ID          string     `json:"id"`
	Address     string     `json:"address"`
	State       string     `json:"state"`
	Incarnation uint64     `json:"incarnation"`
	LastHeard   *time.Time `json:"last_heard"`
	Self        bool       `json:"self"`
}

// TestFailureDetection: five gossipd joined through one seed learn each
// other; one is killed with SIGKILL; the others mark it dead within the
// documented bound (gossip.MembershipConfig.DetectionBound); restarted
// with the same --id on a new port, it rejoins and is alive everywhere at
// its new address. A SIGTERM'd node is marked left, not dead.
func TestFailureDetection(t *testing.T) {
	flags := []string{"--probe-interval", "200ms", "--probe-timeout", "100ms", "--suspicion-mult", "3"}
	cfg := gossip.DefaultLocalMembershipConfig()
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.SuspicionMult = 200*time.Millisecond, 100*time.Millisecond, 3
	cfg.GossipInterval = gossip.DefaultLANMembershipConfig().GossipInterval // the daemon's
	bound := cfg.DetectionBound(5)

	seed := startDaemon(t, "fd-1", flags...)
	nodes := []*daemon{seed}
	for i := 2; i <= 5; i++ {
		nodes = append(nodes, startDaemon(t, fmt.Sprintf("fd-%d", i), append(flags, "--join", seed.addr)...))
	}
	allAlive := func(ds []*daemon, want int) {
		for _, d := range ds {
			// A join update that a loaded machine loses (membership RPCs
			// that fail are dropped like datagrams) is repaired by the next
			// push-pull sync at the latest: allow more than its interval.
			testutil.WaitFor(t, gossip.DefaultLANMembershipConfig().PushPullInterval+15*time.Second, d.id+" sees everyone alive", func() error {
				alive := 0
				for _, r := range membersOf(t, d) {
					if r.State == "alive" {
						alive++
					}
				}
				if alive != want {
					return fmt.Errorf("%d alive: %v", alive, membersOf(t, d))
				}
				return nil
			})
		}
	}
	allAlive(nodes, 5)

	victim := nodes[2]
	oldAddr := victim.addr
	victim.stop(t, syscall.SIGKILL, 10*time.Second)
	killed := time.Now()
	survivors := []*daemon{nodes[0], nodes[1], nodes[3], nodes[4]}
	for _, d := range survivors {
		testutil.WaitFor(t, bound+10*time.Second, d.id+" marks "+victim.id+" dead", func() error {
			if r := membersOf(t, d)[victim.id]; r.State != "dead" {
				return fmt.Errorf("%s is %q", victim.id, r.State)
			}
			return nil
		})
	}
	took := time.Since(killed)
	t.Logf("kill -9: all 4 survivors marked it dead after %v (bound %v, polling included)", took.Round(time.Millisecond), bound)
	if took > bound {
		t.Errorf("detection took %v, over the bound %v", took, bound)
	}

	again := startDaemon(t, victim.id, append(flags, "--join", seed.addr)...)
	if again.addr == oldAddr {
		t.Fatalf("restarted on the same address %s", oldAddr)
	}
	nodes = append(survivors, again)
	for _, d := range nodes {
		testutil.WaitFor(t, 20*time.Second, d.id+" sees the restarted node alive", func() error {
			r := membersOf(t, d)[victim.id]
			if r.State != "alive" || r.Address != again.addr || r.Incarnation == 0 {
				return fmt.Errorf("%s is %+v", victim.id, r)
			}
			return nil
		})
	}
	allAlive(nodes, 5)

	// A graceful stop is announced: the others see "left".
	leaver := nodes[1]
	if code := leaver.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
		t.Errorf("%s exit %d after SIGTERM", leaver.id, code)
	}
	for _, d := range []*daemon{nodes[0], nodes[2], nodes[3], nodes[4]} {
		testutil.WaitFor(t, 10*time.Second, d.id+" marks "+leaver.id+" left", func() error {
			if r := membersOf(t, d)[leaver.id]; r.State != "left" {
				return fmt.Errorf("%s is %q", leaver.id, r.State)
			}
			return nil
		})
	}
	for _, d := range []*daemon{nodes[0], nodes[2], nodes[3], nodes[4]} {
		if code := d.stop(t, syscall.SIGTERM, 20*time.Second); code != 0 {
			t.Errorf("%s exit %d after SIGTERM", d.id, code)
		}
	}
}
