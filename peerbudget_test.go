package gossip

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// TestPeerBudgetStream: over real gRPC, a peer (a) pushing faster than
// its inbound budget of 64 KiB/s on its stream is slowed to about the
// budget and loses nothing — every message is delivered once — while
// another peer (b, its own connection, so its own budget) is not slowed:
// its messages arrive while a's are still being paid for.
func TestPeerBudgetStream(t *testing.T) {
	const (
		rate    = 64 << 10
		burst   = 16 << 10
		count   = 40
		payload = 4 << 10
	)
	s, rec, peers := budgetPeers(t, NewPeerBudget(rate, burst), nil, "a", "b")
	a, b := peers[0], peers[1]

	body := []byte(strings.Repeat("x", payload))
	start := time.Now()
	for i := range count {
		if _, _, err := a.Publish(context.Background(), fmt.Sprintf("a-%02d", i), body); err != nil {
			t.Fatal(err)
		}
	}
	// b's messages, published behind a's burst, arrive long before a's
	// last: b's stream has its own budget.
	for i := range 3 {
		if _, _, err := b.Publish(context.Background(), fmt.Sprintf("b-%d", i), []byte("small")); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "b's messages", func() error {
		for i := range 3 {
			if rec.count(fmt.Sprintf("b-%d", i)) != 1 {
				return fmt.Errorf("b-%d not delivered", i)
			}
		}
		return nil
	})
	bAt := time.Since(start)
	aQueued := a.Stats().Stream.QueuedBytes // held back at a by flow control
	aDone := 0
	for i := range count {
		aDone += rec.count(fmt.Sprintf("a-%02d", i))
	}
	if aDone == count {
		t.Fatalf("all of a's messages were delivered within %v, before b's: a was not slowed", bAt)
	}

	testutil.WaitFor(t, 30*time.Second, "a's messages", func() error {
		for i := range count {
			if c := rec.count(fmt.Sprintf("a-%02d", i)); c != 1 {
				return fmt.Errorf("a-%02d delivered %d times", i, c)
			}
		}
		return nil
	})
	elapsed := time.Since(start)
	// What a sent: the payloads, plus a few hundred bytes of ids and
	// framing each, and its digests.
	sent := float64(count * payload)
	achieved := sent / elapsed.Seconds()
	// The first burst is free, and so is the last envelope (each is paid
	// for before the next read); the rest is paid at the rate.
	if minimum := time.Duration((sent - burst - batchBytes) / rate * float64(time.Second)); elapsed < minimum {
		t.Errorf("a's %d bytes took %v (%.0f bytes/s): faster than the budget of %d bytes/s allows (at least %v)", int(sent), elapsed, achieved, rate, minimum)
	}
	paid := (sent - burst - batchBytes) / elapsed.Seconds()
	t.Logf("a: %d bytes of payload in %v: %.0f bytes/s, %.0f bytes/s beyond the free burst and last envelope (budget %d/s, burst %d); b's 3 messages after %v, a then holding %d bytes in its queue for s",
		int(sent), elapsed.Round(time.Millisecond), achieved, paid, rate, burst, bAt.Round(time.Millisecond), aQueued)

	st := s.Stats()
	if st.Security.PeerBudgetThrottled == 0 || st.Security.PeerBudgetThrottledTime < time.Second {
		t.Errorf("throttled %d times for %v; want some, over a second in all", st.Security.PeerBudgetThrottled, st.Security.PeerBudgetThrottledTime)
	}
	if st.Security.PeerBudgetRefused != 0 {
		t.Errorf("peer_budget_refused = %d; streams are slowed, never refused", st.Security.PeerBudgetRefused)
	}
	if st.Duplicates != 0 || st.Delivered != count+3 {
		t.Errorf("delivered %d, duplicates %d; want %d and 0", st.Delivered, st.Duplicates, count+3)
	}
}

