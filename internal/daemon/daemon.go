package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/auth"
	"github.com/grpc-gossip/gossip/internal/dashboard"

	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// healthServices are the names the health service reports on: the
// server as a whole ("") and the services clients use.
var healthServices = []string{"", pbgrpc.Gossip_ServiceDesc.ServiceName, pbgrpc.NodeService_ServiceDesc.ServiceName}

// reconnectBackoff is how the node's gRPC connections retry a peer that is
// down. grpc-go's default grows to 120 s; a seed that starts late would
// then be found up to two minutes after it came up. This matches the join
// loop's backoff instead.
var reconnectBackoff = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: joinBackoffMin, Multiplier: 1.6, Jitter: 0.2, MaxDelay: joinBackoffMax},
	MinConnectTimeout: 20 * time.Second, // grpc-go's default; WithConnectParams would otherwise make it 0
}

// pollInterval is how often shutdown checks whether forwards are still in
// flight.
const pollInterval = 10 * time.Millisecond

// Run runs a daemon with cfg until ctx ends, then shuts it down gracefully
// (see the package comment) and returns nil. It returns an error, after
// closing whatever it had opened, when cfg is invalid, when the daemon
// cannot start (a listener cannot be bound, the data dir is in use) or when
// a server fails while running. Every goroutine it started has ended when
// it returns.
//
// The bound addresses are logged at info, with keys addr (gRPC) and
// admin_addr (HTTP), on the line "gossipd started", with transport
// (stream or unary) and, for unary, fanout ("all" or a number).
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	d, err := start(cfg, logger)
	if err != nil {
		return err
	}
	var runErr error
	select {
	case <-ctx.Done():
		d.logger.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	case runErr = <-d.failed:
		d.logger.Error("server failed; shutting down", "err", runErr, "timeout", cfg.ShutdownTimeout.String())
	}
	d.shutdown()
	return runErr
}

// daemon is one running gossipd.
type daemon struct {
	cfg       Config
	logger    *slog.Logger
	id        string
	addr      string // bound gRPC address
	advertise string
	resolver  Resolver // resolves --join
	adminAddr string   // bound HTTP address; "" when disabled

	node    *gossip.GossipNode
	sec     *auth.Security              // nil without TLS
	factory *gossip.GossipClientFactory // owned: released after the node closes
	grpc    *grpc.Server
	health  *health.Server
	admin   *http.Server // nil when disabled
	unlock  func() error // releases the data-dir lock; nil without one

	streams    context.Context // ends when streaming RPCs must end (shutdown)
	endStreams context.CancelFunc
	stopJoin   context.CancelFunc
	joinDone   chan struct{} // closed when the join loop ends; nil without one

	stopping    atomic.Bool            // shutdown has begun
	grpcStopped atomic.Bool            // the gRPC server no longer serves
	notReady    atomic.Pointer[string] // why the node is not ready (until it is)

	failed chan error     // a server's unexpected failure
	wg     sync.WaitGroup // the servers and the join loop
}

