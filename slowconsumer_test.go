package gossip

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
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

// TestSlowConsumer: with a subscriber byte budget, a subscription that
// never reads is cut off once what it holds would go over its share
// (budget / live subscriptions), with an error naming the offset to
// resume from, and its bytes are given back; one that reads gets every
// message; resuming from the offset yields exactly what the cut-off one
// missed.
func TestSlowConsumer(t *testing.T) {
	const budget = 20_000
	n := NewGossipNode("s", "", nil, nil, nil, nil, WithSubscriberBytes(budget))
	defer n.Close()
	slow, err := n.Subscribe(MaxSubscriptionBuffer)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := n.Subscribe(0)
	if err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("x", 100)
	// The slow one takes messages while they fit its share of budget/2;
	// the next one cuts it off.
	var size int64
	fits := 0
	const total = 100
	for i := range total {
		if _, _, err := n.Publish(context.Background(), fmt.Sprintf("m-%03d", i), []byte(payload)); err != nil {
			t.Fatal(err)
		}
		d := next(t, fast)
		if d.Hash != fmt.Sprintf("m-%03d", i) || d.Missed != 0 {
			t.Fatalf("the reading subscriber got %+v, want m-%03d with nothing missed", d, i)
		}
		if i == 0 {
			size = deliverySize(&d) // every one has the same
			fits = int(budget / 2 / size)
		}
		st := n.Stats()
		switch {
		case i < fits:
			if want := int64(i+1) * size; st.SubscriberBytes != want || st.Security.SlowConsumers != 0 {
				t.Fatalf("after %d messages: SubscriberBytes %d (want %d), SlowConsumers %d", i+1, st.SubscriberBytes, want, st.Security.SlowConsumers)
			}
		default:
			// Cut off: its bytes are back; the reader has taken its own.
			if st.SubscriberBytes != 0 || st.Security.SlowConsumers != 1 || st.Subscribers != 1 {
				t.Fatalf("after %d messages: SubscriberBytes %d (want 0), SlowConsumers %d (want 1), Subscribers %d (want 1)", i+1, st.SubscriberBytes, st.Security.SlowConsumers, st.Subscribers)
			}
		}
	}
	// Its buffer was dropped: C is closed at once, Err says why.
	if _, ok := <-slow.C(); ok {
		t.Fatal("the cut-off subscription still has deliveries")
	}
	var sc *SlowConsumerError
	if err := slow.Err(); !errors.As(err, &sc) || !errors.Is(err, ErrSlowConsumer) || statusCode(err) != codes.ResourceExhausted {
		t.Fatalf("Err of the cut-off subscription: %v", err)
	}
	if sc.Resume != 1 || sc.Queued != int64(fits)*size || sc.Share != budget/2 || sc.Budget != budget || sc.Subscribers != 2 {
		t.Errorf("SlowConsumerError %+v: want resume 1, queued %d, share %d of %d, 2 subscribers", sc, int64(fits)*size, budget/2, budget)
	}
	if msg := sc.Error(); !strings.Contains(msg, "slow consumer") || !strings.Contains(msg, "from_offset=1") || !strings.Contains(msg, "--subscriber-bytes") {
		t.Errorf("message %q should say slow consumer, the budget's flag and from_offset=1", msg)
	}
	// Resuming replays everything it missed, in order, with no gap.
	again, err := n.SubscribeFrom(0, FromOffset(sc.Resume))
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	for i := range total {
		if d := next(t, again); d.Hash != fmt.Sprintf("m-%03d", i) || d.Offset != uint64(i+1) {
			t.Fatalf("resumed subscription got %s at %d, want m-%03d at %d", d.Hash, d.Offset, i, i+1)
		}
	}
	slow.Close() // idempotent after the cut-off
	fast.Close()
	if st := n.Stats(); st.SubscriberBytes != 0 {
		t.Errorf("SubscriberBytes %d after every subscription drained or closed", st.SubscriberBytes)
	}
}

// TestSlowConsumerUnbounded: without WithSubscriberBytes nobody is cut
// off (a subscriber that does not read only misses messages).
func TestSlowConsumerUnbounded(t *testing.T) {
	n := NewGossipNode("s", "", nil, nil, nil, nil)
	defer n.Close()
	slow, err := n.Subscribe(4)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	for i := range 10 {
		if _, _, err := n.Publish(context.Background(), fmt.Sprint(i), []byte(strings.Repeat("y", 10_000))); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 10*time.Second, "the misses", func() error {
		if m := slow.Missed(); m != 6 {
			return fmt.Errorf("missed %d, want 6", m)
		}
		return nil
	})
	if st := n.Stats(); st.Security.SlowConsumers != 0 || st.Subscribers != 1 || slow.Err() != nil {
		t.Errorf("SlowConsumers %d Subscribers %d Err %v", st.Security.SlowConsumers, st.Subscribers, slow.Err())
	}
}

