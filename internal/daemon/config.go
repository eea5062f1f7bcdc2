package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"time"
	"unicode"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/auth"
	"github.com/grpc-gossip/gossip/internal/core"
)

// Config is gossipd's configuration. Load fills it from flags, the
// environment and a YAML file; DefaultConfig returns the defaults. Run
// expects a Config that Load produced or that passes Validate.
type Config struct {
	// ID is the node's id, unique in the cluster, at most 256 bytes.
	// Empty: derived after binding from the host name and the bound gRPC
	// port ("myhost-9001", see DefaultID), so it is stable across restarts
	// unless the port is ephemeral.
	ID string
	// Listen is the gRPC server's address, host:port. Port 0 picks a free
	// port; the bound address is logged (key addr). Default 127.0.0.1:9001.
	Listen string
	// Advertise is the address other nodes reach this one at. Empty: the
	// bound listen address, which is refused when Listen binds all
	// interfaces (0.0.0.0, ::, or no host).
	Advertise string
	// Join lists the seeds: host:port (a host name stands for every
	// address it resolves to, e.g. a Kubernetes headless Service) or
	// SRVPrefix + an SRV record name (every target and port of the
	// record). They are resolved again before each join attempt and every
	// ReconnectInterval after (see joinLoop). Empty: this is the first
	// node.
	Join []string
	// DataDir is a directory for the daemon's state, created with mode
	// 0700 if missing: a lock file (gossipd.lock, with the pid) that stops
	// two daemons from sharing it, and the node's state (gossip.db: its
	// identity, incarnation, what it delivered, its delivery log), so that
	// a restart with the same ID delivers nothing twice and fetches what
	// it missed. Empty: none (the log is in memory; a restart is a new
	// node).
	DataDir string
	// Sync is when the state's commits reach stable storage (--sync):
	// always (the default), never, or an fsync period. See docs/DESIGN.md
	// §13.
	Sync gossip.SyncPolicy
	// Retention and RetentionBytes bound the delivery log (subscriptions
	// can start that far back). Defaults 10 min (the long TTL) and 64 MiB.
	Retention      time.Duration
	RetentionBytes int
	// CatchUp is how far back a brand-new node (no state) delivers
	// messages published before it started. Default 0: only messages
	// published after. A node restarted on its state ignores it.
	CatchUp time.Duration
	// AdminListen is the HTTP address of /healthz, /readyz, /metrics and
	// /debug/pprof/ (see Pprof). Port 0
	// picks a free port, logged with key admin_addr. Empty: no admin
	// server. When no flag, variable or YAML key sets it, Load derives it
	// from Listen (AdminListenFor: the same host, the gRPC port + 1, port
	// 0 for port 0), so that daemons with different --listen ports on one
	// host do not collide. DefaultConfig has DefaultAdminListen, which is
	// AdminListenFor(DefaultListen); a Config built in code keeps whatever
	// it is given.
	AdminListen string
	// LogLevel is the minimum level logged. Default info.
	LogLevel slog.Level
	// LogFormat is "json" (default) or "text".
	LogFormat string
	// Fanout is how many unary neighbours (all of them when Unary, else
	// those that answer Gossip.Stream with Unimplemented) a new message is
	// sent to with PutMessageToClient; gossip.FanoutAll (-1, the default)
	// floods it to all of them (see the package comment). Stream
	// neighbours do not use it.
	Fanout int
	// MaxPayload is the largest payload accepted, in bytes, at most
	// MaxPayloadLimit. Default 1 MiB.
	MaxPayload int
	// ShutdownTimeout bounds the graceful part of shutdown (draining
	// forwards and RPCs). Default 10 s.
	ShutdownTimeout time.Duration

	// Membership and failure detection (gossip.MembershipConfig; the
	// others of its knobs keep their LAN defaults).

	// ProbeInterval is the time between two probes of this node. Default 1 s.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for its ack before
	// indirect probes; below ProbeInterval. Default 500 ms.
	ProbeTimeout time.Duration
	// SuspicionMult scales the suspicion timeout (see
	// gossip.MembershipConfig). Default 4.
	SuspicionMult int
	// DeadReapAfter is how long dead and left members are remembered.
	// Default 5 min.
	DeadReapAfter time.Duration
	// FanoutExtra is c in the neighbour count ceil(ln N) + c. Default 2.
	FanoutExtra int
	// ReconnectInterval is the period of membership's reconnection to the
	// seeds and to members reaped as dead, and of the re-resolution of
	// Join. Default 30 s.
	ReconnectInterval time.Duration

	// Dissemination (gossip.Config; docs/DESIGN.md §6a).

	// Unary disables the streaming transport: every neighbour gets the
	// seed's PutMessageToClient (--transport unary). Default false
	// (--transport stream).
	Unary bool
	// GraftTimeout, SyncInterval, StoreBytes, StreamQueueBytes and
	// MaxQueuedBytes are gossip.Config's. Defaults 200 ms, 1 s, 64 MiB,
	// 8 MiB, 64 MiB.
	GraftTimeout     time.Duration
	SyncInterval     time.Duration
	StoreBytes       int
	StreamQueueBytes int
	MaxQueuedBytes   int
	// FlowWindowBytes is the static HTTP/2 flow-control window, per
	// stream and per connection, of the node's dials and its server
	// (gossip.FlowWindowBytes). Default 1 MiB.
	FlowWindowBytes int

	// Security (package auth; docs/SECURITY.md). Without TLSCert the
	// node serves and dials plaintext: anyone who can reach it is a full
	// member (a warning is logged).

	// TLSCert, TLSKey and TLSCA turn on mutual TLS, all three or none: the
	// node's certificate (URI SAN spiffe://<TrustDomain>/node/<ID>) and
	// key, and the CA bundle that signs members (and clients unless
	// ClientCA). The files are re-read for new connections when they
	// change.
	TLSCert, TLSKey, TLSCA string
	// ClientCA is a separate CA bundle for client certificates; needs TLS.
	ClientCA string
	// TrustDomain is the SPIFFE trust domain of identities. Default
	// auth.DefaultTrustDomain ("gossip").
	TrustDomain string
	// AuthTokenFile lists the bearer tokens clients may use, one per line;
	// re-read on change and on SIGHUP. Needs TLS (a token must not travel
	// in the clear).
	AuthTokenFile string
	// Reflection keeps gRPC reflection on with TLS (without TLS it is
	// always on). Default false.
	Reflection bool
	// TLSTransition is the middle step of turning TLS on in a running
	// cluster (docs/SECURITY.md): with the TLS files, accept plaintext too,
	// dial TLS with a fallback to plaintext, require no credential.
	TLSTransition bool
	// Sign makes the node sign the messages it originates and drop every
	// message whose origin signature does not check (auth.Config.Sign).
	// Needs TLS; every node of the cluster must have it, or SignTransition.
	Sign bool
	// SignTransition is the middle step of turning signing on in a running
	// cluster (docs/SECURITY.md): with Sign, sign and check signed messages
	// but accept unsigned ones (auth.Config.SignTransition).
	SignTransition bool
	// MaxSubscribers bounds the concurrent Subscribe calls, and
	// SubscriberBufferBudget the buffer slots (messages) all of them may
	// reserve together (gossip.SubscriberLimits). 0: no bound. Defaults
	// 1024 and 1,048,576.
	MaxSubscribers         int
	SubscriberBufferBudget int
	// SubscriberBytes bounds in bytes what all subscribers' buffers hold
	// together; a subscriber over its share (SubscriberBytes / live
	// subscribers) is cut off as a slow consumer
	// (gossip.WithSubscriberBytes). 0: no bound. Default 256 MiB.
	SubscriberBytes int
	// MaxStreamsPerPeer bounds the Gossip.Stream calls one peer (its
	// certificate's node with TLS, else its connection) may have open
	// (gossip.StreamLimit). 0: no bound. Default 64.
	MaxStreamsPerPeer int
	// PeerInboundRate is the inbound byte budget of each peer (its
	// certificate's node with TLS, else its connection), in bytes per
	// second, in bursts of PeerInboundBurst bytes (gossip.PeerBudget): a
	// peer's streams over it are slowed by flow control, its unary calls
	// refused. 0: no budget. Defaults 64 MiB/s and 64 MiB.
	PeerInboundRate  int
	PeerInboundBurst int
	// PublishRate limits each client to this many new messages per second
	// (gossip.PublishLimiter), in bursts of PublishBurst. 0 (the default):
	// no limit.
	PublishRate  float64
	PublishBurst int

	// Pprof says whether the admin server serves the Go profiler under
	// /debug/pprof/: PprofOn, PprofOff, or PprofAuto (the default): only
	// when the admin listener is bound to a loopback address ("" in a
	// Config built in code means PprofAuto too).
	Pprof string
	// TraceSample is gossip.Config.TraceSample: the fraction of the
	// messages published on this node that are traced. Default 0.
	TraceSample float64

	// ConfigFile is the YAML file the configuration was read from, if any.
	// Informational: Run does not read it.
	ConfigFile string

	// resolver resolves Join; nil is net.DefaultResolver. Tests set it.
	resolver Resolver
}

