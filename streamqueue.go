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

	total *queueTotal // node-wide byte count (saturation); may be nil
}

// queueTotal is the node-wide count of queued bytes, with a channel closed
// (and replaced) each time it drops below the saturation limit, for
// publishers waiting for room.
type queueTotal struct {
	mu    sync.Mutex
	bytes int
	limit int
	room  chan struct{} // closed when bytes < limit after being above
}

func newQueueTotal(limit int) *queueTotal {
	return &queueTotal{limit: limit, room: make(chan struct{})}
}

func (t *queueTotal) add(d int) {
	t.mu.Lock()
	was := t.bytes
	t.bytes += d
	if was >= t.limit && t.bytes < t.limit {
		close(t.room)
		t.room = make(chan struct{})
	}
	t.mu.Unlock()
}

// saturated reports whether the limit is reached, and the channel that is
// closed when there is room again.
func (t *queueTotal) saturated() (bool, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bytes >= t.limit, t.room
}

func (t *queueTotal) load() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.bytes
}

func newSendQueue(total *queueTotal) *sendQueue {
	return &sendQueue{wake: make(chan struct{}, 1), total: total}
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

// push queues f, degrading an eager message to an announcement past soft
// bytes and dropping anything past 4×soft. Repairs (answers to grafts and
// digests) are not degraded: the asker retries them.
func (q *sendQueue) push(f core.Frame, soft int) pushResult {
	res := pushed
	q.mu.Lock()
	if q.bytes >= soft && f.Kind == core.FrameMessage && !f.Repair && f.Range != nil {
		f = core.Frame{Kind: core.FrameIHave, Range: f.Range}
		res = deferred
	}
	b := frameBytes(&f)
	if q.bytes+b > 4*soft && q.bytes > 0 {
		q.mu.Unlock()
		return dropped
	}
	q.frames = append(q.frames, f)
	q.bytes += b
	q.mu.Unlock()
	if q.total != nil {
		q.total.add(b)
	}
	q.signal()
	return res
}

// owe records that the cumulative ACK ack is due and wakes the writer.
func (q *sendQueue) owe(ack uint64) {
	q.mu.Lock()
	q.ackDue = ack
	q.mu.Unlock()
	q.signal()
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
		q.bytes -= size
		if q.head == len(q.frames) {
			q.frames, q.head = q.frames[:0], 0
		} else if q.head > 4096 && q.head*2 > len(q.frames) {
			q.frames = append(q.frames[:0:0], q.frames[q.head:]...)
			q.head = 0
		}
	}
	if q.ackDue > q.acked {
		ack, q.acked = q.ackDue, q.ackDue
	}
	more := q.head < len(q.frames)
	q.mu.Unlock()
	if q.total != nil && size > 0 {
		q.total.add(-size)
	}
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
	q.bytes += size
	q.mu.Unlock()
	if q.total != nil {
		q.total.add(size)
	}
	q.signal()
}

// drain empties the queue and returns what it held.
func (q *sendQueue) drain() []core.Frame {
	q.mu.Lock()
	out := slices.Clone(q.frames[q.head:])
	size := q.bytes
	q.frames, q.head, q.bytes = nil, 0, 0
	q.mu.Unlock()
	if q.total != nil && size > 0 {
		q.total.add(-size)
	}
	return out
}

func (q *sendQueue) len() (frames, bytes int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames) - q.head, q.bytes
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
	if l := len(rs); l > 0 {
		last := rs[l-1]
		if last.GetNode() == r.GetNode() && last.GetEpoch() == r.GetEpoch() && last.GetLast()+1 == r.GetFirst() {
			last.Last = r.GetLast()
			return rs
		}
	}
	return append(rs, &pb.SeqRange{Node: r.GetNode(), Epoch: r.GetEpoch(), First: r.GetFirst(), Last: r.GetLast()})
}
