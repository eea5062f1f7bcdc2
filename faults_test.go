package gossip

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/testutil"
	"github.com/grpc-gossip/gossip/memnet"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// The faults of issue 10, each on the default path over memnet. The
// 200-node scenarios are in scenario_default_test.go.

// TestRefuseUntilReady is fault 4: a node that has not joined refuses
// new messages with Unavailable (ErrNotReady) instead of acknowledging
// what it cannot pass on; copies relayed by other nodes are still taken,
// and once it is ready it publishes.
func TestRefuseUntilReady(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(1)
		n, err := New("lonely", "mem-lonely", nil, nil, nil, nil, WithTransport(net.Transport("mem-lonely")),
			WithConfig(Config{RefuseUntilReady: true}))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		net.Register("mem-lonely", n)
		ctx := context.Background()
		if _, _, err := n.Publish(ctx, "early", []byte("x")); !errors.Is(err, ErrNotReady) || status.Code(err) != codes.Unavailable {
			t.Fatalf("Publish before joining = %v, want ErrNotReady (Unavailable)", err)
		}
		if n.seen("early") {
			t.Fatal("a refused message is recorded")
		}
		if _, err := n.PutMessageToClient(ctx, &pb.GossipMessage{Hash: "relayed", FromHash: "peer", Origin: "peer", Hops: 1}); err != nil {
			t.Fatalf("a relayed copy was refused: %v", err)
		}
		n.MarkReady()
		if _, _, err := n.Publish(ctx, "later", []byte("x")); err != nil {
			t.Fatalf("Publish once ready = %v", err)
		}
	})
}

// TestMaxPayloadMismatch is fault 2: one node accepts 4 MiB payloads, the
// others 1 MiB. A 2 MiB publish on the big node is refused with
// ResourceExhausted naming the member that cannot take it (it used to be
// acked and never delivered, its stream re-sent forever); a message the
// small nodes can take is delivered; the streams never break over the
// refusal.
func TestMaxPayloadMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDCluster(t, 3, Config{}, DefaultLANMembershipConfig(), 1, func(i int, cfg *Config) {
			if i == 0 {
				cfg.MaxPayloadBytes = 4 << 20
			}
		})
		defer c.close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _, err := c.node(0).Publish(ctx, "big", make([]byte, 2<<20))
		if status.Code(err) != codes.ResourceExhausted || !errors.Is(err, ErrPayloadTooLarge) || !strings.Contains(err.Error(), "accepts at most 1048576") {
			t.Fatalf("2 MiB publish on the 4 MiB node = %v, want ResourceExhausted naming the member's limit", err)
		}
		if c.node(0).seen("big") {
			t.Fatal("the refused message was recorded")
		}
		if !c.publish(0, "fits", make([]byte, 512<<10)) {
			t.Fatal("a 512 KiB publish was refused")
		}
		c.awaitDelivered(time.Minute, c.up(), []string{"fits"})
		if st := c.net.Stats(); st.StreamsBroken != 0 {
			t.Errorf("%d streams broke", st.StreamsBroken)
		}
	})
}

