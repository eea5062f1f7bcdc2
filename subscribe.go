package gossip

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// DefaultSubscriptionBuffer is the buffer of a Subscription created with 0.
const DefaultSubscriptionBuffer = 1024

// MaxSubscriptionBuffer bounds the buffer a subscriber may ask for.
const MaxSubscriptionBuffer = 1 << 16

// Subscription receives the messages its node delivers, each exactly
// once, in delivery (offset) order, from its start position on — unless
// it falls behind once live: a subscriber whose buffer is full misses
// messages instead of slowing the node down, and the next Delivery it
// gets carries the number it missed in Delivery.Missed. (While it
// replays the log from a past position it is never ahead of its reader:
// the replay waits for it.) With WithSubscriberBytes, a live subscription
// that lets its buffer grow past its share of the node's byte budget is
// cut off instead: C is closed with what was left in it dropped, and Err
// is a *SlowConsumerError naming the offset to resume from. It is safe
// for concurrent use.
type Subscription struct {
	n      *GossipNode
	ch     chan Delivery // the buffer of a Subscription (nil in queue mode)
	qb     *subQueue     // the buffer of a gRPC Subscribe (queue mode; subqueue.go)
	missed atomic.Uint64
	once   sync.Once
	stop   chan struct{} // closed by Close: ends a replay

	pending uint64 // missed since the last delivery; guarded by n.subsMu
	// queue is the size and offset of each delivery sent into ch and not
	// yet known to be received, oldest first; queued is their sum. The
	// sender owns them: the replay while replaying, then n.subsMu.
	queue  []queuedDelivery
	queued int64
	last   uint64 // the last offset sent into ch
	live   bool   // in n.subs (else replaying, and the replay owns ch); guarded by n.subsMu
	err    error  // why a replay ended early; guarded by n.subsMu
}

// Position is where a subscription starts; see FromNow, FromOffset,
// FromTime and FromEarliest.
type Position struct {
	kind   positionKind
	offset uint64
	at     time.Time
}

type positionKind int

const (
	posNow positionKind = iota
	posOffset
	posTime
	posEarliest
)

// FromNow starts with the next message delivered (the default).
func FromNow() Position { return Position{} }

// FromOffset starts at the message with the given log offset (≥ 1): one
// the log no longer retains, or beyond the next one, is ErrOutOfRange.
// The offset right after the last one delivered means "from now".
func FromOffset(o uint64) Position { return Position{kind: posOffset, offset: o} }

// FromTime starts at the first message logged at or after t (from now if
// there is none; from the earliest retained if t is older).
func FromTime(t time.Time) Position { return Position{kind: posTime, at: t} }

// FromEarliest starts at the earliest message the log retains.
func FromEarliest() Position { return Position{kind: posEarliest} }

func (p Position) String() string {
	switch p.kind {
	case posOffset:
		return fmt.Sprintf("offset %d", p.offset)
	case posTime:
		return "time " + p.at.Format(time.RFC3339Nano)
	case posEarliest:
		return "earliest"
	}
	return "now"
}

// Subscribe starts a subscription from now with a buffer of the given
// number of messages (0: DefaultSubscriptionBuffer; at most
// MaxSubscriptionBuffer). Close it when done; it is closed for you when
// the node closes.
func (n *GossipNode) Subscribe(buffer int) (*Subscription, error) {
	return n.SubscribeFrom(buffer, FromNow())
}

// SubscribeFrom starts a subscription at from: the log's retained
// messages from there are replayed, then it continues live, with no gap
// and no duplicate between the two. It is registered when SubscribeFrom
// returns: every message delivered afterwards reaches it.
func (n *GossipNode) SubscribeFrom(buffer int, from Position) (*Subscription, error) {
	s, _, err := n.subscribeAt(buffer, from, false)
	return s, err
}

// subscribeAt is SubscribeFrom; it also returns the offset the next
// message delivered will have. With queued the buffer is a subQueue,
// read with next, instead of a channel.
func (n *GossipNode) subscribeAt(buffer int, from Position, queued bool) (*Subscription, uint64, error) {
	switch {
	case buffer == 0:
		buffer = DefaultSubscriptionBuffer
	case buffer < 0 || buffer > MaxSubscriptionBuffer:
		return nil, 0, &rpcError{err: errSubscriptionBuffer}
	}
	s := &Subscription{n: n, stop: make(chan struct{})}
	if queued {
		s.qb = newSubQueue(buffer)
	} else {
		s.ch = make(chan Delivery, buffer)
	}
	n.closeMu.RLock()
	defer n.closeMu.RUnlock()
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	if n.subs == nil || n.closed {
		return nil, 0, asRPCError(ErrClosed)
	}
	first, _ := n.dlog.Bounds()
	next := n.dispatched + 1 // from now
	switch from.kind {
	case posEarliest:
		next = min(first, next)
	case posOffset:
		switch {
		case from.offset == 0:
			return nil, 0, asRPCError(fmt.Errorf("%w: offsets start at 1", ErrOutOfRange))
		case from.offset < first:
			return nil, 0, asRPCError(fmt.Errorf("%w: offset %d is no longer retained; the earliest available is %d", ErrOutOfRange, from.offset, first))
		case from.offset > next:
			return nil, 0, asRPCError(fmt.Errorf("%w: offset %d is beyond the log; the next offset is %d", ErrOutOfRange, from.offset, next))
		}
		next = from.offset
	case posTime:
		o, err := n.dlog.FindTime(from.at)
		if err != nil {
			return nil, 0, asRPCError(err)
		}
		next = min(max(o, first), next)
	}
	if next > n.dispatched {
		s.live = true
		n.subs[s] = struct{}{}
		return s, n.dispatched + 1, nil
	}
	n.wg.Add(1)
	go s.replay(next)
	return s, n.dispatched + 1, nil
}

