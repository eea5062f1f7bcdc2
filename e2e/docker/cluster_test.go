//go:build docker

package docker

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	gossip "github.com/grpc-gossip/gossip"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// The cluster's timing: fast enough that the suite stays within a few
// minutes, as the flags allow (the defaults are the LAN ones).
const (
	numNodes          = 5
	probeInterval     = time.Second
	probeTimeout      = 500 * time.Millisecond
	suspicionMult     = 4
	deadReapAfter     = 10 * time.Second
	reconnectInterval = time.Second
)

// detectionBound is the documented bound on how long the others take to
// mark a killed member dead (docs/DESIGN.md §10, DetectionBound) with the
// cluster's settings.
func detectionBound() time.Duration {
	m := gossip.DefaultLANMembershipConfig()
	m.ProbeInterval, m.ProbeTimeout, m.SuspicionMult = probeInterval, probeTimeout, suspicionMult
	return m.DetectionBound(numNodes)
}

// suite is the state shared by the scenarios: one cluster for all of them
// (each scenario starts by waiting for it to be whole again).
var suite struct {
	image   string
	prefix  string // of every container, network and volume name
	netMain string // the nodes' network (their names resolve on it)
	subnet  string // its /24 prefix, e.g. "10.231.7."; node i is .1i
	nodes   []*node
}

// node is one container.
type node struct {
	name      string // the gossipd id, the DNS alias and the container suffix
	container string
	volume    string
	ip        string // fixed, so that firewall rules about it survive restarts
	grpcAddr  string // 127.0.0.1:port published for the gRPC port
	conn      *grpc.ClientConn
	api       pbgrpc.NodeServiceClient
	sub       *subscriber
}

// docker runs the docker CLI and returns its trimmed stdout; errors carry
// stderr.
func docker(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

func mustDocker(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := docker(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := exec.LookPath("docker"); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/docker: FAIL: the docker CLI is not installed, and this suite (build tag docker) needs a Docker Engine")
		return 1
	}
	if v, err := docker(ctx, "version", "--format", "{{.Server.Version}}"); err != nil {
		fmt.Fprintf(os.Stderr, "e2e/docker: FAIL: the Docker Engine is not reachable: %v\n", err)
		return 1
	} else {
		fmt.Fprintf(os.Stderr, "e2e/docker: Docker Engine %s\n", v)
	}
	suite.prefix = fmt.Sprintf("gossip-e2e-%d", os.Getpid())
	suite.image = "gossip:" + suite.prefix
	suite.netMain = suite.prefix + "-net"
	defer cleanup()
	// An interrupted run (Ctrl-C, go test's timeout) removes what it made.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			fmt.Fprintln(os.Stderr, "e2e/docker: interrupted: removing the containers, volumes and network")
			cleanup()
			os.Exit(1)
		}
	}()

	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e/docker: FAIL:", err)
		return 1
	}
	build := exec.CommandContext(ctx, filepath.Join(root, "scripts", "image.sh"), suite.image)
	build.Dir = root
	build.Env = append(os.Environ(), "IMAGE_ARCH="+runtime.GOARCH)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/docker: FAIL: building the image:", err)
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e/docker: image built in %v\n", time.Since(began).Round(100*time.Millisecond))
	if err := startCluster(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "e2e/docker: FAIL: starting the cluster:", err)
		dumpLogs()
		return 1
	}
	fmt.Fprintf(os.Stderr, "e2e/docker: cluster of %d up %v after start\n", numNodes, time.Since(began).Round(100*time.Millisecond))
	code := m.Run()
	if code != 0 {
		dumpLogs()
	}
	fmt.Fprintf(os.Stderr, "e2e/docker: suite wall time %v\n", time.Since(began).Round(100*time.Millisecond))
	return code
}

