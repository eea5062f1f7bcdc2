package gossip

import (
	"sync"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// conn is one stream's protocol state (core.Stream: the queue of frames,
// how they become envelopes, ACKs) with what the runtime adds: a lock, so
// that producers (any goroutine) and the stream's writer and reader can
// share it, the writer's wake-up, and the node-wide byte accounting that
// decides saturation. The protocol's decisions are core.Stream's.
type conn struct {
	peer string
	wake chan struct{} // the writer's: frames to send

	mu      sync.Mutex
	st      *core.Stream
	link    bool // an outbound link: counts in total.links
	over    bool // st.Over(), as last reported to total
	drained bool // drain ran: the conn takes no more frames

	total *queueTotal
}

func newConn(peer string, total *queueTotal, soft int, track bool) *conn {
	return &conn{peer: peer, wake: make(chan struct{}, 1), st: core.NewStream(soft, track), total: total}
}

// do runs f on the stream state under the lock and reports the change of
// queued bytes and of the over-the-soft-bound state to the node's total.
func (c *conn) do(f func(*core.Stream)) {
	c.mu.Lock()
	before := c.st.Bytes()
	f(c.st)
	delta := c.st.Bytes() - before
	overDelta := 0
	if now := c.st.Over(); now != c.over {
		c.over = now
		if c.link {
			overDelta = 1
			if !now {
				overDelta = -1
			}
		}
	}
	c.mu.Unlock()
	if delta != 0 || overDelta != 0 {
		c.total.change(delta, 0, overDelta)
	}
}

func (c *conn) signal() { signal(c.wake) }

// queuedBytes is the bytes queued on the stream.
func (c *conn) queuedBytes() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Bytes()
}

// signal wakes whoever waits on ch (capacity 1) without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues f and wakes the writer unless f is lazy (wake false). ok is
// false when the conn was drained (its stream is gone for good): f was
// not queued, and the caller decides where it goes.
func (c *conn) push(f core.Frame) (res core.PushResult, wake, ok bool) {
	c.do(func(s *core.Stream) {
		if ok = !c.drained; ok {
			res, wake = s.Push(f)
		}
	})
	if wake {
		c.signal()
	}
	return res, wake, ok
}

// next takes the next envelope to send, telling the peer of the
// congestion known until busy.
func (c *conn) next(now, busy time.Time) (env *pb.Envelope, ok bool) {
	var more bool
	c.do(func(s *core.Stream) { env, more, ok = s.Next(now, batchBytes, busy) })
	if more {
		c.signal()
	}
	return env, ok
}

// flush wakes the writer if lazy frames or an ACK are waiting.
func (c *conn) flush() {
	c.mu.Lock()
	due := c.st.Flush()
	c.mu.Unlock()
	if due {
		c.signal()
	}
}

// register counts the conn as an outbound link of the node (for
// saturation); unregister takes it back.
func (c *conn) register() {
	c.mu.Lock()
	c.link = true
	over := 0
	if c.over {
		over = 1
	}
	c.mu.Unlock()
	c.total.change(0, 1, over)
}

func (c *conn) unregister() {
	c.mu.Lock()
	if !c.link {
		c.mu.Unlock()
		return
	}
	c.link = false
	over := 0
	if c.over {
		over = -1
	}
	c.mu.Unlock()
	c.total.change(0, -1, over)
}

// drain empties the conn for good and returns what it held; later pushes
// are refused (push's ok).
func (c *conn) drain() []core.Frame {
	var out []core.Frame
	c.do(func(s *core.Stream) { out, c.drained = s.Drain(), true })
	return out
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

// roomSignal wakes publishers waiting for the node to stop being
// congested: wait returns a channel that signal closes.
type roomSignal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (r *roomSignal) wait() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch == nil {
		r.ch = make(chan struct{})
	}
	return r.ch
}

func (r *roomSignal) signal() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ch != nil {
		close(r.ch)
		r.ch = nil
	}
}
