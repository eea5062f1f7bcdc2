package sim

import (
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"

	"github.com/grpc-gossip/gossip/internal/swim"
)

// pkind is what happens at a Plumtree engine's event.
type pkind uint8

const (
	pkPublish   pkind = iota // message i is published at its origin
	pkCrash                  // the chosen nodes crash
	pkDial                   // relation i's opener (re-)opens its stream
	pkArrive                 // env reaches the end of relation i in direction dir, if session gen still holds
	pkWrite                  // the writer of relation i's side dir runs, if session gen still holds
	pkGraftTick              // node i's graft timer (every GraftTimeout/4; every second one also flushes)
	pkSync                   // node i's anti-entropy timer (SyncInterval ±10%)
	pkDecay                  // node i's decay timer (core Tick, every Scenario.Tick)
	pkLink                   // node i's Link (or, dir 1, Unlink) RPC reaches node j
	pkDetect                 // RepairModel: node i learns that its neighbour j is dead
	pkRebalance              // RepairModel: every live node's k may have changed
	pkSwimMsg                // SWIM datagram sm reaches node i
	pkSwimWake               // node i's SWIM timers, if still due at this time
	pkSwimRelay              // node i's relay of PingReq sm.Seq times out (a Nack goes back)
	pkStop                   // the end of the run
)

// pevent is one entry of the Plumtree engine's queue: a value, so the
// queue is one flat slice.
type pevent struct {
	at   int64  // virtual time, ns
	seq  uint64 // push order: breaks ties
	env  *pb.Envelope
	sm   *swim.Message
	i, j int32
	gen  uint32
	kind pkind
	dir  uint8
}

// pqueue is the 4-ary min-heap of eventQueue for pevents.
type pqueue []pevent

func (a *pevent) before(b *pevent) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (q *pqueue) push(ev pevent) {
	*q = append(*q, ev)
	h := *q
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !ev.before(&h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = ev
}

func (q *pqueue) pop() pevent {
	h := *q
	top := h[0]
	last := len(h) - 1
	ev := h[last]
	h[last] = pevent{}
	h = h[:last]
	*q = h
	if last == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= last {
			break
		}
		m := c
		for k := c + 1; k < c+4 && k < last; k++ {
			if h[k].before(&h[m]) {
				m = k
			}
		}
		if !h[m].before(&ev) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = ev
	return top
}
