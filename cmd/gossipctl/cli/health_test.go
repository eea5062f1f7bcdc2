package cli

import (
	"strings"
	"testing"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpc-gossip/gossip"
)

func TestHealth(t *testing.T) {
	n := startNode(t, "node-1")
	n.health.SetServingStatus("gossip.v1.NodeService", healthpb.HealthCheckResponse_NOT_SERVING)

	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
	}{
		{nil, exitOK, "SERVING\n"},
		{[]string{"-o", "json"}, exitOK, "{\n  \"service\": \"\",\n  \"status\": \"SERVING\"\n}\n"},
		{[]string{"--service", "gossip.v1.NodeService"}, exitFail, "NOT_SERVING\n"},
		{[]string{"--service", "gossip.v1.NodeService", "-o", "json"}, exitFail, "{\n  \"service\": \"gossip.v1.NodeService\",\n  \"status\": \"NOT_SERVING\"\n}\n"},
	} {
		r := gossipctl(t, append([]string{"health", "--addr", n.addr}, tc.args...)...)
		if r.code != tc.code || r.stdout != tc.stdout || r.stderr != "" {
			t.Errorf("health %q: exit %d, stdout %q, stderr %q; want %d, %q and no stderr", tc.args, r.code, r.stdout, r.stderr, tc.code, tc.stdout)
		}
	}

	n.health.Shutdown() // everything NOT_SERVING, as when gossipd drains
	r := gossipctl(t, "health", "--addr", n.addr)
	if r.code != exitFail || r.stdout != "NOT_SERVING\n" {
		t.Errorf("health after Shutdown: exit %d, stdout %q; want 1, NOT_SERVING", r.code, r.stdout)
	}

	r = gossipctl(t, "health", "--addr", n.addr, "--service", "no.such.Service")
	wantOneLineError(t, r, exitFail, "health: unknown service (NotFound)")
}

// startGRPCServerNode starts a node served by StartGRPCServer, which does
// not register the health service.
func startGRPCServerNode(t *testing.T) *gossip.GossipNode {
	t.Helper()
	n, err := gossip.New("plain", "", nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	if err := n.StartGRPCServer("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHealthNotRegistered(t *testing.T) {
	n := startGRPCServerNode(t)
	r := gossipctl(t, "health", "--addr", n.ListenAddr())
	wantOneLineError(t, r, exitFail, "(Unimplemented)")
	if !strings.Contains(r.stderr, "grpc.health.v1.Health") {
		t.Errorf("stderr %q; want it to name the health service", r.stderr)
	}
}
