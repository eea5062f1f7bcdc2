package gossip

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// TestSubscriberLimits: subscriptions beyond MaxSubscribers, or beyond the
// buffer budget, are refused with ResourceExhausted saying which; a
// request larger than what remains is granted the rest; a subscription
// that ends gives its share back.
func TestSubscriberLimits(t *testing.T) {
	n, ns := serveNodeService(t, "s", WithSubscriberLimits(NewSubscriberLimits(3, 2000)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// open starts a subscription that never reads; the caller waits for
	// the node to count it (the handler sends nothing before a message).
	open := func(buffer uint32) (context.CancelFunc, error) {
		sctx, scancel := context.WithCancel(ctx)
		_, err := ns.Subscribe(sctx, &pb.SubscribeRequest{Buffer: buffer})
		return scancel, err
	}
	wantRefused := func(buffer uint32, msg string) {
		t.Helper()
		s, err := ns.Subscribe(ctx, &pb.SubscribeRequest{Buffer: buffer})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), msg) {
			t.Fatalf("buffer %d: %v; want ResourceExhausted %q", buffer, err, msg)
		}
	}
	c1, err := open(1024)
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "first subscriber", func() error {
		if n.Stats().Subscribers != 1 {
			return fmt.Errorf("subscribers %d", n.Stats().Subscribers)
		}
		return nil
	})
	// 976 remain: a request for 65,536 gets them.
	if _, err := open(65536); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 5*time.Second, "second subscriber", func() error {
		if n.Stats().Subscribers != 2 {
			return fmt.Errorf("subscribers %d", n.Stats().Subscribers)
		}
		return nil
	})
	wantRefused(100, "subscriber buffers full: 2000 of 2000 buffered messages are reserved by 2 subscribers")
	c1() // gives 1024 back
	testutil.WaitFor(t, 5*time.Second, "first subscriber gone", func() error {
		if n.Stats().Subscribers != 1 {
			return fmt.Errorf("subscribers %d", n.Stats().Subscribers)
		}
		return nil
	})
	var cancels []context.CancelFunc
	for range 2 {
		c, err := open(100)
		if err != nil {
			t.Fatal(err)
		}
		cancels = append(cancels, c)
	}
	testutil.WaitFor(t, 5*time.Second, "three subscribers", func() error {
		if n.Stats().Subscribers != 3 {
			return fmt.Errorf("subscribers %d", n.Stats().Subscribers)
		}
		return nil
	})
	wantRefused(100, "too many subscribers: this node serves at most 3 at once")
	if got := n.Stats().Security.SubscribersRefused; got != 2 {
		t.Errorf("subscribers_refused = %d, want 2", got)
	}
	for _, c := range cancels {
		c()
	}
}
