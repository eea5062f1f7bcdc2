package core

import (
	"strconv"
	"testing"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// BenchmarkReceive measures the per-message hot path of a node with eight
// neighbours: a first receipt (validate, record, choose three targets, build
// the forward) and a duplicate (validate, look up, ACK). Tick runs every
// virtual second, as the runtime does.
func BenchmarkReceive(b *testing.B) {
	neighbors := []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"}

	// fresh: 1,000 messages per virtual second, so hot state stays below
	// MaxActive; past 262,144 messages the long-TTL cache evicts.
	// fresh-saturated: 1,000,000 per virtual second, both caps reached:
	// every insert retires a hot entry and evicts an id.
	for _, bc := range []struct {
		name string
		gap  time.Duration
	}{{"fresh", time.Millisecond}, {"fresh-saturated", time.Microsecond}} {
		b.Run(bc.name, func(b *testing.B) {
			n := newTestNode(b, "self", nil, 1, neighbors...)
			msgs := make([]*pb.GossipMessage, b.N)
			for i := range msgs {
				msgs[i] = &pb.GossipMessage{Hash: "msg-" + strconv.Itoa(i), FromHash: "n1", Origin: "n5", Hops: 3, Payload: "hello"}
			}
			now, nextTick := t0, t0.Add(time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				now = now.Add(bc.gap)
				if now.After(nextTick) {
					n.Tick(now)
					nextTick = now.Add(time.Second)
				}
				res, err := n.Receive(now, msgs[i])
				if err != nil || !res.Fresh {
					b.Fatalf("Receive: fresh=%v err=%v", res.Fresh, err)
				}
			}
			b.StopTimer()
			st := n.Storage().Stats()
			b.ReportMetric(float64(st.Active), "active")
			b.ReportMetric(float64(st.Seen), "seen")
		})
	}

	b.Run("duplicate", func(b *testing.B) {
		n := newTestNode(b, "self", nil, 1, neighbors...)
		hot := &pb.GossipMessage{Hash: "hot", FromHash: "n1", Origin: "n5", Hops: 3, Payload: "hello"}
		old := &pb.GossipMessage{Hash: "old", FromHash: "n1", Origin: "n5", Hops: 3, Payload: "hello"}
		if _, err := n.Receive(t0, old); err != nil {
			b.Fatal(err)
		}
		now := t0.Add(DefaultMaxTTL)
		n.Tick(now) // "old" leaves hot state: only the long-TTL cache has it
		if _, err := n.Receive(now, hot); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			msg := hot
			if i%2 == 1 {
				msg = old
			}
			res, err := n.Receive(now, msg)
			if err != nil || res.Fresh {
				b.Fatalf("Receive: fresh=%v err=%v", res.Fresh, err)
			}
		}
	})
}

// BenchmarkReceiveStream is BenchmarkReceive's fresh path with eight
// stream neighbours (Plumtree): number the message, serialize it once,
// keep it in the store, and plan eight frames (pushes or announcements),
// at 10,000 messages per virtual second with 100-byte payloads.
func BenchmarkReceiveStream(b *testing.B) {
	neighbors := []string{"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"}
	n := newTestNode(b, "self", nil, 1, neighbors...)
	for _, id := range neighbors {
		n.SetPeerKind(id, KindStream)
	}
	payload := string(make([]byte, 100))
	msgs := make([]*pb.GossipMessage, b.N)
	for i := range msgs {
		msgs[i] = &pb.GossipMessage{Hash: "msg-" + strconv.Itoa(i), Payload: payload}
	}
	now, nextTick := t0, t0.Add(time.Second)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		now = now.Add(100 * time.Microsecond)
		if now.After(nextTick) {
			n.Tick(now)
			nextTick = now.Add(time.Second)
		}
		res, err := n.Receive(now, msgs[i])
		if err != nil || !res.Fresh || len(res.Out) != len(neighbors) {
			b.Fatalf("Receive: fresh=%v out=%d err=%v", res.Fresh, len(res.Out), err)
		}
	}
}
