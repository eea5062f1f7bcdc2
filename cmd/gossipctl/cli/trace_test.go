package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

// TestTrace: publish --trace on node-1 of two linked nodes; trace ID on
// node-1 shows both, node-2 under node-1; trace on node-2 (not the
// origin) is NotFound; -o json lists the receipts.
func TestTrace(t *testing.T) {
	a, b := startNode(t, "node-1"), startNode(t, "node-2")
	if err := a.AddNeighbor("node-2", b.addr); err != nil {
		t.Fatal(err)
	}
	if err := b.AddNeighbor("node-1", a.addr); err != nil {
		t.Fatal(err)
	}
	r := gossipctl(t, "publish", "--addr", a.addr, "--trace", "-o", "json", "hello")
	wantOK(t, r)
	var pub struct{ ID string }
	if err := json.Unmarshal([]byte(r.stdout), &pub); err != nil || pub.ID == "" {
		t.Fatalf("publish output %q: %v", r.stdout, err)
	}
	var out string
	testutil.WaitFor(t, 10*time.Second, "both receipts", func() error {
		r := gossipctl(t, "trace", "--addr", a.addr, pub.ID)
		if r.code != exitOK {
			return fmt.Errorf("exit %d: %s", r.code, r.stderr)
		}
		out = r.stdout
		if !strings.Contains(out, ": 2/2 members") {
			return fmt.Errorf("output %q", out)
		}
		return nil
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "trace "+pub.ID[:12]+"…: 2/2 members in ") || !strings.Contains(lines[0], "1 hops max, 0 repairs") ||
		lines[1] != "node-1  origin" || !strings.HasPrefix(lines[2], "└─ node-2  ") || !strings.HasSuffix(lines[2], "  hop 1") {
		t.Errorf("trace output:\n%s", out)
	}
	r = gossipctl(t, "trace", "--addr", a.addr, "-o", "json", pub.ID)
	wantOK(t, r)
	var j struct {
		Origin   string
		Receipts []struct {
			Node, From string
			Hops       uint32
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &j); err != nil || j.Origin != "node-1" || len(j.Receipts) != 2 ||
		j.Receipts[1].Node != "node-2" || j.Receipts[1].From != "node-1" || j.Receipts[1].Hops != 1 {
		t.Errorf("json %s (%v)", r.stdout, err)
	}
	r = gossipctl(t, "trace", "--addr", b.addr, pub.ID)
	wantOneLineError(t, r, exitFail, "(NotFound)")
}
