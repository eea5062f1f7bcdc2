package sim

import (
	"math"
	"slices"
	"time"

	"github.com/grpc-gossip/gossip/internal/core"
	"github.com/grpc-gossip/gossip/internal/topology"
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
	// Batches groups the messages (Scenario.Batch), aligned on the crash:
	// batch 0 starts with the first message published at or after
	// CrashAt, earlier batches have negative indexes.
	Batches []BatchResult `json:"batches,omitempty"`
	// Stream is the Plumtree runtime's traffic (ProtoPlumtree only).
	Stream *StreamSummary `json:"stream,omitempty"`
	// Membership is the overlay's repair (ProtoPlumtree over
	// TopoMembership only).
	Membership *MembershipSummary `json:"membership,omitempty"`
	Perf       Perf               `json:"perf"`
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
	// TAll is the time from publish until every node live at the end had
	// it (whether the overlay still connects them or not); -1 if never.
	TAll time.Duration `json:"tall_ns"`
	// MaxHops is the largest hop count of a first receipt: the number of
	// rounds the push took (the last delivery hop). MeanHops is the mean
	// over Delivered.
	MaxHops  int     `json:"max_hops"`
	MeanHops float64 `json:"mean_hops"`
	// Live is the number of nodes live at the end; Reliability the
	// fraction of them that delivered the message (the papers'
	// reliability: whatever the overlay, every live node is expected).
	Live        int     `json:"live"`
	Reliability float64 `json:"reliability"`
	// Copies counts the payload-carrying copies of the message that
	// reached a live node (duplicates included; unary: every request that
	// arrived). RMR is the relative message redundancy of the Plumtree
	// paper, Copies/(n−1) − 1 with n the nodes that delivered it (0 is
	// one copy per delivery; -1 when n < 2).
	Copies uint64  `json:"copies"`
	RMR    float64 `json:"rmr"`
	// Receivers counts every node that delivered it: the origin and
	// nodes that crashed afterwards included.
	Receivers int `json:"receivers"`
}

// BatchResult summarises a batch of consecutive messages.
type BatchResult struct {
	Index int `json:"index"`
	// First and Last are message indexes (inclusive).
	First int `json:"first"`
	Last  int `json:"last"`
	// From and To are the publish times of the first and last message,
	// relative to CrashAt when nodes crash.
	From        time.Duration `json:"from_ns"`
	To          time.Duration `json:"to_ns"`
	Messages    int           `json:"messages"`
	Reliability Stat          `json:"reliability"` // over the batch's messages
	RMR         Stat          `json:"rmr"`
	T100        Dist          `json:"t100"` // of MessageResult.TAll: time to every live node (never: some never got it)
	MaxHops     int           `json:"max_hops"`
	// CopiesPerDelivery is the batch's copies received per delivery.
	CopiesPerDelivery float64 `json:"copies_per_delivery"`
}

// Stat is a mean and a minimum (maximum for RMR) over messages.
type Stat struct {
	Mean float64 `json:"mean"`
	Min  float64 `json:"min"`
	Max  float64 `json:"max"`
}

// StreamSummary counts the Plumtree runtime's stream traffic over all
// nodes (the root package's Stream stats; see plumtree.go).
type StreamSummary struct {
	EnvelopesSent  uint64 `json:"envelopes_sent"`
	EnvelopesLost  uint64 `json:"envelopes_lost"`  // each broke its stream
	CopiesSent     uint64 `json:"copies_sent"`     // payload-carrying copies written (messages and repairs)
	CopiesReceived uint64 `json:"copies_received"` // of those, arrived at a live node
	CopiesAcked    uint64 `json:"copies_acked"`    // covered by the receiver's cumulative ACK
	StreamBreaks   uint64 `json:"stream_breaks"`   // sessions that ended: loss, crash, removed neighbour
	Reconnects     uint64 `json:"reconnects"`      // dials after a link's first
	DialsRefused   uint64 `json:"dials_refused"`   // dials to a crashed node
	Resent         uint64 `json:"resent"`          // messages re-sent after a break before their ACK
	FramesDropped  uint64 `json:"frames_dropped"`  // over a queue's hard bound, no stream to the peer, or drained with a broken or stopped stream
	Deferred       uint64 `json:"deferred"`        // eager messages announced instead (queue over its soft bound)
	Withdrawn      uint64 `json:"withdrawn"`       // queued eager copies announced instead after a PRUNE
	Refused        uint64 `json:"refused"`         // messages over the peer's limit
}

