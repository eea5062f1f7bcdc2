package main

// The delivery tracker: which node has delivered which of the demo's
// messages, when the run is complete, and (with --serve) how far the
// messages published from outside the demo have spread.

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gossip "github.com/grpc-gossip/gossip"
)

// Limits of the tracking of outside messages (--serve).
const (
	externalReport = 3 * time.Second // report a message not on every node after this
	maxExternal    = 10000           // messages tracked at once; more are not tracked
)

// tracker counts deliveries per node and decides when the run is
// complete: done is closed when every node has delivered every demo
// message once. A delivery of a demo message a node already has counts as
// a duplicate delivery (the library promises exactly once), not towards
// completion. Deliveries of other messages are outside messages (--serve).
//
// Its handlers run on the nodes' delivery goroutines, concurrently for
// different nodes; the other methods may be called from any goroutine.
type tracker struct {
	ids      []string
	expected map[string]bool // the demo's message hashes (read-only)
	want     int64           // deliveries expected in total
	total    atomic.Int64    // distinct demo deliveries so far
	done     chan struct{}   // closed when total reaches want
	nodes    []nodeTrack

	extMu sync.Mutex
	ext   map[string]*extMsg // messages from outside the demo (--serve)
}

// nodeTrack is one node's demo deliveries.
type nodeTrack struct {
	mu   sync.Mutex
	got  map[string]bool
	dup  int
	last time.Time // latest ReceivedAt of a demo message
}

// extMsg is the spread so far of one outside message.
type extMsg struct {
	nodes       int       // deliveries so far: the library delivers a message once per node, so the nodes that have it
	first, last time.Time // ReceivedAt of the first and of the latest delivery
	maxHops     uint32    // the most hops a delivered copy travelled
}

// newTracker tracks the nodes ids, each of which publishes perNode demo
// messages (named by messageHash) that every node must deliver.
func newTracker(ids []string, perNode int) *tracker {
	t := &tracker{
		ids:      ids,
		expected: make(map[string]bool, len(ids)*perNode),
		want:     int64(len(ids) * len(ids) * perNode),
		done:     make(chan struct{}),
		nodes:    make([]nodeTrack, len(ids)),
		ext:      make(map[string]*extMsg),
	}
	for _, id := range ids {
		for k := 1; k <= perNode; k++ {
			t.expected[messageHash(id, k)] = true
		}
	}
	for i := range t.nodes {
		t.nodes[i].got = make(map[string]bool, len(t.expected))
	}
	return t
}

// handler is node i's DeliveryHandler (i indexes the ids given to
// newTracker).
func (t *tracker) handler(i int) gossip.DeliveryHandler {
	nt := &t.nodes[i]
	return func(d gossip.Delivery) {
		if !t.expected[d.Hash] {
			t.external(d)
			return
		}
		nt.mu.Lock()
		if nt.got[d.Hash] {
			nt.dup++
			nt.mu.Unlock()
			return
		}
		nt.got[d.Hash] = true
		if d.ReceivedAt.After(nt.last) {
			nt.last = d.ReceivedAt
		}
		nt.mu.Unlock()
		if t.total.Add(1) == t.want {
			close(t.done)
		}
	}
}

// external records the delivery of a message that is not the demo's,
// ignoring new messages once maxExternal are tracked.
func (t *tracker) external(d gossip.Delivery) {
	t.extMu.Lock()
	defer t.extMu.Unlock()
	e := t.ext[d.Hash]
	if e == nil {
		if len(t.ext) >= maxExternal {
			return
		}
		e = &extMsg{first: d.ReceivedAt}
		t.ext[d.Hash] = e
	}
	e.nodes++
	e.last = d.ReceivedAt
	e.maxHops = max(e.maxHops, d.Hops)
}

// externalReport returns a line for each outside message that reached
// every node, or that has stopped spreading short of that, and forgets it.
func (t *tracker) externalReport(now time.Time) []string {
	t.extMu.Lock()
	defer t.extMu.Unlock()
	var lines []string
	for h, e := range t.ext {
		switch {
		case e.nodes >= len(t.ids):
			lines = append(lines, fmt.Sprintf("message %q delivered on all %d nodes in %s (up to %d hops)", h, len(t.ids), fmtDur(e.last.Sub(e.first)), e.maxHops))
		case now.Sub(e.first) > externalReport:
			lines = append(lines, fmt.Sprintf("message %q delivered on %d of %d nodes", h, e.nodes, len(t.ids)))
		default:
			continue
		}
		delete(t.ext, h)
	}
	slices.Sort(lines)
	return lines
}

// fill copies the delivery counts into s: Delivered, DuplicateDeliveries,
// Missing and LastDelivery (measured from start, the first publish). It
// may be called while deliveries still arrive; it reports those seen so
// far.
func (t *tracker) fill(s *summary, start time.Time) {
	var last time.Time
	perNode := len(t.expected)
	s.Delivered, s.DuplicateDeliveries, s.Missing = 0, 0, nil
	for i := range t.nodes {
		nt := &t.nodes[i]
		nt.mu.Lock()
		got, dup, l := len(nt.got), nt.dup, nt.last
		nt.mu.Unlock()
		s.Delivered += got
		s.DuplicateDeliveries += dup
		if got < perNode {
			s.Missing = append(s.Missing, missing{Node: t.ids[i], Count: perNode - got})
		}
		if l.After(last) {
			last = l
		}
	}
	if !last.IsZero() {
		s.LastDelivery = last.Sub(start)
	}
}
