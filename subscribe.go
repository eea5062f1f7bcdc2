package gossip

import (
	"sync"
	"sync/atomic"
)

// DefaultSubscriptionBuffer is the buffer of a Subscription created with 0.
const DefaultSubscriptionBuffer = 1024

// MaxSubscriptionBuffer bounds the buffer a subscriber may ask for.
const MaxSubscriptionBuffer = 1 << 16

// Subscription receives every message its node delivers after Subscribe
// returned, each exactly once, in delivery order — unless it falls behind:
// a subscriber whose buffer is full misses messages instead of slowing the
// node down, and the next Delivery it gets carries the number it missed in
// Delivery.Missed. It is safe for concurrent use.
type Subscription struct {
	n      *GossipNode
	ch     chan Delivery
	missed atomic.Uint64 // total missed
	once   sync.Once

	pending uint64 // missed since the last delivery; guarded by n.subsMu
}

// Subscribe starts a subscription with a buffer of the given number of
// messages (0: DefaultSubscriptionBuffer; at most MaxSubscriptionBuffer).
// Close it when done; it is closed for you when the node closes.
func (n *GossipNode) Subscribe(buffer int) (*Subscription, error) {
	switch {
	case buffer == 0:
		buffer = DefaultSubscriptionBuffer
	case buffer < 0 || buffer > MaxSubscriptionBuffer:
		return nil, &rpcError{err: errSubscriptionBuffer}
	}
	s := &Subscription{n: n, ch: make(chan Delivery, buffer)}
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	if n.subs == nil {
		return nil, asRPCError(ErrClosed)
	}
	n.subs[s] = struct{}{}
	return s, nil
}

// C is the channel of deliveries. It is closed by Close, and when the node
// closes (after the last message it delivered).
func (s *Subscription) C() <-chan Delivery { return s.ch }

// Missed returns how many messages this subscription has missed in all.
func (s *Subscription) Missed() uint64 { return s.missed.Load() }

// Close ends the subscription and closes C. It is idempotent.
func (s *Subscription) Close() {
	s.n.subsMu.Lock()
	defer s.n.subsMu.Unlock()
	if _, ok := s.n.subs[s]; ok {
		delete(s.n.subs, s)
		close(s.ch)
	}
}

// publishToSubscribers hands d to every subscription without blocking.
// It runs on the delivery loop only.
func (n *GossipNode) publishToSubscribers(d Delivery) {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for s := range n.subs {
		d.Missed = s.pending
		select {
		case s.ch <- d:
			s.pending = 0
		default:
			s.pending++
			s.missed.Add(1)
			n.subMissed.Add(1)
		}
	}
}

// closeSubscriptions closes every subscription; later Subscribe calls fail.
func (n *GossipNode) closeSubscriptions() {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	for s := range n.subs {
		close(s.ch)
	}
	n.subs = nil
}

func (n *GossipNode) subscriberCount() int {
	n.subsMu.Lock()
	defer n.subsMu.Unlock()
	return len(n.subs)
}
