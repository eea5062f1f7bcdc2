package core

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// The core must start no goroutine (the otter cache's clean-up goroutine
// returns at once because the Storage's clock never ticks).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the start of virtual time in these tests. It is far from the zero
// time on purpose: the core must not treat time.Time{} as special.
var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// fakeClock is the explicit virtual time of a test: a time.Time that only
// moves when the test advances it.
type fakeClock struct{ now time.Time }

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

// Advance moves the clock forward by d and returns the new time.
func (c *fakeClock) Advance(d time.Duration) time.Time {
	c.now = c.now.Add(d)
	return c.now
}

// validConfig returns a validated Config after applying mutate (may be nil).
func validConfig(tb testing.TB, mutate func(*Config)) *Config {
	tb.Helper()
	c := &Config{}
	if mutate != nil {
		mutate(c)
	}
	if err := c.Validate(); err != nil {
		tb.Fatalf("Validate: %v", err)
	}
	return c
}

// newTestNode returns a Node with a fresh Storage, the RandomRouter and the
// given neighbours (endpoint "addr-"+id).
func newTestNode(tb testing.TB, self string, cfg *Config, seed uint64, neighbors ...string) *Node {
	tb.Helper()
	if cfg == nil {
		cfg = validConfig(tb, nil)
	}
	n := NewNode(self, cfg, NewStorage(cfg), nil, seed)
	for _, id := range neighbors {
		if err := n.AddNeighbor(id, addrOf(id)); err != nil {
			tb.Fatalf("AddNeighbor(%q): %v", id, err)
		}
	}
	return n
}

func addrOf(id string) string { return "addr-" + id }

func gossipMsg(hash, from, origin string, hops uint32) *pb.GossipMessage {
	return &pb.GossipMessage{Hash: hash, FromHash: from, Origin: origin, Hops: hops, Payload: "payload of " + hash}
}
