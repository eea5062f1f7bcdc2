package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/auth"
	"github.com/grpc-gossip/gossip/internal/dashboard"
	"github.com/grpc-gossip/gossip/internal/topology"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

// Timings of the output and of the end of a run.
const (
	progressEvery    = 250 * time.Millisecond // progress line on a terminal
	progressEveryLog = time.Second            // progress line otherwise
	settleLimit      = 2 * time.Second        // wait for in-flight ACKs after the last delivery
	settlePoll       = 5 * time.Millisecond
)

// summary is the outcome of a run.
type summary struct {
	Nodes     int
	Topology  string // human description, e.g. "ring" or "random 4-regular (seed 1)"
	Fanout    int
	Unary     bool // the seed's unary transport (else streams)
	Messages  int  // per node
	MaxDegree int  // most neighbours of any node
	Endpoints []string

	Expected  int // deliveries expected: nodes × nodes × messages
	Delivered int // distinct (node, message) deliveries
	// DuplicateDeliveries counts messages handed to a node's application
	// more than once (the library promises exactly once).
	DuplicateDeliveries int
	PublishErrors       int
	Missing             []missing // nodes that did not deliver everything, in node order

	Elapsed      time.Duration // first publish → every delivery seen (or the wait ended)
	LastDelivery time.Duration // first publish → the last delivery accepted by a node
	Settled      bool          // every forward was acknowledged or given up before the stats were taken

	Sent, Acked, AckFailed, Retries, Duplicates, GaveUp, Dropped uint64
	StreamCopies, StreamAcked, Envelopes, Prunes, Repaired       uint64
	// GraftsServed counts copies sent because a neighbour's graft timer
	// fired before the tree's copy reached it (Plumtree's repair of a
	// slow eager path; on a busy machine it happens even on a ring).
	GraftsServed             uint64
	TTLMin, TTLMax           time.Duration
	DiameterMin, DiameterMax int

	Started     bool // messages were published
	TimedOut    bool // the wait ended at --timeout
	Interrupted bool // the context ended (SIGINT/SIGTERM) before every delivery
	Stalled     bool // gossip stopped (nothing in flight) before every delivery
}

type missing struct {
	Node  string
	Count int
}

// complete reports whether every node delivered every message exactly once.
func (s *summary) complete() bool {
	return s.Expected > 0 && s.Delivered == s.Expected && s.DuplicateDeliveries == 0
}

// exitCode is the process status for a run that could be set up: 0 when
// every delivery happened, 1 otherwise.
func (s *summary) exitCode() int {
	if s.complete() {
		return exitOK
	}
	return exitIncomplete
}

// portInUseError is the setup error for a port someone else holds.
type portInUseError struct {
	Addr string
	Node string
}

func (e *portInUseError) Error() string {
	return fmt.Sprintf("%s is already in use (needed by %s): stop what holds it, pick another --base-port, or use --base-port 0 for ephemeral ports", e.Addr, e.Node)
}