// Defaults of Config.
const (
	DefaultListen          = "127.0.0.1:9001"
	DefaultAdminListen     = "127.0.0.1:9002" // AdminListenFor(DefaultListen)
	DefaultLogFormat       = "json"
	DefaultFanout          = gossip.FanoutAll
	DefaultMaxPayload      = 1 << 20
	DefaultShutdownTimeout = 10 * time.Second

	// Values of Config.Pprof (--pprof).
	PprofAuto = "auto"
	PprofOn   = "on"
	PprofOff  = "off"

	// MaxPayloadLimit bounds MaxPayload: a node's gRPC connections carry
	// messages of at most 20 MiB (gossip.NewGossipClientFactory), and a
	// forward needs room for its ids and framing.
	MaxPayloadLimit = 16 << 20

	// DefaultPublishBurst is --publish-burst's default.
	DefaultPublishBurst = 100
	// DefaultMaxSubscribers and DefaultSubscriberBufferBudget are
	// --max-subscribers' and --subscriber-buffer-budget's defaults: the
	// budget's slots cost about 130 MiB when all are reserved.
	DefaultMaxSubscribers         = 1024
	DefaultSubscriberBufferBudget = 1 << 20
	// DefaultMaxStreamsPerPeer is --max-streams-per-peer's default (a node
	// opens one stream per neighbour, and briefly two while re-opening).
	DefaultMaxStreamsPerPeer = 64
	// DefaultPeerInboundRate and DefaultPeerInboundBurst are
	// --peer-inbound-rate's and --peer-inbound-burst's defaults: a bound
	// against a flooding peer, meant to be far above normal traffic, with
	// a burst far above the largest envelope
	// (gossip.GossipNode.MaxRecvMsgSize).
	DefaultPeerInboundRate  = 64 << 20
	DefaultPeerInboundBurst = 64 << 20

	// EnvPrefix starts the name of every environment variable gossipd
	// reads: GOSSIPD_ + the flag name in upper case, '-' as '_'.
	EnvPrefix = "GOSSIPD_"
)

// DefaultConfig returns the defaults: every setting not given anywhere.
func DefaultConfig() Config {
	return Config{
		Listen:                 DefaultListen,
		AdminListen:            DefaultAdminListen,
		Pprof:                  PprofAuto,
		LogLevel:               slog.LevelInfo,
		LogFormat:              DefaultLogFormat,
		Fanout:                 DefaultFanout,
		MaxPayload:             DefaultMaxPayload,
		ShutdownTimeout:        DefaultShutdownTimeout,
		ProbeInterval:          lan.ProbeInterval,
		ProbeTimeout:           lan.ProbeTimeout,
		SuspicionMult:          lan.SuspicionMult,
		DeadReapAfter:          lan.DeadReapAfter,
		FanoutExtra:            lan.FanoutExtra,
		ReconnectInterval:      lan.ReconnectInterval,
		GraftTimeout:           lib.GraftTimeout,
		SyncInterval:           lib.SyncInterval,
		StoreBytes:             lib.StoreBytes,
		StreamQueueBytes:       lib.StreamQueueBytes,
		MaxQueuedBytes:         lib.MaxQueuedBytes,
		FlowWindowBytes:        gossip.FlowWindowBytes,
		TrustDomain:            auth.DefaultTrustDomain,
		PublishBurst:           DefaultPublishBurst,
		MaxSubscribers:         DefaultMaxSubscribers,
		SubscriberBufferBudget: DefaultSubscriberBufferBudget,
		SubscriberBytes:        gossip.DefaultSubscriberBytes,
		MaxStreamsPerPeer:      DefaultMaxStreamsPerPeer,
		PeerInboundRate:        DefaultPeerInboundRate,
		PeerInboundBurst:       DefaultPeerInboundBurst,
		Sync:                   gossip.SyncAlways,
		Retention:              lib.LogRetention,
		RetentionBytes:         lib.LogRetentionBytes,
	}
}

