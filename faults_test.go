package gossip

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

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
