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
	mu          sync.Mutex
	first, last *qchunk // the buffered deliveries: first.items[head:] … last.items[:tail]
	head, tail  int
	n           int  // how many are buffered
	capacity    int  // the most it holds: the subscription's buffer
	ended       bool // closed: no more offers; take reports ended once empty

	ready chan struct{} // 1 slot: something to read, or ended
	space chan struct{} // 1 slot: the reader took one (a replay waits on it)
}

// qchunkSize is the deliveries of one chunk (about 35 KB): the queue
// grows and shrinks by chunks, so it never copies what it holds and an
// emptied chunk goes back at once.
const qchunkSize = 256

type qchunk struct {
	items [qchunkSize]Delivery
	next  *qchunk
}

func newSubQueue(capacity int) *subQueue {
	return &subQueue{capacity: capacity, ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

// len is how many deliveries are buffered.
func (q *subQueue) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// offer appends d unless the queue is full or ended.
func (q *subQueue) offer(d Delivery) bool {
	q.mu.Lock()
	if q.ended || q.n >= q.capacity {
		q.mu.Unlock()
		return false
	}
	if q.last == nil || q.tail == qchunkSize {
		c := &qchunk{}
		if q.last == nil {
			q.first, q.head = c, 0
		} else {
			q.last.next = c
		}
		q.last, q.tail = c, 0
	}
	q.last.items[q.tail] = d
	q.tail++
	q.n++
	q.mu.Unlock()
	signal(q.ready)
	return true
}

// take removes the oldest delivery; ok is false when there is none.
func (q *subQueue) take() (d Delivery, ok, ended bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return Delivery{}, false, q.ended
	}
	d = q.first.items[q.head]
	q.first.items[q.head] = Delivery{}
	q.head++
	q.n--
	switch {
	case q.n == 0:
		q.first, q.last, q.head, q.tail = nil, nil, 0, 0
	case q.head == qchunkSize:
		q.first, q.head = q.first.next, 0
	}
	return d, true, false
}

// drop empties the queue, returning how many it held.
func (q *subQueue) drop() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.n
	q.first, q.last, q.head, q.tail, q.n = nil, nil, 0, 0, 0
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
