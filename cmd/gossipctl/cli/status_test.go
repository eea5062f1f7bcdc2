package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestStatusTable(t *testing.T) {
	a, _ := startPair(t)
	r := gossipctl(t, "status", "--addr", a.addr)
	wantOK(t, r)
	got := map[string]string{}
	var keys []string
	for l := range strings.SplitSeq(strings.TrimSuffix(r.stdout, "\n"), "\n") {
		k, v, _ := strings.Cut(l, " ")
		got[k] = strings.TrimSpace(v)
		keys = append(keys, k)
	}
	want := map[string]string{
		"id": "node-a", "advertise_address": a.addr, "listen_address": "-", // not set: the test serves the node itself
		"ready": "true", "delivered": "1", "forwarded": "1", "sent": "1", "acked": "1",
		"ack_failed": "0", "neighbors": "1", "members": "2", "subscribers": "0",
		"stream.stream_peers": "1", "stream.eager_sent": "1", "stream.copies_acked": "1", "stream.stored": "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	wantKeys := "id advertise_address listen_address version ready started_at uptime delivered forwarded duplicates " +
		"sent acked ack_failed retries gave_up sends_dropped invalid malformed active seen ttl diameter hop_latency " +
		"neighbors members subscribers subscriber_missed " +
		"stream.stream_peers stream.unary_peers stream.inbound stream.eager_sent stream.ihaves_sent stream.ihaves_received " +
		"stream.prunes_sent stream.prunes_received stream.grafts_sent stream.grafts_served stream.digests_sent " +
		"stream.digests_received stream.sync_sent stream.repaired stream.holes_skipped stream.copies_sent stream.copies_acked " +
		"stream.envelopes_sent stream.envelopes_received stream.resent stream.reconnects stream.unary_fallbacks " +
		"stream.bad_frames stream.queued_bytes stream.deferred stream.frames_dropped stream.publish_waits " +
		"stream.publish_rejected stream.stored stream.grafts_delayed stream.parent_switches stream.tree_swaps stream.withdrawn"
	if strings.Join(keys, " ") != wantKeys {
		t.Errorf("keys\n%s\nwant\n%s", strings.Join(keys, " "), wantKeys)
	}
	if t.Failed() {
		t.Logf("status:\n%s", r.stdout)
	}
}

func TestStatusJSON(t *testing.T) {
	a, _ := startPair(t)
	r := gossipctl(t, "status", "--addr", a.addr, "--output=json")
	wantOK(t, r)
	var got map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	if len(got) != 28 {
		t.Errorf("%d keys, want 28 (one per StatusResponse field)", len(got))
	}
	if st, _ := got["stream"].(map[string]any); len(st) != 33 || st["eager_sent"] != 1.0 {
		t.Errorf("stream = %v, want the 33 StreamStatus counters, eager_sent 1", got["stream"])
	}
	for k, v := range map[string]any{"id": "node-a", "ready": true, "delivered": 1.0, "members": 2.0, "version": "0.1.0-dev"} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if up, _ := got["uptime_seconds"].(float64); up <= 0 {
		t.Errorf("uptime_seconds = %v, want > 0", got["uptime_seconds"])
	}
	if t.Failed() {
		t.Logf("status:\n%s", r.stdout)
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
