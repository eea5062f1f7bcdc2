package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// waitTimeout bounds every wait for an event in these tests.
const waitTimeout = 15 * time.Second

// record is one log record, flattened.
type record struct {
	msg   string
	level slog.Level
	attrs map[string]string
}

// recorder is a slog.Handler that keeps every record, for tests to read.
type recorder struct {
	mu   sync.Mutex
	recs []record
}

type recHandler struct {
	r     *recorder
	attrs []slog.Attr
}

func (h recHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h recHandler) WithGroup(string) slog.Handler            { return h }
func (h recHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return recHandler{h.r, append(slices.Clip(h.attrs), as...)}
}

func (h recHandler) Handle(_ context.Context, r slog.Record) error {
	rec := record{msg: r.Message, level: r.Level, attrs: map[string]string{}}
	for _, a := range h.attrs {
		rec.attrs[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.attrs[a.Key] = a.Value.String()
		return true
	})
	h.r.mu.Lock()
	h.r.recs = append(h.r.recs, rec)
	h.r.mu.Unlock()
	return nil
}

// find returns the records with message msg.
func (r *recorder) find(msg string) []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []record
	for _, rec := range r.recs {
		if rec.msg == msg {
			out = append(out, rec)
		}
	}
	return out
}

// loggedAtLeast returns nil once r holds n records with message msg, and
// otherwise an error saying how many it holds (a WaitFor condition).
func loggedAtLeast(r *recorder, msg string, n int) error {
	if got := len(r.find(msg)); got < n {
		return fmt.Errorf("%d %q log records, want %d", got, msg, n)
	}
	return nil
}

func (r *recorder) dump(t *testing.T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		t.Logf("%s %s %v", rec.level, rec.msg, rec.attrs)
	}
}

// running is a daemon started with Run in a goroutine.
type running struct {
	t         *testing.T
	log       *recorder
	cancel    context.CancelFunc
	done      chan error
	addr      string // bound gRPC address, from the log
	adminAddr string // bound admin address, from the log
	id        string

	stopOnce sync.Once
	err      error
}

// runDaemon starts Run(cfg) and waits for its "gossipd started" line. The
// daemon is stopped at the end of the test.
func runDaemon(t *testing.T, cfg Config) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{t: t, log: &recorder{}, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, cfg, slog.New(recHandler{r: r.log})) }()
	t.Cleanup(func() {
		if err := r.stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
		if t.Failed() {
			r.log.dump(t)
		}
	})
	testutil.WaitFor(t, waitTimeout, "gossipd started", func() error {
		select {
		case err := <-r.done:
			r.done <- err
			t.Fatalf("Run returned early: %v", err)
		default:
		}
		recs := r.log.find("gossipd started")
		if len(recs) == 0 {
			return errors.New(`no "gossipd started" log record`)
		}
		r.addr, r.adminAddr, r.id = recs[0].attrs["addr"], recs[0].attrs["admin_addr"], recs[0].attrs["node"]
		return nil
	})
	return r
}

// stop cancels Run's context and returns what Run returned.
func (r *running) stop() error {
	r.stopOnce.Do(func() {
		r.cancel()
		select {
		case r.err = <-r.done:
		case <-time.After(waitTimeout):
			r.err = errors.New("Run did not return after its context was cancelled")
		}
	})
	return r.err
}

// testConfig is a daemon on ephemeral loopback ports.
func testConfig(id string, join ...string) Config {
	cfg := DefaultConfig()
	cfg.ID = id
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.Join = join
	cfg.ShutdownTimeout = 5 * time.Second
	return cfg
}

// reservePort returns a loopback address that was free a moment ago.
func reservePort(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}

// get returns the status and body of GET http://addr/path.
func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
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

// healthOf returns the health status of every service in healthServices.
func healthOf(t *testing.T, cc *grpc.ClientConn) []healthpb.HealthCheckResponse_ServingStatus {
	t.Helper()
	var out []healthpb.HealthCheckResponse_ServingStatus
	for _, svc := range healthServices {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		cancel()
		if err != nil {
			t.Fatalf("health check %q: %v", svc, err)
		}
		out = append(out, resp.GetStatus())
	}
	return out
}

func allServing(st []healthpb.HealthCheckResponse_ServingStatus) bool {
	for _, s := range st {
		if s != healthpb.HealthCheckResponse_SERVING {
			return false
		}
	}
	return true
}

