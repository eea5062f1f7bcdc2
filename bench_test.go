package gossip

import (
	"bytes"
	"context"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/grpc-gossip/gossip/memnet"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// sink is a seed-only peer that ACKs everything.
func sink(id string) memnet.Handler {
	return memnet.Unary(func(_ context.Context, m *pb.GossipMessage) (*pb.GossipAck, error) {
		return &pb.GossipAck{Hash: m.GetHash(), From: id}, nil
	})
}

// BenchmarkPutMessageToClient measures one node's cost per published
// message: receive, record, deliver, and three forwards over memnet
// (in-memory, zero delay) to neighbours that ACK at once.
func BenchmarkPutMessageToClient(b *testing.B) { benchPut(b, false) }

// BenchmarkPutMessageToClientTraced is BenchmarkPutMessageToClient with
// every message traced: the node is the origin, so each delivery also
// records the origin's receipt (a trace per message, the last 256 kept).
func BenchmarkPutMessageToClientTraced(b *testing.B) { benchPut(b, true) }

func benchPut(b *testing.B, traced bool) {
	net := memnet.New(1)
	delivered := make(chan struct{}, 1<<16)
	n, err := New("bench", "mem-bench", nil, nil, nil, nil, WithTransport(net.Transport("mem-bench")), WithStreaming(false),
		WithDeliveryHandler(func(Delivery) { delivered <- struct{}{} }))
	if err != nil {
		b.Fatal(err)
	}
	for i := range 3 {
		id := "peer-" + strconv.Itoa(i)
		net.Register(id, sink(id))
		n.AddNeighbor(id, id)
	}
	msg := &pb.GossipMessage{FromHash: "bench", Payload: string(make([]byte, 100)), Trace: traced}
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

// BenchmarkStreamThroughput measures messages per second through a node on
// the streaming transport, on real gRPC over loopback: node a publishes
// 100-byte messages (as fast as Publish returns) to its stream neighbour
// b, which forwards each to its stream neighbours c and d; one op is one
// message delivered by all four nodes. allocs/op and B/op count every
// node's allocations for that message (publish, 3 stream hops, 4
// deliveries, gRPC and protobuf included).
func BenchmarkStreamThroughput(b *testing.B) {
	ids := []string{"a", "b", "c", "d"}
	nodes := make([]*GossipNode, len(ids))
	delivered := make([]chan struct{}, len(ids))
	for i, id := range ids {
		delivered[i] = make(chan struct{}, 1<<20)
		ch := delivered[i]
		n, err := New(id, "127.0.0.1:0", nil, nil, nil, nil, WithDeliveryHandler(func(Delivery) { ch <- struct{}{} }))
		if err != nil {
			b.Fatal(err)
		}
		if err := n.StartGRPCServer("127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		nodes[i] = n
	}
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	link := func(from, to int) {
		if err := nodes[from].AddNeighbor(ids[to], nodes[to].Endpoint); err != nil {
			b.Fatal(err)
		}
	}
	link(0, 1)
	link(1, 2)
	link(1, 3)
	payload := make([]byte, 100)
	ctx := context.Background()
	// Warm up: streams open, the first message of a source floods.
	if _, _, err := nodes[0].Publish(ctx, "", payload); err != nil {
		b.Fatal(err)
	}
	for _, ch := range delivered {
		<-ch
	}
	b.ReportAllocs()
	b.ResetTimer()
	count := 0
	for b.Loop() {
		if _, _, err := nodes[0].Publish(ctx, "", payload); err != nil {
			b.Fatal(err)
		}
		count++
	}
	// One deadline for all the waiting: a timer per message (time.After in
	// the loop) would add its allocations to every op.
	deadline := time.NewTimer(20 * time.Second)
	defer deadline.Stop()
	for i, ch := range delivered {
		for k := range count {
			select {
			case <-ch:
			case <-deadline.C:
				for _, n := range nodes {
					st := n.Stats()
					b.Logf("%s: delivered %d stream %+v", n.Hash, st.Delivered, st.Stream)
				}
				b.Fatalf("node %s delivered %d of %d", ids[i], k, count)
			}
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(count)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkRelaySigned measures what signing costs a relaying node per
// message (GossipSub's signed/unsigned comparison): a node receives
// fresh 100-byte messages from origin o through the seed's RPC, records
// and delivers each and forwards it to three neighbours over memnet, as
// BenchmarkPutMessageToClient, without signing and with signing on (every
// message verified: ECDSA P-256, the origin's certificate cached). The
// origin's signing cost is BenchmarkSignMessage in package auth.
func BenchmarkRelaySigned(b *testing.B) {
	for _, signed := range []bool{false, true} {
		b.Run("signed="+strconv.FormatBool(signed), func(b *testing.B) {
			p := newTestPKI(b)
			origin := p.signer("o")
			net := memnet.New(1)
			delivered := make(chan struct{}, 1<<16)
			opts := []Option{WithTransport(net.Transport("mem-bench")), WithStreaming(false),
				WithDeliveryHandler(func(Delivery) { delivered <- struct{}{} })}
			if signed {
				opts = append(opts, WithSecurity(p.signer("bench")))
			}
			n, err := New("bench", "mem-bench", nil, nil, nil, nil, opts...)
			if err != nil {
				b.Fatal(err)
			}
			for i := range 3 {
				id := "peer-" + strconv.Itoa(i)
				net.Register(id, sink(id))
				n.AddNeighbor(id, id)
			}
			// The messages, signed by the origin beforehand (not measured).
			msgs := make([]*pb.GossipMessage, 0, 1<<14)
			for i := range cap(msgs) {
				m := &pb.GossipMessage{Hash: "m" + strconv.Itoa(i), Origin: "o", Payload: string(make([]byte, 100)), CreatedUnixNano: time.Now().UnixNano()}
				if signed {
					origin.SignMessage(m)
				}
				m.FromHash = "o"
				msgs = append(msgs, m)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if i == len(msgs) {
					b.Fatalf("more than %d iterations: raise the prepared messages", len(msgs))
				}
				if _, err := n.PutMessageToClient(context.Background(), msgs[i]); err != nil {
					b.Fatal(err)
				}
				<-delivered
			}
			b.StopTimer()
			for len(n.sem) > 0 {
				runtime.Gosched()
			}
			n.Close()
			if st := n.Stats(); st.Security.MessagesForged+st.Security.MessagesUnsigned+st.Security.MessagesStale != 0 {
				b.Fatalf("refused: %+v", st.Security)
			}
		})
	}
}

// BenchmarkObserveDelivery is the metrics hook of the delivery path alone
// (the published count, the payload bytes, the latency and hops
// histograms): what every delivered message pays for the metrics.
func BenchmarkObserveDelivery(b *testing.B) {
	n, err := New("bench", "", nil, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	fwd := &pb.GossipMessage{Hash: "m", Origin: "other", Payload: "x", CreatedUnixNano: time.Now().UnixNano()}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		n.delivered(fwd, "peer", 3, 0, now)
	}
}

// BenchmarkScrape is one Prometheus scrape of a node's Collector: gather
// and encode as text, what a /metrics request costs.
func BenchmarkScrape(b *testing.B) {
	n, err := New("bench", "", nil, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(n.Collector())
	b.ReportAllocs()
	for b.Loop() {
		mfs, err := reg.Gather()
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				b.Fatal(err)
			}
		}
	}
}
