package sim

import (
	"math"
	"slices"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
)

// Report is the outcome of one run. Everything but Perf is a function of
// the Scenario alone.
type Report struct {
	Scenario Scenario        `json:"scenario"`
	Links    int             `json:"links"`      // directed neighbour links
	Live     int             `json:"live_nodes"` // nodes not crashed at the end
	Messages []MessageResult `json:"messages"`
	Summary  Summary         `json:"summary"`
	Counters core.Counters   `json:"counters"` // summed over every node
	Storage  StorageSummary  `json:"storage"`  // at the end of the run
	Perf     Perf            `json:"perf"`
}

// MessageResult is what happened to one message. The nodes expected to
// deliver it are the Reachable ones: live at the end, and connected to the
// origin through live nodes (following link directions). A partition does
// not shrink the expectation: what it prevents shows as Missed.
type MessageResult struct {
	Hash        string        `json:"hash"`
	Origin      int           `json:"origin"`
	PublishedAt time.Duration `json:"published_at_ns"`
	Reachable   int           `json:"reachable"` // the origin included
	Delivered   int           `json:"delivered"` // reachable nodes that delivered it
	Missed      int           `json:"missed"`    // reachable nodes that did not
	// Outside counts live nodes outside Reachable that delivered it anyway
	// (possible when nodes crash during the run).
	Outside int `json:"outside"`
	// T50, T99 and T100 are the times from publish until 50%, 99% and 100%
	// of the Reachable nodes had it; -1 when that never happened. TLast is
	// the time until the last delivery among them.
	T50   time.Duration `json:"t50_ns"`
	T99   time.Duration `json:"t99_ns"`
	T100  time.Duration `json:"t100_ns"`
	TLast time.Duration `json:"tlast_ns"`
	// MaxHops is the largest hop count of a first receipt: the number of
	// rounds the push took. MeanHops is the mean over Delivered.
	MaxHops  int     `json:"max_hops"`
	MeanHops float64 `json:"mean_hops"`
}

