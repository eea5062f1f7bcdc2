// Package dashboard serves a node's live web dashboard: one page (HTML,
// JavaScript and CSS embedded in the binary; it loads nothing from
// anywhere else) that shows the cluster as the node sees it — members with
// their state, incarnation and last contact, the node's neighbours with
// their round trip, loss, queue and lazy sources, rate charts and delivery
// latency percentiles, and a log of membership events and warnings — kept
// live over Server-Sent Events.
//
// Routes (relative to where the handler is mounted, "/" in gossipd):
//
//	GET /                 the page
//	GET /static/…         its script and style sheet
//	GET /api/state        one snapshot, JSON (State)
//	GET /api/events       Server-Sent Events: "state" (a State) every
//	                      Interval and right after a change, "event" (an
//	                      Event) for each membership change, neighbour
//	                      change or warning
package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"sort"
	"sync"
	"time"

	gossip "github.com/grpc-gossip/gossip"
)

//go:embed static
var static embed.FS

// Interval is how often an open page gets a fresh State.
const Interval = time.Second

// maxMembers bounds the members a State lists (the page is for people; a
// cluster larger than this is summarised by the counts).
const maxMembers = 2000

// Server is the dashboard of one node. Close ends the open event streams
// (call it when the HTTP server shuts down: http.Server.Shutdown does not
// wait for streams to end by themselves).
type Server struct {
	n        *gossip.GossipNode
	mux      *http.ServeMux
	ctx      context.Context
	cancel   context.CancelFunc
	interval time.Duration

	mu     sync.Mutex // guards closed against wg.Add
	closed bool
	wg     sync.WaitGroup // the open event streams
}