// TestSlowConsumerOverGRPC: a Subscribe stream whose client stops
// reading ends with RESOURCE_EXHAUSTED naming the offset after the last
// message it got, and a Subscribe from that offset gets the rest.
func TestSlowConsumerOverGRPC(t *testing.T) {
	const budget = 64 << 10
	n, _ := startNode(t, "g", WithSubscriberBytes(budget))
	n.MarkReady()
	// A fixed 64 KiB window (no BDP growth): what gRPC holds in flight for
	// the stream is bounded, the rest stays in the subscription's buffer.
	cc, err := grpc.NewClient(n.ListenAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	api := pbgrpc.NewNodeServiceClient(cc)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	stream, err := api.Subscribe(ctx, &pb.SubscribeRequest{Buffer: MaxSubscriptionBuffer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil { // registered
		t.Fatal(err)
	}
	const total = 500
	payload := []byte(strings.Repeat("z", 1000))
	for i := range total {
		if _, _, err := n.Publish(ctx, fmt.Sprintf("g-%03d", i), payload); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitFor(t, 20*time.Second, "the cut-off", func() error {
		if c := n.Stats().Security.SlowConsumers; c != 1 {
			return fmt.Errorf("SlowConsumers %d", c)
		}
		return nil
	})
	if b := n.Stats().SubscriberBytes; b != 0 {
		t.Errorf("SubscriberBytes %d after the cut-off, want 0", b)
	}
	// The client reads again: what was in flight, then the status.
	var last uint64
	for {
		m, err := stream.Recv()
		if err != nil {
			if status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("stream ended with %v, want ResourceExhausted", err)
			}
			msg := status.Convert(err).Message()
			mm := regexp.MustCompile(`from_offset=(\d+)`).FindStringSubmatch(msg)
			if mm == nil || !strings.Contains(msg, "slow consumer") {
				t.Fatalf("status message %q should say slow consumer and from_offset=", msg)
			}
			resume, _ := strconv.ParseUint(mm[1], 10, 64)
			if resume != last+1 || last == 0 || last >= total {
				t.Fatalf("got offsets 1..%d, told to resume at %d (%q)", last, resume, msg)
			}
			break
		}
		if m.GetOffset() != last+1 {
			t.Fatalf("offset %d after %d", m.GetOffset(), last)
		}
		last = m.GetOffset()
	}
	t.Logf("got %d of %d before the cut-off", last, total)
	again, err := api.Subscribe(ctx, &pb.SubscribeRequest{Start: &pb.SubscribeRequest_FromOffset{FromOffset: last + 1}})
	if err != nil {
		t.Fatal(err)
	}
	for o := last + 1; o <= total; o++ {
		m, err := again.Recv()
		if err != nil {
			t.Fatalf("resumed stream at %d: %v", o, err)
		}
		if m.GetOffset() != o || m.GetId() != fmt.Sprintf("g-%03d", o-1) {
			t.Fatalf("resumed stream got %s at %d, want g-%03d at %d", m.GetId(), m.GetOffset(), o-1, o)
		}
	}
}

// TestSubQueue: the gRPC subscribers' queue is FIFO across its chunks,
// refuses past its capacity and once ended, lets its chunks go as they
// empty, and drops everything at once.
func TestSubQueue(t *testing.T) {
	q := newSubQueue(3000)
	for i := range 3000 {
		if !q.offer(Delivery{Offset: uint64(i + 1)}) {
			t.Fatalf("offer %d refused below the capacity", i)
		}
	}
	if q.offer(Delivery{Offset: 3001}) || q.len() != 3000 {
		t.Fatalf("offer past the capacity accepted (len %d)", q.len())
	}
	chunks := func() (n int) {
		for c := q.first; c != nil; c = c.next {
			n++
		}
		return n
	}
	if c := chunks(); c != (3000+qchunkSize-1)/qchunkSize {
		t.Errorf("3000 deliveries in %d chunks", c)
	}
	for want := uint64(1); want <= 2000; want++ {
		if d, ok, _ := q.take(); !ok || d.Offset != want {
			t.Fatalf("take: %d %v, want %d", d.Offset, ok, want)
		}
	}
	if c := chunks(); q.len() != 1000 || c != 12-2000/qchunkSize {
		t.Errorf("after 2000 takes: len %d, %d chunks kept", q.len(), c)
	}
	for i := range 2000 {
		q.offer(Delivery{Offset: uint64(3001 + i)})
	}
	for want := uint64(2001); want <= 5000; want++ {
		if d, ok, _ := q.take(); !ok || d.Offset != want {
			t.Fatalf("take: %d %v, want %d", d.Offset, ok, want)
		}
	}
	if _, ok, ended := q.take(); ok || ended || q.first != nil || q.last != nil {
		t.Errorf("empty queue: ok %v ended %v, chunks kept %v", ok, ended, q.first != nil)
	}
	q.offer(Delivery{Offset: 1})
	q.offer(Delivery{Offset: 2})
	if n := q.drop(); n != 2 || q.len() != 0 {
		t.Errorf("drop: %d, then len %d", n, q.len())
	}
	q.offer(Delivery{Offset: 3})
	q.end()
	if q.offer(Delivery{Offset: 4}) {
		t.Error("offer after end accepted")
	}
	if d, ok, _ := q.take(); !ok || d.Offset != 3 {
		t.Errorf("what was buffered before end is still read: %d %v", d.Offset, ok)
	}
	if _, ok, ended := q.take(); ok || !ended {
		t.Errorf("after end, empty: ok %v ended %v", ok, ended)
	}
}
