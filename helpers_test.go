package gossip

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// recorder is a DeliveryHandler that counts deliveries per message id and
// signals when a wanted total is reached.
type recorder struct {
	mu    sync.Mutex
	got   map[string]int
	total int
	want  int
	last  time.Time // ReceivedAt of the latest delivery
	done  chan struct{}
}

func newRecorder(want int) *recorder {
	return &recorder{got: make(map[string]int), want: want, done: make(chan struct{})}
}

func (r *recorder) handle(d Delivery) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[d.Hash]++
	r.total++
	if d.ReceivedAt.After(r.last) {
		r.last = d.ReceivedAt
	}
	if r.total == r.want {
		close(r.done)
	}
}

func (r *recorder) count(hash string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.got[hash]
}

func (r *recorder) snapshot() (total int, perID map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	perID = make(map[string]int, len(r.got))
	for k, v := range r.got {
		perID[k] = v
	}
	return r.total, perID
}

func nodeID(i int) string { return fmt.Sprintf("node-%02d", i) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// serveGossip serves impl as the Gossip service on 127.0.0.1:0 until the
// test ends, and returns its address.
func serveGossip(t *testing.T, impl pbgrpc.GossipServer) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	pbgrpc.RegisterGossipServer(srv, impl)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(lis) })
	t.Cleanup(func() {
		srv.Stop()
		wg.Wait()
	})
	return lis.Addr().String()
}

// serveNodeService starts node id with opts, ready, serving on
// 127.0.0.1:0, and returns it with a plaintext NodeService client; both
// are closed when the test ends.
func serveNodeService(t *testing.T, id string, opts ...Option) (*GossipNode, pbgrpc.NodeServiceClient) {
	t.Helper()
	n, err := New(id, "", nil, nil, nil, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	n.MarkReady()
	if err := n.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(n.ListenAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return n, pbgrpc.NewNodeServiceClient(cc)
}