// New returns the dashboard of n.
func New(n *gossip.GossipNode) *Server {
	s := &Server{n: n, mux: http.NewServeMux(), interval: Interval}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	sub, _ := fs.Sub(static, "static")
	s.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	s.mux.HandleFunc("GET /api/state", s.handleState)
	s.mux.HandleFunc("GET /api/events", s.handleEvents)
	return s
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The page talks only to this server (default-src 'self'): no CDN, no
	// third-party request, by construction and by the browser's rule.
	w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

// Close ends the event streams and waits for their handlers. It is
// idempotent.
func (s *Server) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// State is what the page shows, at one moment.
type State struct {
	At        int64      `json:"at"` // unix milliseconds
	Node      NodeInfo   `json:"node"`
	Members   []Member   `json:"members"`
	More      int        `json:"more_members,omitempty"` // members beyond maxMembers, not listed
	Counts    Counts     `json:"counts"`
	Neighbors []Neighbor `json:"neighbors"`
	Counters  Counters   `json:"counters"`
	Latency   Histogram  `json:"latency"` // delivery latency, seconds, cumulative since start
	Hops      Histogram  `json:"hops"`
	Traces    []Trace    `json:"traces"` // the most recent traced messages this node published, newest first
}

// maxTraces is how many traces a State carries.
const maxTraces = 3

// Trace is a traced message and the receipts its origin (this node) got.
type Trace struct {
	ID          string        `json:"id"`
	PublishedAt int64         `json:"published_at"` // unix milliseconds
	Live        int           `json:"live_members"`
	Receipts    []TraceRecord `json:"receipts"`
}

type TraceRecord struct {
	Node     string  `json:"node"`
	From     string  `json:"from,omitempty"`
	Hops     uint32  `json:"hops"`
	AfterMs  float64 `json:"after_ms"`
	Repaired bool    `json:"repaired,omitempty"`
}

type NodeInfo struct {
	ID       string  `json:"id"`
	Address  string  `json:"address"`
	Version  string  `json:"version"`
	UptimeS  float64 `json:"uptime_s"`
	Ready    bool    `json:"ready"`
	Incarn   uint64  `json:"incarnation"`
	Health   int     `json:"local_health"`
	Diameter int     `json:"diameter"`
}

type Member struct {
	ID          string `json:"id"`
	Address     string `json:"address"`
	State       string `json:"state"`
	Incarnation uint64 `json:"incarnation"`
	LastHeard   int64  `json:"last_heard,omitempty"` // unix milliseconds; 0: never
	Self        bool   `json:"self,omitempty"`
}

type Counts struct {
	Alive   int `json:"alive"`
	Suspect int `json:"suspect"`
	Dead    int `json:"dead"`
	Left    int `json:"left"`
}

type Neighbor struct {
	ID          string  `json:"id"`
	Address     string  `json:"address"`
	Transport   string  `json:"transport"`
	RTTMs       float64 `json:"rtt_ms"` // membership's last direct probe, else the unary ACKs' smoothed RTT; 0: unknown
	Loss        float64 `json:"loss"`
	QueuedBytes int     `json:"queued_bytes"`
	LazySources int     `json:"lazy_sources"`
	Sent        uint64  `json:"sent"`
	Acked       uint64  `json:"acked"`
}

// Counters are the totals the page turns into rates.
type Counters struct {
	Published  uint64 `json:"published"`
	Delivered  uint64 `json:"delivered"`
	Duplicates uint64 `json:"duplicates"`
	Repaired   uint64 `json:"repaired"`
	Bytes      uint64 `json:"bytes"` // payload bytes delivered
	Queued     int    `json:"queued_bytes"`
}

type Histogram struct {
	Bounds     []float64 `json:"bounds"`
	Cumulative []uint64  `json:"cumulative"`
	Count      uint64    `json:"count"`
}

// Event is a WatchEvent as the page shows it.
type Event struct {
	At      int64   `json:"at"`
	Kind    string  `json:"kind"` // joined, updated, suspect, refuted, dead, left, reaped, neighbor-added, neighbor-removed, warning
	Member  *Member `json:"member,omitempty"`
	Peer    string  `json:"peer,omitempty"`
	Message string  `json:"message,omitempty"`
	Missed  uint64  `json:"missed,omitempty"`
}

var memberKinds = map[gossip.MemberEventKind]string{
	gossip.MemberJoined: "joined", gossip.MemberUpdated: "updated", gossip.MemberSuspected: "suspect",
	gossip.MemberAliveAgain: "refuted", gossip.MemberDied: "dead", gossip.MemberLeftCluster: "left", gossip.MemberReaped: "reaped",
}

func member(m gossip.Member) Member {
	out := Member{ID: m.ID, Address: m.Address, State: m.State.String(), Incarnation: m.Incarnation, Self: m.Self}
	if !m.LastHeard.IsZero() {
		out.LastHeard = m.LastHeard.UnixMilli()
	}
	return out
}

func event(e gossip.WatchEvent) Event {
	out := Event{At: e.At.UnixMilli(), Kind: e.Kind.String(), Peer: e.Peer, Message: e.Message, Missed: e.Missed}
	if e.Kind == gossip.WatchMember {
		m := member(e.Member.Member)
		out.Kind, out.Member = memberKinds[e.Member.Kind], &m
	}
	return out
}

func histogram(h gossip.HistogramSnapshot) Histogram {
	return Histogram{Bounds: h.Bounds, Cumulative: h.Cumulative, Count: h.Count}
}

// State takes a snapshot of the node.
func (s *Server) State() State {
	n := s.n
	st := n.Stats()
	lat := n.Latency()
	out := State{
		At: time.Now().UnixMilli(),
		Node: NodeInfo{ID: st.ID, Address: st.Endpoint, Version: gossip.Version, UptimeS: st.Uptime.Seconds(), Ready: st.Ready,
			Incarn: st.Membership.Incarnation, Health: st.Membership.Health, Diameter: st.Diameter},
		Counters: Counters{Published: st.Published, Delivered: st.Delivered, Duplicates: st.Duplicates,
			Repaired: st.Stream.Repaired, Bytes: st.DeliveredBytes, Queued: st.Stream.QueuedBytes},
		Latency: histogram(lat.Delivery), Hops: histogram(lat.Hops),
		Members: []Member{}, Neighbors: []Neighbor{},
	}
	for _, m := range n.Members() {
		switch m.State {
		case gossip.MemberAlive:
			out.Counts.Alive++
		case gossip.MemberSuspect:
			out.Counts.Suspect++
		case gossip.MemberDead:
			out.Counts.Dead++
		case gossip.MemberLeft:
			out.Counts.Left++
		}
		if len(out.Members) < maxMembers {
			out.Members = append(out.Members, member(m))
		} else {
			out.More++
		}
	}
	for _, nb := range n.NeighborStats() {
		rtt := nb.ProbeRTT
		if rtt == 0 {
			rtt = nb.SRTT
		}
		out.Neighbors = append(out.Neighbors, Neighbor{ID: nb.ID, Address: nb.Endpoint, Transport: nb.Transport,
			RTTMs: float64(rtt) / float64(time.Millisecond), Loss: nb.Loss, QueuedBytes: nb.QueuedBytes,
			LazySources: nb.LazySources, Sent: nb.Sent, Acked: nb.Acked})
	}
	sort.Slice(out.Neighbors, func(i, j int) bool { return out.Neighbors[i].ID < out.Neighbors[j].ID })
	out.Traces = []Trace{}
	for _, t := range n.Traces(maxTraces) {
		tr := Trace{ID: t.ID, PublishedAt: t.PublishedAt.UnixMilli(), Live: out.Counts.Alive + out.Counts.Suspect}
		for _, r := range t.Receipts {
			tr.Receipts = append(tr.Receipts, TraceRecord{Node: r.Node, From: r.From, Hops: r.Hops,
				AfterMs: float64(r.DeliveredAt.Sub(t.PublishedAt)) / float64(time.Millisecond), Repaired: r.Repaired})
		}
		out.Traces = append(out.Traces, tr)
	}
	return out
}

func (s *Server) handleState(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(s.State())
}

// changeDelay is how long a stream waits after a change before it sends
// the new State, so that a burst of events costs one snapshot.
const changeDelay = 50 * time.Millisecond

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	watch, err := s.n.Watch(0)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer watch.Close()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	send := func(name string, v any) bool {
		b, _ := json.Marshal(v)
		if _, err := w.Write([]byte("event: " + name + "\ndata: " + string(b) + "\n\n")); err != nil {
			return false
		}
		fl.Flush()
		return true
	}
	if !send("state", s.State()) {
		return
	}
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	soon := time.NewTimer(time.Hour)
	soon.Stop()
	defer soon.Stop()
	for {
		select {
		case <-tick.C:
			if !send("state", s.State()) {
				return
			}
		case <-soon.C:
			if !send("state", s.State()) {
				return
			}
		case e, ok := <-watch.C():
			if !ok {
				return // the node closed
			}
			if !send("event", event(e)) {
				return
			}
			if e.Kind != gossip.WatchWarning {
				soon.Reset(changeDelay)
			}
		case <-r.Context().Done():
			return
		case <-s.ctx.Done():
			return
		}
	}
}