// start binds the listeners, creates the node and starts serving and
// joining. On error everything opened so far is closed again.
func start(cfg Config, logger *slog.Logger) (_ *daemon, err error) {
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	d := &daemon{cfg: cfg, failed: make(chan error, 2), resolver: cfg.resolver}
	if d.resolver == nil {
		d.resolver = net.DefaultResolver
	}
	if cfg.DataDir != "" {
		unlock, err := lockDataDir(cfg.DataDir)
		if err != nil {
			return nil, err
		}
		undo = append(undo, func() { unlock() })
		d.unlock = unlock
	}
	lis, err := listen("--listen", cfg.Listen)
	if err != nil {
		return nil, err
	}
	undo = append(undo, func() { lis.Close() })
	var adminLis net.Listener
	if cfg.AdminListen != "" {
		if adminLis, err = listen("--admin-listen", cfg.AdminListen); err != nil {
			if derived, _ := AdminListenFor(cfg.Listen); derived == cfg.AdminListen {
				// Most likely the user never set it: say where it came from.
				err = fmt.Errorf("%w (%s is the default, the --listen port + 1: set --admin-listen to a free address, or to \"\" to disable the admin server)", err, cfg.AdminListen)
			}
			return nil, err
		}
		undo = append(undo, func() { adminLis.Close() })
		d.adminAddr = adminLis.Addr().String()
	}

	d.addr = lis.Addr().String()
	d.advertise = cfg.Advertise
	if d.advertise == "" {
		d.advertise = d.addr
	}
	d.id = cfg.ID
	if cfg.TLSCert != "" {
		if d.sec, err = d.loadSecurity(logger); err != nil {
			return nil, err
		}
	}
	if d.id == "" {
		host, _ := os.Hostname() // "" on error: DefaultID falls back to "gossipd"
		d.id = DefaultID(host, lis.Addr().(*net.TCPAddr).Port)
	}
	d.logger = logger.With("node", d.id)

	dialOpts := []grpc.DialOption{grpc.WithConnectParams(reconnectBackoff)}
	var windowOpts []grpc.ServerOption // after the node's ServerOptions: they override its default
	if w := int32(cfg.FlowWindowBytes); w > 0 {
		dialOpts = append(dialOpts, grpc.WithStaticStreamWindowSize(w), grpc.WithStaticConnWindowSize(w))
		windowOpts = []grpc.ServerOption{grpc.StaticStreamWindowSize(w), grpc.StaticConnWindowSize(w)}
	}
	nodeOpts := []gossip.Option{gossip.WithConfig(cfg.nodeConfig()), gossip.WithMembership(cfg.membershipConfig()),
		gossip.WithCatchUp(cfg.CatchUp), gossip.WithStateFailure(func(err error) { d.fail(err) })}
	if cfg.DataDir != "" {
		nodeOpts = append(nodeOpts, gossip.WithDataDir(cfg.DataDir, cfg.Sync))
	}
	if d.sec != nil {
		dialOpts = append(dialOpts, d.sec.DialOption())
		nodeOpts = append(nodeOpts, gossip.WithSecurity(d.sec))
	}
	if cfg.MaxStreamsPerPeer > 0 { // after WithSecurity: per node identity
		nodeOpts = append(nodeOpts, gossip.WithStreamLimit(gossip.NewStreamLimit(cfg.MaxStreamsPerPeer)))
	}
	if cfg.PeerInboundRate > 0 { // after WithSecurity: per node identity
		nodeOpts = append(nodeOpts, gossip.WithPeerBudget(gossip.NewPeerBudget(float64(cfg.PeerInboundRate), cfg.PeerInboundBurst)))
	}
	if cfg.MaxSubscribers > 0 || cfg.SubscriberBufferBudget > 0 {
		nodeOpts = append(nodeOpts, gossip.WithSubscriberLimits(gossip.NewSubscriberLimits(cfg.MaxSubscribers, cfg.SubscriberBufferBudget)))
	}
	if cfg.SubscriberBytes > 0 {
		nodeOpts = append(nodeOpts, gossip.WithSubscriberBytes(int64(cfg.SubscriberBytes)))
	}
	if cfg.PublishRate > 0 { // after WithSecurity: the limit is per identity
		nodeOpts = append(nodeOpts, gossip.WithPublishLimit(gossip.NewPublishLimiter(cfg.PublishRate, cfg.PublishBurst)))
	}
	if d.sec != nil && d.sec.Transition() {
		d.logger.Warn("TLS transition: plaintext is still accepted and no credential is required; once every node runs with TLS, restart each without --tls-transition (docs/SECURITY.md)", "listen", d.addr)
	}
	if d.sec == nil {
		d.logger.Warn("TLS is off: the cluster is open — anyone who can reach --listen can join, evict members, read and publish messages; set --tls-cert, --tls-key and --tls-ca (docs/SECURITY.md)", "listen", d.addr)
	}
	d.factory = gossip.NewGossipClientFactory(dialOpts...)
	d.node, err = gossip.New(d.id, d.advertise, nil, nil, logger, d.factory, nodeOpts...)
	if err != nil {
		d.factory.Release()
		if isStateError(err) {
			return nil, fmt.Errorf("--data-dir %s: %w", cfg.DataDir, err)
		}
		return nil, fmt.Errorf("--id %q: %w", d.id, err)
	}

	d.health = health.NewServer()
	for _, svc := range healthServices {
		d.health.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	d.streams, d.endStreams = context.WithCancel(context.Background())
	d.grpc = grpc.NewServer(append(append(d.node.ServerOptions(), windowOpts...), grpc.ChainStreamInterceptor(d.endStreamsOnShutdown))...)
	d.node.Register(d.grpc)
	d.node.SetListenAddr(d.addr)
	healthpb.RegisterHealthServer(d.grpc, d.health)
	if d.sec == nil || d.sec.Reflection() {
		reflection.Register(d.grpc)
	}

	// Readiness is settled before serving, so that a first node never
	// reports not ready once its address is known.
	seeds := make([]string, 0, len(cfg.Join))
	for _, s := range cfg.Join {
		if s != d.advertise {
			seeds = append(seeds, s)
		}
	}
	if len(seeds) == 0 && d.node.Restored() {
		// Restarted without --join: rejoin the members of the previous
		// life (saved in --data-dir).
		for _, s := range d.node.SavedMembers() {
			if s != d.advertise {
				seeds = append(seeds, s)
			}
		}
		if len(seeds) > 0 {
			// The join loop resolves d.cfg.Join (and reconnection keeps
			// re-resolving it): the saved members stand in for --join.
			d.cfg.Join = seeds
			d.logger.Info("rejoining the members of the previous life", "seeds", strings.Join(seeds, ","))
		}
	}
	if len(seeds) == 0 {
		d.node.MarkReady()
		d.setServing()
	} else {
		reason := "joining: no seed has answered yet"
		d.notReady.Store(&reason)
	}

	// Nothing below fails: from here on, shutdown undoes everything.
	d.wg.Go(func() {
		if err := d.grpc.Serve(lis); err != nil {
			d.fail(fmt.Errorf("gRPC server on %s: %w", d.addr, err))
		}
	})
	if d.sec != nil {
		d.wg.Go(d.reloadOnHUP)
	}
	if adminLis != nil {
		dash := dashboard.New(d.node)
		d.admin = &http.Server{
			Handler:           d.adminHandler(dash),
			ReadHeaderTimeout: 5 * time.Second,
			ErrorLog:          slog.NewLogLogger(d.logger.Handler(), slog.LevelWarn),
		}
		d.admin.RegisterOnShutdown(dash.Close) // its event streams end (Shutdown does not wait for them)
		d.wg.Go(func() {
			if err := d.admin.Serve(adminLis); !errors.Is(err, http.ErrServerClosed) {
				d.fail(fmt.Errorf("admin server on %s: %w", d.adminAddr, err))
			}
		})
	}
	attrs := []any{"addr", d.addr, "advertise", d.advertise}
	if d.adminAddr != "" {
		attrs = append(attrs, "admin_addr", d.adminAddr)
	}
	if len(cfg.Join) > 0 {
		attrs = append(attrs, "join", strings.Join(cfg.Join, ","))
	}
	// fanout only matters to unary neighbours: with the stream transport
	// it would be a number that describes nothing the user sees.
	attrs = append(attrs, "transport", cfg.transportName())
	if cfg.Unary {
		attrs = append(attrs, "fanout", cfg.fanoutName())
	}
	attrs = append(attrs, "max_payload", cfg.MaxPayload, "security", d.securityName())
	if cfg.DataDir != "" {
		attrs = append(attrs, "data_dir", cfg.DataDir, "state", d.node.StatePath(), "sync", cfg.Sync.String(),
			"incarnation", d.node.Incarnation(), "restored", d.node.Restored())
	}
	if first, head := d.node.LogBounds(); head > 0 {
		attrs = append(attrs, "log_first", first, "log_head", head)
	}
	if cfg.ConfigFile != "" {
		attrs = append(attrs, "config", cfg.ConfigFile)
	}
	d.logger.Info("gossipd started", attrs...)

	if len(seeds) == 0 {
		d.logger.Info("ready", "how", "first node")
		return d, nil
	}
	var joinCtx context.Context
	joinCtx, d.stopJoin = context.WithCancel(context.Background())
	d.joinDone = make(chan struct{})
	d.wg.Go(func() { d.joinLoop(joinCtx) })
	return d, nil
}

// listen binds addr; its error is one line naming the setting and the
// address.
func listen(setting, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return nil, fmt.Errorf("%s %s: cannot listen: %w", setting, addr, err)
	}
	return lis, nil
}

