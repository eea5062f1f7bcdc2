package gossip

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// metricRef finds gossip_* metric names in a PromQL expression.
var metricRef = regexp.MustCompile(`\bgossip_[a-z_]+`)

// checkExpr fails for a gossip metric an expression uses that no node or
// daemon exports (a typo, or a metric renamed since).
func checkExpr(t *testing.T, where, expr string) {
	t.Helper()
	names := append(MetricNames(), "gossip_build_info")
	for _, ref := range metricRef.FindAllString(expr, -1) {
		base := ref
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(ref, suf); ok && slices.Contains(names, b) {
				base = b
			}
		}
		if !slices.Contains(names, base) {
			t.Errorf("%s: %s is not a metric gossip exports (expr %q)", where, ref, expr)
		}
	}
}

// TestAlertRules: deploy/prometheus/alerts.yaml is a rule file whose every
// rule is complete and uses metrics that exist.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("rule %q is incomplete (alert, expr, labels.severity, annotations.summary and description)", r.Alert)
			}
			checkExpr(t, "alerts.yaml "+r.Alert, r.Expr)
		}
	}
	if n < 10 {
		t.Errorf("%d rules", n)
	}
}

// TestGrafanaDashboard: deploy/grafana/gossip.json parses and its queries
// use metrics that exist.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("deploy/grafana/gossip.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string
		Panels []struct {
			Type, Title string
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatal(err)
	}
	queries := 0
	for _, p := range d.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			checkExpr(t, "gossip.json "+p.Title, tg.Expr)
		}
	}
	if d.Title == "" || queries < 20 {
		t.Errorf("dashboard %q with %d queries", d.Title, queries)
	}
}