// budgetPeers starts a node s with budget on real gRPC and one node per
// id with a stream to it, each on its own connection (its own factory):
// the peer a budget is counted for without TLS.
func budgetPeers(t *testing.T, budget *PeerBudget, peerOpts []Option, ids ...string) (*GossipNode, *recorder, []*GossipNode) {
	t.Helper()
	rec := newRecorder(-1)
	s, err := New("s", "", nil, nil, nil, nil, WithDeliveryHandler(rec.handle), WithPeerBudget(budget))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	peers := make([]*GossipNode, len(ids))
	for i, id := range ids {
		p, err := New(id, "", nil, nil, nil, nil, peerOpts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.Close() })
		if err := p.StartGRPCServer("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if err := p.AddNeighbor(s.Hash, s.ListenAddr()); err != nil {
			t.Fatal(err)
		}
		peers[i] = p
	}
	testutil.WaitFor(t, 10*time.Second, "the peers' streams", func() error {
		if in := s.Stats().Stream.Inbound; in != len(ids) {
			return fmt.Errorf("%d inbound streams", in)
		}
		return nil
	})
	return s, rec, peers
}

// TestPeerBudgetLargeEnvelope: messages far larger than the burst go
// through a stream (each is paid in several waits of at most the burst):
// never an error, every one delivered.
func TestPeerBudgetLargeEnvelope(t *testing.T) {
	s, rec, peers := budgetPeers(t, NewPeerBudget(1<<20, 4<<10), nil, "a")
	body := []byte(strings.Repeat("y", 64<<10))
	for i := range 4 {
		if _, _, err := peers[0].Publish(context.Background(), fmt.Sprintf("big-%d", i), body); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 20*time.Second, "the large messages", func() error {
		for i := range 4 {
			if rec.count(fmt.Sprintf("big-%d", i)) != 1 {
				return fmt.Errorf("big-%d not delivered", i)
			}
		}
		return nil
	})
	if st := s.Stats(); st.Security.PeerBudgetThrottled == 0 || st.Stream.Reconnects != 0 {
		t.Errorf("throttled %d, stream reconnects %d; want waits, and no stream broken", st.Security.PeerBudgetThrottled, st.Stream.Reconnects)
	}
	if r := peers[0].Stats().Stream.Reconnects; r != 0 {
		t.Errorf("a's stream was re-opened %d times", r)
	}
}

// TestPeerBudgetBackpressure: the budget's wait reaches the sender. A
// peer whose only neighbour is the budgeted node, pushing 2 MiB at a
// 1 MiB/s budget with a 256 KiB stream queue: the node's flow-control
// window fills, the peer's stream writer blocks, its queue for the node
// grows past its bound, and its publishers wait for room
// (stream.publish_waits); every message is delivered once.
func TestPeerBudgetBackpressure(t *testing.T) {
	cfg := DefaultConfig()
	cfg.StreamQueueBytes = 256 << 10
	s, rec, peers := budgetPeers(t, NewPeerBudget(1<<20, 64<<10), []Option{WithConfig(cfg)}, "a")
	a := peers[0]
	body := []byte(strings.Repeat("x", 16<<10))
	const count = 128
	for i := range count {
		if _, _, err := a.Publish(context.Background(), fmt.Sprintf("m-%03d", i), body); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 30*time.Second, "every message", func() error {
		if tot, _ := rec.snapshot(); tot != count {
			return fmt.Errorf("%d delivered", tot)
		}
		return nil
	})
	st, sst := a.Stats().Stream, s.Stats()
	if st.PublishWaits == 0 {
		t.Errorf("a's publishers never waited (queued %d, deferred %d): the budget did not reach the sender", st.QueuedBytes, st.Deferred)
	}
	if sst.Delivered != count || sst.Duplicates != 0 || sst.Security.PeerBudgetThrottled == 0 {
		t.Errorf("s: delivered %d, duplicates %d, throttled %d; want %d, 0, some", sst.Delivered, sst.Duplicates, sst.Security.PeerBudgetThrottled, count)
	}
	t.Logf("a: publish waits %d, deferred %d, frames dropped %d; s throttled %d times, %v", st.PublishWaits, st.Deferred, st.FramesDropped, sst.Security.PeerBudgetThrottled, sst.Security.PeerBudgetThrottledTime.Round(time.Millisecond))
}

