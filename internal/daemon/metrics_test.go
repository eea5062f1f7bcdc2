package daemon

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// scrape GETs addr's /metrics and parses it as Prometheus text.
func scrape(t *testing.T, addr string) (map[string]*dto.MetricFamily, string) {
	t.Helper()
	code, body := get(t, addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(body + "\n"))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return mfs, body
}

func value(mfs map[string]*dto.MetricFamily, name string) float64 {
	mf := mfs[name]
	if mf == nil || len(mf.GetMetric()) == 0 {
		return -1
	}
	m := mf.GetMetric()[0]
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	}
	return -1
}

// TestMetricsEndpoint scrapes two running daemons: every metric the
// library exports, gossip_build_info and the runtime collectors are
// there; promlint finds nothing; counters move when messages flow.
func TestMetricsEndpoint(t *testing.T) {
	a := runDaemon(t, testConfig("node-a"))
	b := runDaemon(t, testConfig("node-b", a.addr))
	ccA, ccB := dial(t, a.addr), dial(t, b.addr)
	testutil.WaitFor(t, waitTimeout, "both ready", func() error {
		for _, r := range []*running{a, b} {
			if code, _ := get(t, r.adminAddr, "/readyz"); code != http.StatusOK {
				return fmt.Errorf("%s not ready", r.id)
			}
		}
		return nil
	})

	mfs, body := scrape(t, b.adminAddr)
	for _, name := range append(gossip.MetricNames(), "gossip_build_info", "go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total") {
		if mfs[name] == nil {
			t.Errorf("/metrics has no %s", name)
		}
	}
	if bi := mfs["gossip_build_info"]; bi != nil {
		labels := map[string]string{}
		for _, l := range bi.GetMetric()[0].GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["version"] == "" || labels["revision"] == "" || value(mfs, "gossip_build_info") != 1 {
			t.Errorf("gossip_build_info = %v", bi)
		}
	}
	problems, err := promlint.New(strings.NewReader(body + "\n")).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
	before := value(mfs, "gossip_messages_delivered_total")

	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	stream := subscribe(t, ctx, ccB)
	for i := range 3 {
		if _, err := pbgrpc.NewNodeServiceClient(ccA).Publish(ctx, &pb.PublishRequest{Payload: []byte(fmt.Sprint("m", i))}); err != nil {
			t.Fatal(err)
		}
		recv(t, stream)
	}
	after, _ := scrape(t, b.adminAddr)
	if got := value(after, "gossip_messages_delivered_total"); got != before+3 {
		t.Errorf("node-b delivered_total %v → %v after 3 messages", before, got)
	}
	if got := value(after, "gossip_delivery_latency_seconds"); got < 3 {
		t.Errorf("node-b latency histogram has %v observations after 3 messages", got)
	}
	if got := value(after, "gossip_stream_envelopes_received_total"); got <= 0 {
		t.Errorf("node-b envelopes_received_total %v", got)
	}
	onA, _ := scrape(t, a.adminAddr)
	if got := value(onA, "gossip_messages_published_total"); got != 3 {
		t.Errorf("node-a published_total %v, want 3", got)
	}
}

// TestPprof: /debug/pprof/ is served on a loopback admin listener by
// default, and not with --pprof off.
func TestPprof(t *testing.T) {
	on := runDaemon(t, testConfig("node-p"))
	if code, body := get(t, on.adminAddr, "/debug/pprof/"); code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("/debug/pprof/ on loopback: %d %.80q", code, body)
	}
	if code, body := get(t, on.adminAddr, "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Errorf("goroutine profile: %d %.80q", code, body)
	}
	cfg := testConfig("node-q")
	cfg.Pprof = PprofOff
	off := runDaemon(t, cfg)
	if code, _ := get(t, off.adminAddr, "/debug/pprof/"); code != http.StatusNotFound {
		t.Errorf("/debug/pprof/ with --pprof off: %d, want 404", code)
	}
}

func TestPprofOn(t *testing.T) {
	for _, tc := range []struct {
		pprof, addr string
		want        bool
	}{
		{PprofAuto, "127.0.0.1:9002", true},
		{"", "[::1]:9002", true},
		{PprofAuto, "10.0.0.5:9002", false},
		{PprofAuto, "[::]:9002", false},
		{PprofOn, "10.0.0.5:9002", true},
		{PprofOff, "127.0.0.1:9002", false},
	} {
		c := Config{Pprof: tc.pprof}
		if got := c.pprofOn(tc.addr); got != tc.want {
			t.Errorf("pprof %q on %s: %v, want %v", tc.pprof, tc.addr, got, tc.want)
		}
	}
}

// TestMetricsDocIncludesDaemonMetrics: docs/METRICS.md has a row for the
// metric the daemon adds.
func TestMetricsDocIncludesDaemonMetrics(t *testing.T) {
	doc, err := os.ReadFile("../../docs/METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "| `gossip_build_info{version,revision}` |") {
		t.Error("docs/METRICS.md: no row for gossip_build_info")
	}
}

// TestDashboardServed: the admin listener serves the dashboard at / and
// its state under /api/state, next to the other endpoints.
func TestDashboardServed(t *testing.T) {
	r := runDaemon(t, testConfig("node-d"))
	if code, body := get(t, r.adminAddr, "/"); code != http.StatusOK || !strings.Contains(body, "<title>gossip dashboard</title>") {
		t.Errorf("GET /: %d %.100q", code, body)
	}
	if code, body := get(t, r.adminAddr, "/api/state"); code != http.StatusOK || !strings.Contains(body, `"id":"node-d"`) {
		t.Errorf("GET /api/state: %d %.200q", code, body)
	}
	if code, _ := get(t, r.adminAddr, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz: %d", code)
	}
}