func noneServing(st []healthpb.HealthCheckResponse_ServingStatus) bool {
	for _, s := range st {
		if s != healthpb.HealthCheckResponse_NOT_SERVING {
			return false
		}
	}
	return true
}

// subscribe opens a Subscribe stream on cc and waits until the node has
// registered it.
func subscribe(t *testing.T, ctx context.Context, cc *grpc.ClientConn) grpc.ServerStreamingClient[pb.SubscribeResponse] {
	t.Helper()
	api := pbgrpc.NewNodeServiceClient(cc)
	before, _ := status0(t, api).CounterValue("core.subscribers")
	stream, err := api.Subscribe(ctx, &pb.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, waitTimeout, "subscription registered", func() error {
		if n, _ := status0(t, api).CounterValue("core.subscribers"); n <= before {
			return fmt.Errorf("%v subscribers, as before", n)
		}
		return nil
	})
	return stream
}

func status0(t *testing.T, api pbgrpc.NodeServiceClient) *pb.StatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := api.Status(ctx, &pb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// recv receives one message from stream, failing after waitTimeout.
func recv(t *testing.T, stream grpc.ServerStreamingClient[pb.SubscribeResponse]) *pb.SubscribeResponse {
	t.Helper()
	type result struct {
		m   *pb.SubscribeResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		m, err := stream.Recv()
		ch <- result{m, err}
	}()
	r := testutil.Await(t, ch, waitTimeout, "a delivered message")
	if r.err != nil {
		t.Fatalf("Recv: %v", r.err)
	}
	return r.m
}

// TestRunTwoDaemons runs two daemons in-process. The second is started
// first and joins through a seed address where nothing listens yet: it
// must serve, report not ready and retry until the seed starts. Then both
// are ready, a message published on either is delivered to a subscriber on
// the other, and cancelling Run's context closes everything.
func TestRunTwoDaemons(t *testing.T) {
	seedAddr := reservePort(t)

	b := runDaemon(t, testConfig("node-b", seedAddr))
	if b.addr == "" || b.adminAddr == "" || strings.HasSuffix(b.addr, ":0") || strings.HasSuffix(b.adminAddr, ":0") {
		t.Fatalf("bound addresses not logged: addr %q admin_addr %q", b.addr, b.adminAddr)
	}
	if code, body := get(t, b.adminAddr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz before joining: %d %q", code, body)
	}
	if code, body := get(t, b.adminAddr, "/readyz"); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "joining") {
		t.Errorf("/readyz before joining: %d %q, want 503 joining…", code, body)
	}
	ccB := dial(t, b.addr)
	if st := healthOf(t, ccB); !noneServing(st) {
		t.Errorf("health before joining: %v", st)
	}
	// Retry with backoff: wait for two failed attempts before the seed exists.
	testutil.WaitFor(t, waitTimeout, "two failed join attempts", func() error { return loggedAtLeast(b.log, "join attempt failed", 2) })
	fails := b.log.find("join attempt failed")
	if fails[0].attrs["attempt"] != "1" || fails[1].attrs["attempt"] != "2" || fails[0].attrs["err"] == "" || fails[0].attrs["retry_in"] == "" {
		t.Errorf("join failures logged as %v", fails[:2])
	}
	if code, body := get(t, b.adminAddr, "/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "attempt") {
		t.Errorf("/readyz after failed attempts: %d %q", code, body)
	}

	// The seed starts late, with a derived id.
	cfgA := testConfig("")
	cfgA.Listen = seedAddr
	a := runDaemon(t, cfgA)
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(seedAddr)
	p, _ := strconv.Atoi(port)
	if a.id != DefaultID(host, p) || a.addr != seedAddr {
		t.Errorf("seed: id %q addr %q, want %q %q", a.id, a.addr, DefaultID(host, p), seedAddr)
	}
	ccA := dial(t, a.addr)

	testutil.WaitFor(t, waitTimeout, "both SERVING", func() error {
		if a, b := healthOf(t, ccA), healthOf(t, ccB); !allServing(a) || !allServing(b) {
			return fmt.Errorf("seed %v, node-b %v", a, b)
		}
		return nil
	})
	for _, r := range []*running{a, b} {
		if code, body := get(t, r.adminAddr, "/readyz"); code != http.StatusOK || body != "ready" {
			t.Errorf("%s /readyz: %d %q", r.id, code, body)
		}
		if code, _ := get(t, r.adminAddr, "/healthz"); code != http.StatusOK {
			t.Errorf("%s /healthz: %d", r.id, code)
		}
	}
	if st := status0(t, pbgrpc.NewNodeServiceClient(ccA)); func() float64 { v, _ := st.CounterValue("core.neighbors"); return v }() != 1 ||
		st.GetId() != a.id || st.GetAdvertiseAddress() != seedAddr || !st.GetReady() {
		t.Errorf("seed status: %v", st)
	}

	// Publish on each node; the other's subscriber gets it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, tc := range []struct {
		from, to *grpc.ClientConn
		fromID   string
	}{{ccB, ccA, b.id}, {ccA, ccB, a.id}} {
		stream := subscribe(t, ctx, tc.to)
		payload := []byte("hello from " + tc.fromID)
		resp, err := pbgrpc.NewNodeServiceClient(tc.from).Publish(ctx, &pb.PublishRequest{Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		m := recv(t, stream)
		if m.GetId() != resp.GetId() || string(m.GetPayload()) != string(payload) || m.GetOrigin() != tc.fromID || m.GetHops() != 1 {
			t.Errorf("delivered %v, want id %s payload %q from %s", m, resp.GetId(), payload, tc.fromID)
		}
	}

	// A Watch on the seed sees NOT_SERVING when shutdown begins, then
	// its stream ends with Unavailable, as do subscriptions.
	watch, err := healthpb.NewHealthClient(ccA).Watch(ctx, &healthpb.HealthCheckRequest{Service: pbgrpc.NodeService_ServiceDesc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := watch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Watch: %v %v", m, err)
	}
	sub := subscribe(t, ctx, ccA)

	if err := a.stop(); err != nil {
		t.Errorf("seed Run: %v", err)
	}
	// The NOT_SERVING update and the end of the stream race inside the
	// health server: a watcher may see only the end.
	for {
		m, err := watch.Recv()
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Errorf("Watch after shutdown: %v, want Unavailable", err)
			}
			break
		}
		if m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("Watch after shutdown began: %v, want NOT_SERVING", m)
		}
	}
	if _, err := sub.Recv(); status.Code(err) != codes.Unavailable {
		t.Errorf("Subscribe after shutdown: %v, want Unavailable", err)
	}
	stopped := a.log.find("gossipd stopped")
	if len(stopped) != 1 || stopped[0].attrs["forwards_drained"] != "true" || stopped[0].attrs["rpcs_drained"] != "true" {
		t.Errorf("seed stop logged as %v", stopped)
	}
	if err := b.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	for _, addr := range []string{a.addr, a.adminAddr, b.addr, b.adminAddr} {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after Run returned", addr)
		}
	}
}

