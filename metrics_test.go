package gossip

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"

	"github.com/grpc-gossip/gossip/internal/testutil"
)

// gather registers n's Collector on a fresh registry and gathers it.
func gather(t *testing.T, n *GossipNode) map[string]*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry() // checks Describe against Collect
	reg.MustRegister(n.Collector())
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// metricValue is the value of family{label=value} ("" label: no label);
// NaN when absent.
func metricValue(mfs map[string]*dto.MetricFamily, family, label, value string) float64 {
	mf := mfs[family]
	if mf == nil {
		return math.NaN()
	}
	for _, m := range mf.GetMetric() {
		if label != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetName() != label || m.GetLabel()[0].GetValue() != value) {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue()
		case m.Gauge != nil:
			return m.GetGauge().GetValue()
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount())
		}
	}
	return math.NaN()
}

// TestMetricsEveryCounter: each number of Stats() has its metric, of its
// kind, with its value, and promlint finds nothing to criticise.
func TestMetricsEveryCounter(t *testing.T) {
	n, err := New("m1", "m1:1", nil, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	mfs := gather(t, n)
	fields := statFields()
	for i, c := range n.Stats().Counters() {
		family, label, value := metricNameOf(fields[i])
		mf := mfs[family]
		if mf == nil {
			t.Errorf("counter %s has no metric %s", c.Name, family)
			continue
		}
		want := dto.MetricType_GAUGE
		if c.Kind == KindCounter {
			want = dto.MetricType_COUNTER
		}
		if mf.GetType() != want {
			t.Errorf("%s (counter %s) is a %v, want %v", family, c.Name, mf.GetType(), want)
		}
		if v := metricValue(mfs, family, label, value); math.IsNaN(v) {
			t.Errorf("counter %s: no %s{%s=%q}", c.Name, family, label, value)
		} else if c.Name != "core.ttl_seconds" && v != c.Value { // the TTL adapts between the two reads
			t.Errorf("%s{%s=%q} = %v, Stats says %v", family, label, value, v, c.Value)
		}
	}
	for _, h := range []string{"gossip_delivery_latency_seconds", "gossip_delivery_hops", "gossip_probe_rtt_seconds"} {
		if mfs[h].GetType() != dto.MetricType_HISTOGRAM {
			t.Errorf("%s: not a histogram: %v", h, mfs[h])
		}
	}
	if len(mfs) != len(MetricNames()) {
		t.Errorf("gathered %d families, MetricNames lists %d", len(mfs), len(MetricNames()))
	}
	var list []*dto.MetricFamily
	for _, mf := range mfs {
		list = append(list, mf)
	}
	problems, err := promlint.NewWithMetricFamilies(list).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsDocumented: docs/METRICS.md has a section for every metric
// the library exports.
func TestMetricsDocumented(t *testing.T) {
	doc, err := os.ReadFile("docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range MetricNames() {
		if !regexp.MustCompile("(?m)^\\| `" + regexp.QuoteMeta(name) + "(\\{[a-z]+\\})?` \\|").Match(doc) {
			t.Errorf("docs/METRICS.md: no table row for %s (| `%s` | type | meaning | healthy | alert |)", name, name)
		}
	}
}

// TestMetricsMove: in a 3-node cluster, publishing, delivering and a
// crash move the metrics that describe them.
func TestMetricsMove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newDCluster(t, 3, Config{}, DefaultLANMembershipConfig(), 13)
		defer c.close()
		msgs := ids("m", 5)
		for _, id := range msgs {
			if !c.publish(0, id, []byte("x")) {
				t.Fatalf("publish %s failed", id)
			}
		}
		c.awaitDelivered(time.Minute, []int{0, 1, 2}, msgs)
		m0, m1 := gather(t, c.node(0)), gather(t, c.node(1))
		for _, tc := range []struct {
			mfs          map[string]*dto.MetricFamily
			family, l, v string
			want         float64
		}{
			{m0, "gossip_messages_published_total", "", "", 5},
			{m0, "gossip_messages_delivered_total", "", "", 5},
			{m1, "gossip_messages_delivered_total", "", "", 5},
			{m1, "gossip_messages_published_total", "", "", 0},
			{m1, "gossip_delivery_hops", "", "", 5},
			{m1, "gossip_delivery_latency_seconds", "", "", 5},
			{m0, "gossip_members", "state", "alive", 3},
			{m0, "gossip_member_state_changes_total", "to", "alive", 2},
		} {
			if got := metricValue(tc.mfs, tc.family, tc.l, tc.v); got != tc.want {
				t.Errorf("%s{%s=%q} = %v, want %v", tc.family, tc.l, tc.v, got, tc.want)
			}
		}
		if h := m1["gossip_delivery_hops"].GetMetric()[0].GetHistogram(); h.GetSampleSum() < 5 {
			t.Errorf("hops sum %v: 5 messages came at least one hop each", h.GetSampleSum())
		}
		if v := metricValue(m0, "gossip_stream_envelopes_sent_total", "", ""); !(v > 0) {
			t.Errorf("gossip_stream_envelopes_sent_total = %v after 5 messages", v)
		}

		c.crash(2)
		lan := DefaultLANMembershipConfig()
		testutil.WaitFor(t, lan.DetectionBound(3)+5*time.Second, "node 2 dead on node 0", func() error {
			m := gather(t, c.node(0))
			if got := metricValue(m, "gossip_member_state_changes_total", "to", "dead"); got != 1 {
				return fmt.Errorf("changes to dead %v; members %v; stats %+v", got, c.node(0).Members(), c.node(0).Stats().Membership)
			}
			if got := metricValue(m, "gossip_members", "state", "dead"); got != 1 {
				return fmt.Errorf("dead members %v", got)
			}
			return nil
		})
		if got := metricValue(gather(t, c.node(0)), "gossip_probe_rtt_seconds", "", ""); !(got > 0) {
			t.Errorf("no probe round trips observed: %v", got)
		}
	})
}

func TestHistogramQuantile(t *testing.T) {
	h := newHistogram([]int64{10, 20, 40})
	for _, v := range []int64{-5, 5, 15, 15, 30, 100} {
		h.observe(v)
	}
	s := h.snapshot(1)
	if s.Count != 6 || s.Sum != 165 || strings.Trim(fmt.Sprint(s.Cumulative), "[]") != "2 4 5" {
		t.Fatalf("snapshot %+v", s)
	}
	for _, tc := range []struct{ q, want float64 }{{0.25, 7.5}, {0.5, 15}, {0.8, 36}, {1, 40}} {
		if got := s.Quantile(tc.q); math.Abs(got-tc.want) > 1e-9 {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if (HistogramSnapshot{}).Quantile(0.5) != 0 {
		t.Error("an empty histogram's quantile is not 0")
	}
}
