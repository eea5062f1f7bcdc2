package gossipgrpc

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"github.com/grpc-gossip/gossip/internal/testutil"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestTransports checks on live nodes that each transport is the one it
// claims (stream and unary neighbours in Stats) and that Wire counts
// copies and bytes.
func TestTransports(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transport Transport
	}{{"unary", Unary}, {"stream", Stream}} {
		t.Run(tc.name, func(t *testing.T) {
			const nodes, msgs = 5, 20
			m := New(tc.name, tc.transport)
			var mu sync.Mutex
			got := map[uint64]int{}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := m.Start(ctx, harness.ClusterConfig{Nodes: nodes, Profile: harness.ProfileEqualised, Degree: nodes - 1, Seed: 1},
				func(node int, p []byte) {
					mu.Lock()
					got[binary.BigEndian.Uint64(p)]++
					mu.Unlock()
				})
			defer func() {
				if err := m.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if err != nil {
				t.Fatal(err)
			}
			wm0, wb0 := m.Wire()
			for i := range msgs {
				if err := m.Publish(i%nodes, harness.MakePayload(uint64(i), 100)); err != nil {
					t.Fatal(err)
				}
			}
			testutil.WaitFor(t, 20*time.Second, "every message delivered on every node", func() error {
				mu.Lock()
				defer mu.Unlock()
				done := len(got) == msgs
				for _, c := range got {
					done = done && c == nodes // the publisher delivers locally
				}
				if !done {
					return fmt.Errorf("not delivered everywhere: %v", got)
				}
				return nil
			})
			wm1, wb1 := m.Wire()
			if copies := wm1 - wm0; copies < msgs*(nodes-1) || wb1-wb0 < msgs*(nodes-1)*100 {
				t.Errorf("wire: %d copies, %d bytes for %d deliveries", copies, wb1-wb0, msgs*(nodes-1))
			}
			for _, n := range m.Nodes() {
				s := n.Stats().Stream
				switch tc.transport {
				case Unary:
					if s.StreamPeers != 0 || s.UnaryPeers != nodes-1 || s.CopiesSent != 0 {
						t.Errorf("%s: %d stream peers, %d unary peers, %d stream copies", n.Hash, s.StreamPeers, s.UnaryPeers, s.CopiesSent)
					}
				case Stream:
					if s.StreamPeers != nodes-1 || s.UnaryPeers != 0 || n.Stats().Sent != 0 {
						t.Errorf("%s: %d stream peers, %d unary peers, %d unary sends", n.Hash, s.StreamPeers, s.UnaryPeers, n.Stats().Sent)
					}
				}
			}
		})
	}
}