// replayBatch is how many records a replay reads at once.
const replayBatch = 256

// replay sends the logged messages from offset next on, then joins the
// live subscriptions when it has caught up (under subsMu, so that no
// message falls between the two). It owns s.ch until then.
func (s *Subscription) replay(next uint64) {
	n := s.n
	defer n.wg.Done()
	for {
		n.subsMu.Lock()
		if n.subs != nil && next > n.dispatched {
			select {
			case <-s.stop:
			default:
				s.live = true
				n.subs[s] = struct{}{}
				n.subsMu.Unlock()
				return
			}
		}
		head, closed := n.dispatched, n.subs == nil
		n.subsMu.Unlock()
		if closed {
			s.endReplay(nil)
			return
		}
		recs, err := n.dlog.Read(next, head, replayBatch)
		if err == nil && (len(recs) == 0 || recs[0].Offset != next) {
			first, _ := n.dlog.Bounds()
			err = fmt.Errorf("%w: the log dropped offset %d (retention) before this subscriber read it; the earliest available is %d", ErrOutOfRange, next, first)
		}
		if err != nil {
			s.endReplay(err)
			return
		}
		for i := range recs {
			d := deliveryOf(&recs[i])
			if s.qb != nil {
				if !s.push(d) {
					s.endReplay(nil)
					return
				}
				continue
			}
			s.reconcile()
			select {
			case s.ch <- d:
				s.sent(d.Offset, deliverySize(&d))
			case <-s.stop:
				s.endReplay(nil)
				return
			case <-n.ctx.Done():
				s.endReplay(nil)
				return
			}
		}
		next = recs[len(recs)-1].Offset + 1
	}
}

func (s *Subscription) endReplay(err error) {
	s.n.subsMu.Lock()
	s.err = err
	s.release()
	s.n.subsMu.Unlock()
	s.closeBuffer()
}

// C is the channel of deliveries. It is closed by Close, when the node
// closes (after the last message it delivered), when a replay fails, and
// when the subscription is cut off as a slow consumer (WithSubscriberBytes:
// the deliveries still buffered are dropped first); Err says why. What C
// holds is accounted as it leaves: receiving from C is what gives the
// bytes back.
func (s *Subscription) C() <-chan Delivery { return s.ch }

// Err is why C was closed early: a replay the log's retention overtook
// (ErrOutOfRange), a log read error, or a cut-off as a slow consumer (a
// *SlowConsumerError, errors.Is ErrSlowConsumer); nil otherwise.
func (s *Subscription) Err() error {
	s.n.subsMu.Lock()
	defer s.n.subsMu.Unlock()
	return s.err
}

// Missed returns how many messages this subscription has missed in all.
func (s *Subscription) Missed() uint64 { return s.missed.Load() }

// Close ends the subscription and closes C (a replay closes it as it
// stops). It is idempotent.
func (s *Subscription) Close() {
	s.once.Do(func() { close(s.stop) })
	s.n.subsMu.Lock()
	defer s.n.subsMu.Unlock()
	if _, ok := s.n.subs[s]; ok {
		delete(s.n.subs, s)
		s.release()
		s.closeBuffer()
	}
}

// publishToSubscribers hands d to every live subscription without
// blocking, and records its offset as dispatched. It runs on the
// committing goroutine only, in offset order. With WithSubscriberBytes a
// subscription that already holds deliveries and would go over its share
// of the budget with d is cut off instead (cutOff).
func (n *GossipNode) publishToSubscribers(d Delivery) {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	n.dispatched = max(n.dispatched, d.Offset)
	size := deliverySize(&d)
	var share int64
	if n.subBudget > 0 && len(n.subs) > 0 {
		share = n.subBudget / int64(len(n.subs))
	}
	for s := range n.subs {
		s.reconcile()
		if share > 0 && s.queued > 0 && s.queued+size > share {
			n.cutOff(s, share)
			continue
		}
		d.Missed = s.pending
		if s.offer(d) {
			s.pending = 0
			s.sent(d.Offset, size)
		} else {
			s.pending++
			s.missed.Add(1)
			n.subMissed.Add(1)
		}
	}
}