// lib is the library's default node configuration.
var lib = gossip.DefaultConfig()

// lan is the library's LAN membership tuning: the daemon's defaults.
var lan = gossip.DefaultLANMembershipConfig()

// Validate checks a Config built in code. Errors name the setting. (Load
// checks each value as it reads it, then the rules that involve several
// settings with the source of every value, and then calls Validate.)
func (c *Config) Validate() error {
	checks := []struct {
		name string
		err  error
	}{
		{"id", checkID(c.ID, true)},
		{"listen", checkAddr(c.Listen, addrListen)},
		{"advertise", checkAddr(c.Advertise, addrAdvertise)},
		{"admin-listen", checkAddr(c.AdminListen, addrListen)},
		{"fanout", checkFanout(c.Fanout)},
		{"max-payload", checkMaxPayload(c.MaxPayload)},
		{"shutdown-timeout", checkPositive(c.ShutdownTimeout)},
		{"probe-interval", checkPositive(c.ProbeInterval)},
		{"probe-timeout", checkPositive(c.ProbeTimeout)},
		{"suspicion-mult", checkPositiveInt(c.SuspicionMult)},
		{"dead-reap-after", checkPositive(c.DeadReapAfter)},
		{"fanout-extra", checkPositiveInt(c.FanoutExtra)},
		{"trust-domain", checkTrustDomain(c.TrustDomain)},
		{"retention", checkPositive(c.Retention)},
		{"retention-bytes", checkPositiveInt(c.RetentionBytes)},
		{"reconnect-interval", checkPositive(c.ReconnectInterval)},
	}
	for _, ch := range checks {
		if ch.err != nil {
			return fmt.Errorf("invalid --%s: %w", ch.name, ch.err)
		}
	}
	for _, j := range c.Join {
		if err := checkSeed(j); err != nil {
			return fmt.Errorf("invalid --join %q: %w", j, err)
		}
	}
	switch c.Pprof {
	case "", PprofAuto, PprofOn, PprofOff:
	default:
		return fmt.Errorf("invalid --pprof %q: want on, off or auto", c.Pprof)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return fmt.Errorf("invalid --log-format %q: want json or text", c.LogFormat)
	}
	return c.crossCheck(nil)
}

// sources says where each setting's value came from, for the messages of
// the rules that involve several settings: setting name → "from the
// command line", "from environment variable GOSSIPD_…" or "from key … in
// FILE, line N". A setting that is not in it has its default. Nil means a
// Config built in code, whose values have no source to name.
type sources map[string]string

// of is name's source as a parenthetical: " (from …)", " (the default)",
// or "" without sources.
func (s sources) of(name string) string {
	switch from, ok := s[name]; {
	case s == nil:
		return ""
	case ok:
		return " (" + from + ")"
	}
	return " (the default)"
}

// crossCheck applies the rules that involve several settings; each error
// names every setting involved with its value and its source (from), and
// says what to change. Load calls it with the sources of the values, so a
// contradiction is a configuration error (exit status 2) like a bad value.
func (c *Config) crossCheck(from sources) error {
	if c.Advertise == "" && unspecifiedHost(c.Listen) {
		return fmt.Errorf("--advertise is required when --listen %q%s binds all interfaces: other nodes need an address they can reach; set --advertise to this host's address and the port", c.Listen, from.of("listen"))
	}
	if c.AdminListen != "" && sameListener(c.AdminListen, c.Listen) {
		return fmt.Errorf("invalid --admin-listen %s%s: the same port as --listen %s%s; give the admin server another port, or \"\" to disable it", c.AdminListen, from.of("admin-listen"), c.Listen, from.of("listen"))
	}
	if err := c.checkSecurity(from); err != nil {
		return err
	}
	if c.ProbeTimeout >= c.ProbeInterval {
		// Blame the setting the user gave; both if both or neither.
		_, toSet := from["probe-timeout"]
		_, ivSet := from["probe-interval"]
		if ivSet && !toSet {
			return fmt.Errorf("invalid --probe-interval %v%s: must be above --probe-timeout %v%s, as indirect probes need the rest of the interval; raise --probe-interval or lower --probe-timeout",
				c.ProbeInterval, from.of("probe-interval"), c.ProbeTimeout, from.of("probe-timeout"))
		}
		return fmt.Errorf("invalid --probe-timeout %v%s: must be below --probe-interval %v%s, as indirect probes need the rest of the interval; lower --probe-timeout or raise --probe-interval",
			c.ProbeTimeout, from.of("probe-timeout"), c.ProbeInterval, from.of("probe-interval"))
	}
	return nil
}

// AdminListenFor is the admin address of a daemon whose --admin-listen is
// not set: listen's host and its port + 1 (the layout of make cluster),
// or port 0 (a free port) when listen's port is 0. Listen port 65535 has
// no port after it: an error.
func AdminListenFor(listen string) (string, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "", errors.New("want host:port")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	switch {
	case err != nil:
		return "", fmt.Errorf("port %q is not a number from 0 to 65535", port)
	case p == 0:
		return net.JoinHostPort(host, "0"), nil
	case p == math.MaxUint16:
		return "", fmt.Errorf("port %d has no port after it", p)
	}
	return net.JoinHostPort(host, strconv.FormatUint(p+1, 10)), nil
}

// deriveAdminListen sets AdminListen to AdminListenFor(Listen) unless a
// source set it.
func (c *Config) deriveAdminListen(from sources) error {
	if _, ok := from["admin-listen"]; ok {
		return nil
	}
	a, err := AdminListenFor(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s%s leaves no port for the admin server, whose default is the --listen port + 1 (%v): set --admin-listen to a free address, or to \"\" to disable the admin server", c.Listen, from.of("listen"), err)
	}
	c.AdminListen = a
	return nil
}

