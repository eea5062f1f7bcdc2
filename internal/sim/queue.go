package sim

import pb "github.com/grpc-gossip/gossip/proto/gossip/v1"

// evKind is what happens at an event.
type evKind uint8

const (
	evPublish   evKind = iota // message msg is published at its origin (to)
	evSend                    // from starts attempt `attempt` of forwarding fwd to `to`
	evArrive                  // a copy of fwd reaches `to`
	evAck                     // to's ACK reaches from
	evTimeout                 // from's attempt to `to` reaches its deadline without an ACK
	evTick                    // every live node runs its decay
	evCrash                   // the chosen nodes crash
	evPartition               // the partition starts
	evHeal                    // the partition ends
)

// event is one entry of the simulator's queue. It is a value (48 bytes),
// not a pointer, so the queue is one flat slice.
type event struct {
	at      int64  // virtual time, ns
	seq     uint64 // push order: breaks ties, which makes runs deterministic
	start   int64  // evArrive/evAck/evTimeout: when the attempt was sent
	fwd     *pb.GossipMessage
	from    int32
	to      int32
	msg     int32 // message index
	attempt uint8
	kind    evKind
	dup     bool // evAck: the receiver already had the message
	lostAck bool // evArrive: the receiver's ACK will be lost
}

// eventQueue is a 4-ary min-heap ordered by (at, seq). Four children per
// node halve the depth of a binary heap, and sifting moves a hole instead
// of swapping: at millions of queued events the queue is bound by memory
// latency, and this does about half the cache misses.
type eventQueue []event

func (a *event) before(b *event) bool {
	return a.at < b.at || (a.at == b.at && a.seq < b.seq)
}

func (q *eventQueue) push(ev event) {
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

func (q *eventQueue) pop() event {
	h := *q
	top := h[0]
	last := len(h) - 1
	ev := h[last]
	h[last] = event{} // drop the fwd pointer for the GC
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
