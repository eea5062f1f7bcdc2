package gossip

import (
	"slices"
	"sync"

	"github.com/grpc-gossip/gossip/internal/core"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// sendQueue holds the frames waiting for one stream's writer, and the ACK
// it owes the other side. Producers (any goroutine) push and wake the
// writer; the writer takes everything that piled up since its last send,
// up to a batch bound, and turns it into one Envelope. There is no linger
// timer: a frame queued while the writer is idle goes out at once, and
// frames only coalesce while the writer is busy sending — batching costs
// no latency at low load and grows with load.
type sendQueue struct {
	mu     sync.Mutex
	frames []core.Frame
	head   int
	bytes  int    // bytes of the frames queued (messages: their wire size)
	ackDue uint64 // cumulative ACK to send; 0: none owed
	acked  uint64 // the last ACK sent
	wake   chan struct{}

	total *queueTotal // node-wide state (saturation); may be nil
	soft  int         // the soft bound: past it messages are announced instead
	link  bool        // an outbound link: counts in total.links
	over  bool        // bytes ≥ soft (reported to total when link)
	lazy  bool        // lazy frames queued without waking the writer
}

// queueTotal is the node-wide state of the stream queues, which decides
// whether the node is saturated: more than limit bytes queued in all, or
// every outbound link over its soft bound (no neighbour can take pushes;
// publishing faster would only grow the backlog that slow neighbours must
// pull before it leaves the stores). room is closed (and replaced) each
// time the node stops being saturated, for publishers waiting for it.
type queueTotal struct {
	mu    sync.Mutex
	bytes int
	limit int
	links int // outbound links
	over  int // of those, over their soft bound
	room  chan struct{}
}

func newQueueTotal(limit int) *queueTotal {
	return &queueTotal{limit: limit, room: make(chan struct{})}
}

func (t *queueTotal) saturatedLocked() bool {
	return t.bytes >= t.limit || t.links > 0 && t.over == t.links
}

// change applies deltas to the byte count, the links and the links over
// their bound, and wakes waiting publishers when saturation ends.
func (t *queueTotal) change(bytes, links, over int) {
	t.mu.Lock()
	was := t.saturatedLocked()
	t.bytes += bytes
	t.links += links
	t.over += over
	if was && !t.saturatedLocked() {
		close(t.room)
		t.room = make(chan struct{})
	}
	t.mu.Unlock()
}

// saturated reports whether the node is saturated, and the channel that
// is closed when it no longer is.
func (t *queueTotal) saturated() (bool, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.saturatedLocked(), t.room
}

func (t *queueTotal) load() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bytes
}

func newSendQueue(total *queueTotal, soft int) *sendQueue {
	return &sendQueue{wake: make(chan struct{}, 1), total: total, soft: soft}
}

// register counts the queue as an outbound link of the node (for
// saturation); unregister takes it back.
func (q *sendQueue) register() {
	q.mu.Lock()
	q.link = true
	over := 0
	if q.over {
		over = 1
	}
	q.mu.Unlock()
	q.total.change(0, 1, over)
}

func (q *sendQueue) unregister() {
	q.mu.Lock()
	if !q.link {
		q.mu.Unlock()
		return
	}
	q.link = false
	over := 0
	if q.over {
		over = -1
	}
	q.mu.Unlock()
	q.total.change(0, -1, over)
}

// account records a change of d queued bytes; q.mu is held. It returns
// the change of the over-soft state to report to total (-1, 0, +1).
func (q *sendQueue) account(d int) (overDelta int) {
	q.bytes += d
	if now := q.bytes >= q.soft; now != q.over {
		q.over = now
		if q.link {
			if now {
				return 1
			}
			return -1
		}
	}
	return 0
}

func (q *sendQueue) report(bytes, overDelta int) {
	if q.total != nil && (bytes != 0 || overDelta != 0) {
		q.total.change(bytes, 0, overDelta)
	}
}

func frameBytes(f *core.Frame) int {
	switch f.Kind {
	case core.FrameMessage:
		return len(f.Wire) + 8
	case core.FrameDigest:
		return 64 * len(f.Digest.GetSequences())
	}
	return 48
}