// sameListener reports whether binding a and b would collide: the same
// port (not 0) on the same host, or on every interface for one of them.
func sameListener(a, b string) bool {
	ha, pa, err1 := net.SplitHostPort(a)
	hb, pb, err2 := net.SplitHostPort(b)
	if err1 != nil || err2 != nil || pa != pb || pa == "0" {
		return false
	}
	return ha == hb || unspecifiedHost(a) || unspecifiedHost(b)
}

// DefaultID is the id of a node without --id: the host name (characters
// other than letters, digits, '.', '_' and '-' replaced by '-') and the
// gRPC port, e.g. "myhost-9001".
func DefaultID(hostname string, port int) string {
	h := strings.Map(func(r rune) rune {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '_' || r == '-') {
			return r
		}
		return '-'
	}, hostname)
	if h == "" {
		h = "gossipd"
	}
	return fmt.Sprintf("%s-%d", h, port)
}

// setting is one configuration setting: its flag, environment variable and
// YAML key, its --help text, and how a value (a string, whatever its
// source) is parsed into a Config.
type setting struct {
	name  string // the flag name; env and YAML key follow from it
	arg   string // the value placeholder in --help
	def   string // the default as shown in --help
	usage string
	list  bool // comma-separated; repeated flags and YAML sequences add up
	// noOptDef is the value of the bare flag (--reflection), "" if the
	// flag needs a value.
	noOptDef string
	set      func(c *Config, v string) error
}

// envName is the environment variable of a setting: GOSSIPD_ADMIN_LISTEN.
func (s setting) envName() string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(s.name, "-", "_"))
}

// yamlKey is the YAML key of a setting: admin_listen.
func (s setting) yamlKey() string { return strings.ReplaceAll(s.name, "-", "_") }