// TestShutdownDrainsForwards holds a forward in flight (a neighbour that
// has received the message but not answered) and checks that shutdown
// reports NOT_SERVING at once, keeps serving while it waits for the
// forward, and finishes when the neighbour answers.
func TestShutdownDrainsForwards(t *testing.T) {
	nb := startHoldingPeer(t)
	rec := &recorder{}
	d, err := start(testConfig("node-d"), slog.New(recHandler{r: rec}))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.node.AddNeighbor("held", nb.addr); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.node.Publish(context.Background(), "m1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	testutil.Await(t, nb.received, waitTimeout, "the neighbour to receive the forward")

	done := make(chan struct{})
	go func() {
		d.shutdown()
		close(done)
	}()
	cc := dial(t, d.addr)
	testutil.WaitFor(t, waitTimeout, "NOT_SERVING", func() error {
		if st := healthOf(t, cc); !noneServing(st) {
			return fmt.Errorf("health %v", st)
		}
		return nil
	})
	if code, body := get(t, d.adminAddr, "/readyz"); code != http.StatusServiceUnavailable || body != "shutting down" {
		t.Errorf("/readyz while draining: %d %q", code, body)
	}
	if code, _ := get(t, d.adminAddr, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz while draining: %d", code)
	}
	select {
	case <-done:
		t.Fatal("shutdown did not wait for the forward in flight")
	default:
	}
	close(nb.release)
	testutil.Await(t, done, waitTimeout, "shutdown to finish after the forward was acknowledged")
	if st := rec.find("gossipd stopped"); len(st) != 1 || st[0].attrs["forwards_drained"] != "true" {
		t.Errorf("stop logged as %v", st)
	}
	if got := d.node.Stats(); got.Acked != 1 {
		t.Errorf("forward not acknowledged before close: %+v", got)
	}
}

// TestShutdownTimeout checks that a forward that never finishes is cut
// after ShutdownTimeout, and Run still returns nil.
func TestShutdownTimeout(t *testing.T) {
	nb := startHoldingPeer(t)
	defer close(nb.release)
	rec := &recorder{}
	cfg := testConfig("node-t")
	cfg.ShutdownTimeout = 200 * time.Millisecond
	d, err := start(cfg, slog.New(recHandler{r: rec}))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.node.AddNeighbor("held", nb.addr); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.node.Publish(context.Background(), "m1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	testutil.Await(t, nb.received, waitTimeout, "the forward to reach the held peer")
	began := time.Now()
	d.shutdown()
	if took := time.Since(began); took > cfg.ShutdownTimeout+3*time.Second {
		t.Errorf("shutdown took %v with a %v timeout", took, cfg.ShutdownTimeout)
	}
	if st := rec.find("gossipd stopped"); len(st) != 1 || st[0].attrs["forwards_drained"] != "false" {
		t.Errorf("stop logged as %v", st)
	}
	if len(rec.find("shutdown timeout: cutting forwards still in flight")) != 1 {
		t.Error("cut forwards not logged")
	}
}

// holdingPeer is a Gossip server that receives messages and answers only
// when release is closed.
type holdingPeer struct {
	pbgrpc.UnimplementedGossipServer
	addr     string
	received chan struct{} // gets one value per message
	release  chan struct{}
}

func (p *holdingPeer) PutMessageToClient(ctx context.Context, m *pb.GossipMessage) (*pb.GossipAck, error) {
	select {
	case p.received <- struct{}{}:
	default:
	}
	select {
	case <-p.release:
		return &pb.GossipAck{Hash: m.GetHash(), From: "held"}, nil
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
}

func startHoldingPeer(t *testing.T) *holdingPeer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &holdingPeer{addr: lis.Addr().String(), received: make(chan struct{}, 1), release: make(chan struct{})}
	srv := grpc.NewServer()
	pbgrpc.RegisterGossipServer(srv, p)
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(lis)
	}()
	t.Cleanup(func() {
		srv.Stop()
		<-done
	})
	return p
}

func TestRunListenInUse(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	busy := lis.Addr().String()
	for _, tc := range []struct{ setting, listen, admin string }{
		{"--listen", busy, "127.0.0.1:0"},
		{"--admin-listen", "127.0.0.1:0", busy},
	} {
		cfg := testConfig("node-x")
		cfg.Listen, cfg.AdminListen = tc.listen, tc.admin
		err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), tc.setting+" "+busy) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s in use: Run returned %v", tc.setting, err)
		}
	}
}

