package daemon

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/grpc-gossip/gossip/internal/version"
)

// ErrHelp is returned by Load when it printed --help or --version to
// stdout instead of producing a Config: the caller should exit 0.
var ErrHelp = errors.New("help requested")

// longHelp is gossipd --help's description. Numbers in it come from the
// code they describe, so the text cannot drift from the behaviour.
func longHelp() string {
	return fmt.Sprintf(`gossipd runs one node of a gossip-broadcast cluster. On --listen it serves
the gossip protocol (gossip.v1.Gossip: Stream between nodes, and the seed's
PutMessageToClient), membership (gossip.v1.MembershipService: SWIM), the
client API (gossip.v1.NodeService: Publish, Subscribe, Members, Neighbors,
Status), the standard gRPC health service and gRPC reflection; on
--admin-listen (by default the --listen host and port + 1), HTTP /healthz
and /readyz.

Configuration, in order of precedence: flags, environment variables (each
flag's is shown with it), the YAML file named by --config (keys are the flag
names with '_' for '-', e.g. "probe_timeout: 300ms"; join may be a list;
unknown keys are an error), defaults. A bad value, or settings that
contradict each other (e.g. --probe-timeout not below --probe-interval), are
reported with each setting and where its value came from, and gossipd exits
2.

Cluster: a node without --join is the first node and is ready at once. A node
with --join asks the first seed that answers for the whole membership
(retrying with backoff, %v to %v, until one does) and is ready once it has
it. From then on SWIM membership keeps the member list current (probes every
--probe-interval; --probe-timeout, --suspicion-mult, --dead-reap-after) and
picks the node's neighbours: ceil(ln N) + --fanout-extra (default %d) random
live members, each link made both ways, replaced when one dies or leaves.
Messages travel on one gRPC stream (Gossip.Stream) per neighbour, the
default --transport stream: batched, along one Plumtree per publishing node,
so each node gets each message about once, and grafts and anti-entropy
repair what the tree misses. With --transport unary, and for neighbours that
do not speak Gossip.Stream, a node sends each new message with the seed's
PutMessageToClient to --fanout of its neighbours (-1: all of them, a flood
over the neighbour graph); --fanout applies only to those unary neighbours.
Until it has joined, a node reports NOT_SERVING on the gRPC health service
and 503 on /readyz.

SIGINT or SIGTERM: report NOT_SERVING, announce the leave, let in-flight
forwards and RPCs finish within --shutdown-timeout, close and exit 0.
Exit status 0: a clean shutdown, --help or --version; 1: a runtime failure
(e.g. an address is in use, the data dir is locked); 2: bad configuration
(a bad flag, environment variable or config-file value, or contradictory
settings); 3, 4, 5: the state in --data-dir (gossip.db) is corrupt or
truncated, belongs to another --id, or was written by a newer gossipd
(nothing is reset: the message says what to do); 6: the disk is full.

With --data-dir a node restarted with the same --id delivers nothing twice
and fetches what it missed while it was down; a brand-new node delivers
only messages published after it started (see --catch-up). Every
delivered message gets an offset in the node's delivery log, from which a
subscriber can resume (gossipctl subscribe --offset-file).`, joinBackoffMin, joinBackoffMax, lan.FanoutExtra)
}

// usageTemplate is cobra's, with flag descriptions wrapped at 100 columns.
const usageTemplate = `Usage:
  {{.UseLine}}

Flags:
{{(.LocalFlags.FlagUsagesWrapped 100) | trimTrailingWhitespaces}}
`

// rawValue is a flag that keeps the string it was given: every setting is
// parsed by the same function whatever its source, so that errors look the
// same and name where the value came from.
type rawValue struct {
	typ  string
	list bool
	v    string
	set  bool
}

func (r *rawValue) String() string { return r.v }
func (r *rawValue) Type() string   { return r.typ }
func (r *rawValue) Set(v string) error {
	if r.list && r.set && v != "" {
		r.v += "," + v
	} else {
		r.v = v
	}
	r.set = true
	return nil
}