// fail reports a server's unexpected failure to Run; later ones are
// dropped (the first one is the cause).
func (d *daemon) fail(err error) {
	select {
	case d.failed <- err:
	default:
	}
}

// becomeReady marks the daemon ready after joining.
func (d *daemon) becomeReady(how string, attrs ...any) {
	d.setServing()
	d.notReady.Store(nil)
	d.logger.Info("ready", append([]any{"how", how}, attrs...)...)
}

// setServing switches the health service to SERVING (unless shutdown has
// begun: the health server then ignores it).
func (d *daemon) setServing() {
	for _, svc := range healthServices {
		d.health.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
	}
}

// readiness reports whether the daemon is ready and, if not, why.
func (d *daemon) readiness() (bool, string) {
	switch {
	case d.stopping.Load():
		return false, "shutting down"
	case d.node.Ready():
		return true, ""
	}
	if r := d.notReady.Load(); r != nil {
		return false, *r
	}
	return false, "joining"
}

// shutdown stops the daemon: NOT_SERVING, drain forwards, stop the gRPC
// server, close the node and the rest. The graceful steps share
// cfg.ShutdownTimeout; closing after it is quick (everything is cut).
func (d *daemon) shutdown() {
	began := time.Now()
	deadline := began.Add(d.cfg.ShutdownTimeout)
	d.stopping.Store(true)
	d.health.Shutdown() // NOT_SERVING for every service, now and for good
	if d.stopJoin != nil {
		d.stopJoin()
		<-d.joinDone
	}
	d.leave(deadline)

	drained := d.waitForwards(deadline)
	d.endStreams()
	graceful := d.stopGRPC(deadline)
	d.grpcStopped.Store(true)

	var errs []error
	errs = append(errs, d.node.Close(), d.factory.Release())
	if d.admin != nil {
		ctx, cancel := context.WithTimeout(context.Background(), max(time.Until(deadline), time.Second))
		if err := d.admin.Shutdown(ctx); err != nil {
			errs = append(errs, d.admin.Close())
		}
		cancel()
	}
	d.wg.Wait()
	if d.unlock != nil {
		errs = append(errs, d.unlock())
	}
	if err := errors.Join(errs...); err != nil {
		d.logger.Warn("error while closing", "err", err)
	}
	d.logger.Info("gossipd stopped", "took", time.Since(began).Round(time.Millisecond).String(),
		"forwards_drained", drained, "rpcs_drained", graceful)
}

