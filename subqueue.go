package gossip

import "sync"

// subQueue is the buffer of a subscription served over gRPC (queue
// mode): a FIFO that holds what it holds and no more — unlike a channel,
// whose slots are all allocated when it is made (65,536 of them, 8.9 MB,
// for a subscriber asking for the largest buffer, before any message) —
// up to capacity deliveries, bounded in bytes by the node's subscriber
// byte budget (WithSubscriberBytes). The gRPC handler reads it with next.
// Its accounting (Subscription.queue, queued) is the same as a channel's:
// reconcile learns from len what the reader took.
type subQueue struct {
	mu       sync.Mutex
	items    []Delivery // items[head:] are buffered, oldest first
	head     int
	capacity int  // the most it holds: the subscription's buffer
	ended    bool // closed: no more offers; next returns errEnded once empty

	ready chan struct{} // 1 slot: something to read, or ended
	space chan struct{} // 1 slot: the reader took one (a replay waits on it)
}

func newSubQueue(capacity int) *subQueue {
	return &subQueue{capacity: capacity, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// len is how many deliveries are buffered.
func (q *subQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) - q.head
}

// offer appends d unless the queue is full or ended.
func (q *subQueue) offer(d Delivery) bool {
	q.mu.Lock()
	if q.ended || len(q.items)-q.head >= q.capacity {
		q.mu.Unlock()
		return false
	}
	q.items = append(q.items, d)
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// take removes the oldest delivery; ok is false when there is none.
// Emptied, a large backing array is let go; a long-consumed head is
// compacted away.
func (q *subQueue) take() (d Delivery, ok, ended bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.head == len(q.items) {
		return Delivery{}, false, q.ended
	}
	d = q.items[q.head]
	q.items[q.head] = Delivery{}
	q.head++
	switch {
	case q.head == len(q.items):
		q.head = 0
		if cap(q.items) > 1024 {
			q.items = nil
		} else {
			q.items = q.items[:0]
		}
	case q.head >= 1024 && 2*q.head >= len(q.items):
		n := copy(q.items, q.items[q.head:])
		clear(q.items[n:])
		q.items, q.head = q.items[:n], 0
	}
	return d, true, false
}

// drop empties the queue, returning how many it held.
func (q *subQueue) drop() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.items) - q.head
	q.items, q.head = nil, 0
	return n
}

func (q *subQueue) end() {
	q.mu.Lock()
	q.ended = true
	q.mu.Unlock()
	signal(q.ready)
}

// The buffer operations of a Subscription, channel or queue.

// offer hands d to the buffer without blocking; false: full.
func (s *Subscription) offer(d Delivery) bool {
	if s.qb != nil {
		return s.qb.offer(d)
	}
	select {
	case s.ch <- d:
		return true
	default:
		return false
	}
}

// buffered is how many deliveries the buffer holds.
func (s *Subscription) buffered() int {
	if s.qb != nil {
		return s.qb.len()
	}
	return len(s.ch)
}

// drop empties the buffer (the caller is its only sender), returning how
// many deliveries it dropped; its reader may take some meanwhile.
func (s *Subscription) drop() int {
	if s.qb != nil {
		return s.qb.drop()
	}
	dropped := 0
	for len(s.ch) > 0 {
		select {
		case <-s.ch:
			dropped++
		default:
		}
	}
	return dropped
}

// closeBuffer ends the buffer: C is closed, or next returns errEnded
// once the queue is empty.
func (s *Subscription) closeBuffer() {
	if s.qb != nil {
		s.qb.end()
		return
	}
	close(s.ch)
}

// push is the replay's send in queue mode: it waits for room (a replay
// is never ahead of its reader); false: the subscription or the node
// closed meanwhile. The replay owns the accounting.
func (s *Subscription) push(d Delivery) bool {
	for {
		s.reconcile()
		if s.qb.offer(d) {
			s.sent(d.Offset, deliverySize(&d))
			return true
		}
		select {
		case <-s.qb.space:
		case <-s.stop:
			return false
		case <-s.n.ctx.Done():
			return false
		}
	}
}

// errEnded is next's error once a queue-mode subscription has ended; Err
// says why.
var errEnded = ErrClosed

// next returns the oldest buffered delivery of a queue-mode subscription,
// waiting for one until a or b is done (then errEnded) or it ends.
func (s *Subscription) next(a, b <-chan struct{}) (Delivery, error) {
	q := s.qb
	for {
		d, ok, ended := q.take()
		if ok {
			signal(q.space)
			return d, nil
		}
		if ended {
			return Delivery{}, errEnded
		}
		select {
		case <-q.ready:
		case <-a:
			return Delivery{}, errEnded
		case <-b:
			return Delivery{}, errEnded
		}
	}
}