// TestPeerBudgetUnary: a peer's unary call over its budget is refused
// with ResourceExhausted naming the budget and the flags; membership
// probes are never refused; a client's PutMessageToClient (no origin) is
// not a peer's and is not charged.
func TestPeerBudgetUnary(t *testing.T) {
	// 1 KiB/s: the bucket does not refill noticeably during the test.
	n, err := New("s", "", nil, nil, nil, nil, WithPeerBudget(NewPeerBudget(1<<10, 16<<10)))
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	if err := n.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	n.MarkReady()
	cc, err := grpc.NewClient(n.ListenAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	g, m := pbgrpc.NewGossipClient(cc), pbgrpc.NewMembershipServiceClient(cc)
	ctx := context.Background()
	relayed := func(id string) *pb.GossipMessage {
		return &pb.GossipMessage{Hash: id, Origin: "p", FromHash: "p", Payload: strings.Repeat("x", 12<<10), CreatedUnixNano: time.Now().UnixNano()}
	}
	if _, err := g.PutMessageToClient(ctx, relayed("r-1")); err != nil {
		t.Fatalf("first relayed message: %v", err)
	}
	_, err = g.PutMessageToClient(ctx, relayed("r-2"))
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "peer inbound budget: connection 127.0.0.1:") ||
		!strings.Contains(err.Error(), "over 1KiB per second (burst 16KiB)") || !strings.Contains(err.Error(), "--peer-inbound-rate") {
		t.Fatalf("second relayed message: %v; want ResourceExhausted naming the budget", err)
	}
	if _, err := m.PushUpdates(ctx, &pb.PushUpdatesRequest{From: "p", Updates: []*pb.MemberUpdate{{Id: "p", Address: strings.Repeat("1", 8<<10)}}}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("PushUpdates over the budget: %v; want ResourceExhausted", err)
	}
	// Probes are charged but never refused.
	for i := range 3 {
		_, err := m.Ping(ctx, &pb.PingRequest{Seq: uint64(i + 1), From: "p", FromAddress: "127.0.0.1:1", Target: "s"})
		if status.Code(err) == codes.ResourceExhausted {
			t.Fatalf("Ping over the budget: %v; probes must not be refused", err)
		}
	}
	// A client's new message is the publish limit's business, not this.
	if _, err := g.PutMessageToClient(ctx, &pb.GossipMessage{Hash: "c-1", Payload: strings.Repeat("x", 12<<10)}); err != nil {
		t.Errorf("a client's message: %v", err)
	}
	if got := n.Stats().Security.PeerBudgetRefused; got != 2 {
		t.Errorf("peer_budget_refused = %d, want 2", got)
	}
}

// TestPeerBudgetBounded: the buckets of idle peers are forgotten once
// there are maxPeerBudgets of them, and while all are busy (a stream
// open) new peers share one overflow bucket: the map never grows past
// the bound.
func TestPeerBudgetBounded(t *testing.T) {
	if off := NewPeerBudget(0, 0); !off.acquire("x", false).lim.AllowN(time.Now(), 1<<30) {
		t.Error("a budget of 0 bytes per second limits")
	}
	b := NewPeerBudget(1<<20, 0)
	if b.burst != 1<<20 {
		t.Errorf("burst %d; want one second's worth", b.burst)
	}
	for i := range 2 * maxPeerBudgets {
		b.acquire(fmt.Sprintf("idle-%d", i), false)
	}
	if c := b.peerCount(); c > maxPeerBudgets {
		t.Fatalf("%d buckets for idle peers; want at most %d", c, maxPeerBudgets)
	}
	busy := make([]*peerBucket, 0, maxPeerBudgets)
	for i := range maxPeerBudgets {
		busy = append(busy, b.acquire(fmt.Sprintf("busy-%d", i), true))
	}
	x, y := b.acquire("new-1", true), b.acquire("new-2", false)
	if x != y || x != b.overflow {
		t.Error("new peers while every bucket is busy: want the shared overflow bucket")
	}
	if c := b.peerCount(); c != maxPeerBudgets {
		t.Errorf("%d buckets; want %d", c, maxPeerBudgets)
	}
	for _, e := range busy {
		b.release(e)
	}
	b.release(x)
	if e := b.acquire("new-3", false); e == b.overflow {
		t.Error("a new peer once the others are idle: still the overflow bucket")
	}
}