// Dist summarises a time over the messages: median, 99th percentile and
// maximum, by nearest rank. A message that never reached the threshold
// counts as later than every other (Never of them); a statistic that falls
// on one of those is -1.
type Dist struct {
	P50   time.Duration `json:"p50_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
	Never int           `json:"never"`
}

// IntDist summarises a count over the messages.
type IntDist struct {
	P50 int `json:"p50"`
	Max int `json:"max"`
}

// Summary aggregates the messages and the nodes' counters.
type Summary struct {
	T50   Dist    `json:"t50"`
	T99   Dist    `json:"t99"`
	T100  Dist    `json:"t100"`
	TLast Dist    `json:"tlast"`
	Hops  IntDist `json:"rounds"` // of MaxHops
	// MeanHops is the mean hop count of every first receipt.
	MeanHops float64 `json:"mean_hops"`

	Expected      int     `json:"expected"`       // Σ Reachable
	Delivered     int     `json:"delivered"`      // Σ Delivered
	DeliveryRatio float64 `json:"delivery_ratio"` // Delivered / Expected
	// MissedMin, MissedMean and MissedMax describe Missed over messages;
	// Incomplete is how many messages missed someone.
	MissedMin  int     `json:"missed_min"`
	MissedMean float64 `json:"missed_mean"`
	MissedMax  int     `json:"missed_max"`
	Incomplete int     `json:"incomplete"`

	// Sends is every send attempt (Counters.Sent: first attempts and
	// retries); Deliveries every first receipt over the network (publishes
	// excluded); CopiesPerDelivery = Sends / Deliveries, the network's cost
	// of one delivery. Arrivals are the copies that reached a live node.
	Sends             uint64  `json:"sends"`
	Arrivals          uint64  `json:"arrivals"`
	Deliveries        uint64  `json:"deliveries"`
	CopiesPerDelivery float64 `json:"copies_per_delivery"`
	Retries           uint64  `json:"retries"`
	GaveUp            uint64  `json:"gave_up"`
	// DuplicateDeliveries counts first receipts of a message a node had
	// already delivered: the core's at-most-once promise says 0.
	DuplicateDeliveries uint64 `json:"duplicate_deliveries"`

	// VirtualEnd is the virtual time of the last event other than a decay
	// tick: when the network fell silent. Truncated is set
	// when the run stopped at MaxTime with events left.
	VirtualEnd time.Duration `json:"virtual_end_ns"`
	Truncated  bool          `json:"truncated"`
}

// StorageSummary sums core.StorageStats over the live nodes.
type StorageSummary struct {
	Active       int           `json:"active"`
	Seen         int           `json:"seen"`
	SeenEvicted  uint64        `json:"seen_evicted"`
	RetiredEarly uint64        `json:"retired_early"`
	TTLMin       time.Duration `json:"ttl_min_ns"`
	TTLMean      time.Duration `json:"ttl_mean_ns"`
	TTLMax       time.Duration `json:"ttl_max_ns"`
	DiameterMin  int           `json:"diameter_min"`
	DiameterMax  int           `json:"diameter_max"`
}

// Perf is how the run went on this machine; it varies between runs.
type Perf struct {
	Wall         time.Duration `json:"wall_ns"`
	SetupWall    time.Duration `json:"setup_wall_ns"` // graph and nodes
	RunWall      time.Duration `json:"run_wall_ns"`   // the event loop
	Events       uint64        `json:"events"`
	EventsPerSec float64       `json:"events_per_sec"`
	Memory       *Memory       `json:"memory,omitempty"`
}

// Memory is the heap the nodes hold (live bytes after a full collection),
// per node, at three moments. The simulator's own structures (graph,
// bookkeeping) are measured before the nodes exist and subtracted.
type Memory struct {
	SimBytes int64 `json:"sim_bytes"` // the simulator's own heap before the nodes
	// IdlePerNode: a node with its neighbours, before any message.
	IdlePerNode float64 `json:"idle_per_node"`
	// EndPerNode: right after the run, with ActiveAtEnd hot entries and
	// SeenAtEnd remembered ids over all nodes.
	EndPerNode float64 `json:"end_per_node"`
	// DecayedPerNode: after MaxTTL more, when only ids are remembered.
	DecayedPerNode float64 `json:"decayed_per_node"`
	ActiveAtEnd    int     `json:"active_at_end"`
	SeenAtEnd      int     `json:"seen_at_end"`
	// PerHotEntry = (End − Decayed) / ActiveAtEnd: a hot entry's cost
	// beyond its id. PerRememberedID = (Decayed − Idle) / remembered ids.
	PerHotEntry     float64 `json:"per_hot_entry"`
	PerRememberedID float64 `json:"per_remembered_id"`
	// SysBytes is the memory the process got from the OS (≈ its peak).
	SysBytes int64 `json:"sys_bytes"`
}

// report computes the Report of a finished run (without Perf).
func (e *engine) report() *Report {
	r := &Report{Scenario: e.sc}
	for _, nb := range e.g {
		r.Links += len(nb)
	}
	for i := range e.nodes {
		if !e.crashed[i] {
			r.Live++
		}
	}
	dead := func(i int) bool { return e.willCrash[i] }
	reach := map[int32][]int{}
	var hopsSum, hopsN float64
	var t50, t99, t100, tlast []time.Duration
	var maxHops []int
	var published uint64
	s := &r.Summary
	for m, msg := range e.msgs {
		if e.recvAt[m][msg.origin] >= 0 {
			published++
		}
		set, ok := reach[msg.origin]
		if !ok {
			set = e.g.Reachable(int(msg.origin), dead)
			reach[msg.origin] = set
		}
		mr := MessageResult{Hash: msg.hash, Origin: int(msg.origin), PublishedAt: time.Duration(msg.at), Reachable: len(set)}
		times := make([]int64, 0, len(set))
		var mh float64
		for _, i := range set {
			if at := e.recvAt[m][i]; at >= 0 {
				times = append(times, at-msg.at)
				h := e.hops[m][i]
				mr.MaxHops = max(mr.MaxHops, int(h))
				mh += float64(h)
			}
		}
		mr.Delivered = len(times)
		mr.Missed = mr.Reachable - mr.Delivered
		if mr.Delivered > 0 {
			mr.MeanHops = mh / float64(mr.Delivered)
		}
		hopsSum += mh
		hopsN += float64(mr.Delivered)
		for i := range e.nodes {
			if e.recvAt[m][i] >= 0 && !e.willCrash[i] {
				mr.Outside++
			}
		}
		mr.Outside -= mr.Delivered
		slices.Sort(times)
		mr.T50 = reachedBy(times, len(set), 0.50)
		mr.T99 = reachedBy(times, len(set), 0.99)
		mr.T100 = reachedBy(times, len(set), 1)
		mr.TLast = -1
		if len(times) > 0 {
			mr.TLast = time.Duration(times[len(times)-1])
		}
		r.Messages = append(r.Messages, mr)
		t50, t99, t100, tlast = append(t50, mr.T50), append(t99, mr.T99), append(t100, mr.T100), append(tlast, mr.TLast)
		maxHops = append(maxHops, mr.MaxHops)

		s.Expected += mr.Reachable
		s.Delivered += mr.Delivered
		if mr.Missed > 0 {
			s.Incomplete++
		}
		if m == 0 || mr.Missed < s.MissedMin {
			s.MissedMin = mr.Missed
		}
		s.MissedMax = max(s.MissedMax, mr.Missed)
		s.MissedMean += float64(mr.Missed) / float64(len(e.msgs))
	}
	s.T50, s.T99, s.T100, s.TLast = dist(t50), dist(t99), dist(t100), dist(tlast)
	slices.Sort(maxHops)
	s.Hops = IntDist{P50: maxHops[rank(len(maxHops), 0.5)], Max: maxHops[len(maxHops)-1]}
	if hopsN > 0 {
		s.MeanHops = hopsSum / hopsN
	}
	if s.Expected > 0 {
		s.DeliveryRatio = float64(s.Delivered) / float64(s.Expected)
	}

	first := true
	var ttlSum time.Duration
	for i, n := range e.nodes {
		addCounters(&r.Counters, n.Counters())
		if e.crashed[i] {
			continue
		}
		st := n.Storage().Stats()
		r.Storage.Active += st.Active
		r.Storage.Seen += st.Seen
		r.Storage.SeenEvicted += st.SeenEvicted
		r.Storage.RetiredEarly += st.RetiredEarly
		ttlSum += st.TTL
		if first {
			r.Storage.TTLMin, r.Storage.TTLMax = st.TTL, st.TTL
			r.Storage.DiameterMin, r.Storage.DiameterMax = st.Diameter, st.Diameter
			first = false
		}
		r.Storage.TTLMin = min(r.Storage.TTLMin, st.TTL)
		r.Storage.TTLMax = max(r.Storage.TTLMax, st.TTL)
		r.Storage.DiameterMin = min(r.Storage.DiameterMin, st.Diameter)
		r.Storage.DiameterMax = max(r.Storage.DiameterMax, st.Diameter)
	}
	if r.Live > 0 {
		r.Storage.TTLMean = ttlSum / time.Duration(r.Live)
	}

	c := r.Counters
	s.Sends = c.Sent
	s.Arrivals = e.arrivals
	s.Deliveries = c.Delivered - published
	if s.Deliveries > 0 {
		s.CopiesPerDelivery = float64(s.Sends) / float64(s.Deliveries)
	}
	s.Retries = c.Retries
	s.GaveUp = c.GaveUp
	s.DuplicateDeliveries = e.dupDeliveries
	s.VirtualEnd = time.Duration(e.lastActive)
	s.Truncated = e.truncated
	return r
}

// reachedBy is the time by which the fraction p of total nodes had the
// message, given the sorted delivery times; -1 if never.
func reachedBy(sorted []int64, total int, p float64) time.Duration {
	need := int(math.Ceil(p * float64(total)))
	if need == 0 {
		return 0
	}
	if need > len(sorted) {
		return -1
	}
	return time.Duration(sorted[need-1])
}

// rank is the nearest-rank index of percentile p in n sorted values.
func rank(n int, p float64) int {
	return max(0, int(math.Ceil(p*float64(n)))-1)
}

// dist summarises times over messages, -1 meaning never.
func dist(ts []time.Duration) Dist {
	sorted := slices.Clone(ts)
	never := time.Duration(math.MaxInt64)
	d := Dist{}
	for i, t := range sorted {
		if t < 0 {
			sorted[i] = never
			d.Never++
		}
	}
	slices.Sort(sorted)
	get := func(p float64) time.Duration {
		if t := sorted[rank(len(sorted), p)]; t != never {
			return t
		}
		return -1
	}
	d.P50, d.P99, d.Max = get(0.5), get(0.99), get(1)
	return d
}

func addCounters(sum *core.Counters, c core.Counters) {
	sum.Received += c.Received
	sum.Delivered += c.Delivered
	sum.Duplicates += c.Duplicates
	sum.Invalid += c.Invalid
	sum.Forwards += c.Forwards
	sum.Sent += c.Sent
	sum.Acked += c.Acked
	sum.AckFailed += c.AckFailed
	sum.Retries += c.Retries
	sum.GaveUp += c.GaveUp
	sum.Forgotten += c.Forgotten
	sum.Expired += c.Expired
}

// Missed is how many expected deliveries did not happen, over all messages.
func (s Summary) Missed() int { return s.Expected - s.Delivered }