// run sets up the cluster, publishes cfg.Messages messages from every node,
// waits until every node has delivered every message (or cfg.Timeout, or
// ctx ends), prints progress and a summary on stdout, and closes every
// node. With cfg.Serve it keeps the cluster up after the summary until ctx
// ends. An error means the cluster could not be set up (invalid config,
// port in use); an incomplete run is reported in the summary instead.
func run(ctx context.Context, cfg config, stdout io.Writer, logger *slog.Logger) (s summary, err error) {
	if err := cfg.validate(); err != nil {
		return s, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	g, desc, err := buildTopology(cfg)
	if err != nil {
		return s, err
	}
	n, m := cfg.Nodes, cfg.Messages
	s = summary{
		Nodes: n, Topology: desc, Fanout: cfg.Fanout, Unary: cfg.Unary, Messages: m,
		MaxDegree: maxDegree(g), Expected: n * n * m,
	}
	ids := nodeIDs(n)
	tr := newTracker(ids, m)

	// One storage, router, logger and client factory for every node, as in
	// the seed; each node keeps its own state inside them.
	// With --tls each node has its own factory: it dials with its own
	// certificate.
	storage := gossip.NewLocalStorage()
	router := gossip.NewRandomRouter()
	factory := gossip.NewGossipClientFactory()
	factories := []*gossip.GossipClientFactory{factory}
	nodes := make([]*gossip.GossipNode, 0, n)
	defer func() {
		closeAll(nodes, logger)
		for _, f := range factories {
			if rerr := f.Release(); rerr != nil {
				logger.Warn("releasing client connections", "err", rerr)
			}
		}
	}()
	var pki *demoPKI
	if cfg.TLS {
		if pki, err = newDemoPKI(); err != nil {
			return s, err
		}
		defer pki.remove()
	}

	for i, id := range ids {
		if ctx.Err() != nil {
			s.Interrupted = true
			fmt.Fprintln(stdout, "gossip-demo: interrupted during setup")
			return s, nil
		}
		addr := listenAddr(cfg, i)
		opts := []gossip.Option{gossip.WithFanout(cfg.Fanout),
			gossip.WithStreaming(!cfg.Unary),
			gossip.WithSeed(cfg.Seed),
			gossip.WithDeliveryHandler(tr.handler(i))}
		f := factory
		if pki != nil {
			sec, err := pki.security(id, logger)
			if err != nil {
				return s, err
			}
			f = gossip.NewGossipClientFactory(sec.DialOption())
			factories = append(factories, f)
			opts = append(opts, gossip.WithSecurity(sec))
		}
		node, err := gossip.New(id, addr, storage, router, logger, f, opts...)
		if err != nil {
			return s, fmt.Errorf("creating %s: %w", id, err)
		}
		nodes = append(nodes, node)
		if err := node.StartGRPCServer(addr); err != nil {
			if errors.Is(err, syscall.EADDRINUSE) {
				return s, &portInUseError{Addr: addr, Node: id}
			}
			return s, fmt.Errorf("starting %s on %s: %w", id, addr, err)
		}
		// StartGRPCServer has set Endpoint to the bound address when the
		// port was 0.
		s.Endpoints = append(s.Endpoints, node.Endpoint)
	}
	for i, nbs := range g {
		for _, j := range nbs {
			if err := nodes[i].AddNeighbor(ids[j], nodes[j].Endpoint); err != nil {
				return s, fmt.Errorf("wiring %s → %s: %w", ids[i], ids[j], err)
			}
		}
	}

	if pki != nil {
		fmt.Fprintf(stdout, "gossip-demo: mutual TLS, node certificates spiffe://%s/node/<id> of a CA made for this run (%s, removed at exit)\n", auth.DefaultTrustDomain, pki.dir)
	}
	if cfg.Unary {
		fmt.Fprintf(stdout, "gossip-demo: %d nodes, %s, unary transport, fanout %d, %d messages per node\n", n, desc, cfg.Fanout, m)
	} else {
		fmt.Fprintf(stdout, "gossip-demo: %d nodes, %s, streams (Plumtree), %d messages per node\n", n, desc, m)
	}
	if ctx.Err() != nil {
		s.Interrupted = true
		writeSummary(stdout, &s)
		return s, nil
	}

	// Publish: message k of every node, then message k+1, so that every
	// node's messages are on their way early.
	start := time.Now()
	deadline := start.Add(cfg.Timeout)
	waitCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	s.Started = true
publish:
	for k := 1; k <= m; k++ {
		for i, node := range nodes {
			msg := &pb.GossipMessage{
				Hash:     messageHash(ids[i], k),
				FromHash: node.Hash,
				Payload:  fmt.Sprintf("hello %d from %s", k, node.Hash),
			}
			if _, err := node.PutMessageToClient(waitCtx, msg); err != nil {
				if waitCtx.Err() != nil {
					break publish
				}
				s.PublishErrors++
				logger.Error("publish failed", "node", node.Hash, "hash", msg.Hash, "err", err)
			}
		}
	}

	// Wait for every delivery, showing progress.
	terminal := isTerminal(stdout)
	if cfg.Terminal != nil {
		terminal = *cfg.Terminal
	}
	p := progress{w: stdout, terminal: terminal, quiet: cfg.Quiet, start: start, total: s.Expected}
	ticker := time.NewTicker(progressEvery)
	defer ticker.Stop()
	var prevActivity activity
wait:
	for {
		select {
		case <-tr.done:
			break wait
		case <-waitCtx.Done():
			if ctx.Err() != nil {
				s.Interrupted = true
			} else {
				s.TimedOut = true
			}
			break wait
		case now := <-ticker.C:
			p.update(now, int(tr.total.Load()))
			// Gossip has stopped short of everyone (e.g. a fanout below
			// the degree): nothing more will arrive, stop waiting.
			cur := snapshot(nodes, tr)
			if cfg.Unary && cur.idle() && cur == prevActivity {
				// Only the unary push can stall for good: streams keep
				// repairing (grafts, anti-entropy) until --timeout.
				s.Stalled = true
				break wait
			}
			prevActivity = cur
		}
	}
	s.Elapsed = time.Since(start)
	p.clear()

	if tr.total.Load() == int64(s.Expected) {
		s.Settled = settle(ctx, nodes, tr)
	} else {
		s.Settled = snapshot(nodes, tr).idle()
	}
	tr.fill(&s, start)
	collectStats(&s, nodes)
	writeSummary(stdout, &s)

	if cfg.Serve && ctx.Err() == nil {
		serve(ctx, &cfg, &s, tr, nodes[0], stdout, logger)
	}
	return s, nil
}

// buildTopology returns the neighbour lists and a description of them.
func buildTopology(cfg config) (topology.Graph, string, error) {
	switch cfg.Topology {
	case topoRing:
		return topology.Ring(cfg.Nodes), "ring", nil
	case topoFull:
		return topology.Full(cfg.Nodes), "full mesh", nil
	case topoRandom:
		g, err := topology.RandomRegular(cfg.Nodes, cfg.Degree, cfg.Seed)
		if err != nil {
			return nil, "", fmt.Errorf("--topology random: %w", err)
		}
		return g, fmt.Sprintf("random %d-regular graph (seed %d)", cfg.Degree, cfg.Seed), nil
	}
	return nil, "", fmt.Errorf("--topology %q: want ring, random or full", cfg.Topology)
}

// maxDegree is the largest number of neighbours of any node.
func maxDegree(g topology.Graph) int {
	d := 0
	for _, nb := range g {
		d = max(d, len(nb))
	}
	return d
}

// nodeIDs returns "node-01".."node-20" (wider numbers for more nodes).
func nodeIDs(n int) []string {
	w := max(2, len(strconv.Itoa(n)))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("node-%0*d", w, i+1)
	}
	return ids
}

