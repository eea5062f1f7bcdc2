package swim

import (
	"cmp"
	"container/heap"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The simulation harness: many Nodes in one process with virtual time and
// an in-memory network (latency, loss, partitions), driven by a small
// discrete-event loop. It plays the runtime's part: it carries messages,
// sends replies back, and relays PingReqs (Ack on success, Nack after the
// PingReq's timeout) the way the gRPC runtime does.

type simEvent struct {
	at   time.Time
	seq  uint64
	kind int // evDeliver, evWake, evRelayTimeout
	to   string
	msg  Message
}

const (
	evDeliver = iota
	evWake
	evRelayTimeout
)

type eventHeap []*simEvent

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*simEvent)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type simNode struct {
	n      *Node
	addr   string
	down   bool
	wakeAt time.Time
	group  int           // partition group
	slow   time.Duration // extra latency of every message to or from it (an overloaded node)
}

type relay struct {
	requester, requesterID string
	seq                    uint64
}

type simNet struct {
	t      testing.TB
	cfg    Config
	start  time.Time
	now    time.Time
	rng    *rand.Rand
	events eventHeap
	seq    uint64
	byAddr map[string]*simNode
	relays map[string]relay // intermediate addr + "/" + its ping seq

	loss        float64
	minLat      time.Duration
	maxLat      time.Duration
	partitioned bool

	sent, dropped uint64
	onEvent       func(observer *simNode, e Event)
}

func newSimNet(t testing.TB, cfg Config, seed uint64) *simNet {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return &simNet{
		t: t, cfg: cfg, start: start, now: start, rng: rand.New(rand.NewPCG(seed, 1)),
		byAddr: make(map[string]*simNode), relays: make(map[string]relay),
		minLat: time.Millisecond, maxLat: 5 * time.Millisecond,
	}
}

func (s *simNet) elapsed() time.Duration { return s.now.Sub(s.start) }

func (s *simNet) push(e *simEvent) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.events, e)
}

// add starts a member id at addr and, if seed is not empty, joins it
// through the seed.
func (s *simNet) add(id, addr, seed string) *simNode {
	cfg := s.cfg
	cfg.Seed = s.rng.Uint64()
	n, err := New(s.now, id, addr, cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	sn := &simNode{n: n, addr: addr}
	s.byAddr[addr] = sn
	if seed != "" {
		s.transmit(sn, n.Join(seed))
	}
	s.settle(sn)
	return sn
}

// transmit puts m on the wire from sn, subject to loss and partitions.
func (s *simNet) transmit(from *simNode, m Message) {
	s.sent++
	to := s.byAddr[m.ToAddr]
	if to == nil || (s.partitioned && to.group != from.group) || (s.loss > 0 && s.rng.Float64() < s.loss) {
		s.dropped++
		return
	}
	lat := s.minLat + from.slow + to.slow
	if s.maxLat > s.minLat {
		lat += time.Duration(s.rng.Int64N(int64(s.maxLat - s.minLat)))
	}
	s.push(&simEvent{at: s.now.Add(lat), kind: evDeliver, to: m.ToAddr, msg: m})
}

// settle sends what sn wants sent, reports its events and schedules its
// next wake-up.
func (s *simNet) settle(sn *simNode) {
	msgs, evs := sn.n.Ready()
	for _, m := range msgs {
		s.transmit(sn, m)
	}
	if s.onEvent != nil {
		for _, e := range evs {
			s.onEvent(sn, e)
		}
	}
	if next := sn.n.Next(); sn.wakeAt.IsZero() || next.Before(sn.wakeAt) || !sn.wakeAt.After(s.now) {
		sn.wakeAt = next
		s.push(&simEvent{at: next, kind: evWake, to: sn.addr})
	}
}

func (s *simNet) deliver(sn *simNode, m Message) {
	key := fmt.Sprint(sn.addr, "/", m.Seq)
	if m.Kind == KindAck {
		if r, ok := s.relays[key]; ok {
			delete(s.relays, key)
			s.transmit(sn, Message{Kind: KindAck, From: sn.n.ID(), FromAddr: sn.addr, To: r.requesterID, ToAddr: r.requester, Seq: r.seq})
		}
	}
	reply, ok := sn.n.Step(s.now, m)
	if ok {
		if m.Kind == KindPingReq {
			k := fmt.Sprint(sn.addr, "/", reply.Seq)
			s.relays[k] = relay{requester: m.FromAddr, requesterID: m.From, seq: m.Seq}
			s.push(&simEvent{at: s.now.Add(m.Timeout), kind: evRelayTimeout, to: sn.addr, msg: Message{Seq: reply.Seq}})
		}
		s.transmit(sn, reply)
	}
	s.settle(sn)
}

// run processes events until the virtual clock reaches until or done
// reports true (checked every check of virtual time).
func (s *simNet) run(until time.Time, check time.Duration, done func() bool) bool {
	nextCheck := s.now
	for len(s.events) > 0 {
		e := s.events[0]
		if e.at.After(until) {
			s.now = until
			return done != nil && done()
		}
		if done != nil && !e.at.Before(nextCheck) {
			s.now = nextCheck
			if done() {
				return true
			}
			nextCheck = nextCheck.Add(check)
			continue
		}
		heap.Pop(&s.events)
		s.now = e.at
		sn := s.byAddr[e.to]
		if sn == nil || sn.down {
			continue
		}
		switch e.kind {
		case evDeliver:
			s.deliver(sn, e.msg)
		case evWake:
			if !e.at.Equal(sn.wakeAt) {
				continue // superseded
			}
			sn.n.Tick(s.now)
			s.settle(sn)
		case evRelayTimeout:
			key := fmt.Sprint(sn.addr, "/", e.msg.Seq)
			if r, ok := s.relays[key]; ok {
				delete(s.relays, key)
				s.transmit(sn, Message{Kind: KindNack, From: sn.n.ID(), FromAddr: sn.addr, To: r.requesterID, ToAddr: r.requester, Seq: r.seq})
			}
		}
	}
	s.now = until
	return done != nil && done()
}

func (s *simNet) live() []*simNode {
	var out []*simNode
	for _, sn := range s.byAddr {
		if !sn.down {
			out = append(out, sn)
		}
	}
	slices.SortFunc(out, func(a, b *simNode) int { return cmp.Compare(a.addr, b.addr) })
	return out
}

// converged reports whether every live node sees exactly the live nodes
// as alive (and nothing else as alive or suspect).
func (s *simNet) converged() bool {
	live := s.live()
	for _, sn := range live {
		if sn.n.NumLive() != len(live) || len(sn.n.suspects) != 0 {
			return false
		}
	}
	return true
}

// startCluster starts n members joining through the first within the
// first second, and returns them (seed first).
func startCluster(s *simNet, n int) []*simNode {
	nodes := []*simNode{s.add("n0", "a0", "")}
	joinAt := make([]time.Duration, n)
	for i := 1; i < n; i++ {
		joinAt[i] = time.Duration(s.rng.Int64N(int64(time.Second)))
	}
	order := make([]int, 0, n-1)
	for i := 1; i < n; i++ {
		order = append(order, i)
	}
	slices.SortFunc(order, func(a, b int) int { return int(joinAt[a] - joinAt[b]) })
	for _, i := range order {
		s.run(s.start.Add(joinAt[i]), time.Hour, nil)
		nodes = append(nodes, s.add(fmt.Sprintf("n%d", i), fmt.Sprintf("a%d", i), "a0"))
	}
	return nodes
}