// pushResult says what became of a pushed frame.
type pushResult int

const (
	pushed   pushResult = iota
	deferred            // a message announced instead (queue over its soft limit)
	dropped             // over the hard limit: left to repair
)

// push queues f, degrading an eager message to an announcement past the
// soft bound and dropping anything past 4×soft. Repairs (answers to
// grafts and digests) are not degraded: the asker retries them. An
// announcement that extends the one queued last is merged into it, so a
// run of announcements to a slow neighbour costs one frame.
func (q *sendQueue) push(f core.Frame) pushResult {
	res := pushed
	q.mu.Lock()
	if q.bytes >= q.soft && f.Kind == core.FrameMessage && !f.Repair && f.Range != nil {
		f = core.Frame{Kind: core.FrameIHave, Range: f.Range}
		res = deferred
	}
	if f.Kind == core.FrameIHave && q.head < len(q.frames) {
		if last := &q.frames[len(q.frames)-1]; last.Kind == core.FrameIHave && last.Owned && extends(last.Range, f.Range) {
			last.Range.Last, last.Range.Hops = f.Range.GetLast(), f.Range.GetHops()
			q.lazy = true
			q.mu.Unlock()
			return res
		}
	}
	b := frameBytes(&f)
	if q.bytes+b > 4*q.soft && q.bytes > 0 {
		q.mu.Unlock()
		return dropped
	}
	if f.Kind == core.FrameIHave {
		// The queue's own copy, which later announcements may extend.
		r := f.Range
		f.Range, f.Owned = &pb.SeqRange{Node: r.GetNode(), Epoch: r.GetEpoch(), First: r.GetFirst(), Last: r.GetLast(), Hops: r.GetHops()}, true
	}
	q.frames = append(q.frames, f)
	over := q.account(b)
	lazy := f.Kind == core.FrameIHave
	q.lazy = q.lazy || lazy
	q.mu.Unlock()
	q.report(b, over)
	if !lazy {
		q.signal()
	}
	return res
}

// withdraw turns the queued eager copies of source src's messages into
// announcements: the peer PRUNEd src, so it has them already (or will get
// them from its parent). Under load a stream queue holds dozens of
// messages by the time the PRUNE arrives, all of them duplicates at the
// peer. Repairs stay (the peer asked for them). It returns how many were
// withdrawn.
func (q *sendQueue) withdraw(src string) int {
	q.mu.Lock()
	k, freed := 0, 0
	for i := q.head; i < len(q.frames); i++ {
		f := &q.frames[i]
		if f.Kind != core.FrameMessage || f.Repair || f.Range.GetNode() != src {
			continue
		}
		freed += frameBytes(f) - 48
		r := f.Range
		*f = core.Frame{Kind: core.FrameIHave, Owned: true, Range: &pb.SeqRange{Node: r.GetNode(), Epoch: r.GetEpoch(), First: r.GetFirst(), Last: r.GetLast(), Hops: r.GetHops()}}
		k++
	}
	over := 0
	if freed > 0 {
		over = q.account(-freed)
	}
	q.mu.Unlock()
	q.report(-freed, over)
	return k
}

// flushLazy wakes the writer if lazy frames are waiting. Announcements
// and prunes do not wake it themselves: they ride with the next messages
// or ACK, or go at the next flush (streamLoop), so that a lightly loaded
// node does not spend one envelope per announcement.
func (q *sendQueue) flushLazy() {
	q.mu.Lock()
	lazy := q.lazy && (q.head < len(q.frames) || q.ackDue > q.acked)
	q.mu.Unlock()
	if lazy {
		q.signal()
	}
}

// owe records that the cumulative ACK ack is due. Like an announcement it
// does not wake the writer: it rides with the next envelope back or goes
// at the next lazy flush (half a GraftTimeout at most), so a stream
// carrying one message at a time does not cost an ACK envelope per
// message. Round trips measured from ACKs include that wait.
func (q *sendQueue) owe(ack uint64) {
	q.mu.Lock()
	q.ackDue = ack
	q.lazy = true
	q.mu.Unlock()
}