func messageHash(node string, k int) string { return fmt.Sprintf("%s/msg-%d", node, k) }

// listenAddr is node i's (0-based) listen address.
func listenAddr(cfg config, i int) string {
	port := 0
	if cfg.BasePort > 0 {
		port = cfg.BasePort + i
	}
	return net.JoinHostPort(cfg.Host, strconv.Itoa(port))
}

// closeAll closes the nodes in parallel and waits for all of them.
func closeAll(nodes []*gossip.GossipNode, logger *slog.Logger) {
	var wg sync.WaitGroup
	for _, node := range nodes {
		wg.Go(func() {
			if err := node.Close(); err != nil {
				logger.Warn("closing node", "node", node.Hash, "err", err)
			}
		})
	}
	wg.Wait()
}

// activity is a snapshot of the cluster's gossip work, summed over nodes.
type activity struct {
	forwards  uint64 // forwards planned
	finished  uint64 // forwards acknowledged, given up or dropped
	received  uint64 // copies received
	inflight  int    // forwards in flight
	streamed  uint64 // messages written to streams
	streamAck uint64 // of those, acknowledged
	queued2   int    // bytes queued for streams
	queued    int    // deliveries waiting for the DeliveryHandler
	delivered int64  // deliveries the tracker counted
}

func snapshot(nodes []*gossip.GossipNode, tr *tracker) activity {
	var a activity
	for _, node := range nodes {
		st := node.Stats()
		a.forwards += st.Forwards
		a.finished += st.Acked + st.GaveUp + st.SendsDropped
		a.received += st.Received
		a.inflight += st.InflightSends
		a.streamed += st.Stream.CopiesSent
		a.streamAck += st.Stream.CopiesAcked
		a.queued2 += st.Stream.QueuedBytes
		a.queued += st.DeliveryQueue
	}
	a.delivered = tr.total.Load()
	return a
}

// idle reports whether nothing is happening: every planned forward has
// finished and no delivery is queued, so no node will receive or deliver
// anything more on its own.
func (a activity) idle() bool {
	return a.inflight == 0 && a.queued == 0 && a.forwards == a.finished &&
		a.queued2 == 0 && a.streamed == a.streamAck
}

// settle waits (up to settleLimit) until the cluster is idle, so that the
// RPC counters in the summary are final: two idle snapshots in a row must
// agree. The library has no event for this, so it polls Stats.
func settle(ctx context.Context, nodes []*gossip.GossipNode, tr *tracker) bool {
	limit := time.NewTimer(settleLimit)
	defer limit.Stop()
	tick := time.NewTicker(settlePoll)
	defer tick.Stop()
	prev := snapshot(nodes, tr)
	for {
		select {
		case <-tick.C:
		case <-limit.C:
			return false
		case <-ctx.Done():
			return false
		}
		cur := snapshot(nodes, tr)
		if cur.idle() && cur == prev {
			return true
		}
		prev = cur
	}
}

