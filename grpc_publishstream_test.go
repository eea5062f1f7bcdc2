package gossip

import (
	"context"
	"fmt"
	"io"
	"testing"

	"google.golang.org/grpc/codes"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// TestPublishStream publishes over one PublishStream call, over real gRPC:
// every request is answered once with its position; a good message is
// published (delivered here, exactly once) and a bad one (an id seen
// before, an id too long) gets the code Publish gives, without ending the
// call or losing the messages after it. Requests 499 and 500 carry the
// same id: they run concurrently, so either may be the one refused.
func TestPublishStream(t *testing.T) {
	n, cc := startNode(t, "ps")
	sub, err := n.Subscribe(4096)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	stream, err := pbgrpc.NewNodeServiceClient(cc).PublishStream(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	const total = 2000                                        // more than PublishStreamWindow: the window refills
	bad := map[uint64]codes.Code{1000: codes.InvalidArgument} // an id over MaxHashBytes
	dups := 0                                                 // of requests 499 and 500
	go func() {
		for i := uint64(1); i <= total; i++ {
			req := &pb.PublishRequest{Payload: []byte(fmt.Sprint("m", i))}
			switch i {
			case 499, 500:
				req.Id = "dup"
			case 1000:
				req.Id = string(make([]byte, n.Config().MaxHashBytes+1))
			}
			if err := stream.Send(req); err != nil {
				t.Errorf("send %d: %v", i, err)
				return
			}
		}
		stream.CloseSend()
	}()
	seen := make(map[uint64]bool)
	published := make(map[string]bool)
	for {
		r, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("recv after %d answers: %v", len(seen), err)
		}
		i := r.GetIndex()
		if i < 1 || i > total || seen[i] {
			t.Fatalf("answer for request %d: out of range or twice", i)
		}
		seen[i] = true
		if (i == 499 || i == 500) && codes.Code(r.GetCode()) == codes.AlreadyExists {
			dups++
			continue
		}
		if want, isBad := bad[i]; isBad {
			if codes.Code(r.GetCode()) != want || r.GetError() == "" || r.GetId() != "" {
				t.Errorf("request %d: code %v %q id %q, want %v with a message and no id", i, codes.Code(r.GetCode()), r.GetError(), r.GetId(), want)
			}
			continue
		}
		if r.GetCode() != 0 || r.GetId() == "" || r.GetAck().GetHash() != r.GetId() || r.GetAck().GetFrom() != "ps" {
			t.Errorf("request %d: %v, want published with its ack", i, r)
		}
		published[r.GetId()] = true
	}
	if len(seen) != total || dups != 1 || len(published) != total-len(bad)-1 {
		t.Fatalf("%d answers, %d published, %d refused as already seen; want %d, %d and 1", len(seen), len(published), dups, total, total-len(bad)-1)
	}
	for range published {
		d := <-sub.C()
		if !published[d.Hash] {
			t.Fatalf("delivered %q, which no answer published (or twice)", d.Hash)
		}
		published[d.Hash] = false
	}
	select {
	case d := <-sub.C():
		t.Fatalf("an extra delivery: %q", d.Hash)
	default:
	}
}