func (q *sendQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take removes frames up to maxBytes (at least one) and returns them with
// the ACK to send (0 when none is new). ok is false when there is nothing
// to send.
func (q *sendQueue) take(maxBytes int) (batch []core.Frame, ack uint64, ok bool) {
	q.mu.Lock()
	n, size := 0, 0
	for q.head+n < len(q.frames) {
		b := frameBytes(&q.frames[q.head+n])
		if n > 0 && size+b > maxBytes {
			break
		}
		size += b
		n++
	}
	if n > 0 {
		batch = slices.Clone(q.frames[q.head : q.head+n])
		clear(q.frames[q.head : q.head+n])
		q.head += n
		if q.head == len(q.frames) {
			q.frames, q.head = q.frames[:0], 0
		} else if q.head > 4096 && q.head*2 > len(q.frames) {
			q.frames = append(q.frames[:0:0], q.frames[q.head:]...)
			q.head = 0
		}
	}
	over := 0
	if n > 0 {
		over = q.account(-size)
	}
	if q.ackDue > q.acked {
		ack, q.acked = q.ackDue, q.ackDue
	}
	more := q.head < len(q.frames)
	if !more && q.ackDue == q.acked {
		q.lazy = false
	}
	q.mu.Unlock()
	q.report(-size, over)
	if more {
		q.signal() // the writer loops: there is more
	}
	return batch, ack, n > 0 || ack > 0
}

// requeue puts frames back at the front (messages of a stream that broke
// before they were acknowledged).
func (q *sendQueue) requeue(frames []core.Frame) {
	if len(frames) == 0 {
		return
	}
	size := 0
	for i := range frames {
		size += frameBytes(&frames[i])
	}
	q.mu.Lock()
	q.frames = append(slices.Clone(frames), q.frames[q.head:]...)
	q.head = 0
	over := q.account(size)
	q.mu.Unlock()
	q.report(size, over)
	q.signal()
}

// drain empties the queue and returns what it held.
func (q *sendQueue) drain() []core.Frame {
	q.mu.Lock()
	out := slices.Clone(q.frames[q.head:])
	size := q.bytes
	q.frames, q.head = nil, 0
	over := q.account(-size)
	q.mu.Unlock()
	q.report(-size, over)
	return out
}

// envelope turns a batch into one Envelope: messages and repairs as their
// shared serialized bytes (marshalled once per message, not per peer),
// consecutive announcements of one sequence merged into one range, prune
// sources de-duplicated, the latest digest.
func envelope(batch []core.Frame, ack uint64) *pb.Envelope {
	env := &pb.Envelope{Ack: ack}
	for i := range batch {
		f := &batch[i]
		switch f.Kind {
		case core.FrameMessage:
			if f.Repair {
				env.Repairs = append(env.Repairs, f.Wire)
			} else {
				env.Messages = append(env.Messages, f.Wire)
			}
		case core.FrameIHave:
			env.Ihave = appendRange(env.Ihave, f.Range)
		case core.FrameGraft:
			env.Graft = appendRange(env.Graft, f.Range)
		case core.FramePrune:
			if src := f.Range.GetNode(); !slices.Contains(env.Prune, src) {
				env.Prune = append(env.Prune, src)
			}
		case core.FrameDigest:
			env.Digest = f.Digest
		}
	}
	return env
}

// appendRange appends r, merging it into the last range when it extends
// it. Ranges in frames are shared and never modified, so the envelope
// holds its own copies, which merges may grow.
func appendRange(rs []*pb.SeqRange, r *pb.SeqRange) []*pb.SeqRange {
	if l := len(rs); l > 0 && extends(rs[l-1], r) {
		rs[l-1].Last, rs[l-1].Hops = r.GetLast(), r.GetHops()
		return rs
	}
	return append(rs, &pb.SeqRange{Node: r.GetNode(), Epoch: r.GetEpoch(), First: r.GetFirst(), Last: r.GetLast(), Hops: r.GetHops()})
}

// extends reports whether r continues last: same sequence, starting right
// after it.
func extends(last, r *pb.SeqRange) bool {
	return last.GetNode() == r.GetNode() && last.GetEpoch() == r.GetEpoch() && last.GetLast()+1 == r.GetFirst()
}
