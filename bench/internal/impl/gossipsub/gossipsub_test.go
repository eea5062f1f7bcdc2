package gossipsub

import (
	"context"
	"encoding/binary"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
	"go.uber.org/goleak"
)

// TestMain checks that nothing is left running once every test has closed
// its cluster: Close waits for the adapter's own goroutines, and the
// libp2p hosts and pubsub routers stop theirs shortly after their context
// is cancelled and the hosts are closed (goleak retries for a while).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type receipt struct {
	node int
	id   uint64
}

func startCluster(t *testing.T, cfg harness.ClusterConfig, opts ...Option) (*Impl, <-chan receipt) {
	t.Helper()
	got := make(chan receipt, 1024)
	g := New(opts...).(*Impl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := g.Start(ctx, cfg, func(node int, payload []byte) {
		if len(payload) < 8 {
			t.Errorf("node %d: payload of %d bytes", node, len(payload))
			return
		}
		select {
		case got <- receipt{node, binary.BigEndian.Uint64(payload)}:
		default:
			t.Errorf("node %d: receipt channel full", node)
		}
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return g, got
}

func payload(id uint64, size int) []byte {
	p := make([]byte, size)
	binary.BigEndian.PutUint64(p, id)
	return p
}

// waitAll waits until every node but from has received message id.
func waitAll(t *testing.T, got <-chan receipt, n, from int, id uint64) {
	t.Helper()
	need := make(map[int]bool)
	for i := range n {
		if i != from {
			need[i] = true
		}
	}
	deadline := time.After(10 * time.Second)
	for len(need) > 0 {
		select {
		case r := <-got:
			if r.node == from {
				t.Errorf("publisher %d got its own message %d", from, r.id)
			}
			if r.id == id {
				delete(need, r.node)
			}
		case <-deadline:
			t.Fatalf("message %d from node %d: nodes %v did not receive it", id, from, need)
		}
	}
}

func TestDelivery(t *testing.T) {
	for _, p := range []harness.Profile{harness.ProfileDefault, harness.ProfileEqualised} {
		t.Run(string(p), func(t *testing.T) {
			const n = 5
			cfg := harness.ClusterConfig{Nodes: n, Profile: p, Degree: 3, Seed: 1, MaxPayload: 64 << 10}
			g, got := startCluster(t, cfg)

			msgs0, bytes0 := g.Wire()
			if err := g.Publish(0, payload(1, 100)); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			waitAll(t, got, n, 0, 1)
			// A 64 KB payload from another node (IDONTWANT applies above 1 KB).
			if err := g.Publish(3, payload(2, 64<<10)); err != nil {
				t.Fatalf("Publish 64 KB: %v", err)
			}
			waitAll(t, got, n, 3, 2)

			msgs1, bytes1 := g.Wire()
			// Every receipt came over the wire. The counters are bumped when
			// a write returns, so they may trail the latest receipts, but not
			// the first message's, which was delivered before the second
			// was published.
			if msgs1 <= msgs0 || bytes1 <= bytes0 {
				t.Errorf("Wire: msgs %d -> %d, bytes %d -> %d", msgs0, msgs1, bytes0, bytes1)
			}

			lines := g.Describe()
			text := strings.Join(lines, "\n")
			for _, want := range []string{"profile: " + string(p), "transport security:", "muxer: yamux",
				"message signing:", "message id: first 8 bytes", "GossipSub mesh: D=", "Dlazy=",
				"heartbeat: interval 1s", "connectivity: every pair", "Wire msgs:", "Wire bytes:"} {
				if !strings.Contains(text, want) {
					t.Errorf("Describe has no %q:\n%s", want, text)
				}
			}
			switch p {
			case harness.ProfileDefault:
				for _, want := range []string{"StrictSign", "go-libp2p-pubsub v0.19.0", "go-libp2p v0.51.0", "D=6 Dlo=5 Dhi=12", "negotiated: /tls/1.0.0"} {
					if !strings.Contains(text, want) {
						t.Errorf("Describe has no %q:\n%s", want, text)
					}
				}
			case harness.ProfileEqualised:
				for _, want := range []string{"StrictNoSign", "D=3 (default 6) Dlo=3 (default 5) Dhi=12", "Dout=0 (default 2)", "NoSecurity", "/plaintext/2.0.0"} {
					if !strings.Contains(text, want) {
						t.Errorf("Describe has no %q:\n%s", want, text)
					}
				}
			}
			t.Logf("Describe(%s):\n  %s", p, strings.Join(lines, "\n  "))
			if refused := g.Stats()["gater_refused"]; refused != 0 {
				t.Errorf("gater refused %d non-loopback addresses", refused)
			}
		})
	}
}

// WithQueues raises the outbound, validation and subscription queues,
// names the adapter after them and says so in Describe.
func TestQueues(t *testing.T) {
	const n = 4
	g, got := startCluster(t, harness.ClusterConfig{Nodes: n, Profile: harness.ProfileEqualised, Degree: 3, Seed: 1, MaxPayload: 1 << 10}, WithQueues(1024))
	if g.Name() != "gossipsub-q1024" {
		t.Fatalf("Name() = %q, want gossipsub-q1024", g.Name())
	}
	if err := g.Publish(1, payload(1, 100)); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	waitAll(t, got, n, 1, 1)
	text := strings.Join(g.Describe(), "\n")
	for _, want := range []string{"peer outbound queue 1024 (pubsub.WithPeerOutboundQueueSize; default 32)",
		"validation queue 1024 (pubsub.WithValidateQueueSize; default 32)", "subscription buffer 1024 (pubsub.WithBufferSize; default 32)"} {
		if !strings.Contains(text, want) {
			t.Errorf("Describe has no %q:\n%s", want, text)
		}
	}
}

func TestCloseThenPublish(t *testing.T) {
	g := New()
	if err := g.Publish(0, payload(1, 8)); err == nil {
		t.Error("Publish before Start succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := harness.ClusterConfig{Nodes: 2, Profile: harness.ProfileEqualised, Degree: 2, Seed: 1}
	if err := g.Start(ctx, cfg, func(int, []byte) {}); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := g.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := g.Publish(0, payload(1, 8)); err == nil {
		t.Error("Publish after Close succeeded")
	}
}

// TestPinnedVersions keeps the versions Describe falls back to in step
// with bench/go.mod.
func TestPinnedVersions(t *testing.T) {
	mod, err := os.ReadFile("../../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for path, v := range pinned {
		if !regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(path) + ` ` + regexp.QuoteMeta(v) + `\b`).Match(mod) {
			t.Errorf("bench/go.mod does not require %s %s", path, v)
		}
	}
}

func TestEqualisedParams(t *testing.T) {
	for _, tc := range []struct{ d, dlo, dhi, dscore, dout int }{
		{2, 2, 12, 4, 0},
		{3, 3, 12, 4, 0},
		{4, 4, 12, 4, 1},
		{5, 5, 12, 4, 1},
		{6, 5, 12, 4, 2}, // the defaults
		{8, 5, 12, 4, 2},
		{16, 5, 16, 4, 2},
	} {
		p, err := equalisedParams(tc.d)
		if err != nil {
			t.Fatalf("D=%d: %v", tc.d, err)
		}
		if p.D != tc.d || p.Dlo != tc.dlo || p.Dhi != tc.dhi || p.Dscore != tc.dscore || p.Dout != tc.dout {
			t.Errorf("D=%d: got D=%d Dlo=%d Dhi=%d Dscore=%d Dout=%d", tc.d, p.D, p.Dlo, p.Dhi, p.Dscore, p.Dout)
		}
	}
	if _, err := equalisedParams(1); err == nil {
		t.Error("D=1 accepted")
	}
}