// collectStats sums the nodes' counters into s.
func collectStats(s *summary, nodes []*gossip.GossipNode) {
	for i, node := range nodes {
		st := node.Stats()
		s.Sent += st.Sent
		s.Acked += st.Acked
		s.AckFailed += st.AckFailed
		s.Retries += st.Retries
		s.Duplicates += st.Duplicates
		s.GaveUp += st.GaveUp
		s.Dropped += st.SendsDropped
		s.StreamCopies += st.Stream.CopiesSent
		s.StreamAcked += st.Stream.CopiesAcked
		s.Envelopes += st.Stream.EnvelopesSent
		s.Prunes += st.Stream.PrunesSent
		s.Repaired += st.Stream.Repaired
		s.GraftsServed += st.Stream.GraftsServed
		if i == 0 {
			s.TTLMin, s.TTLMax = st.TTL, st.TTL
			s.DiameterMin, s.DiameterMax = st.Diameter, st.Diameter
			continue
		}
		s.TTLMin, s.TTLMax = min(s.TTLMin, st.TTL), max(s.TTLMax, st.TTL)
		s.DiameterMin, s.DiameterMax = min(s.DiameterMin, st.Diameter), max(s.DiameterMax, st.Diameter)
	}
}

// writeSummary prints the summary after the header line.
func writeSummary(w io.Writer, s *summary) {
	if !s.Started {
		fmt.Fprintln(w, "result: INCOMPLETE (interrupted before publishing)")
		return
	}
	pct := 0.0
	if s.Expected > 0 {
		pct = 100 * float64(s.Delivered) / float64(s.Expected)
	}
	fmt.Fprintf(w, "delivered %d/%d (%.1f%%) in %s", s.Delivered, s.Expected, pct, fmtDur(s.Elapsed))
	if s.Delivered > 0 {
		fmt.Fprintf(w, " (last delivery %s after the first publish)", fmtDur(s.LastDelivery))
	}
	fmt.Fprintln(w)
	if s.Unary {
		fmt.Fprintf(w, "RPCs sent %d (acked %d, failed %d, retries %d) · duplicates suppressed %d · gave up %d",
			s.Sent, s.Acked, s.AckFailed, s.Retries, s.Duplicates, s.GaveUp)
	} else {
		fmt.Fprintf(w, "messages sent %d (acked %d) in %d batches · duplicates suppressed %d · prunes %d · repaired %d",
			s.StreamCopies, s.StreamAcked, s.Envelopes, s.Duplicates, s.Prunes, s.Repaired)
		if s.Sent > 0 {
			fmt.Fprintf(w, " · unary RPCs %d", s.Sent)
		}
	}
	if s.Dropped > 0 {
		fmt.Fprintf(w, " · dropped %d", s.Dropped)
	}
	if !s.Settled {
		fmt.Fprint(w, " · some still in flight")
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "per-node TTL %s..%s · diameter estimate %s hops\n",
		fmtDur(s.TTLMin), fmtDur(s.TTLMax), fmtRange(s.DiameterMin, s.DiameterMax))
	if s.PublishErrors > 0 {
		fmt.Fprintf(w, "publish failures: %d (see the log)\n", s.PublishErrors)
	}
	if s.DuplicateDeliveries > 0 {
		fmt.Fprintf(w, "duplicate deliveries: %d (a message handed to a node's application twice)\n", s.DuplicateDeliveries)
	}
	if len(s.Missing) > 0 {
		const show = 20
		parts := make([]string, 0, min(show, len(s.Missing)))
		for _, ms := range s.Missing[:min(show, len(s.Missing))] {
			parts = append(parts, fmt.Sprintf("%s %d", ms.Node, ms.Count))
		}
		more := ""
		if len(s.Missing) > show {
			more = fmt.Sprintf(", … and %d more nodes", len(s.Missing)-show)
		}
		fmt.Fprintf(w, "missing (node: messages not delivered, of %d each): %s%s\n", s.Nodes*s.Messages, strings.Join(parts, ", "), more)
	}
	switch {
	case s.complete():
		fmt.Fprintln(w, "result: OK")
	case s.Interrupted:
		fmt.Fprintln(w, "result: INCOMPLETE (interrupted)")
	case s.TimedOut:
		fmt.Fprintf(w, "result: INCOMPLETE (timed out after %s)\n", fmtDur(s.Elapsed))
	case s.Stalled:
		fmt.Fprintln(w, "result: INCOMPLETE (gossip stopped: no forward in flight, nothing more will arrive)")
	default:
		fmt.Fprintln(w, "result: FAILED")
	}
	if s.Unary && s.Delivered < s.Expected && !s.Interrupted && s.Fanout < s.MaxDegree-1 {
		fmt.Fprintf(w, "note: with fanout %d and up to %d neighbours per node a node forwards to only some of its neighbours, so gossip reaches every node with high probability but not always; --fanout %d floods\n",
			s.Fanout, s.MaxDegree, s.MaxDegree)
	}
}

