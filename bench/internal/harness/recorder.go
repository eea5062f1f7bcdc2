package harness

import (
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Recorder keeps, for every message the harness publishes, when it was
// scheduled, who published it, which nodes have received it and when the
// receipts that matter for the figures happened. Deliveries are recorded
// without locks or allocation, so that recording costs every system the
// same small, constant amount of CPU.
//
// Receivers: of the N nodes, the publisher is never counted (some systems
// deliver a node's own messages locally, some do not); each message has
// N-1 expected receivers. For each message the Recorder keeps the count of
// distinct receivers and the times of the K50-th, K99-th and KAll-th first
// receipts, K = ceil(q·(N-1)): the times at which 50%, 99% and 100% of the
// receivers had it.
//
// Ids are assigned densely from 0 by Add, which only one goroutine (the
// pacer) calls; Published is called once per id, from any goroutine,
// after its Add; Deliver may be called from any goroutine at any time.
type Recorder struct {
	nodes     int
	receivers int32
	k50, k99  int32
	kAll      int32
	words     int // bitmap words per message
	epoch     time.Time

	chunks [maxChunks]atomic.Pointer[chunk]
	next   atomic.Uint64 // next id to assign

	dups    atomic.Uint64 // a node received an id it already had
	self    atomic.Uint64 // the publisher received its own message
	unknown atomic.Uint64 // payload without a known id, or a bad node index
}

const (
	chunkBits = 12
	chunkSize = 1 << chunkBits
	maxChunks = 1 << 14 // 67M messages per run
)

// Message states.
const (
	stateScheduled int32 = iota // registered, Publish not yet returned
	statePublished              // Publish returned nil
	stateFailed                 // Publish returned an error
)

// record is one message. sched and node are written by the pacer before
// Publish, pubAt by the goroutine that called Publish; both are read after
// the phase (the pacer and its publish goroutines have been joined), or by
// Deliver through atomics.
type record struct {
	sched int64        // scheduled publish time, ns since epoch
	pubAt int64        // time Publish was called, ns since epoch
	state atomic.Int32 // state*
	pub   atomic.Int32 // publishing node
	count atomic.Int32 // distinct receivers so far
	t50   atomic.Int64 // time of the k50-th receipt, ns since epoch; 0 = not yet
	t99   atomic.Int64
	tAll  atomic.Int64
}

type chunk struct {
	recs [chunkSize]record
	bits []atomic.Uint64 // chunkSize × words: receivers seen per message
}

// NewRecorder returns a Recorder for a cluster of nodes nodes (at least 2).
func NewRecorder(nodes int) (*Recorder, error) {
	if nodes < 2 {
		return nil, fmt.Errorf("need at least 2 nodes, got %d", nodes)
	}
	recv := nodes - 1
	return &Recorder{
		nodes:     nodes,
		receivers: int32(recv),
		k50:       quorum(0.50, recv),
		k99:       quorum(0.99, recv),
		kAll:      int32(recv),
		words:     (nodes + 63) / 64,
		epoch:     time.Now(),
	}, nil
}

// quorum returns ceil(q·n), at least 1.
func quorum(q float64, n int) int32 {
	k := int32(math.Ceil(q*float64(n) - 1e-9))
	if k < 1 {
		k = 1
	}
	return k
}

// Now returns the time since the Recorder's epoch, in ns (monotonic).
func (r *Recorder) Now() int64 { return int64(time.Since(r.epoch)) }

// Next returns the id the next Add will assign.
func (r *Recorder) Next() uint64 { return r.next.Load() }

// Add registers a new message scheduled at sched (ns since epoch) and
// published by node, and returns its id. Only one goroutine may call Add.
func (r *Recorder) Add(sched int64, node int) (uint64, error) {
	id := r.next.Load()
	ci := id >> chunkBits
	if ci >= maxChunks {
		return 0, fmt.Errorf("recorder full: %d messages", id)
	}
	c := r.chunks[ci].Load()
	if c == nil {
		c = &chunk{bits: make([]atomic.Uint64, chunkSize*r.words)}
		r.chunks[ci].Store(c)
	}
	rec := &c.recs[id&(chunkSize-1)]
	rec.sched = sched
	rec.pub.Store(int32(node))
	r.next.Store(id + 1)
	return id, nil
}

// Published records the outcome of the Publish call for id, which started
// at pubAt (ns since epoch).
func (r *Recorder) Published(id uint64, pubAt int64, err error) {
	rec, _ := r.lookup(id)
	rec.pubAt = pubAt
	if err != nil {
		rec.state.Store(stateFailed)
	} else {
		rec.state.Store(statePublished)
	}
}

func (r *Recorder) lookup(id uint64) (*record, []atomic.Uint64) {
	if id >= r.next.Load() {
		return nil, nil
	}
	c := r.chunks[id>>chunkBits].Load()
	i := int(id & (chunkSize - 1))
	return &c.recs[i], c.bits[i*r.words : (i+1)*r.words]
}

// Deliver is the harness's Deliver: it records that node received payload.
func (r *Recorder) Deliver(node int, payload []byte) { r.deliverAt(node, payload, r.Now()) }

func (r *Recorder) deliverAt(node int, payload []byte, now int64) {
	id, ok := PayloadID(payload)
	if !ok || node < 0 || node >= r.nodes {
		r.unknown.Add(1)
		return
	}
	rec, bits := r.lookup(id)
	if rec == nil {
		r.unknown.Add(1)
		return
	}
	if int(rec.pub.Load()) == node {
		r.self.Add(1)
		return
	}
	mask := uint64(1) << (node % 64)
	if bits[node/64].Or(mask)&mask != 0 {
		r.dups.Add(1)
		return
	}
	if now == 0 {
		now = 1 // 0 means "not yet"
	}
	c := rec.count.Add(1)
	if c == r.k50 {
		rec.t50.Store(now)
	}
	if c == r.k99 {
		rec.t99.Store(now)
	}
	if c == r.kAll {
		rec.tAll.Store(now)
	}
}

// Complete reports whether message id has reached every receiver.
func (r *Recorder) Complete(id uint64) bool {
	rec, _ := r.lookup(id)
	return rec != nil && rec.count.Load() >= r.kAll
}

// Acknowledged reports whether Publish returned nil for message id.
func (r *Recorder) Acknowledged(id uint64) bool {
	rec, _ := r.lookup(id)
	return rec != nil && rec.state.Load() == statePublished
}

// Lacking adds 1 to perNode[node] (len(perNode) ≥ the node count) for
// every receiver of message id that has not received it, and returns how
// many receivers lack it. The publisher is not a receiver.
func (r *Recorder) Lacking(id uint64, perNode []int) int {
	rec, bits := r.lookup(id)
	if rec == nil {
		return 0
	}
	pub, n := int(rec.pub.Load()), 0
	for node := range r.nodes {
		if node != pub && bits[node/64].Load()&(uint64(1)<<(node%64)) == 0 {
			perNode[node]++
			n++
		}
	}
	return n
}

// Counters returns the application-level duplicates, the publishers' own
// receipts and the deliveries of unknown ids so far.
func (r *Recorder) Counters() (dups, self, unknown uint64) {
	return r.dups.Load(), r.self.Load(), r.unknown.Load()
}

// Receivers is the number of expected receivers per message, N-1.
func (r *Recorder) Receivers() int { return int(r.receivers) }

// Msg is a snapshot of one message's record, for analysis.
type Msg struct {
	Sched, PubAt   int64 // ns since epoch
	State          int32
	Count          int
	T50, T99, TAll int64 // ns since epoch; 0 = not reached
}

// Snapshot returns message id's record. Call it only for ids whose Add and
// Published calls happened before (the pacer and its publish goroutines
// have been joined).
func (r *Recorder) Snapshot(id uint64) Msg {
	rec, _ := r.lookup(id)
	return Msg{
		Sched: rec.sched, PubAt: rec.pubAt, State: rec.state.Load(), Count: int(rec.count.Load()),
		T50: rec.t50.Load(), T99: rec.t99.Load(), TAll: rec.tAll.Load(),
	}
}