// MembershipSummary is the membership overlay's repair after the crash.
type MembershipSummary struct {
	Mode string `json:"mode"` // RepairSwim, RepairModel or RepairNone
	// IsolatedAtCrash counts live nodes none of whose neighbours survived
	// the crash; IsolatedAtEnd, those with no live neighbour at the end.
	IsolatedAtCrash int `json:"isolated_at_crash"`
	IsolatedAtEnd   int `json:"isolated_at_end"`
	// DegreeAtEnd is the mean number of neighbours (links opened) of a
	// live node at the end; DeadNeighborsAtEnd, how many of those links
	// still point at crashed nodes, in all.
	DegreeAtEnd        float64 `json:"degree_at_end"`
	DeadNeighborsAtEnd int     `json:"dead_neighbors_at_end"`
	// Added, Removed and Dropped count the rebalances' changes: members
	// chosen, dead neighbours removed, chosen neighbours dropped because k
	// shrank.
	Added   int `json:"added"`
	Removed int `json:"removed"`
	Dropped int `json:"dropped"`
	// FalseDead counts live members declared dead (RepairSwim).
	FalseDead int `json:"false_dead"`
	// SwimMessages and SwimDropped are the SWIM datagrams sent and lost
	// (RepairSwim).
	SwimMessages uint64 `json:"swim_messages,omitempty"`
	SwimDropped  uint64 `json:"swim_dropped,omitempty"`
	// Detection describes the delays from the crash until a survivor
	// marked a crashed member dead: measured in this run (RepairSwim),
	// or the model's calibration (RepairModel).
	Detection *DetectionSummary `json:"detection,omitempty"`

	detect []time.Duration
}