// settings are every setting of Config, in --help order. (--config, which
// names the YAML file, is handled by Load.)
var settings = []setting{
	{
		name: "id", arg: "string", def: "<host name>-<gRPC port>",
		usage: "the node's id, unique in the cluster (at most 256 bytes); the default is stable across restarts unless the port is ephemeral",
		set: func(c *Config, v string) error {
			if err := checkID(v, false); err != nil {
				return err
			}
			c.ID = v
			return nil
		},
	},
	{
		name: "listen", arg: "host:port", def: DefaultListen,
		usage: "address of the gRPC server (gossip, membership, client API, health, reflection); port 0 picks a free port, logged with key addr",
		set: func(c *Config, v string) error {
			if err := checkAddr(v, addrListen); err != nil {
				return err
			}
			c.Listen = v
			return nil
		},
	},
	{
		name: "advertise", arg: "host:port", def: "the bound --listen address",
		usage: "address other nodes reach this one at; required when --listen binds all interfaces (0.0.0.0, ::)",
		set: func(c *Config, v string) error {
			if err := checkAddr(v, addrAdvertise); err != nil {
				return err
			}
			c.Advertise = v
			return nil
		},
	},
	{
		name: "join", arg: "host:port,...", def: "none: the first node", list: true,
		usage: fmt.Sprintf("seeds, comma-separated: host:port, where a host name stands for every address it resolves to (a Kubernetes headless Service: every pod), or %s followed by a DNS SRV record name (e.g. %s_grpc._tcp.gossip.default.svc.cluster.local: every target and port of the record); the entries are resolved again before each attempt, and joining is retried with backoff (%v to %v) until a seed answers, so nodes can start in any order; a node whose entries all resolve to itself is the first node; the node gets the whole membership from the seed, and SWIM then picks its neighbours (ceil(ln N) + --fanout-extra random live members); once joined, the entries are re-resolved every --reconnect-interval for membership's reconnection", SRVPrefix, SRVPrefix, joinBackoffMin, joinBackoffMax),
		set: func(c *Config, v string) error {
			seeds, err := parseJoin(v)
			if err != nil {
				return err
			}
			c.Join = seeds
			return nil
		},
	},
	{
		name: "data-dir", arg: "path", def: "none",
		usage: "directory for the daemon's state, created with mode 0700 if missing: a lock file (gossipd.lock, with the pid) that stops two daemons from using the same directory, and gossip.db (bbolt: the node's id and incarnation, what it delivered, its delivery log), so that a node restarted with the same --id delivers nothing twice, fetches what it missed while down, keeps its log offsets and, without --join, rejoins the members it knew last; without it the log is in memory and a restart is a new node",
		set:   func(c *Config, v string) error { c.DataDir = v; return nil },
	},
	{
		name: "sync", arg: "policy", def: "always",
		usage: "when --data-dir commits reach the disk: always (fsync each group commit before its publishes are acknowledged: a power loss loses nothing acknowledged), never (the OS flushes: a process crash loses nothing, a power loss may lose recent commits or damage the file), or a duration such as 100ms (fsync that often: a power loss loses up to that much)",
		set: func(c *Config, v string) error {
			p, err := gossip.ParseSyncPolicy(v)
			if err != nil {
				return err
			}
			c.Sync = p
			return nil
		},
	},
	durationSetting("retention", lib.LogRetention, "how long the delivery log keeps a message (subscribers can start or resume that far back: gossipctl subscribe --from-offset, --since, --from-earliest)",
		func(c *Config) *time.Duration { return &c.Retention }),
	bytesSetting("retention-bytes", lib.LogRetentionBytes, "size bound of the delivery log; the oldest messages go first",
		func(c *Config) *int { return &c.RetentionBytes }),
	{
		name: "catch-up", arg: "duration", def: "0s",
		usage: "a brand-new node (no state in --data-dir, or no --data-dir) delivers the messages its peers still hold that were published at most this long before it started (at most the 10m long TTL); 0: only messages published after it started. A node restarted on its state ignores it: it delivers exactly what it missed",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return errors.New("want a duration of 0 or more, such as 0s or 5m")
			}
			c.CatchUp = d
			return nil
		},
	},
	{
		name: "admin-listen", arg: "host:port", def: "--listen's host and port + 1, " + DefaultAdminListen,
		usage: `address of the HTTP admin server: /healthz (200 while serving), /readyz (200 once joined or the first node, else 503 and the reason), /metrics (Prometheus, docs/METRICS.md), /debug/pprof/ (see --pprof); port 0 picks a free port, logged with key admin_addr (the default is port 0 too when --listen's port is 0); empty (--admin-listen "", GOSSIPD_ADMIN_LISTEN= or admin_listen: "") disables it`,
		set: func(c *Config, v string) error {
			if err := checkAddr(v, addrListen); err != nil {
				return err
			}
			c.AdminListen = v
			return nil
		},
	},
	{
		name: "log-level", arg: "level", def: "info",
		usage: "minimum level logged: debug, info, warn or error",
		set: func(c *Config, v string) error {
			switch strings.ToLower(v) {
			case "debug":
				c.LogLevel = slog.LevelDebug
			case "info":
				c.LogLevel = slog.LevelInfo
			case "warn":
				c.LogLevel = slog.LevelWarn
			case "error":
				c.LogLevel = slog.LevelError
			default:
				return errors.New("want debug, info, warn or error")
			}
			return nil
		},
	},
	{
		name: "log-format", arg: "format", def: DefaultLogFormat,
		usage: "log format on stderr: json or text",
		set: func(c *Config, v string) error {
			switch v = strings.ToLower(v); v {
			case "json", "text":
				c.LogFormat = v
				return nil
			}
			return errors.New("want json or text")
		},
	},
	{
		name: "fanout", arg: "int", def: strconv.Itoa(DefaultFanout),
		usage: "for unary neighbours only (every neighbour with --transport unary; with the default stream transport, only neighbours that answer Gossip.Stream with Unimplemented): how many each new message is sent to with the seed's PutMessageToClient; -1 sends it to all of them, a flood that delivers every message to every connected node; a positive number sends it to that many random neighbours (fewer RPCs, probabilistic delivery). Stream neighbours do not use it: Plumtree decides who pushes to whom",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil {
				return errors.New("want an integer: -1 (all neighbours) or a positive number")
			}
			if err := checkFanout(n); err != nil {
				return err
			}
			c.Fanout = n
			return nil
		},
	},
	{
		name: "max-payload", arg: "bytes", def: "1MiB",
		usage: "largest message payload accepted, in bytes, or with a KiB or MiB suffix; at most " + fmtBytes(MaxPayloadLimit) + "; larger payloads are refused with RESOURCE_EXHAUSTED",
		set: func(c *Config, v string) error {
			n, err := parseBytes(v)
			if err != nil {
				return err
			}
			if n < 1 || n > MaxPayloadLimit {
				return fmt.Errorf("%d bytes is not between 1 and %d (%s)", n, MaxPayloadLimit, fmtBytes(MaxPayloadLimit))
			}
			c.MaxPayload = int(n)
			return nil
		},
	},
	{
		name: "shutdown-timeout", arg: "duration", def: DefaultShutdownTimeout.String(),
		usage: "on SIGINT or SIGTERM, how long in-flight forwards and RPCs get to finish before they are cut",
		set: func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil {
				return errors.New("want a duration such as 10s or 1m30s")
			}
			if err := checkPositive(d); err != nil {
				return err
			}
			c.ShutdownTimeout = d
			return nil
		},
	},
	durationSetting("probe-interval", lan.ProbeInterval, "time between two failure-detection probes of this node (SWIM); detection time and probe traffic scale with it",
		func(c *Config) *time.Duration { return &c.ProbeInterval }),
	durationSetting("probe-timeout", lan.ProbeTimeout, fmt.Sprintf("how long a probe waits for the direct ack before asking %d other members to probe indirectly; must be below --probe-interval", lan.IndirectChecks),
		func(c *Config) *time.Duration { return &c.ProbeTimeout }),
	intSetting("suspicion-mult", lan.SuspicionMult, fmt.Sprintf("a suspected member is declared dead after suspicion-mult × max(1, log10(N+1)) × probe-interval once others confirm the suspicion, up to %d times that without confirmations", lan.SuspicionMaxTimeoutMult),
		func(c *Config) *int { return &c.SuspicionMult }),
	durationSetting("dead-reap-after", lan.DeadReapAfter, "how long dead and left members are listed (and a partition that heals within it merges back by itself) before they are forgotten",
		func(c *Config) *time.Duration { return &c.DeadReapAfter }),
	durationSetting("reconnect-interval", lan.ReconnectInterval, "period of reconnection: a full-state exchange with one --join seed or member reaped as dead that is not a live member (each backing off, up to 32 intervals, while it does not answer), so that a partition longer than --dead-reap-after heals and a node left alone finds the cluster again; --join is re-resolved as often",
		func(c *Config) *time.Duration { return &c.ReconnectInterval }),
	intSetting("fanout-extra", lan.FanoutExtra, "c in the number of neighbours the node keeps, ceil(ln N) + c, chosen at random among alive members (two-way links)",
		func(c *Config) *int { return &c.FanoutExtra }),
	{
		name: "transport", arg: "name", def: "stream",
		usage: "how the node sends to its neighbours: stream (one Gossip.Stream per neighbour, batched, Plumtree with grafts and anti-entropy; neighbours that answer Unimplemented get unary) or unary (the seed's PutMessageToClient to --fanout neighbours, with retries; the node still serves streams)",
		set: func(c *Config, v string) error {
			switch v {
			case "stream", "unary":
				c.Unary = v == "unary"
				return nil
			}
			return errors.New("want stream or unary")
		},
	},
	durationSetting("graft-timeout", lib.GraftTimeout, "how long a message announced to the node may take to arrive before the node requests it (GRAFT), and between requests",
		func(c *Config) *time.Duration { return &c.GraftTimeout }),
	durationSetting("sync-interval", lib.SyncInterval, "period of anti-entropy: a digest of the messages held, to one random stream neighbour",
		func(c *Config) *time.Duration { return &c.SyncInterval }),
	bytesSetting("store-bytes", lib.StoreBytes, "memory for the messages kept (each at most "+fmtDuration(lib.LongTTL)+") to answer grafts and anti-entropy; repair after a partition covers what fits",
		func(c *Config) *int { return &c.StoreBytes }),
	bytesSetting("stream-queue-bytes", lib.StreamQueueBytes, "bytes queued for one neighbour's stream past which its messages are announced instead of pushed (a slow neighbour pulls them)",
		func(c *Config) *int { return &c.StreamQueueBytes }),
	bytesSetting("max-queued-bytes", lib.MaxQueuedBytes, "bytes queued for all streams past which the node is saturated: publishes wait, then fail with RESOURCE_EXHAUSTED",
		func(c *Config) *int { return &c.MaxQueuedBytes }),
	bytesRangeSetting("flow-window-bytes", gossip.FlowWindowBytes, 64<<10, 1<<30, "between 64KiB (HTTP/2's smallest useful window) and 1GiB",
		"static HTTP/2 flow-control window per stream and per connection, on the node's dials and its server: what a neighbour can be sent that it has not read yet; one stream moves at most this per round trip (1MiB: 10 MiB/s on a 100 ms path), so raise it for large payloads over long paths; 64KiB to 1GiB",
		func(c *Config) *int { return &c.FlowWindowBytes }),
	{
		name: "pprof", arg: "when", def: PprofAuto,
		usage: "serve the Go profiler under /debug/pprof/ on the admin server: on, off, or auto (only when --admin-listen is a loopback address, where only local users reach it)",
		set: func(c *Config, v string) error {
			switch v = strings.ToLower(v); v {
			case PprofAuto, PprofOn, PprofOff:
				c.Pprof = v
				return nil
			case "true":
				c.Pprof = PprofOn
				return nil
			case "false":
				c.Pprof = PprofOff
				return nil
			}
			return errors.New("want on, off or auto")
		},
	},
	{
		name: "trace-sample", arg: "fraction", def: "0",
		usage: "fraction (0 to 1) of the messages published on this node that are traced, as with gossipctl publish --trace: every node that delivers one reports a receipt here, and gossipctl trace ID shows the tree it took (receipts are bounded and never slow delivery down)",
		set: func(c *Config, v string) error {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || !(f >= 0 && f <= 1) {
				return errors.New("want a number between 0 and 1, e.g. 0.001")
			}
			c.TraceSample = f
			return nil
		},
	},
	fileSetting("tls-cert", "this node's certificate (PEM), with the URI SAN spiffe://<trust-domain>/node/<id>; with --tls-key and --tls-ca it turns on mutual TLS for everything node-to-node and TLS for clients (without them the cluster is open: anyone who can reach --listen is a member); re-read for new connections when it changes, and --id defaults to its node id",
		func(c *Config) *string { return &c.TLSCert }),
	fileSetting("tls-key", "the private key of --tls-cert (PEM)", func(c *Config) *string { return &c.TLSKey }),
	fileSetting("tls-ca", "the CA bundle (PEM) that signs the cluster's node certificates, and client certificates unless --client-ca is given",
		func(c *Config) *string { return &c.TLSCA }),
	fileSetting("client-ca", "a separate CA bundle (PEM) for client certificates (spiffe://<trust-domain>/client/<name>); needs --tls-cert",
		func(c *Config) *string { return &c.ClientCA }),
	{
		name: "trust-domain", arg: "name", def: auth.DefaultTrustDomain,
		usage: "the SPIFFE trust domain of the certificates' URI SANs; certificates of another trust domain are refused",
		set: func(c *Config, v string) error {
			if err := checkTrustDomain(v); err != nil {
				return err
			}
			c.TrustDomain = v
			return nil
		},
	},
	fileSetting("auth-token-file", "bearer tokens clients may send (\"authorization: Bearer <token>\") instead of a client certificate, one per line ('#' comments); re-read when it changes and on SIGHUP; needs --tls-cert",
		func(c *Config) *string { return &c.AuthTokenFile }),
	{
		name: "publish-rate", arg: "per-second", def: "0",
		usage: "new messages each client may publish per second (Publish, and PutMessageToClient of a message without an origin), counted per client certificate, token, or IP address without TLS; over it, RESOURCE_EXHAUSTED; cluster members relaying are never limited; 0: no limit",
		set: func(c *Config, v string) error {
			r, err := strconv.ParseFloat(v, 64)
			if err != nil || r < 0 || math.IsInf(r, 0) || math.IsNaN(r) {
				return errors.New("want a number of messages per second, 0 for no limit")
			}
			c.PublishRate = r
			return nil
		},
	},
	nonNegativeIntSetting("max-subscribers", DefaultMaxSubscribers, "concurrent Subscribe calls served; more get RESOURCE_EXHAUSTED; 0: no bound",
		func(c *Config) *int { return &c.MaxSubscribers }),
	nonNegativeIntSetting("subscriber-buffer-budget", DefaultSubscriberBufferBudget, "buffer slots (messages) all subscribers may reserve together, each its requested buffer when it starts (1024 unless asked, at most 65536): a request larger than what remains gets the rest, and below 64 remaining Subscribe gets RESOURCE_EXHAUSTED; 0: no bound",
		func(c *Config) *int { return &c.SubscriberBufferBudget }),
	bytesRangeSetting("subscriber-bytes", gossip.DefaultSubscriberBytes, 0, 1<<40, "between 0 (no bound) and 1TiB",
		"bytes all subscribers' buffers may hold together (payload and ids, plus about 136 bytes a message); a subscriber holding more than its share (this divided by the live subscribers) is cut off as a slow consumer: its Subscribe ends with RESOURCE_EXHAUSTED naming the from_offset to resume from; 0: no bound",
		func(c *Config) *int { return &c.SubscriberBytes }),
	nonNegativeIntSetting("max-streams-per-peer", DefaultMaxStreamsPerPeer, "concurrent Gossip.Stream calls one peer may have open on this node, the peer being its certificate's node with TLS, else its connection; more get RESOURCE_EXHAUSTED; 0: no bound",
		func(c *Config) *int { return &c.MaxStreamsPerPeer }),
	{
		name: "peer-inbound-rate", arg: "bytes", def: fmtBytes(DefaultPeerInboundRate),
		usage: "bytes per second each peer (its certificate's node with TLS, else its connection) may send this node on streams, PutMessageToClient and membership RPCs; over it the peer's Gossip.Stream is slowed by flow control (nothing is lost: its publishers wait) and its other calls get RESOURCE_EXHAUSTED, membership probes excepted; 0: no budget; bytes, or with a KiB or MiB suffix",
		set: func(c *Config, v string) error {
			n, err := parseBytes(v)
			if err != nil {
				return err
			}
			if n < 0 || n > 1<<40 {
				return fmt.Errorf("%d bytes per second is not between 0 (no budget) and 1TiB", n)
			}
			c.PeerInboundRate = int(n)
			return nil
		},
	},
	bytesSetting("peer-inbound-burst", DefaultPeerInboundBurst, "with --peer-inbound-rate, how many bytes a peer may send at once before the rate applies; keep it above --max-payload (a larger call is charged only this much)",
		func(c *Config) *int { return &c.PeerInboundBurst }),
	intSetting("publish-burst", DefaultPublishBurst, "with --publish-rate, how many messages a client may publish at once before the rate applies",
		func(c *Config) *int { return &c.PublishBurst }),
	{
		name: "tls-transition", arg: "bool", def: "false", noOptDef: "true",
		usage: "the middle step of turning TLS on in a running cluster, node by node: with --tls-cert, --tls-key and --tls-ca, also accept plaintext connections, dial TLS and fall back to plaintext for nodes that do not speak it yet, and require no credential (one presented is checked); then restart every node without it (docs/SECURITY.md)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("want true or false")
			}
			c.TLSTransition = b
			return nil
		},
	},
	{
		name: "sign", arg: "bool", def: "false", noOptDef: "true",
		usage: "sign the messages this node originates with its --tls-key (the certificate travels with each message) and drop, before delivering or forwarding, every message whose signature, origin certificate or age (older than the de-duplication window, or more than a minute ahead) does not check, counted in security.messages_*; needs --tls-cert, and every node of the cluster must have it (unsigned messages are dropped; --sign-transition turns it on node by node)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("want true or false")
			}
			c.Sign = b
			return nil
		},
	},
	{
		name: "sign-transition", arg: "bool", def: "false", noOptDef: "true",
		usage: "the middle step of turning --sign on in a running cluster, node by node: with --sign, sign this node's messages and drop those whose signature does not check, but accept and forward unsigned ones (of nodes not signing yet; counted in security.messages_unsigned_accepted); once every node runs with it, restart each without it (docs/SECURITY.md)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("want true or false")
			}
			c.SignTransition = b
			return nil
		},
	},
	{
		name: "reflection", arg: "bool", def: "false", noOptDef: "true",
		usage: "keep gRPC reflection on when TLS is on (without TLS it is always on)",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("want true or false")
			}
			c.Reflection = b
			return nil
		},
	},
}