// leaveTimeout bounds how long shutdown waits for the leave to spread.
const leaveTimeout = 2 * time.Second

// leave announces the node's departure, so peers mark it left instead of
// timing it out, within leaveTimeout and the shutdown deadline.
func (d *daemon) leave(deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	ctx, cancel2 := context.WithTimeout(ctx, leaveTimeout)
	defer cancel2()
	if err := d.node.Leave(ctx); err != nil {
		d.logger.Warn("leave not confirmed; peers will time this node out", "err", err)
	}
}

// waitForwards waits until no forward is in flight or the deadline
// passes, and reports whether they all finished.
func (d *daemon) waitForwards(deadline time.Time) bool {
	tk := time.NewTicker(pollInterval)
	defer tk.Stop()
	for {
		st := d.node.Stats()
		n, queued := st.InflightSends, st.Stream.QueuedBytes
		if n == 0 && queued == 0 {
			return true
		}
		if !time.Now().Before(deadline) {
			d.logger.Warn("shutdown timeout: cutting forwards still in flight", "forwards", n, "stream_queued_bytes", queued)
			return false
		}
		<-tk.C
	}
}

// stopGRPC stops the gRPC server gracefully until the deadline, then cuts
// the RPCs still running. It reports whether they all finished.
func (d *daemon) stopGRPC(deadline time.Time) bool {
	done := make(chan struct{})
	go func() {
		d.grpc.GracefulStop()
		close(done)
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		d.logger.Warn("shutdown timeout: cutting RPCs still running")
		d.grpc.Stop()
		<-done
		return false
	}
}

// endStreamsOnShutdown is a stream interceptor that ends streaming RPCs
// (Subscribe, health Watch) when shutdown stops the gRPC server: they
// would otherwise keep GracefulStop waiting for the whole timeout. The
// client gets Unavailable.
func (d *daemon) endStreamsOnShutdown(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	defer context.AfterFunc(d.streams, cancel)()
	err := handler(srv, serverStream{ss, ctx})
	if err != nil && d.streams.Err() != nil && ss.Context().Err() == nil {
		return status.Error(codes.Unavailable, "gossipd is shutting down")
	}
	return err
}

// serverStream is a grpc.ServerStream with another context.
type serverStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s serverStream) Context() context.Context { return s.ctx }

// oneLine makes an error message fit on one line (errors.Join uses
// newlines).
func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", "; ") }
