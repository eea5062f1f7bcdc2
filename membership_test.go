package gossip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/internal/swim"
	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// fastMembership is the loopback tuning the runtime tests use.
func fastMembership() Option {
	c := DefaultLocalMembershipConfig()
	c.ProbeInterval, c.ProbeTimeout = 100*time.Millisecond, 50*time.Millisecond
	c.GossipInterval = 20 * time.Millisecond
	c.SuspicionMult = 3
	return WithMembership(c)
}

// views returns what every node thinks of member id.
func stateOf(n *GossipNode, id string) (Member, bool) {
	for _, m := range n.Members() {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// allSee waits until every node in ns sees every id in alive as alive.
func allSee(t *testing.T, ns []*GossipNode, timeout time.Duration, want func(n *GossipNode) error) {
	t.Helper()
	testutil.WaitFor(t, timeout, "membership", func() error {
		for _, n := range ns {
			if err := want(n); err != nil {
				return fmt.Errorf("%s: %w", n.Hash, err)
			}
		}
		return nil
	})
}

// joinedCluster starts n nodes "<prefix>0".."<prefix>n-1", joins them
// through the first and waits until every one sees all n alive. opts(id)
// gives each node its options.
func joinedCluster(t *testing.T, prefix string, n int, opts func(id string) []Option) []*GossipNode {
	t.Helper()
	var nodes []*GossipNode
	for i := range n {
		id := fmt.Sprintf("%s%d", prefix, i)
		node, _ := startNode(t, id, opts(id)...)
		if i > 0 {
			if _, err := node.Join(context.Background(), []string{nodes[0].ListenAddr()}); err != nil {
				t.Fatal(err)
			}
		}
		nodes = append(nodes, node)
	}
	allSee(t, nodes, 10*time.Second, func(node *GossipNode) error {
		if c := aliveCount(node); c != n {
			return fmt.Errorf("%d alive", c)
		}
		return nil
	})
	return nodes
}

func fast(string) []Option { return []Option{fastMembership()} }

func aliveCount(n *GossipNode) int {
	c := 0
	for _, m := range n.Members() {
		if m.State == MemberAlive {
			c++
		}
	}
	return c
}

// TestJoin: nodes join through the first and everyone learns everyone;
// neighbours follow membership, with two-way links; a node whose seeds do
// not answer gets ErrNotJoined; a node with the seed's id is refused.
func TestJoin(t *testing.T) {
	seed, _ := startNode(t, "seed", WithFanout(FanoutAll), fastMembership())
	seed.MarkReady()
	nodes := []*GossipNode{seed}
	closed := closedAddr(t)
	for i := range 4 {
		n, _ := startNode(t, fmt.Sprintf("n%d", i), WithFanout(FanoutAll), fastMembership())
		got, err := n.Join(context.Background(), []string{closed, seed.ListenAddr()})
		if err != nil || got != i+1 || !n.Ready() {
			t.Fatalf("join %d: %d members, err %v", i, got, err)
		}
		nodes = append(nodes, n)
	}
	allSee(t, nodes, 10*time.Second, func(n *GossipNode) error {
		if c := aliveCount(n); c != 5 {
			return fmt.Errorf("%d alive", c)
		}
		// k = ceil(ln 5) + 2 = 4: every other member is a neighbour.
		if nb := len(n.Neighbors()); nb != 4 {
			return fmt.Errorf("%d neighbours", nb)
		}
		return nil
	})
	for _, n := range nodes {
		for id, addr := range n.Neighbors() {
			peer := nodes[slices.IndexFunc(nodes, func(p *GossipNode) bool { return p.Hash == id })]
			if peer.Endpoint != addr || peer.Neighbors()[n.Hash] != n.Endpoint {
				t.Errorf("%s -> %s (%s): link is not symmetric", n.Hash, id, addr)
			}
		}
	}
	sub, _ := nodes[3].Subscribe(0)
	if _, _, err := nodes[1].Publish(context.Background(), "flood", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case d := <-sub.C():
		if d.Hash != "flood" {
			t.Errorf("got %v", d)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("flood did not arrive")
	}

	lonely, _ := startNode(t, "lonely")
	_, err := lonely.Join(context.Background(), []string{closed})
	if !errors.Is(err, ErrNotJoined) || status.Code(err) != codes.Unavailable || lonely.Ready() {
		t.Errorf("join with no seed: %v", err)
	}
	twin, _ := startNode(t, "seed")
	if _, err := twin.Join(context.Background(), []string{seed.ListenAddr()}); err == nil {
		t.Error("joined a node with the same id")
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestMembershipFailureAndRestart: five nodes join through one seed; one
// is closed without leaving; the others mark it dead within the documented
// bound, drop it from their neighbours and report the events; it restarts
// with the same id on a new port and is alive again everywhere, at the new
// address, with a higher incarnation.
func TestMembershipFailureAndRestart(t *testing.T) {
	var mu sync.Mutex
	events := map[string][]MemberEvent{}
	handler := func(self string) Option {
		return WithMemberEventHandler(func(e MemberEvent) {
			mu.Lock()
			events[self] = append(events[self], e)
			mu.Unlock()
		})
	}
	nodes := joinedCluster(t, "m", 5, func(id string) []Option { return []Option{fastMembership(), handler(id)} })
	seed := nodes[0]

	victim := nodes[2]
	oldAddr := victim.Endpoint
	victim.Close()
	killed := time.Now()
	survivors := slices.Delete(slices.Clone(nodes), 2, 3)
	cfg := seed.mship.cfg
	bound := cfg.DetectionBound(5)
	allSee(t, survivors, bound+5*time.Second, func(n *GossipNode) error {
		if m, _ := stateOf(n, "m2"); m.State != MemberDead {
			return fmt.Errorf("m2 is %v", m.State)
		}
		if _, ok := n.Neighbors()["m2"]; ok {
			return errors.New("m2 still a neighbour")
		}
		return nil
	})
	took := time.Since(killed)
	t.Logf("closed node marked dead by all 4 survivors after %v (bound %v)", took.Round(time.Millisecond), bound)
	if took > bound {
		t.Errorf("detection took %v, bound %v", took, bound)
	}
	// Events reach the handler after the state they report is visible.
	testutil.WaitFor(t, 5*time.Second, "a dead event for m2 on every survivor", func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, n := range survivors {
			if !slices.ContainsFunc(events[n.Hash], func(e MemberEvent) bool { return e.Kind == MemberDied && e.Member.ID == "m2" }) {
				return fmt.Errorf("%s: no dead event for m2", n.Hash)
			}
		}
		return nil
	})

	again, _ := startNode(t, "m2", fastMembership())
	if again.Endpoint == oldAddr {
		t.Fatal("same port")
	}
	if _, err := again.Join(context.Background(), []string{seed.ListenAddr()}); err != nil {
		t.Fatal(err)
	}
	allSee(t, append(survivors, again), 10*time.Second, func(n *GossipNode) error {
		m, _ := stateOf(n, "m2")
		if m.State != MemberAlive || m.Address != again.Endpoint || m.Incarnation == 0 {
			return fmt.Errorf("m2 is %+v", m)
		}
		if c := aliveCount(n); c != 5 {
			return fmt.Errorf("%d alive", c)
		}
		return nil
	})
}

// TestMembershipLeave: a node that leaves is marked left (never dead) by
// the others, and Leave returns once the news went out.
func TestMembershipLeave(t *testing.T) {
	nodes := joinedCluster(t, "l", 4, fast)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := nodes[3].Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := nodes[3].Join(ctx, []string{nodes[0].ListenAddr()}); err == nil {
		t.Error("Join after Leave accepted")
	}
	nodes[3].Close()
	allSee(t, nodes[:3], 5*time.Second, func(n *GossipNode) error {
		if m, _ := stateOf(n, "l3"); m.State != MemberLeft {
			return fmt.Errorf("l3 is %v", m.State)
		}
		return nil
	})
	if err := (&GossipNode{mship: &membership{}}).Leave(ctx); err != nil {
		t.Errorf("Leave without membership: %v", err)
	}
}

// TestStaticNeighborsStay: a static neighbour (AddNeighbor) is never
// removed by membership, even when membership has never heard of it, and
// StaticNeighborsOnly leaves the neighbour set alone.
func TestStaticNeighborsStay(t *testing.T) {
	a, _ := startNode(t, "s0", fastMembership())
	b, _ := startNode(t, "s1", fastMembership())
	only := DefaultLocalMembershipConfig()
	only.StaticNeighborsOnly = true
	c, _ := startNode(t, "s2", WithMembership(only))
	if err := a.AddNeighbor("ghost", closedAddr(t)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []*GossipNode{b, c} {
		if _, err := n.Join(context.Background(), []string{a.ListenAddr()}); err != nil {
			t.Fatal(err)
		}
	}
	allSee(t, []*GossipNode{a, b, c}, 10*time.Second, func(n *GossipNode) error {
		if c := aliveCount(n); c != 3 {
			return fmt.Errorf("%d alive", c)
		}
		return nil
	})
	testutil.WaitFor(t, 5*time.Second, "a links to b", func() error {
		if _, ok := a.Neighbors()["s1"]; !ok {
			return fmt.Errorf("a's neighbours: %v", a.Neighbors())
		}
		return nil
	})
	if _, ok := a.Neighbors()["ghost"]; !ok {
		t.Error("static neighbour removed")
	}
	if nb := c.Neighbors(); len(nb) != 0 {
		t.Errorf("StaticNeighborsOnly node got neighbours %v", nb)
	}
}

// TestPublishDuringChurn: eight nodes flood messages while two crash and
// two new ones join; every message published by a node that stays up
// reaches every node that stays up, exactly once.
func TestPublishDuringChurn(t *testing.T) {
	const n0, msgs = 8, 40
	recs := map[string]*recorder{}
	opts := func(id string) []Option {
		recs[id] = newRecorder(-1)
		return []Option{WithFanout(FanoutAll), fastMembership(), WithDeliveryHandler(recs[id].handle)}
	}
	start := func(id string) *GossipNode {
		n, _ := startNode(t, id, opts(id)...)
		return n
	}
	nodes := joinedCluster(t, "c", n0, opts)
	seed := nodes[0]
	stay := []*GossipNode{nodes[0], nodes[1], nodes[2], nodes[4], nodes[5], nodes[7]}
	var ids []string
	for i := range msgs {
		switch i {
		case 10:
			nodes[3].Close()
		case 20:
			nodes[6].Close()
		case 15, 25:
			n := start(fmt.Sprintf("c%d", len(nodes)))
			if _, err := n.Join(context.Background(), []string{seed.ListenAddr()}); err != nil {
				t.Fatal(err)
			}
			nodes = append(nodes, n)
		}
		id := fmt.Sprintf("churn-%d", i)
		ids = append(ids, id)
		if _, _, err := stay[i%len(stay)].Publish(context.Background(), id, []byte("x")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond) // pacing, not waiting: the churn happens between publishes
	}
	testutil.WaitFor(t, 20*time.Second, "every message at every node that stayed", func() error {
		for _, n := range stay {
			for _, id := range ids {
				if c := recs[n.Hash].count(id); c != 1 {
					return fmt.Errorf("%s has %s %d times", n.Hash, id, c)
				}
			}
		}
		return nil
	})
}

// TestMembershipRPCErrors: malformed membership requests get clear codes.
func TestMembershipRPCErrors(t *testing.T) {
	_, cc := startNode(t, "e0", fastMembership())
	cli := pbgrpc.NewMembershipServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := cli.Join(ctx, &pb.JoinRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty join: %v", err)
	}
	if _, err := cli.Ping(ctx, &pb.PingRequest{From: "x", FromAddress: "127.0.0.1:1", Target: "not-e0"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("ping for another id: %v", err)
	}
	if _, err := cli.PingReq(ctx, &pb.PingReqRequest{From: "x", Target: "y"}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("ping-req without address: %v", err)
	}
	if _, err := cli.Link(ctx, &pb.LinkRequest{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("empty link: %v", err)
	}
}

// TestMembershipConfig: presets validate; zero fields take LAN defaults;
// impossible values are refused by New with an error naming them.
func TestMembershipConfig(t *testing.T) {
	for name, c := range map[string]MembershipConfig{
		"lan": DefaultLANMembershipConfig(), "wan": DefaultWANMembershipConfig(), "local": DefaultLocalMembershipConfig(),
	} {
		want := c
		if err := c.Validate(); err != nil || c != want {
			t.Errorf("%s: %v, %+v", name, err, c)
		}
	}
	var zero MembershipConfig
	if err := zero.Validate(); err != nil || zero != DefaultLANMembershipConfig() {
		t.Errorf("zero: %v, %+v", err, zero)
	}
	for _, bad := range []MembershipConfig{
		{ProbeInterval: time.Second, ProbeTimeout: 2 * time.Second},
		{FanoutExtra: -1},
		{GossipNodes: -3},
	} {
		if _, err := New("x", "", nil, nil, nil, nil, WithMembership(bad)); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if b := DefaultLANMembershipConfig(); b.DetectionBound(1000) < b.ProbeInterval {
		t.Error("detection bound below one probe interval")
	}
}

// otherAcker answers every probe as node c.
type otherAcker struct {
	pbgrpc.UnimplementedMembershipServiceServer
}

func (otherAcker) Ping(_ context.Context, r *pb.PingRequest) (*pb.PingResponse, error) {
	return &pb.PingResponse{Seq: r.GetSeq(), From: "c"}, nil
}

func (otherAcker) PingReq(_ context.Context, r *pb.PingReqRequest) (*pb.PingReqResponse, error) {
	return &pb.PingReqResponse{Acked: true, From: "c"}, nil
}

// A probe's ack counts only from the member probed: a server at its
// address that answers as another node (a broken or hostile one; an
// honest node refuses a probe for another id) does not keep it alive.
func TestAckFromAnotherNodeIsNotTaken(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pbgrpc.RegisterMembershipServiceServer(srv, otherAcker{})
	go srv.Serve(lis)
	defer srv.Stop()
	n, err := New("a", "", nil, nil, nil, nil, fastMembership())
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	for _, kind := range []swim.Kind{swim.KindPing, swim.KindPingReq} {
		err := n.mship.rpc(swim.Message{Kind: kind, From: "a", To: "b", ToAddr: lis.Addr().String(), Target: "b", TargetAddr: lis.Addr().String(), Seq: 1, Timeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), `answered by "c"`) {
			t.Errorf("%v answered by another node: %v, want it refused", kind, err)
		}
	}
}
