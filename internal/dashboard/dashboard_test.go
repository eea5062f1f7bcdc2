package dashboard

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/internal/testutil"
)

func newNode(t *testing.T) *gossip.GossipNode {
	t.Helper()
	n, err := gossip.New("node-1", "127.0.0.1:1", nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// TestAssets: the page, its script and style sheet are served, with a
// Content-Security-Policy that allows only this server.
func TestAssets(t *testing.T) {
	d := New(newNode(t))
	defer d.Close()
	srv := httptest.NewServer(d)
	defer srv.Close()
	for path, want := range map[string]string{
		"/":                 `<script src="static/app.js"`,
		"/static/app.js":    "new EventSource('api/events')",
		"/static/style.css": ".pill.dead",
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), want) {
			t.Errorf("GET %s: %d, body without %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "default-src 'self'") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
	}
	resp, err := http.Get(srv.URL + "/nothing")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing: %d", resp.StatusCode)
	}
}

// sse reads Server-Sent Events from r.
type sse struct{ r *bufio.Reader }

func (s sse) next(t *testing.T) (name, data string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "" && name != "":
			return name, data
		}
	}
}

// TestEvents: the stream starts with a State, sends an Event and a new
// State after a change, and ends when the dashboard closes.
func TestEvents(t *testing.T) {
	n := newNode(t)
	d := New(n)
	srv := httptest.NewServer(d)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	s := sse{bufio.NewReader(resp.Body)}
	name, data := s.next(t)
	var st State
	if err := json.Unmarshal([]byte(data), &st); name != "state" || err != nil || st.Node.ID != "node-1" || len(st.Members) != 1 || !st.Members[0].Self {
		t.Fatalf("first event %s %s (%v)", name, data, err)
	}
	testutil.WaitFor(t, 5*time.Second, "the watcher", func() error {
		if n.Stats().Watchers == 0 {
			return io.EOF
		}
		return nil
	})
	if err := n.AddNeighbor("peer-2", "127.0.0.1:2"); err != nil {
		t.Fatal(err)
	}
	for {
		name, data = s.next(t)
		if name == "event" {
			break
		}
	}
	var e Event
	if err := json.Unmarshal([]byte(data), &e); err != nil || e.Kind != "neighbor-added" || e.Peer != "peer-2" {
		t.Fatalf("event %s (%v)", data, err)
	}
	name, data = s.next(t)
	st = State{}
	if err := json.Unmarshal([]byte(data), &st); name != "state" || err != nil || len(st.Neighbors) != 1 || st.Neighbors[0].ID != "peer-2" {
		t.Fatalf("state after the change: %s %s (%v)", name, data, err)
	}
	done := make(chan struct{})
	go func() { d.Close(); close(done) }()
	testutil.Await(t, done, 5*time.Second, "Close to end the stream")
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Errorf("stream did not end cleanly: %v", err)
	}
}
