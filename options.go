package gossip

import (
	"google.golang.org/grpc"

	"github.com/grpc-gossip/gossip/auth"
)

// Option configures a GossipNode at construction.
type Option interface{ apply(*nodeOptions) }

type nodeOptions struct {
	cfg         Config
	transport   Transport
	deliver     DeliveryHandler
	serverOpts  []grpc.ServerOption
	sec         *auth.Security    // security.go
	limiter     *PublishLimiter   // publishlimit.go
	sublimits   *SubscriberLimits // subscriberlimit.go
	subBytes    int64             // WithSubscriberBytes
	streamLimit *StreamLimit      // streamlimit.go
	peerBudget  *PeerBudget       // peerbudget.go
	mship       membershipOptions // membership_config.go
	persist     persistOptions    // persist.go
}

type optionFunc func(*nodeOptions)

func (f optionFunc) apply(o *nodeOptions) { f(o) }

// WithConfig replaces the node's whole Config (zero fields take defaults).
// Options after it may still change single fields.
func WithConfig(c Config) Option { return optionFunc(func(o *nodeOptions) { o.cfg = c }) }

// WithFanout sets Config.Fanout.
func WithFanout(n int) Option { return optionFunc(func(o *nodeOptions) { o.cfg.Fanout = n }) }

// WithStreaming turns the streaming transport on (the default) or off
// (Config.DisableStreaming: every neighbour gets the seed's unary
// PutMessageToClient).
func WithStreaming(on bool) Option {
	return optionFunc(func(o *nodeOptions) { o.cfg.DisableStreaming = !on })
}

// WithSeed sets Config.Seed, making the node's random choices reproducible.
func WithSeed(seed uint64) Option { return optionFunc(func(o *nodeOptions) { o.cfg.Seed = seed }) }

// WithTransport makes the node send through t instead of gRPC through its
// GossipClientFactory (e.g. a memnet endpoint in tests). The node closes t
// in Close.
func WithTransport(t Transport) Option { return optionFunc(func(o *nodeOptions) { o.transport = t }) }

// WithDeliveryHandler sets the function that receives every message the
// node delivers, exactly once per message id (within LongTTL), in the
// order the node accepted them. It runs on one goroutine owned by the
// node; while it is busy, deliveries queue up to Config.DeliveryBuffer and
// then receiving slows down. It must not call Close.
func WithDeliveryHandler(h DeliveryHandler) Option {
	return optionFunc(func(o *nodeOptions) { o.deliver = h })
}

// WithServerOptions adds grpc.ServerOptions to the server StartGRPCServer
// creates (credentials, interceptors, …).
func WithServerOptions(opts ...grpc.ServerOption) Option {
	return optionFunc(func(o *nodeOptions) { o.serverOpts = append(o.serverOpts, opts...) })
}