func fileSetting(name, usage string, field func(*Config) *string) setting {
	return setting{name: name, arg: "path", def: "none", usage: usage, set: func(c *Config, v string) error {
		*field(c) = v
		return nil
	}}
}

// checkTrustDomain accepts a SPIFFE trust domain name: lower-case letters,
// digits, '.', '-' and '_'.
func checkTrustDomain(v string) error {
	if v == "" || len(v) > 255 || strings.IndexFunc(v, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_')
	}) >= 0 {
		return fmt.Errorf("%q is not a trust domain: want lower-case letters, digits, '.', '-' and '_' (e.g. gossip or prod.example.com)", v)
	}
	return nil
}

// tlsOn reports whether the TLS settings are given.
func (c *Config) tlsOn() bool { return c.TLSCert != "" || c.TLSKey != "" || c.TLSCA != "" }

// checkSecurity applies the rules between the security settings.
func (c *Config) checkSecurity(from sources) error {
	if c.tlsOn() && (c.TLSCert == "" || c.TLSKey == "" || c.TLSCA == "") {
		var have, missing []string
		for _, s := range []struct{ name, v string }{{"tls-cert", c.TLSCert}, {"tls-key", c.TLSKey}, {"tls-ca", c.TLSCA}} {
			if s.v == "" {
				missing = append(missing, "--"+s.name)
			} else {
				have = append(have, "--"+s.name+from.of(s.name))
			}
		}
		return fmt.Errorf("%s needs %s too: mutual TLS takes the node's certificate, its key and the CA together", strings.Join(have, " and "), strings.Join(missing, " and "))
	}
	if c.Sign && !c.tlsOn() {
		return fmt.Errorf("--sign%s needs --tls-cert, --tls-key and --tls-ca: messages are signed with the node's key and checked against the CA", from.of("sign"))
	}
	if c.SignTransition && !c.Sign {
		return fmt.Errorf("--sign-transition%s needs --sign: it signs, and accepts unsigned messages meanwhile", from.of("sign-transition"))
	}
	if c.TLSTransition && !c.tlsOn() {
		return fmt.Errorf("--tls-transition%s needs --tls-cert, --tls-key and --tls-ca: it turns TLS on while still accepting plaintext", from.of("tls-transition"))
	}
	for _, s := range []struct{ name, v string }{{"client-ca", c.ClientCA}, {"auth-token-file", c.AuthTokenFile}} {
		if s.v != "" && !c.tlsOn() {
			return fmt.Errorf("--%s %s%s needs TLS (--tls-cert, --tls-key, --tls-ca): without it clients and their tokens would travel in the clear", s.name, s.v, from.of(s.name))
		}
	}
	return nil
}

