package gossip

import (
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector returns a prometheus.Collector for the node's metrics: one
// metric per number of Stats (built from its definition, see Stats), and
// the histograms gossip_delivery_latency_seconds, gossip_delivery_hops and
// gossip_probe_rtt_seconds. Register it on the caller's registry (never
// the global one from a library):
//
//	reg := prometheus.NewRegistry()
//	reg.MustRegister(node.Collector())
//
// The metrics carry no node label; to put several nodes on one registry,
// register each through prometheus.WrapRegistererWith(prometheus.Labels{
// "node": id}, reg). A scrape takes one Stats snapshot; observations on
// the delivery path are a few atomic adds (no allocation, no lock).
// docs/METRICS.md describes every metric.
func (n *GossipNode) Collector() prometheus.Collector { return nodeCollector{n} }

// metricFamilyHelp is the help of the families several Stats numbers
// share (a `metric` tag with a label).
var metricFamilyHelp = map[string]string{
	"gossip_messages_rejected_total":    "Messages rejected, by reason: invalid (failed validation), malformed (did not decode), bad_frame (a stream frame or message that did not decode or validate).",
	"gossip_members":                    "Members as this node sees them, by state (alive includes this node; dead and left until reaped).",
	"gossip_member_state_changes_total": "Membership state changes this node saw, by the state the member moved to.",
}

// Histograms of the delivery path and of membership probes. Their bounds
// are raw units (nanoseconds, hops); metrics scale them.
var (
	deliveryLatencyBounds = durationBounds(500*time.Microsecond, time.Millisecond, 2500*time.Microsecond, 5*time.Millisecond,
		10*time.Millisecond, 25*time.Millisecond, 50*time.Millisecond, 100*time.Millisecond, 250*time.Millisecond,
		500*time.Millisecond, time.Second, 2500*time.Millisecond, 5*time.Second, 10*time.Second)
	deliveryHopsBounds = []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 16, 20, 32}
	probeRTTBounds     = durationBounds(100*time.Microsecond, 250*time.Microsecond, 500*time.Microsecond, time.Millisecond,
		2500*time.Microsecond, 5*time.Millisecond, 10*time.Millisecond, 25*time.Millisecond, 50*time.Millisecond,
		100*time.Millisecond, 250*time.Millisecond, 500*time.Millisecond, time.Second)
)

func durationBounds(ds ...time.Duration) []int64 {
	out := make([]int64, len(ds))
	for i, d := range ds {
		out[i] = int64(d)
	}
	return out
}

// histogram is a fixed-bucket histogram of int64 observations, safe for
// concurrent use: observe is a binary search and two atomic adds, so it
// sits on the delivery path without a lock or an allocation.
type histogram struct {
	bounds []int64         // upper bounds, inclusive, ascending (shared)
	counts []atomic.Uint64 // per bucket (not cumulative); the last is +Inf
	sum    atomic.Int64
}

