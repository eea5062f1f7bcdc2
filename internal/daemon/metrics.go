package daemon

import (
	"net"
	"net/http"
	"net/http/pprof"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	gossip "github.com/grpc-gossip/gossip"
)

// registry is the daemon's own Prometheus registry (never the global
// one): the node's metrics (docs/METRICS.md), gossip_build_info and the
// Go runtime and process collectors.
func (d *daemon) registry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(d.node.Collector(),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo())
	return reg
}

// buildInfo is gossip_build_info{version,revision} = 1: the main module's
// version (gossip.Version when the binary was built from a work tree,
// which Go reports as "(devel)") and its VCS revision ("unknown" without
// one; "-dirty" appended for a modified tree).
func buildInfo() prometheus.Collector {
	version, revision := gossip.Version, "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		dirty := false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if dirty && revision != "unknown" {
			revision += "-dirty"
		}
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "gossip_build_info",
		Help:        "Always 1; the labels are the version and VCS revision of the gossipd binary.",
		ConstLabels: prometheus.Labels{"version": version, "revision": revision},
	})
	g.Set(1)
	return g
}

// handleMetrics serves GET /metrics from reg.
func (d *daemon) handleMetrics(mux *http.ServeMux, reg *prometheus.Registry) {
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
}

// handlePprof serves net/http/pprof under /debug/pprof/ (index, cmdline,
// profile, symbol, trace and the named profiles: heap, goroutine, …).
func handlePprof(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// pprofOn reports whether /debug/pprof/ is served: --pprof on, or auto
// (the default) with the admin listener bound to a loopback address, where
// only local users reach it (profiles reveal the program's memory and
// cost CPU: do not expose them to the network unasked).
func (c *Config) pprofOn(adminAddr string) bool {
	switch c.Pprof {
	case PprofOn:
		return true
	case PprofOff:
		return false
	}
	host, _, err := net.SplitHostPort(adminAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