func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// startCluster creates the networks and the five containers, waits until
// every node is ready and sees the others alive, and opens the client
// connections and subscriptions.
func startCluster(ctx context.Context) error {
	// A /24 of our own, so that the nodes' addresses are fixed; the
	// first free one among a few.
	var err error
	for i := range 16 {
		suite.subnet = fmt.Sprintf("10.231.%d.", (os.Getpid()+i)%250)
		if _, err = docker(ctx, "network", "create", "--label", "gossip-e2e="+suite.prefix,
			"--subnet", suite.subnet+"0/24", suite.netMain); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	var join []string
	for i := 1; i <= numNodes; i++ {
		join = append(join, fmt.Sprintf("node%d:9001", i))
	}
	for i := 1; i <= numNodes; i++ {
		n := &node{name: fmt.Sprintf("node%d", i)}
		n.container = suite.prefix + "-" + n.name
		n.volume = n.container + "-data"
		n.ip = fmt.Sprintf("%s1%d", suite.subnet, i)
		// A fixed host port: one that Docker picked would change at
		// every restart.
		port, err := freePort()
		if err != nil {
			return err
		}
		n.grpcAddr = "127.0.0.1:" + port
		_, err = docker(ctx, "create", "--name", n.container, "--hostname", n.name,
			"--label", "gossip-e2e="+suite.prefix,
			"--network", suite.netMain, "--ip", n.ip, "--network-alias", n.name,
			"-p", n.grpcAddr+":9001",
			"-v", n.volume+":/data",
			"-e", "GOSSIPD_ID="+n.name, "-e", "GOSSIPD_ADVERTISE="+n.name+":9001",
			"-e", "GOSSIPD_JOIN="+strings.Join(join, ","),
			"-e", "GOSSIPD_LOG_LEVEL=info",
			"-e", "GOSSIPD_PROBE_INTERVAL="+probeInterval.String(),
			"-e", "GOSSIPD_PROBE_TIMEOUT="+probeTimeout.String(),
			"-e", "GOSSIPD_SUSPICION_MULT="+strconv.Itoa(suspicionMult),
			"-e", "GOSSIPD_DEAD_REAP_AFTER="+deadReapAfter.String(),
			"-e", "GOSSIPD_RECONNECT_INTERVAL="+reconnectInterval.String(),
			"-e", "GOSSIPD_SHUTDOWN_TIMEOUT=5s",
			suite.image)
		if err != nil {
			return err
		}
		suite.nodes = append(suite.nodes, n)
	}
	for _, n := range suite.nodes {
		if _, err := docker(ctx, "start", n.container); err != nil {
			return err
		}
	}
	for _, n := range suite.nodes {
		var err error
		// Reconnect within 100 ms of a restarted node serving again, so
		// that its subscriber is back before the node has joined and
		// delivers anything (grpc-go's default backoff grows to 2 min).
		n.conn, err = grpc.NewClient(n.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 50 * time.Millisecond, Multiplier: 1.2, MaxDelay: 100 * time.Millisecond},
				MinConnectTimeout: time.Second,
			}),
			// A killed container's connection goes through docker-proxy,
			// which may not close it: pings find it dead (5 s is the
			// least the server permits).
			grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5 * time.Second, Timeout: 2 * time.Second, PermitWithoutStream: true}))
		if err != nil {
			return err
		}
		n.api = pbgrpc.NewNodeServiceClient(n.conn)
		n.sub = subscribe(n)
	}
	return waitWhole(ctx, 60*time.Second)
}

// freePort is a port free on 127.0.0.1 a moment ago.
func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// waitWhole waits until every node is SERVING and lists every node alive.
func waitWhole(ctx context.Context, within time.Duration) error {
	return waitFor(ctx, within, func() error {
		for _, n := range suite.nodes {
			if err := serving(ctx, n); err != nil {
				return err
			}
			alive, err := aliveSet(ctx, n)
			if err != nil {
				return err
			}
			if len(alive) != numNodes {
				return fmt.Errorf("%s sees %d alive: %v", n.name, len(alive), alive)
			}
		}
		return nil
	})
}

func serving(ctx context.Context, n *node) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(n.conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("%s health: %w", n.name, err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("%s is %v", n.name, resp.GetStatus())
	}
	return nil
}

// memberStates is what n says of every member: id → state.
func memberStates(ctx context.Context, n *node) (map[string]pb.MemberState, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := n.api.Members(ctx, &pb.MembersRequest{})
	if err != nil {
		return nil, fmt.Errorf("%s Members: %w", n.name, err)
	}
	out := make(map[string]pb.MemberState)
	for _, m := range resp.GetMembers() {
		out[m.GetId()] = m.GetState()
	}
	return out, nil
}

func aliveSet(ctx context.Context, n *node) ([]string, error) {
	st, err := memberStates(ctx, n)
	if err != nil {
		return nil, err
	}
	var out []string
	for id, s := range st {
		if s == pb.MemberState_MEMBER_STATE_ALIVE {
			out = append(out, id)
		}
	}
	return out, nil
}

