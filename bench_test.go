package gossip

import (
	"context"
	"runtime"
	"strconv"
	"testing"

	"github.com/grpc-gossip/gossip/memnet"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// sink ACKs everything.
type sink struct{ id string }

func (s sink) PutMessageToClient(_ context.Context, m *pb.GossipMessage) (*pb.GossipAck, error) {
	return &pb.GossipAck{Hash: m.GetHash(), From: s.id}, nil
}

// BenchmarkPutMessageToClient measures one node's cost per published
// message: receive, record, deliver, and three forwards over memnet
// (in-memory, zero delay) to neighbours that ACK at once.
func BenchmarkPutMessageToClient(b *testing.B) {
	net := memnet.New(1)
	delivered := make(chan struct{}, 1<<16)
	n, err := New("bench", "mem-bench", nil, nil, nil, nil, WithTransport(net.Transport("mem-bench")),
		WithDeliveryHandler(func(Delivery) { delivered <- struct{}{} }))
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3 {
		id := "peer-" + strconv.Itoa(i)
		net.Register(id, sink{id})
		n.AddNeighbor(id, id)
	}
	msg := &pb.GossipMessage{FromHash: "bench", Payload: string(make([]byte, 100))}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		msg.Hash = "m" + strconv.Itoa(i)
		if _, err := n.PutMessageToClient(context.Background(), msg); err != nil {
			b.Fatal(err)
		}
		<-delivered
	}
	b.StopTimer()
	for len(n.sem) > 0 { // let the last forwards finish before Close cancels them
		runtime.Gosched()
	}
	n.Close()
	if st := n.Stats(); st.Acked != st.Sent || st.GaveUp != 0 {
		b.Fatalf("sent %d acked %d gave up %d", st.Sent, st.Acked, st.GaveUp)
	}
}