func newHistogram(bounds []int64) histogram {
	return histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// observe records v; negative values (a clock behind the origin's) count
// as 0.
func (h *histogram) observe(v int64) {
	v = max(v, 0)
	i := sort.Search(len(h.bounds), func(i int) bool { return h.bounds[i] >= v })
	h.counts[i].Add(1)
	h.sum.Add(v)
}

// HistogramSnapshot is a histogram's state: cumulative counts per upper
// bound, as Prometheus has them, in the metric's unit (seconds, hops).
type HistogramSnapshot struct {
	Bounds     []float64 // upper bounds, ascending; +Inf is implied
	Cumulative []uint64  // observations ≤ Bounds[i]
	Count      uint64
	Sum        float64
}

func (h *histogram) snapshot(scale float64) HistogramSnapshot {
	s := HistogramSnapshot{Bounds: make([]float64, len(h.bounds)), Cumulative: make([]uint64, len(h.bounds))}
	for i := range h.counts {
		s.Count += h.counts[i].Load()
		if i < len(h.bounds) {
			s.Bounds[i] = float64(h.bounds[i]) * scale
			s.Cumulative[i] = s.Count
		}
	}
	s.Sum = float64(h.sum.Load()) * scale
	return s
}

// Quantile estimates the q-quantile (0 < q ≤ 1) by linear interpolation
// inside the bucket that holds it, as Prometheus' histogram_quantile does;
// 0 without observations, the highest bound when it lies beyond it.
func (s HistogramSnapshot) Quantile(q float64) float64 {
	if s.Count == 0 || len(s.Bounds) == 0 {
		return 0
	}
	rank := q * float64(s.Count)
	lower, below := 0.0, uint64(0)
	for i, c := range s.Cumulative {
		if float64(c) >= rank {
			in := c - below
			if in == 0 {
				return s.Bounds[i]
			}
			return lower + (s.Bounds[i]-lower)*(rank-float64(below))/float64(in)
		}
		lower, below = s.Bounds[i], c
	}
	return s.Bounds[len(s.Bounds)-1]
}

// Latency is a snapshot of the node's delivery histograms: the time from
// a message's creation at its origin to its delivery here (seconds; it
// relies on the nodes' clocks agreeing), the hops it travelled, and the
// round trips of membership's direct probes (seconds).
type Latency struct {
	Delivery HistogramSnapshot
	Hops     HistogramSnapshot
	ProbeRTT HistogramSnapshot
}

// Latency returns the node's delivery and probe histograms.
func (n *GossipNode) Latency() Latency {
	return Latency{
		Delivery: n.deliveryLatency.snapshot(1e-9),
		Hops:     n.deliveryHops.snapshot(1),
		ProbeRTT: n.mship.probeRTT.snapshot(1e-9),
	}
}

// observeDelivery records one delivered message (enqueue): its latency
// from the origin's created time, when it has one, and its hops.
func (n *GossipNode) observeDelivery(createdUnixNano int64, hops uint32, now time.Time) {
	if createdUnixNano != 0 {
		n.deliveryLatency.observe(now.UnixNano() - createdUnixNano)
	}
	n.deliveryHops.observe(int64(hops))
}

// statMetric is the metric of one Stats number.
type statMetric struct {
	desc       *prometheus.Desc
	kind       prometheus.ValueType
	labelValue string // "" for a family without a label
}

// metricDefs are the descriptions of every metric, built once from the
// Stats definitions.
type metricDefs struct {
	stats                 []statMetric // in statFields order
	latency, hops, probes *prometheus.Desc
	all                   []*prometheus.Desc
}

var nodeMetrics = sync.OnceValue(func() *metricDefs {
	d := &metricDefs{}
	families := map[string]*prometheus.Desc{}
	for _, f := range statFields() {
		family, label, value := metricNameOf(f)
		kind := prometheus.GaugeValue
		if f.kind == KindCounter {
			kind = prometheus.CounterValue
		}
		desc, ok := families[family]
		if !ok {
			help := f.help
			var labels []string
			if label != "" {
				help, labels = metricFamilyHelp[family], []string{label}
				if help == "" {
					panic("gossip: metric family " + family + " has no help in metricFamilyHelp") // a broken definition
				}
			}
			desc = prometheus.NewDesc(family, help, labels, nil)
			families[family] = desc
			d.all = append(d.all, desc)
		}
		d.stats = append(d.stats, statMetric{desc: desc, kind: kind, labelValue: value})
	}
	d.latency = prometheus.NewDesc("gossip_delivery_latency_seconds", "Time from a message's creation at its origin to its delivery at this node (origin's clock to this node's; published messages count with ~0).", nil, nil)
	d.hops = prometheus.NewDesc("gossip_delivery_hops", "Node-to-node hops the first copy of each delivered message travelled (0: published here).", nil, nil)
	d.probes = prometheus.NewDesc("gossip_probe_rtt_seconds", "Round trip of membership's direct probes (Ping to Ack) that were answered.", nil, nil)
	d.all = append(d.all, d.latency, d.hops, d.probes)
	return d
})

// metricNameOf is the family, label name and label value of a Stats
// number (see Stats for the rule).
func metricNameOf(f statField) (family, label, value string) {
	if f.metric == "" {
		family = "gossip_" + strings.ReplaceAll(f.name, ".", "_")
		if f.kind == KindCounter {
			family += "_total"
		}
		return family, "", ""
	}
	family, rest, ok := strings.Cut(f.metric, "{")
	if !ok {
		return family, "", ""
	}
	label, value, ok = strings.Cut(strings.TrimSuffix(rest, "}"), "=")
	if !ok || !strings.HasSuffix(rest, "}") {
		panic(fmt.Sprintf("gossip: metric tag %q of %s: want family{label=value}", f.metric, f.name)) // a broken definition
	}
	return family, label, value
}

// MetricNames lists every metric family a node's Collector exports, in
// definition order (docs and tests use it).
func MetricNames() []string {
	var out []string
	for _, d := range nodeMetrics().all {
		out = append(out, descName(d))
	}
	return out
}

// descName extracts a Desc's fqName (Desc has no accessor).
func descName(d *prometheus.Desc) string {
	s := d.String()
	_, s, _ = strings.Cut(s, `fqName: "`)
	s, _, _ = strings.Cut(s, `"`)
	return s
}

type nodeCollector struct{ n *GossipNode }

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range nodeMetrics().all {
		ch <- d
	}
}

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	defs := nodeMetrics()
	for i, cn := range c.n.Stats().Counters() {
		m := defs.stats[i]
		if m.labelValue != "" {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, cn.Value, m.labelValue)
		} else {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, cn.Value)
		}
	}
	l := c.n.Latency()
	ch <- constHistogram(defs.latency, l.Delivery)
	ch <- constHistogram(defs.hops, l.Hops)
	ch <- constHistogram(defs.probes, l.ProbeRTT)
}

func constHistogram(d *prometheus.Desc, s HistogramSnapshot) prometheus.Metric {
	buckets := make(map[float64]uint64, len(s.Bounds))
	for i, b := range s.Bounds {
		buckets[b] = s.Cumulative[i]
	}
	return prometheus.MustNewConstHistogram(d, s.Count, s.Sum, buckets)
}