// ErrSlowConsumer is why a subscription was cut off: it held more bytes
// than its share of the node's subscriber byte budget
// (WithSubscriberBytes). Subscription.Err returns a *SlowConsumerError,
// which wraps it. ResourceExhausted at the RPC boundary.
var ErrSlowConsumer = errors.New("slow consumer")

// SlowConsumerError says how far behind a cut-off subscription was, and
// where to resume without a gap: SubscribeFrom(FromOffset(Resume)) gets
// everything it did not receive (while the log retains it).
type SlowConsumerError struct {
	Queued      int64  // bytes queued for it when it was cut off
	Share       int64  // its share: Budget / live subscriptions then
	Budget      int64  // WithSubscriberBytes
	Subscribers int    // live subscriptions then, it included
	Resume      uint64 // the offset of the first delivery it did not receive
}

func (e *SlowConsumerError) Error() string {
	return fmt.Sprintf("slow consumer: %d bytes queued for this subscriber, over its share of %d bytes (the subscriber byte budget, --subscriber-bytes, of %d shared by %d subscribers); its buffer was dropped: resume with from_offset=%d to get what you missed", e.Queued, e.Share, e.Budget, e.Subscribers, e.Resume)
}

func (e *SlowConsumerError) Unwrap() error { return ErrSlowConsumer }

// queuedDelivery is one delivery in a subscription's channel, as accounted.
type queuedDelivery struct {
	offset uint64
	size   int64
}

// deliveryOverhead is what a Delivery costs in a channel slot besides
// the bytes of its strings.
const deliveryOverhead = int64(unsafe.Sizeof(Delivery{}))

// deliverySize is the bytes a delivery is accounted for in subscriber
// buffers: its struct and its strings. Subscriptions share the payload of
// a message, so the sum over them is an upper bound of what they keep.
func deliverySize(d *Delivery) int64 {
	return deliveryOverhead + int64(len(d.Hash)+len(d.Origin)+len(d.From)+len(d.Payload))
}

// sent accounts a delivery just sent into s.ch; the caller owns s.queue.
func (s *Subscription) sent(offset uint64, size int64) {
	s.queue = append(s.queue, queuedDelivery{offset, size})
	s.queued += size
	s.last = offset
	s.n.subBytes.Add(size)
}

// reconcile releases the deliveries the reader has taken from s.ch since
// the last call: the channel is FIFO, so they are the oldest of s.queue
// beyond len(s.ch). The caller owns s.queue.
func (s *Subscription) reconcile() {
	taken := len(s.queue) - s.buffered()
	if taken <= 0 {
		return
	}
	var freed int64
	for _, q := range s.queue[:taken] {
		freed += q.size
	}
	s.queue = s.queue[taken:]
	if len(s.queue) == 0 {
		s.queue = nil // let the backing array go
	}
	s.queued -= freed
	s.n.subBytes.Add(-freed)
}

// release drops the accounting of what is left in s.ch (the subscription
// has ended: its reader may still drain it, the node no longer counts it).
func (s *Subscription) release() {
	s.n.subBytes.Add(-s.queued)
	s.queue, s.queued = nil, 0
}

// cutOff ends the live subscription s, a slow consumer: it leaves the
// live set, the deliveries in its buffer are dropped (their memory goes
// back at once, whether or not its reader ever reads again), and Err
// says why and where to resume. The caller holds n.subsMu.
func (n *GossipNode) cutOff(s *Subscription, share int64) {
	queued := s.queued
	delete(n.subs, s)
	dropped := s.drop()
	// The reader took the oldest; the first we dropped is where to resume.
	resume := s.last + 1
	if dropped > 0 && dropped <= len(s.queue) {
		resume = s.queue[len(s.queue)-dropped].offset
	}
	s.err = &SlowConsumerError{Queued: queued, Share: share, Budget: n.subBudget, Subscribers: len(n.subs) + 1, Resume: resume}
	s.release()
	s.closeBuffer()
	n.slowConsumers.Add(1)
	n.logger.Warn("subscriber cut off: slow consumer", "queued_bytes", queued, "share_bytes", share, "dropped", dropped, "resume_offset", resume)
}

// subscriberBytes is the bytes the live subscriptions' buffers hold, as
// accounted (deliverySize), after releasing what readers have taken.
func (n *GossipNode) subscriberBytes() int64 {
	n.subsMu.Lock()
	for s := range n.subs {
		s.reconcile()
	}
	n.subsMu.Unlock()
	return n.subBytes.Load()
}

// closeSubscriptions closes every subscription; later Subscribe calls fail.
func (n *GossipNode) closeSubscriptions() {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for s := range n.subs {
		s.release()
		s.closeBuffer()
	}
	n.subs = nil
}

func (n *GossipNode) subscriberCount() int {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	return len(n.subs)
}
