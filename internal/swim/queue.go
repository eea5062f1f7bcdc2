package swim

// queue holds the updates this node still has to piggyback, like
// memberlist's TransmitLimitedQueue: one entry per member (a newer update
// replaces an older one), each sent at most limit times, those sent the
// fewest times first and, among them, the newest first (so fresh news,
// such as a suspicion, is not stuck behind a backlog of old joins).
//
// Entries live in buckets by transmit count; a bucket is a stack. Taking
// an update costs O(1), so one message costs O(MaxPiggyback) whatever the
// queue's length.
type queue struct {
	buckets [][]*qitem // buckets[t]: entries sent t times; replaced ones are skipped lazily
	byID    map[string]*qitem
	slots   int // entries in buckets, replaced ones included
}

type qitem struct {
	u         Update
	transmits int
	replaced  bool
}

func newQueue() queue { return queue{byID: make(map[string]*qitem)} }

// push queues u, replacing any pending update about the same member.
func (q *queue) push(u Update) {
	if old := q.byID[u.ID]; old != nil {
		old.replaced = true
	}
	it := &qitem{u: u}
	q.byID[u.ID] = it
	if len(q.buckets) == 0 {
		q.buckets = append(q.buckets, nil)
	}
	q.buckets[0] = append(q.buckets[0], it)
	q.slots++
	if q.slots > 2*len(q.byID)+64 {
		q.compact()
	}
}

// take returns up to max updates to send now and counts the transmission;
// an update sent limit times is dropped.
func (q *queue) take(max, limit int) []Update {
	var out []Update
	var moved []*qitem
	for t := 0; t < len(q.buckets) && len(out) < max; t++ {
		b := q.buckets[t]
		for len(b) > 0 && len(out) < max {
			it := b[len(b)-1]
			b[len(b)-1] = nil
			b = b[:len(b)-1]
			q.slots--
			if it.replaced {
				continue
			}
			if it.transmits >= limit { // the limit shrank with the cluster
				delete(q.byID, it.u.ID)
				continue
			}
			out = append(out, it.u)
			it.transmits++
			if it.transmits >= limit {
				delete(q.byID, it.u.ID)
				continue
			}
			moved = append(moved, it)
		}
		q.buckets[t] = b
	}
	for _, it := range moved {
		for len(q.buckets) <= it.transmits {
			q.buckets = append(q.buckets, nil)
		}
		q.buckets[it.transmits] = append(q.buckets[it.transmits], it)
		q.slots++
	}
	return out
}

// compact drops replaced entries from the buckets.
func (q *queue) compact() {
	q.slots = 0
	for t, b := range q.buckets {
		kept := b[:0]
		for _, it := range b {
			if !it.replaced {
				kept = append(kept, it)
			}
		}
		clear(b[len(kept):])
		q.buckets[t] = kept
		q.slots += len(kept)
	}
}

// len is the number of pending updates.
func (q *queue) len() int { return len(q.byID) }

// transmits reports how many times the pending update about id was sent,
// and whether one is pending.
func (q *queue) transmits(id string) (int, bool) {
	it := q.byID[id]
	if it == nil {
		return 0, false
	}
	return it.transmits, true
}