// Load builds the configuration from the command line (args, without the
// program name), the environment (env, as os.Environ returns it) and the
// YAML file named by --config or GOSSIPD_CONFIG, in that order of
// precedence over DefaultConfig. --help and --version print to stdout and
// return ErrHelp. Any other error is one line naming the setting and the
// source of the bad value: the caller should print it and exit 2.
func Load(args, env []string, stdout io.Writer) (Config, error) {
	flags := make(map[string]*rawValue)
	ran := false
	cmd := &cobra.Command{
		Use:           "gossipd [flags]",
		Short:         "gossipd runs one node of a gossip-broadcast cluster",
		Long:          longHelp(),
		Version:       version.Get().String(),
		Args:          cobra.NoArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          func(*cobra.Command, []string) error { ran = true; return nil },
	}
	cmd.SetUsageTemplate(usageTemplate)
	cmd.SetOut(stdout)
	cmd.SetErr(stdout) // only --help and --version print; errors are returned
	fs := cmd.Flags()
	fs.SortFlags = false
	addFlag := func(name, typ, usage string, list bool) *rawValue {
		r := &rawValue{typ: typ, list: list}
		flags[name] = r
		fs.Var(r, name, usage)
		return r
	}
	addFlag("config", "path", "YAML file of settings (keys: the flag names with '_' for '-'); flags and environment override it (default none; env GOSSIPD_CONFIG)", false)
	for _, s := range settings {
		addFlag(s.name, s.arg, fmt.Sprintf("%s (default %s; env %s)", s.usage, s.def, s.envName()), s.list)
		if s.noOptDef != "" {
			fs.Lookup(s.name).NoOptDefVal = s.noOptDef
		}
	}
	if args == nil {
		args = []string{} // cobra reads os.Args for nil
	}
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		return Config{}, fmt.Errorf("%v (see gossipd --help)", err)
	}
	if !ran {
		return Config{}, ErrHelp
	}
	cmdline := make(map[string]string)
	for name, r := range flags {
		if r.set {
			cmdline[name] = r.v
		}
	}
	return resolve(cmdline, envMap(env))
}

// resolve applies, for each setting, the first of: the command line, the
// environment, the YAML file, the default.
func resolve(cmdline, env map[string]string) (Config, error) {
	cfg := DefaultConfig()
	path, ok := cmdline["config"]
	pathFrom := "from the command line"
	if !ok {
		path, pathFrom = env[EnvPrefix+"CONFIG"], "from environment variable "+EnvPrefix+"CONFIG"
	}
	var file map[string]fileValue
	if path != "" {
		var err error
		if file, err = readFile(path, pathFrom); err != nil {
			return Config{}, err
		}
		cfg.ConfigFile = path
	}
	from := make(sources)
	for _, s := range settings {
		var v, src string
		if fv, ok := cmdline[s.name]; ok {
			v, src = fv, "from the command line"
		} else if ev, ok := env[s.envName()]; ok {
			v, src = ev, "from environment variable "+s.envName()
		} else if yv, ok := file[s.yamlKey()]; ok {
			v, src = yv.value, fmt.Sprintf("from key %s in %s, line %d", s.yamlKey(), path, yv.line)
		} else {
			continue
		}
		if err := s.set(&cfg, v); err != nil {
			return Config{}, fmt.Errorf("invalid --%s %q (%s): %w", s.name, v, src, err)
		}
		from[s.name] = src
	}
	if err := cfg.deriveAdminListen(from); err != nil {
		return Config{}, err
	}
	if err := cfg.crossCheck(from); err != nil {
		return Config{}, err
	}
	// Every value was checked as it was read; this catches a rule that
	// only Validate knows, so that it too is a configuration error.
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// envMap turns "KEY=value" entries into a map; later entries win, as in
// os.Getenv.
func envMap(env []string) map[string]string {
	m := make(map[string]string)
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, EnvPrefix) {
			m[k] = v
		}
	}
	return m
}

// fileValue is one setting read from the YAML file.
type fileValue struct {
	value string
	line  int
}

// readFile reads the YAML file of settings (named by --config, from
// where): a mapping from setting keys to
// scalars (or, for join, a list of scalars). Unknown and repeated keys are
// errors.
func readFile(path, from string) (map[string]fileValue, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--config (%s): %w", from, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("config file %s: %s", path, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	out := make(map[string]fileValue)
	if len(doc.Content) == 0 {
		return out, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("config file %s, line %d: want a mapping of settings (key: value)", path, root.Line)
	}
	known := make(map[string]setting)
	for _, s := range settings {
		known[s.yamlKey()] = s
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		s, ok := known[k.Value]
		if !ok {
			return nil, fmt.Errorf("config file %s, line %d: unknown key %q (known: %s)", path, k.Line, k.Value, knownKeys())
		}
		if prev, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("config file %s, line %d: key %q repeats line %d", path, k.Line, k.Value, prev.line)
		}
		val, err := yamlValue(v, s.list)
		if err != nil {
			return nil, fmt.Errorf("config file %s, line %d: key %q: %w", path, v.Line, k.Value, err)
		}
		out[k.Value] = fileValue{value: val, line: k.Line}
	}
	return out, nil
}

func yamlValue(v *yaml.Node, list bool) (string, error) {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch {
	case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
		return "", nil
	case v.Kind == yaml.ScalarNode:
		return v.Value, nil
	case v.Kind == yaml.SequenceNode && list:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("line %d: want a list of addresses", it.Line)
			}
			items = append(items, it.Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", errors.New("want a single value")
}

func knownKeys() string {
	keys := make([]string, len(settings))
	for i, s := range settings {
		keys[i] = s.yamlKey()
	}
	return strings.Join(keys, ", ")
}
