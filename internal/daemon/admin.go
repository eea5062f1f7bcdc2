package daemon

import (
	"fmt"
	"net/http"
)

// adminHandler serves the admin endpoints:
//
//   - GET /healthz: 200 "ok" while the gRPC server serves (also while the
//     node is joining or shutdown drains forwards); 503 once it has stopped.
//   - GET /readyz: 200 "ready" once the node has joined a cluster or is the
//     first node; otherwise 503 with the reason ("joining: attempt 3
//     failed: …", "shutting down").
//   - GET /metrics: Prometheus metrics (metrics.go, docs/METRICS.md).
//   - /debug/pprof/: the Go profiler, when pprofOn (--pprof).
//   - GET /: the live dashboard (internal/dashboard), with its assets
//     under /static/ and its data under /api/.
func (d *daemon) adminHandler(dash http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", dash)
	d.handleMetrics(mux, d.registry())
	if d.cfg.pprofOn(d.adminAddr) {
		handlePprof(mux)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if d.grpcStopped.Load() {
			http.Error(w, "stopped", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready, reason := d.readiness(); !ready {
			http.Error(w, reason, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}