// waitFor polls cond every 100 ms until it returns nil or within passes
// (then its last error).
func waitFor(ctx context.Context, within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %w", within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// subscriber follows one node's deliveries for the whole suite the way
// an application that must not miss anything does: it starts from now,
// remembers the log offset of the last delivery it got, and whenever the
// stream ends (the node restarted) subscribes again from the offset after
// it. So what the node delivered while no stream was attached — in the
// last moments of a shutdown, after the subscription ended but before the
// node stopped, or before the test attached to a restarted node — still
// reaches it from the node's delivery log on the /data volume, and a
// message missing here is one the node never delivered.
type subscriber struct {
	n      *node
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	counts   map[string]int
	missed   uint64
	sessions int      // subscriptions opened
	current  uint64   // deliveries in the current one
	next     uint64   // the offset to resume from; 0 before the first delivery (from now)
	resumes  []string // resumptions the node refused (its log lost the offset): each a possible gap
}

func subscribe(n *node) *subscriber {
	ctx, cancel := context.WithCancel(context.Background())
	s := &subscriber{n: n, cancel: cancel, done: make(chan struct{}), counts: map[string]int{}}
	go func() {
		defer close(s.done)
		for ctx.Err() == nil {
			s.session(ctx)
			select {
			case <-ctx.Done():
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return s
}

func (s *subscriber) session(ctx context.Context) {
	req := &pb.SubscribeRequest{Buffer: 1 << 16}
	s.mu.Lock()
	if s.next > 0 {
		req.Start = &pb.SubscribeRequest_FromOffset{FromOffset: s.next}
	}
	s.mu.Unlock()
	stream, err := s.n.api.Subscribe(ctx, req, grpc.WaitForReady(true))
	if err != nil {
		return
	}
	// The first message (or error) says whether the node took the offset.
	m, err := stream.Recv()
	if status.Code(err) == codes.OutOfRange {
		s.mu.Lock()
		s.resumes = append(s.resumes, err.Error())
		s.next = 0 // from now: what fell in between is lost, and tally shows it
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	s.sessions++
	s.current = 0
	s.mu.Unlock()
	for ; err == nil; m, err = stream.Recv() {
		s.mu.Lock()
		s.counts[m.GetId()]++
		s.missed += m.GetMissed()
		s.current++
		s.next = m.GetOffset() + 1
		s.mu.Unlock()
	}
}

// tally counts, for the ids, how many this subscriber never got and how
// many extra copies it got.
func (s *subscriber) tally(ids []string) (lost, dups int, missed uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		switch c := s.counts[id]; {
		case c == 0:
			lost++
		case c > 1:
			dups += c - 1
		}
	}
	return lost, dups, s.missed
}

// diagnose says, for each node, how many messages the node says it
// delivered since it started and how many the current subscription got,
// to tell a node that lost messages from a subscription that attached
// late.
func diagnose(ctx context.Context, t testing.TB) {
	for _, n := range suite.nodes {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := n.api.Status(c, &pb.StatusRequest{})
		cancel()
		n.sub.mu.Lock()
		sessions, current, resumes := n.sub.sessions, n.sub.current, n.sub.resumes
		n.sub.mu.Unlock()
		for _, r := range resumes {
			t.Logf("diagnose %s: the node refused a resumption: %s", n.name, r)
		}
		if err != nil {
			t.Logf("diagnose %s: Status: %v", n.name, err)
			continue
		}
		core := map[string]float64{}
		for _, c := range st.GetCounters() {
			core[c.GetName()] = c.GetValue()
		}
		t.Logf("diagnose %s: node delivered %v since it started (subscriber missed %v); subscriber: %d sessions, %d deliveries in the current one",
			n.name, core["core.delivered"], core["core.subscriber_missed"], sessions, current)
	}
}

// startIsolated starts n's stopped container while the others drop its
// packets, waits until the test's subscription is attached to the new
// process, and only then lets it reach them: a restarted node catches
// up within a second of joining, and this way the test sees that
// catch-up live rather than only from the log (the subscription resumes
// from its last offset, so nothing the node delivered in between would
// be missed either way).
func startIsolated(ctx context.Context, t testing.TB, n *node) {
	t.Helper()
	rest := othersOf(n)
	for _, o := range rest {
		firewall(t, o, "-I", []*node{n}, "")
	}
	mustDocker(t, "start", n.container)
	err := waitFor(ctx, 30*time.Second, func() error {
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		st, err := n.api.Status(c, &pb.StatusRequest{})
		if err != nil {
			return err
		}
		for _, c := range st.GetCounters() {
			if c.GetName() == "core.subscribers" && c.GetValue() >= 1 {
				return nil
			}
		}
		return fmt.Errorf("%s: the subscription is not attached yet", n.name)
	})
	for _, o := range rest {
		firewall(t, o, "-D", []*node{n}, "")
	}
	if err != nil {
		t.Fatal(err)
	}
}

func othersOf(n *node) []*node {
	var out []*node
	for _, o := range suite.nodes {
		if o != n {
			out = append(out, o)
		}
	}
	return out
}

// firewall inserts (-I) or deletes (-D) rules in n's network namespace,
// with the host's iptables through nsenter, that drop every packet from
// and to the peers, or with match set (e.g. "-m statistic --mode random
// --probability 0.1") only the packets from them that it matches.
func firewall(t testing.TB, n *node, op string, peers []*node, match string) {
	t.Helper()
	p := pid(t, n)
	for _, peer := range peers {
		rules := [][]string{{"INPUT", "-s", peer.ip}}
		if match == "" {
			rules = append(rules, []string{"OUTPUT", "-d", peer.ip})
		}
		for _, r := range rules {
			args := append([]string{"-t", p, "-n", "iptables", "-w", op, r[0], r[1], r[2]}, strings.Fields(match)...)
			args = append(args, "-j", "DROP")
			if out, err := exec.Command("nsenter", args...).CombinedOutput(); err != nil {
				t.Fatalf("iptables in %s: nsenter %s: %v: %s (needs root, nsenter and iptables on the host)", n.name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
			}
		}
	}
}

// waitDelivered waits until every node in nodes has every id.
func waitDelivered(ctx context.Context, within time.Duration, ids []string, nodes []*node) error {
	return waitFor(ctx, within, func() error {
		for _, n := range nodes {
			if lost, _, _ := n.sub.tally(ids); lost > 0 {
				return fmt.Errorf("%s lacks %d of %d messages", n.name, lost, len(ids))
			}
		}
		return nil
	})
}

// publish publishes count messages through n, tagged with tag, and
// returns the acknowledged ids.
func publish(ctx context.Context, n *node, tag string, count int) ([]string, error) {
	var ids []string
	for i := range count {
		id, err := publishOne(ctx, n, fmt.Sprintf("%s-%s-%d", tag, n.name, i))
		if err != nil {
			return ids, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func publishOne(ctx context.Context, n *node, id string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	resp, err := n.api.Publish(ctx, &pb.PublishRequest{Id: id, Payload: []byte("payload of " + id)})
	if err != nil {
		return "", fmt.Errorf("publish %s through %s: %w", id, n.name, err)
	}
	return resp.GetId(), nil
}

// pid is the host pid of the container's gossipd (for nsenter).
func pid(t testing.TB, n *node) string {
	return mustDocker(t, "inspect", "-f", "{{.State.Pid}}", n.container)
}

// ifaceOn is the name of the container's interface on network netName.
func ifaceOn(t testing.TB, n *node, netName string) string {
	t.Helper()
	ip := mustDocker(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+netName+`").IPAddress}}`, n.container)
	out, err := exec.Command("nsenter", "-t", pid(t, n), "-n", "ip", "-o", "-4", "addr", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter ip addr in %s: %v: %s", n.name, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 {
			if a, _, err := net.ParseCIDR(f[3]); err == nil && a.String() == ip {
				return strings.TrimSuffix(f[1], "@")
			}
		}
	}
	t.Fatalf("%s: no interface with %s (network %s) in %s", n.name, ip, netName, out)
	return ""
}

// cleanup removes everything the suite created, by its label and names.
func cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range suite.nodes {
		if n.sub != nil {
			n.sub.cancel()
			<-n.sub.done
		}
		if n.conn != nil {
			n.conn.Close()
		}
	}
	if ids, _ := docker(ctx, "ps", "-aq", "--filter", "label=gossip-e2e="+suite.prefix); ids != "" {
		docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
	}
	for _, n := range suite.nodes {
		docker(ctx, "volume", "rm", "-f", n.volume)
	}
	// What TestCompose's project left, if it was interrupted.
	project := suite.prefix + "-compose"
	if ids, _ := docker(ctx, "ps", "-aq", "--filter", "label=com.docker.compose.project="+project); ids != "" {
		docker(ctx, append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
	}
	if vols, _ := docker(ctx, "volume", "ls", "-q", "--filter", "label=com.docker.compose.project="+project); vols != "" {
		docker(ctx, append([]string{"volume", "rm", "-f"}, strings.Fields(vols)...)...)
	}
	if nets, _ := docker(ctx, "network", "ls", "-q", "--filter", "label=com.docker.compose.project="+project); nets != "" {
		docker(ctx, append([]string{"network", "rm"}, strings.Fields(nets)...)...)
	}
	docker(ctx, "network", "rm", suite.netMain)
	docker(ctx, "image", "rm", "-f", suite.image)
}

// dumpLogs prints the last lines of every container's log, and writes
// the whole logs to $GOSSIP_E2E_LOGDIR/NODE.log when that is set.
func dumpLogs() {
	for _, n := range suite.nodes {
		if dir := os.Getenv("GOSSIP_E2E_LOGDIR"); dir != "" {
			if f, err := os.Create(filepath.Join(dir, n.name+".log")); err == nil {
				cmd := exec.Command("docker", "logs", n.container)
				cmd.Stdout, cmd.Stderr = f, f
				_ = cmd.Run()
				f.Close()
			}
		}
		cmd := exec.Command("docker", "logs", "--tail", "30", n.container)
		var b bytes.Buffer
		cmd.Stdout, cmd.Stderr = &b, &b
		_ = cmd.Run()
		fmt.Fprintf(os.Stderr, "--- %s (last 30 lines) ---\n", n.name)
		io.Copy(os.Stderr, &b)
	}
}