// DetectionSummary describes failure-detection delays.
type DetectionSummary struct {
	// CalibrationNodes is the size of the SWIM run the delays come from;
	// Scale the factor applied to reach Nodes (1 when measured at Nodes).
	CalibrationNodes int     `json:"calibration_nodes"`
	Nodes            int     `json:"nodes"`
	Scale            float64 `json:"scale"`
	// Pairs is the (survivor, crashed member) pairs detected; Never, those
	// not detected by the end (RepairSwim) or within the calibration's
	// 10 minutes (RepairModel).
	Pairs int           `json:"pairs"`
	Never int           `json:"never"`
	P10   time.Duration `json:"p10_ns"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
	// FalseDead counts live members declared dead in the calibration run.
	FalseDead       int           `json:"false_dead"`
	CalibrationWall time.Duration `json:"calibration_wall_ns,omitempty"`
}

func detectionSummary(ds []time.Duration, never, calN, n int, scale float64) *DetectionSummary {
	s := &DetectionSummary{CalibrationNodes: calN, Nodes: n, Scale: scale, Never: never}
	v := make([]int64, len(ds))
	for k, d := range ds {
		v[k] = int64(d)
	}
	slices.Sort(v)
	s.setFrom(v)
	return s
}

// setFrom fills the quantiles from sorted delays.
func (s *DetectionSummary) setFrom(sorted []int64) {
	s.Pairs = len(sorted)
	if len(sorted) == 0 {
		return
	}
	q := func(p float64) time.Duration { return time.Duration(sorted[rank(len(sorted), p)]) }
	s.P10, s.P50, s.P90, s.P99, s.Max = q(0.1), q(0.5), q(0.9), q(0.99), time.Duration(sorted[len(sorted)-1])
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
	TAll  Dist    `json:"tall"`   // of MessageResult.TAll: time to every live node
	Hops  IntDist `json:"rounds"` // of MaxHops
	// MeanHops is the mean hop count of every first receipt.
	MeanHops float64 `json:"mean_hops"`

	Expected      int     `json:"expected"`       // Σ Reachable
	Delivered     int     `json:"delivered"`      // Σ Delivered
	DeliveryRatio float64 `json:"delivery_ratio"` // Delivered / Expected
	// Reliability is MessageResult.Reliability over the messages: mean,
	// minimum and maximum. RMR likewise (messages with n ≥ 2 only).
	Reliability Stat `json:"reliability"`
	RMR         Stat `json:"rmr"`
	// MissedMin, MissedMean and MissedMax describe Missed over messages;
	// Incomplete is how many messages missed someone.
	MissedMin  int     `json:"missed_min"`
	MissedMean float64 `json:"missed_mean"`
	MissedMax  int     `json:"missed_max"`
	Incomplete int     `json:"incomplete"`

	// Sends is every send attempt (unary: Counters.Sent, first attempts
	// and retries; Plumtree: payload-carrying copies written on streams,
	// repairs and re-sends included); Deliveries every first receipt over
	// the network (publishes excluded); CopiesPerDelivery = Sends /
	// Deliveries, the network's cost of one delivery. Arrivals are the
	// copies that reached a live node.
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

// runData is what a finished run of either engine leaves for its report.
type runData struct {
	sc        Scenario
	graph     topology.Graph // for Reachable: the links (Plumtree: at the end, undirected)
	nodes     []*core.Node
	crashed   []bool // at the end
	willCrash []bool
	msgs      []message
	recvAt    [][]int64
	hops      [][]uint32
	copies    []uint64 // per message: payload copies that reached a live node
	sends     uint64   // Summary.Sends
	arrivals  uint64
	dupDeliv  uint64
	lastEvent int64
	truncated bool
}

// report computes the Report of a finished unary run (without Perf).
func (e *engine) report() *Report {
	return buildReport(&runData{
		sc: e.sc, graph: e.g, nodes: e.nodes, crashed: e.crashed, willCrash: e.willCrash,
		msgs: e.msgs, recvAt: e.recvAt, hops: e.hops, copies: e.copies,
		sends: sumCounters(e.nodes).Sent, arrivals: e.arrivals, dupDeliv: e.dupDeliveries,
		lastEvent: e.lastActive, truncated: e.truncated,
	})
}

// report computes the Report of a finished Plumtree run (without Perf).
func (e *ptEngine) report() *Report {
	r := buildReport(&runData{
		sc: e.sc, graph: e.overlayGraph(), nodes: e.nodes, crashed: e.crashed, willCrash: e.willCrash,
		msgs: e.msgs, recvAt: e.recvAt, hops: e.hops, copies: e.copies,
		sends: e.st.CopiesSent, arrivals: e.st.CopiesReceived, dupDeliv: e.dupDeliveries,
		lastEvent: e.now, truncated: e.truncated,
	})
	r.Links = 0 // the directed relations open at the end
	for _, r2 := range e.rels {
		if !r2.closed {
			r.Links++
		}
	}
	st := e.st
	r.Stream = &st
	if e.ov != nil {
		ms := e.ov.finish()
		r.Membership = &ms
	}
	return r
}

func sumCounters(nodes []*core.Node) core.Counters {
	var c core.Counters
	for _, n := range nodes {
		addCounters(&c, n.Counters())
	}
	return c
}

// buildReport computes a Report (without Perf).
func buildReport(d *runData) *Report {
	r := &Report{Scenario: d.sc}
	for _, nb := range d.graph {
		r.Links += len(nb)
	}
	for i := range d.nodes {
		if !d.crashed[i] {
			r.Live++
		}
	}
	dead := func(i int) bool { return d.willCrash[i] }
	reach := map[int32][]int{}
	var hopsSum, hopsN float64
	var t50, t99, t100, tlast, tall []time.Duration
	var maxHops []int
	var published uint64
	var rel, rmr []float64
	s := &r.Summary
	for m, msg := range d.msgs {
		if d.recvAt[m][msg.origin] >= 0 {
			published++
		}
		set, ok := reach[msg.origin]
		if !ok {
			set = d.graph.Reachable(int(msg.origin), dead)
			reach[msg.origin] = set
		}
		mr := MessageResult{Hash: msg.hash, Origin: int(msg.origin), PublishedAt: time.Duration(msg.at), Reachable: len(set), Live: r.Live}
		times := make([]int64, 0, len(set))
		var mh float64
		for _, i := range set {
			if at := d.recvAt[m][i]; at >= 0 {
				times = append(times, at-msg.at)
				h := d.hops[m][i]
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
		got := 0 // every node that delivered it, live or not
		var lastLive int64
		for i := range d.nodes {
			if at := d.recvAt[m][i]; at >= 0 {
				got++
				if !d.crashed[i] {
					mr.Outside++
					lastLive = max(lastLive, at-msg.at)
				}
			}
		}
		mr.TAll = -1
		if mr.Outside == r.Live {
			mr.TAll = time.Duration(lastLive)
		}
		mr.Receivers = got
		// Reliability: every live node counts, reachable or not.
		if r.Live > 0 {
			mr.Reliability = float64(mr.Outside) / float64(r.Live)
		}
		mr.Outside -= mr.Delivered
		mr.RMR = -1
		if d.copies != nil {
			mr.Copies = d.copies[m]
			if got >= 2 {
				mr.RMR = float64(mr.Copies)/float64(got-1) - 1
				rmr = append(rmr, mr.RMR)
			}
		}
		rel = append(rel, mr.Reliability)
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
		tall = append(tall, mr.TAll)
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
		s.MissedMean += float64(mr.Missed) / float64(len(d.msgs))
	}
	s.T50, s.T99, s.T100, s.TLast, s.TAll = dist(t50), dist(t99), dist(t100), dist(tlast), dist(tall)
	s.Reliability, s.RMR = stat(rel), stat(rmr)
	slices.Sort(maxHops)
	s.Hops = IntDist{P50: maxHops[rank(len(maxHops), 0.5)], Max: maxHops[len(maxHops)-1]}
	if hopsN > 0 {
		s.MeanHops = hopsSum / hopsN
	}
	if s.Expected > 0 {
		s.DeliveryRatio = float64(s.Delivered) / float64(s.Expected)
	}
	r.Batches = batches(d, r.Messages)

	first := true
	var ttlSum time.Duration
	for i, n := range d.nodes {
		addCounters(&r.Counters, n.Counters())
		if d.crashed[i] {
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
	s.Sends = d.sends
	s.Arrivals = d.arrivals
	s.Deliveries = c.Delivered - published
	if s.Deliveries > 0 {
		s.CopiesPerDelivery = float64(s.Sends) / float64(s.Deliveries)
	}
	s.Retries = c.Retries
	s.GaveUp = c.GaveUp
	s.DuplicateDeliveries = d.dupDeliv
	s.VirtualEnd = time.Duration(d.lastEvent)
	s.Truncated = d.truncated
	return r
}

// stat is the mean, minimum and maximum of vs (zero when empty).
func stat(vs []float64) Stat {
	if len(vs) == 0 {
		return Stat{}
	}
	st := Stat{Min: vs[0], Max: vs[0]}
	for _, v := range vs {
		st.Mean += v
		st.Min, st.Max = min(st.Min, v), max(st.Max, v)
	}
	st.Mean /= float64(len(vs))
	return st
}

// batches groups the messages by Scenario.Batch, aligned on the crash.
func batches(d *runData, ms []MessageResult) []BatchResult {
	size := d.sc.Batch
	if size <= 0 {
		return nil
	}
	var origin int64 // batch 0 starts at the first message at or after it
	if d.sc.Crash > 0 {
		origin = int64(d.sc.CrashAt)
	}
	first := slices.IndexFunc(d.msgs, func(m message) bool { return m.at >= origin })
	if first < 0 {
		first = len(d.msgs)
	}
	start := first % size
	var out []BatchResult
	add := func(lo, hi int) { // messages lo..hi-1
		b := BatchResult{First: lo, Last: hi - 1, Messages: hi - lo,
			From: time.Duration(d.msgs[lo].at - origin), To: time.Duration(d.msgs[hi-1].at - origin)}
		b.Index = (lo - first) / size
		if lo < first {
			b.Index = -((first - lo + size - 1) / size)
		}
		var rel, rmr []float64
		var t100 []time.Duration
		var copies uint64
		deliveries := 0
		for _, m := range ms[lo:hi] {
			rel = append(rel, m.Reliability)
			if m.RMR != -1 {
				rmr = append(rmr, m.RMR)
			}
			b.MaxHops = max(b.MaxHops, m.MaxHops)
			copies += m.Copies
			deliveries += max(m.Receivers-1, 0)
			t100 = append(t100, m.TAll)
		}
		b.Reliability, b.RMR, b.T100 = stat(rel), stat(rmr), dist(t100)
		if deliveries > 0 {
			b.CopiesPerDelivery = float64(copies) / float64(deliveries)
		}
		out = append(out, b)
	}
	if start > 0 {
		add(0, start)
	}
	for lo := start; lo < len(d.msgs); lo += size {
		add(lo, min(lo+size, len(d.msgs)))
	}
	return out
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
	sum.EagerSent += c.EagerSent
	sum.IHavesSent += c.IHavesSent
	sum.IHavesReceived += c.IHavesReceived
	sum.PrunesSent += c.PrunesSent
	sum.PrunesReceived += c.PrunesReceived
	sum.GraftsSent += c.GraftsSent
	sum.GraftsServed += c.GraftsServed
	sum.GraftsDelayed += c.GraftsDelayed
	sum.GraftsYoung += c.GraftsYoung
	sum.ParentSwitches += c.ParentSwitches
	sum.TreeSwaps += c.TreeSwaps
	sum.DigestsSent += c.DigestsSent
	sum.DigestsReceived += c.DigestsReceived
	sum.SyncSent += c.SyncSent
	sum.Repaired += c.Repaired
	sum.HolesSkipped += c.HolesSkipped
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
