package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

func TestSubscribe(t *testing.T) {
	n := startNode(t, "node-1")
	// -o table too: subscribe prints JSON lines whatever -o says.
	s := startSubscribe(t, n, "-o", "table", "--buffer", "16")

	wantOK(t, gossipctl(t, "publish", "--addr", n.addr, "--id", "m1", "hello <world>"))
	var m map[string]any
	line := s.out.next(t, 5*time.Second)
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	for k, want := range map[string]any{"id": "m1", "origin": "node-1", "from": "node-1", "payload": "hello <world>", "hops": 0.0} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v (line %s)", k, m[k], want, line)
		}
	}
	for _, k := range []string{"received_at", "created_at"} {
		s, _ := m[k].(string)
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			t.Errorf("%s = %v: %v", k, m[k], err)
		}
	}
	for _, k := range []string{"missed", "payload_base64"} {
		if _, ok := m[k]; ok {
			t.Errorf("%s present in %s", k, line)
		}
	}

	// A payload that is not UTF-8 comes as payload_base64.
	binary := []byte{0xff, 0x00, 0xfe}
	if _, _, err := n.Publish(context.Background(), "m2", binary); err != nil {
		t.Fatal(err)
	}
	line = s.out.next(t, 5*time.Second)
	m = nil
	if err := json.Unmarshal([]byte(line), &m); err != nil {
		t.Fatalf("line %q: %v", line, err)
	}
	if _, ok := m["payload"]; ok || m["id"] != "m2" || m["payload_base64"] != base64.StdEncoding.EncodeToString(binary) {
		t.Fatalf("line %s; want id m2, payload_base64 %q and no payload", line, base64.StdEncoding.EncodeToString(binary))
	}

	s.cancel() // SIGINT
	if code := s.wait(t, 5*time.Second); code != exitOK || s.stderr.Len() != 0 {
		t.Fatalf("after interrupt: exit %d, stderr %q; want 0 and nothing", code, s.stderr.String())
	}
}

func TestSubscribeDaemonShutsDown(t *testing.T) {
	n := startNode(t, "node-1")
	s := startSubscribe(t, n)
	n.Close()
	code := s.wait(t, 5*time.Second)
	wantOneLineError(t, result{code: code, stderr: s.stderr.String()}, exitFail,
		"subscribe: gossipd at "+n.addr+" ended the subscription: node is shutting down")
}

func TestSubscribeBadBuffer(t *testing.T) {
	n := startNode(t, "node-1")
	r := gossipctl(t, "subscribe", "--addr", n.addr, "--buffer", "4000000000")
	wantOneLineError(t, r, exitFail, "(InvalidArgument)")
}