func TestRunRejectsInvalidConfig(t *testing.T) {
	cfg := testConfig("node-x")
	cfg.Fanout = 0
	if err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "--fanout") {
		t.Errorf("Run with fanout 0: %v", err)
	}
}

// TestJoinOnlySelf: a node whose only seed is its own address is the
// first node (clusters started with one seed list for every node).
func TestJoinOnlySelf(t *testing.T) {
	addr := reservePort(t)
	cfg := testConfig("node-s", addr)
	cfg.Listen = addr
	r := runDaemon(t, cfg)
	if code, body := get(t, r.adminAddr, "/readyz"); code != http.StatusOK {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if st := healthOf(t, dial(t, r.addr)); !allServing(st) {
		t.Errorf("health: %v", st)
	}
}

func TestDataDirLock(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "node")
	cfg := testConfig("node-l")
	cfg.DataDir = dir
	cfg.AdminListen = ""
	first := runDaemon(t, cfg)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode %v, want 0700", fi.Mode().Perm())
	}
	b, err := os.ReadFile(filepath.Join(dir, LockFileName))
	if err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(os.Getpid()) {
		t.Errorf("lock file: %q %v", b, err)
	}

	err = Run(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if want := fmt.Sprintf("--data-dir %s is in use by another gossipd (pid %d)", dir, os.Getpid()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("second daemon on the data dir: %v, want %q", err, want)
	}

	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	runDaemon(t, cfg) // the lock was released
}