func bytesSetting(name string, def int, usage string, field func(*Config) *int) setting {
	return bytesRangeSetting(name, def, 1, 1<<40, "between 1 and 1TiB", usage, field)
}

// bytesRangeSetting is a size from lo to hi bytes; rangeText completes the
// error "N bytes is not ..." for a value outside.
func bytesRangeSetting(name string, def int, lo, hi int64, rangeText, usage string, field func(*Config) *int) setting {
	return setting{name: name, arg: "bytes", def: fmtBytes(def), usage: usage + "; bytes, or with a KiB or MiB suffix", set: func(c *Config, v string) error {
		n, err := parseBytes(v)
		if err != nil {
			return err
		}
		if n < lo || n > hi {
			return fmt.Errorf("%d bytes is not %s", n, rangeText)
		}
		*field(c) = int(n)
		return nil
	}}
}

// fmtDuration writes d as time.Duration.String does, without trailing
// zero units: 10m, 1h30m, 1.5s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// fmtBytes writes n as parseBytes reads it, with the largest exact unit.
func fmtBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n)
}

func durationSetting(name string, def time.Duration, usage string, field func(*Config) *time.Duration) setting {
	return setting{name: name, arg: "duration", def: def.String(), usage: usage, set: func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errors.New("want a duration such as 500ms or 2s")
		}
		if err := checkPositive(d); err != nil {
			return err
		}
		*field(c) = d
		return nil
	}}
}

