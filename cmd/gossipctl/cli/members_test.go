package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

// startPair starts two linked nodes and gossips one message from the
// first to the second, so that both have ACK statistics.
func startPair(t *testing.T) (a, b *testNode) {
	t.Helper()
	a, b = startNode(t, "node-a"), startNode(t, "node-b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := b.Join(ctx, []string{a.addr}); err != nil {
		t.Fatal(err)
	}
	wantOK(t, gossipctl(t, "publish", "--addr", a.addr, "--id", "m1", "hi"))
	testutil.WaitFor(t, 5*time.Second, "node-b's ACK to node-a", func() error {
		if ns := a.NeighborStats(); len(ns) != 1 || ns[0].Acked != 1 {
			return fmt.Errorf("neighbour stats %+v", ns)
		}
		return nil
	})
	return a, b
}

func TestMembersTable(t *testing.T) {
	a, b := startPair(t)
	r := gossipctl(t, "members", "--addr", a.addr)
	wantOK(t, r)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("members:\n%s\nwant a header and 2 rows", r.stdout)
	}
	want := [][]string{
		{"ID", "ADDRESS", "STATE", "INCARNATION", "LAST-HEARD", "SELF"},
		{"node-a", a.addr, "alive", "0", "-", "yes"}, // a node does not "hear" itself
		{"node-b", b.addr, "alive", "0", "*", "ago", "-"},
	}
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) != len(want[i]) {
			t.Fatalf("line %q; want fields %q", l, want[i])
		}
		for j := range f {
			if want[i][j] != "*" && f[j] != want[i][j] {
				t.Fatalf("line %q; want fields %q", l, want[i])
			}
		}
	}
}

func TestMembersJSON(t *testing.T) {
	a, b := startPair(t)
	r := gossipctl(t, "members", "--addr", a.addr, "-o", "json")
	wantOK(t, r)
	var ms []struct {
		ID          string     `json:"id"`
		Address     string     `json:"address"`
		State       string     `json:"state"`
		Incarnation *uint64    `json:"incarnation"`
		LastHeard   *time.Time `json:"last_heard"`
		Self        bool       `json:"self"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ms); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	if len(ms) != 2 || ms[0].ID != "node-a" || !ms[0].Self || ms[1].ID != "node-b" || ms[1].Self ||
		ms[1].Address != b.addr || ms[1].State != "alive" || ms[1].Incarnation == nil || ms[1].LastHeard == nil {
		t.Fatalf("members JSON:\n%s", r.stdout)
	}
}

func TestNeighborsTable(t *testing.T) {
	a, b := startPair(t)
	r := gossipctl(t, "neighbors", "--addr", a.addr)
	wantOK(t, r)
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "ID ADDRESS SENT ACKED FAILED DUP SRTT LOSS TRANSPORT" {
		t.Fatalf("neighbors:\n%s", r.stdout)
	}
	f := strings.Fields(lines[1])
	if len(f) != 9 || f[0] != "node-b" || f[1] != b.addr || f[2] != "1" || f[3] != "1" || f[4] != "0" || f[5] != "0" || f[6] == "-" || f[7] != "0.0%" || f[8] != "stream" {
		t.Fatalf("row %q; want node-b %s 1 1 0 0 <srtt> 0.0%% stream", lines[1], b.addr)
	}
}

func TestNeighborsJSON(t *testing.T) {
	a, b := startPair(t)
	r := gossipctl(t, "neighbours", "--addr", a.addr, "-o", "json")
	wantOK(t, r)
	var ns []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &ns); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	if len(ns) != 1 || ns[0]["id"] != "node-b" || ns[0]["address"] != b.addr || ns[0]["sent"] != 1.0 ||
		ns[0]["acked"] != 1.0 || ns[0]["smoothed_rtt_seconds"].(float64) <= 0 || ns[0]["last_ack"] == nil || ns[0]["last_failure"] != nil || ns[0]["transport"] != "stream" {
		t.Fatalf("neighbors JSON:\n%s", r.stdout)
	}

	// No neighbours: an empty array, not null.
	r = gossipctl(t, "neighbors", "--addr", startNode(t, "alone").addr, "-o", "json")
	wantOK(t, r)
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("neighbors JSON of a lone node: %q, want []", r.stdout)
	}
}