// serve keeps the cluster up until ctx ends, telling the user how to reach
// it and reporting messages published from outside.
func serve(ctx context.Context, cfg *config, s *summary, tr *tracker, first *gossip.GossipNode, w io.Writer, logger *slog.Logger) {
	fmt.Fprintln(w)
	// The live dashboard of the first node, on a free port.
	if lis, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, "0")); err != nil {
		logger.Warn("no dashboard: cannot listen", "err", err)
	} else {
		dash := dashboard.New(first)
		srv := &http.Server{Handler: dash, ReadHeaderTimeout: 5 * time.Second}
		srv.RegisterOnShutdown(dash.Close)
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.Serve(lis)
		}()
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), time.Second)
			srv.Shutdown(sctx)
			cancel()
			dash.Close()
			<-done
		}()
		fmt.Fprintf(w, "dashboard of %s: http://%s/\n", first.Hash, lis.Addr())
	}
	if last := len(s.Endpoints) - 1; cfg.BasePort > 0 && last > 0 {
		fmt.Fprintf(w, "serving %d nodes: %s on %s … %s on %s; Ctrl-C or SIGTERM stops them\n",
			s.Nodes, tr.ids[0], s.Endpoints[0], tr.ids[last], s.Endpoints[last])
	} else {
		fmt.Fprintf(w, "serving %d nodes; Ctrl-C or SIGTERM stops them:\n", s.Nodes)
		for i, ep := range s.Endpoints {
			fmt.Fprintf(w, "  %s on %s\n", tr.ids[i], ep)
		}
	}
	fmt.Fprintf(w, "publish a message on any node (gRPC reflection is on), e.g.:\n  grpcurl -plaintext -d '{\"hash\":\"h1\",\"fromHash\":\"x\",\"payload\":\"hi\"}' %s gossip.v1.Gossip/PutMessageToClient\n", s.Endpoints[0])

	tick := time.NewTicker(progressEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintf(w, "stopping: closing %d nodes\n", s.Nodes)
			return
		case now := <-tick.C:
			for _, line := range tr.externalReport(now) {
				fmt.Fprintln(w, line)
			}
		}
	}
}

// progress prints "delivered D/E" lines: rewritten in place every tick on
// a terminal, otherwise at most one line per progressEveryLog.
type progress struct {
	w        io.Writer
	terminal bool
	quiet    bool
	start    time.Time
	total    int
	printed  time.Time // last line (not terminal)
	dirty    bool      // a terminal line is showing
}

func (p *progress) update(now time.Time, delivered int) {
	if p.quiet {
		return
	}
	line := fmt.Sprintf("delivered %d/%d (%.1f%%) · %s elapsed", delivered, p.total,
		100*float64(delivered)/float64(max(p.total, 1)), fmtDur(now.Sub(p.start)))
	if p.terminal {
		fmt.Fprintf(p.w, "\r\x1b[K%s", line)
		p.dirty = true
		return
	}
	last := p.printed
	if last.IsZero() {
		last = p.start
	}
	if now.Sub(last) >= progressEveryLog-progressEvery/2 { // ticks jitter
		fmt.Fprintln(p.w, line)
		p.printed = now
	}
}

// clear erases the terminal progress line.
func (p *progress) clear() {
	if p.dirty {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.dirty = false
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// fmtDur prints a duration for people: 84ms, 1.23s, 2s.
func fmtDur(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	default:
		return d.Round(10 * time.Millisecond).String()
	}
}

func fmtRange(lo, hi int) string {
	if lo == hi {
		return strconv.Itoa(lo)
	}
	return fmt.Sprintf("%d..%d", lo, hi)
}