func intSetting(name string, def int, usage string, field func(*Config) *int) setting {
	return setting{name: name, arg: "int", def: strconv.Itoa(def), usage: usage, set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return errors.New("want a positive integer")
		}
		if err := checkPositiveInt(n); err != nil {
			return err
		}
		*field(c) = n
		return nil
	}}
}

func nonNegativeIntSetting(name string, def int, usage string, field func(*Config) *int) setting {
	return setting{name: name, arg: "int", def: strconv.Itoa(def), usage: usage, set: func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errors.New("want a number, 0 for no bound")
		}
		*field(c) = n
		return nil
	}}
}

func checkPositiveInt(n int) error {
	if n <= 0 {
		return errors.New("must be positive")
	}
	return nil
}

func checkID(id string, emptyOK bool) error {
	switch {
	case id == "" && emptyOK:
		return nil
	case id == "":
		return errors.New("must not be empty")
	case len(id) > core.DefaultMaxHashBytes:
		return fmt.Errorf("is %d bytes, at most %d allowed", len(id), core.DefaultMaxHashBytes)
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return errors.New("must not contain spaces or control characters")
	}
	return nil
}

// addrKind says which addresses a setting accepts.
type addrKind int

const (
	addrListen    addrKind = iota // any host (or none), port 0 allowed, "" allowed
	addrAdvertise                 // "" allowed; else a specific host and a real port
	addrSeed                      // a specific host and a real port
)

func checkAddr(v string, kind addrKind) error {
	if v == "" {
		if kind == addrSeed {
			return errors.New("empty address")
		}
		return nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("want host:port")
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return fmt.Errorf("port %q is not a number from 0 to 65535", port)
	}
	if kind == addrListen {
		return nil
	}
	if p == 0 {
		return errors.New("port 0 cannot be reached: give the real port")
	}
	if unspecifiedHost(v) {
		return fmt.Errorf("host %q cannot be reached: give an address other nodes can use", host)
	}
	return nil
}

// unspecifiedHost reports whether addr binds every interface.
func unspecifiedHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsUnspecified()
}

func parseJoin(v string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for s := range strings.SplitSeq(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" || seen[s] {
			continue
		}
		if err := checkSeed(s); err != nil {
			return nil, fmt.Errorf("seed %q: %w", s, err)
		}
		seen[s] = true
		out = append(out, s)
	}
	return out, nil
}

// checkSeed checks one --join entry: host:port or SRVPrefix + a DNS name.
func checkSeed(s string) error {
	name, ok := strings.CutPrefix(s, SRVPrefix)
	if !ok {
		return checkAddr(s, addrSeed)
	}
	name = strings.TrimSuffix(name, ".")
	switch {
	case name == "":
		return fmt.Errorf("want %s followed by an SRV record name, e.g. %s_grpc._tcp.gossip.default.svc.cluster.local", SRVPrefix, SRVPrefix)
	case strings.ContainsAny(name, ":/ "):
		return fmt.Errorf("%q is not a DNS name (an SRV record carries its own port: give no port)", name)
	}
	return nil
}

func checkFanout(n int) error {
	if n == gossip.FanoutAll || n > 0 {
		return nil
	}
	return fmt.Errorf("%d is not -1 (all neighbours) or a positive number", n)
}

func checkMaxPayload(n int) error {
	if n < 1 || n > MaxPayloadLimit {
		return fmt.Errorf("%d bytes is not between 1 and %d (%s)", n, MaxPayloadLimit, fmtBytes(MaxPayloadLimit))
	}
	return nil
}

func checkPositive(d time.Duration) error {
	if d <= 0 {
		return errors.New("must be positive")
	}
	return nil
}

// parseBytes parses "1048576", "512KiB" or "1MiB".
func parseBytes(v string) (int64, error) {
	num, mult := v, int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"B", 1}} {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			num, mult = strings.TrimSpace(s), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil {
		return 0, errors.New("want a number of bytes, optionally with a KiB or MiB suffix (e.g. 1048576, 512KiB, 1MiB)")
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		return 0, errors.New("out of range")
	}
	return n * mult, nil
}

// transportName is Unary as --transport spells it.
func (c *Config) transportName() string {
	if c.Unary {
		return "unary"
	}
	return "stream"
}

// fanoutName is Fanout as the start-up log shows it: "all" for
// gossip.FanoutAll.
func (c *Config) fanoutName() string {
	if c.Fanout == gossip.FanoutAll {
		return "all"
	}
	return strconv.Itoa(c.Fanout)
}

// nodeConfig is the library configuration of the daemon's node.
func (c *Config) nodeConfig() gossip.Config {
	return gossip.Config{
		Fanout:            c.Fanout,
		MaxPayloadBytes:   c.MaxPayload,
		ShutdownTimeout:   c.ShutdownTimeout,
		DisableStreaming:  c.Unary,
		RefuseUntilReady:  true, // a node that has not joined refuses publishes (Unavailable) instead of acking them
		GraftTimeout:      c.GraftTimeout,
		SyncInterval:      c.SyncInterval,
		StoreBytes:        c.StoreBytes,
		StreamQueueBytes:  c.StreamQueueBytes,
		MaxQueuedBytes:    c.MaxQueuedBytes,
		TraceSample:       c.TraceSample,
		LogRetention:      c.Retention,
		LogRetentionBytes: c.RetentionBytes,
	}
}

// membershipConfig is the membership configuration of the daemon's node.
func (c *Config) membershipConfig() gossip.MembershipConfig {
	m := gossip.DefaultLANMembershipConfig()
	m.ProbeInterval, m.ProbeTimeout, m.SuspicionMult = c.ProbeInterval, c.ProbeTimeout, c.SuspicionMult
	m.DeadReapAfter, m.FanoutExtra = c.DeadReapAfter, c.FanoutExtra
	m.ReconnectInterval = c.ReconnectInterval
	return m
}