// TestRunStopsWhileJoining: a daemon whose seed never answers keeps
// retrying, reports why it is not ready, and stops promptly.
func TestRunStopsWhileJoining(t *testing.T) {
	r := runDaemon(t, testConfig("node-j", reservePort(t)))
	testutil.WaitFor(t, waitTimeout, "a failed join attempt", func() error { return loggedAtLeast(r.log, "join attempt failed", 1) })
	code, body := get(t, r.adminAddr, "/readyz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "no seed answered") {
		t.Errorf("/readyz: %d %q", code, body)
	}
	if err := r.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	if len(r.log.find("ready")) != 0 {
		t.Error("became ready without a seed")
	}
}

// TestStartedLogShowsTransport: the start-up line names the transport and
// shows fanout only for unary, where it applies ("all" for -1).
func TestStartedLogShowsTransport(t *testing.T) {
	for _, tc := range []struct {
		unary      bool
		fanout     int
		wantFanout string // "" for none
	}{
		{false, DefaultFanout, ""},
		{true, DefaultFanout, "all"},
		{true, 3, "3"},
	} {
		cfg := testConfig("node-log")
		cfg.Unary, cfg.Fanout = tc.unary, tc.fanout
		r := runDaemon(t, cfg)
		rec := r.log.find("gossipd started")[0]
		if want := cfg.transportName(); rec.attrs["transport"] != want {
			t.Errorf("unary %v: transport=%q, want %q", tc.unary, rec.attrs["transport"], want)
		}
		if got, ok := rec.attrs["fanout"]; got != tc.wantFanout || ok != (tc.wantFanout != "") {
			t.Errorf("unary %v fanout %d: logged fanout %q (present %v), want %q", tc.unary, tc.fanout, got, ok, tc.wantFanout)
		}
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// freePortPair returns a loopback port p such that p and p+1 were both
// free a moment ago (for a --listen whose derived admin port is p+1).
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 100 {
		a, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := a.Addr().(*net.TCPAddr).Port
		if p == 65535 {
			a.Close()
			continue
		}
		b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		a.Close()
		if err == nil {
			b.Close()
			return p
		}
	}
	t.Fatal("no two adjacent free ports")
	return 0
}

// TestTwoDaemonsWithoutAdminListen: two daemons on one host, each given
// only its --listen, both start; each serves HTTP on its own gRPC port
// + 1 instead of both trying one fixed address.
func TestTwoDaemonsWithoutAdminListen(t *testing.T) {
	var rs []*running
	for _, id := range []string{"node-a", "node-b"} {
		listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePortPair(t)))
		cfg, err := Load([]string{"--id", id, "--listen", listen, "--shutdown-timeout", "5s"}, nil, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		r := runDaemon(t, cfg)
		want, _ := AdminListenFor(listen)
		if r.addr != listen || r.adminAddr != want {
			t.Errorf("%s: addr %q admin_addr %q, want %q %q", id, r.addr, r.adminAddr, listen, want)
		}
		rs = append(rs, r)
	}
	for _, r := range rs {
		if code, body := get(t, r.adminAddr, "/healthz"); code != http.StatusOK {
			t.Errorf("%s /healthz: %d %q", r.id, code, body)
		}
	}
}

// TestDerivedAdminListenInUse: when the derived admin port is taken, the
// error says it is the default and how to change or disable it.
func TestDerivedAdminListenInUse(t *testing.T) {
	var busy net.Listener
	var listen string
	for range 100 {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := lis.Addr().(*net.TCPAddr).Port
		if c, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p-1))); err == nil {
			c.Close()
			busy, listen = lis, net.JoinHostPort("127.0.0.1", strconv.Itoa(p-1))
			break
		}
		lis.Close()
	}
	if busy == nil {
		t.Fatal("no free port below a taken one")
	}
	defer busy.Close()
	cfg, err := Load([]string{"--id", "node-x", "--listen", listen}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = Run(context.Background(), cfg, slog.New(slog.DiscardHandler))
	prefix := fmt.Sprintf("--admin-listen %s: cannot listen: ", busy.Addr())
	suffix := fmt.Sprintf(`address already in use (%s is the default, the --listen port + 1: set --admin-listen to a free address, or to "" to disable the admin server)`, busy.Addr())
	if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.HasSuffix(err.Error(), suffix) {
		t.Errorf("Run: %v\nwant %s…%s", err, prefix, suffix)
	}
}