// TestRefusedByPeerIsFinal: a message already in a node's store that a
// peer cannot take (the peer joined with a smaller limit after it was
// published) is refused for that peer for good — counted, logged once,
// not kept for it — and never breaks the stream to it.
func TestRefusedByPeerIsFinal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDCluster(t, 2, Config{MaxPayloadBytes: 4 << 20}, DefaultLANMembershipConfig(), 2)
		defer c.close()
		if !c.publish(0, "big", make([]byte, 2<<20)) {
			t.Fatal("publish refused")
		}
		c.awaitDelivered(time.Minute, []int{0, 1}, []string{"big"})
		// A small node joins: anti-entropy offers it the big message,
		// which it cannot take.
		c.tweak = append(c.tweak, func(i int, cfg *Config) {
			if i == 2 {
				cfg.MaxPayloadBytes = 1 << 20
			}
		})
		c.nodes = append(c.nodes, nil)
		c.addrs, c.life, c.recs, c.seen = append(c.addrs, ""), append(c.life, 0), append(c.recs, nil), append(c.seen, newDRecorder())
		c.start(2, 2)
		c.join(2)
		c.awaitMembers(time.Minute, 3)
		time.Sleep(30 * time.Second) // digests, grafts and their refusals
		var refused uint64
		for _, i := range []int{0, 1} {
			refused += c.node(i).sc.refused.Load()
		}
		if refused == 0 {
			t.Error("no refusal was counted")
		}
		if st := c.net.Stats(); st.StreamsBroken != 0 {
			t.Errorf("%d streams broke over the refused message", st.StreamsBroken)
		}
		if c.recs[2].has("big") != 0 {
			t.Error("the small node delivered a message over its limit")
		}
		if !c.publish(2, "after", []byte("x")) {
			t.Fatal("publish on the small node refused")
		}
		c.awaitDelivered(time.Minute, c.up(), []string{"after"})
	})
}

// TestFalseLeftRefuted is fault 1 on the default path: one
// MembershipService/PushUpdates call from a plain client, saying "n002
// left at incarnation 1000", makes n001 list the healthy n002 as left and
// drop it as a neighbour; n002 hears of it and refutes it within a few
// probe periods, and is everyone's member and a neighbour again. The
// same update at incarnation 2^64−1 is ignored: nobody could refute it.
func TestFalseLeftRefuted(t *testing.T) {
	for _, inc := range []uint64{1000, ^uint64(0)} {
		t.Run(fmt.Sprint(inc), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				mcfg := DefaultLANMembershipConfig()
				c := newDCluster(t, 5, Config{}, mcfg, 3)
				defer c.close()
				cli, err := c.net.Transport("client").Membership(c.addrs[1])
				if err != nil {
					t.Fatal(err)
				}
				forged := &pb.PushUpdatesRequest{From: "client", FromAddress: "client", Updates: []*pb.MemberUpdate{{
					Id: did(2), Address: c.addrs[2], State: pb.MemberState_MEMBER_STATE_LEFT, Incarnation: inc, From: did(2)}}}
				if _, err := cli.PushUpdates(context.Background(), forged); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				state := func(i int) Member {
					for _, m := range c.node(i).Members() {
						if m.ID == did(2) {
							return m
						}
					}
					return Member{}
				}
				if inc == ^uint64(0) {
					time.Sleep(10 * mcfg.ProbeInterval)
					for _, i := range c.up() {
						if m := state(i); m.State != MemberAlive || m.Incarnation != 0 {
							t.Errorf("node %d sees n002 %v at %d after an update it should have ignored", i, m.State, m.Incarnation)
						}
					}
					return
				}
				bound := 3 * mcfg.ProbeInterval
				testutil.WaitFor(t, bound, "the refutation everywhere", func() error {
					for _, i := range c.up() {
						if i == 2 {
							continue
						}
						if m := state(i); m.State != MemberAlive || m.Incarnation != inc+1 {
							return fmt.Errorf("node %d sees n002 %v at %d", i, m.State, m.Incarnation)
						}
					}
					return nil
				})
				t.Logf("refuted everywhere %v after the forged update", time.Since(start))
				// Messages still reach it: it is back in the overlay.
				c.awaitDelivered(time.Minute, c.up(), nil)
				if !c.publish(0, "after", []byte("x")) {
					t.Fatal("publish refused")
				}
				c.awaitDelivered(time.Minute, c.up(), []string{"after"})
			})
		})
	}
}

