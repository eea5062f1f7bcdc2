package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/grpc-gossip/gossip"
)

// TestStatusTable: the identity, then every counter the library defines
// (gossip.Stats.Counters: the one definition), under its group's heading.
func TestStatusTable(t *testing.T) {
	a, _ := startPair(t)
	r := gossipctl(t, "status", "--addr", a.addr)
	wantOK(t, r)
	got := map[string]string{}
	group := ""
	var groups []string
	for l := range strings.SplitSeq(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 0:
		case strings.HasPrefix(f[0], "["):
			group = strings.Trim(f[0], "[]")
			groups = append(groups, group)
		case group == "":
			got[f[0]] = strings.Join(f[1:], " ")
		default:
			got[group+"."+f[0]] = f[len(f)-1]
		}
	}
	if fmt.Sprint(groups) != "[core stream membership security]" {
		t.Errorf("groups %v, want [core stream membership security]", groups)
	}
	for _, c := range (gossip.Stats{}).Counters() {
		if _, ok := got[c.Name]; !ok {
			t.Errorf("counter %s is not printed", c.Name)
		}
	}
	want := map[string]string{
		"id": "node-a", "advertise_address": a.addr, "listen_address": "-", // not set: the test serves the node itself
		"ready": "true", "core.delivered": "1", "core.neighbors": "1",
		"stream.peers": "1", "stream.eager_sent": "1", "stream.copies_acked": "1", "stream.stored": "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if t.Failed() {
		t.Logf("status:\n%s", r.stdout)
	}
}

func TestStatusJSON(t *testing.T) {
	a, _ := startPair(t)
	r := gossipctl(t, "status", "--addr", a.addr, "--output=json")
	wantOK(t, r)
	var got struct {
		ID            string                        `json:"id"`
		Ready         bool                          `json:"ready"`
		Version       string                        `json:"version"`
		UptimeSeconds float64                       `json:"uptime_seconds"`
		Counters      map[string]map[string]float64 `json:"counters"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	n := 0
	for _, g := range got.Counters {
		n += len(g)
	}
	if want := len((gossip.Stats{}).Counters()); n != want {
		t.Errorf("%d counters, want the %d the library defines", n, want)
	}
	if got.ID != "node-a" || !got.Ready || got.Version != gossip.Version || got.UptimeSeconds <= 0 ||
		got.Counters["core"]["delivered"] != 1 || got.Counters["stream"]["eager_sent"] != 1 || got.Counters["membership"] == nil {
		t.Errorf("status %+v", got)
	}
}

func TestStatusFromStartGRPCServer(t *testing.T) {
	n := startGRPCServerNode(t)
	r := gossipctl(t, "status", "--addr", n.ListenAddr())
	wantOK(t, r)
	found := false
	for l := range strings.SplitSeq(r.stdout, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[0] == "listen_address" && f[1] == n.ListenAddr() {
			found = true
		}
	}
	if !found {
		t.Fatalf("status:\n%s\nwant listen_address %s", r.stdout, n.ListenAddr())
	}
}