// TestEveryNodeHasAnEagerParent is fault 5: at N = 50 one node was a
// neighbour of nobody (its Links had been dropped by members that did not
// know it yet) and got every message by anti-entropy only, a second
// late. Now the overlay's links are two-way (a Link from a stranger makes
// it a member; a chosen neighbour's stream hello re-asserts the link), so
// every node is someone's neighbour, and after one message per source
// every node has a parent in each source's tree: the next messages reach
// every node by eager push.
func TestEveryNodeHasAnEagerParent(t *testing.T) {
	sizes := []int{50}
	if *scenarioNodes > 50 {
		sizes = append(sizes, *scenarioNodes)
	}
	for _, n := range sizes {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newDCluster(t, n, Config{}, DefaultLANMembershipConfig(), uint64(n))
				defer c.close()
				c.net.SetDelay(2*time.Millisecond, 3*time.Millisecond)
				time.Sleep(5 * time.Second) // let the neighbour sets settle
				pushedBy := map[string]int{}
				for _, i := range c.up() {
					for id := range c.node(i).Neighbors() {
						pushedBy[id]++
					}
				}
				for _, i := range c.up() {
					if pushedBy[did(i)] == 0 {
						t.Errorf("node %d is nobody's neighbour: nobody pushes to it", i)
					}
				}
				sources := []int{0, n / 3, 2 * n / 3}
				send := func(prefix string, rounds int) []string {
					var out []string
					for round := range rounds {
						for _, s := range sources {
							id := fmt.Sprintf("%s%d-%d", prefix, s, round)
							c.publish(s, id, []byte(id))
							out = append(out, id)
						}
						time.Sleep(time.Second)
					}
					c.awaitDelivered(time.Minute, c.up(), out)
					return out
				}
				send("warm", 3)
				for _, i := range c.up() {
					for _, s := range sources {
						if i != s && c.node(i).core.Parent(did(s)) == "" {
							t.Errorf("node %d has no parent in %s's tree", i, did(s))
						}
					}
				}
				c.mark()
				steady := send("steady", 3)
				r := c.report(c.up(), steady)
				t.Logf("steady messages: %s", r)
				if r.Repaired != 0 || r.MaxAll > time.Second {
					t.Errorf("steady-state messages: %d first copies by repair, the slowest reached every node after %v", r.Repaired, r.MaxAll)
				}
				r.check(t)
			})
		})
	}
}

// TestStaleFramesAfterUnaryFallback: a message the core queued for a
// stream neighbour just before that neighbour's stream answered
// Unimplemented (the core stepped while the link was falling back to the
// seed's unary RPC) still reaches it, by PutMessageToClient. Before, the
// frame found no stream and was dropped, and the neighbour never got the
// message (gossipd's TestShutdownTimeout hung on it under load).
func TestStaleFramesAfterUnaryFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		net := memnet.New(1)
		got := make(chan string, 4)
		net.Register("mem-seed", memnet.Unary(func(_ context.Context, m *pb.GossipMessage) (*pb.GossipAck, error) {
			got <- m.GetHash()
			return &pb.GossipAck{Hash: m.GetHash(), From: "seed-only"}, nil
		}))
		n, err := New("a", "mem-a", nil, nil, nil, nil, WithTransport(net.Transport("mem-a")))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if err := n.AddNeighbor("seed-only", "mem-seed"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait() // the link tried a stream and fell back
		if st := n.Stats().Stream; st.UnaryFallbacks != 1 {
			t.Fatalf("unary fallbacks %d, want 1", st.UnaryFallbacks)
		}
		// A frame the core chose for the neighbour while it was still a
		// stream peer, dispatched only now.
		wire, err := proto.Marshal(&pb.GossipMessage{Hash: "stale", FromHash: "a", Origin: "a", Payload: "x", Hops: 1, SeqNode: "a", SeqEpoch: 1, Seq: 1})
		if err != nil {
			t.Fatal(err)
		}
		n.dispatch([]core.Out{{Peer: "seed-only", Frame: core.Frame{Kind: core.FrameMessage, Wire: wire, Hash: "stale"}}})
		synctest.Wait()
		select {
		case h := <-got:
			if h != "stale" {
				t.Fatalf("the neighbour got %q, want stale", h)
			}
		default:
			t.Fatal("the neighbour never got the message queued for its stream before it fell back")
		}
		if st := n.Stats().Stream; st.FramesDropped != 0 {
			t.Errorf("frames dropped %d, want 0", st.FramesDropped)
		}
	})
}
