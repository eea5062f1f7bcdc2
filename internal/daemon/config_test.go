package daemon

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/internal/version"
)

// load runs Load with args, the environment env and, when yamlText is not
// empty, a config file holding it (named by --config, appended to args).
func load(t *testing.T, args []string, env map[string]string, yamlText string) (Config, string, error) {
	t.Helper()
	path := ""
	if yamlText != "" {
		path = writeFile(t, yamlText)
		args = append(append([]string(nil), args...), "--config", path)
	}
	var envList []string
	for k, v := range env {
		envList = append(envList, k+"="+v)
	}
	var out bytes.Buffer
	cfg, err := Load(args, envList, &out)
	if out.Len() > 0 && err == nil {
		t.Errorf("Load printed %q", out.String())
	}
	return cfg, path, err
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gossipd.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadDefaults(t *testing.T) {
	cfg, _, err := load(t, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen: "127.0.0.1:9001", AdminListen: "127.0.0.1:9002", LogLevel: slog.LevelInfo, LogFormat: "json",
		Fanout: -1, MaxPayload: 1 << 20, ShutdownTimeout: 10 * time.Second,
		ProbeInterval: time.Second, ProbeTimeout: 500 * time.Millisecond, SuspicionMult: 4, DeadReapAfter: 5 * time.Minute, FanoutExtra: 2,
		ReconnectInterval: 30 * time.Second,
		GraftTimeout:      200 * time.Millisecond, SyncInterval: time.Second, StoreBytes: 64 << 20, StreamQueueBytes: 8 << 20, MaxQueuedBytes: 64 << 20, FlowWindowBytes: 1 << 20,
		Pprof:       "auto",
		TrustDomain: "gossip", PublishBurst: 100, MaxSubscribers: 1024, SubscriberBufferBudget: 1 << 20, SubscriberBytes: 256 << 20, MaxStreamsPerPeer: 64,
		PeerInboundRate: 64 << 20, PeerInboundBurst: 64 << 20,
		Sync: gossip.SyncAlways, Retention: 10 * time.Minute, RetentionBytes: 64 << 20,
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", cfg, want)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

// TestLoadPrecedence checks flag > environment > YAML file > default, per
// setting.
func TestLoadPrecedence(t *testing.T) {
	const file = "fanout: 3\nlisten: 127.0.0.1:7003\nshutdown_timeout: 3s\njoin: [a:1, b:2]\nlog_level: debug\n"
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want func(*Config)
	}{
		{"default", nil, nil, "", func(c *Config) {}},
		{"yaml over default", nil, nil, file, func(c *Config) {
			c.Fanout, c.Listen, c.ShutdownTimeout, c.Join, c.LogLevel = 3, "127.0.0.1:7003", 3*time.Second, []string{"a:1", "b:2"}, slog.LevelDebug
			c.AdminListen = "127.0.0.1:7004"
		}},
		{"env over yaml", nil, map[string]string{"GOSSIPD_FANOUT": "4", "GOSSIPD_JOIN": "c:3"}, file, func(c *Config) {
			c.Fanout, c.Listen, c.ShutdownTimeout, c.Join, c.LogLevel = 4, "127.0.0.1:7003", 3*time.Second, []string{"c:3"}, slog.LevelDebug
			c.AdminListen = "127.0.0.1:7004"
		}},
		{"flag over env over yaml", []string{"--fanout", "5", "--listen=127.0.0.1:7005"}, map[string]string{"GOSSIPD_FANOUT": "4", "GOSSIPD_LISTEN": "127.0.0.1:7004"}, file, func(c *Config) {
			c.Fanout, c.Listen, c.ShutdownTimeout, c.Join, c.LogLevel = 5, "127.0.0.1:7005", 3*time.Second, []string{"a:1", "b:2"}, slog.LevelDebug
			c.AdminListen = "127.0.0.1:7006"
		}},
		{"flag over default", []string{"--shutdown-timeout", "2s"}, nil, "", func(c *Config) { c.ShutdownTimeout = 2 * time.Second }},
		{"env over default", nil, map[string]string{"GOSSIPD_MAX_PAYLOAD": "512KiB"}, "", func(c *Config) { c.MaxPayload = 512 << 10 }},
		{"empty env is a value", nil, map[string]string{"GOSSIPD_ADMIN_LISTEN": ""}, "admin_listen: 127.0.0.1:7777\n", func(c *Config) { c.AdminListen = "" }},
		{"repeated --join adds up", []string{"--join", "a:1,b:2", "--join", "c:3"}, map[string]string{"GOSSIPD_JOIN": "x:9"}, "", func(c *Config) {
			c.Join = []string{"a:1", "b:2", "c:3"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, path, err := load(t, tt.args, tt.env, tt.yaml)
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			want.ConfigFile = path
			tt.want(&want)
			if !reflect.DeepEqual(cfg, want) {
				t.Errorf("\n got %+v\nwant %+v", cfg, want)
			}
		})
	}
}

// TestEverySettingFromEverySource sets each setting alone through its
// flag, its environment variable and its YAML key.
func TestEverySettingFromEverySource(t *testing.T) {
	// tls sets the settings the TLS ones need with them (Load only checks
	// the combination; the files are read when the daemon starts).
	tls := func(c *Config) {
		c.TLSCert, c.TLSKey, c.TLSCA = "/etc/gossip/node.pem", "/etc/gossip/node-key.pem", "/etc/gossip/ca.pem"
	}
	tlsArgs := map[string]string{"tls-cert": "/etc/gossip/node.pem", "tls-key": "/etc/gossip/node-key.pem", "tls-ca": "/etc/gossip/ca.pem"}
	// also: the settings given with one, from the same source.
	also := map[string]map[string]string{"tls-cert": tlsArgs, "tls-key": tlsArgs, "tls-ca": tlsArgs, "client-ca": tlsArgs, "auth-token-file": tlsArgs, "tls-transition": tlsArgs, "sign": tlsArgs,
		"sign-transition": {"tls-cert": "/etc/gossip/node.pem", "tls-key": "/etc/gossip/node-key.pem", "tls-ca": "/etc/gossip/ca.pem", "sign": "true"}}
	values := map[string]struct {
		v    string
		want func(*Config)
	}{
		"id":        {"node-7", func(c *Config) { c.ID = "node-7" }},
		"listen":    {"127.0.0.1:7001", func(c *Config) { c.Listen, c.AdminListen = "127.0.0.1:7001", "127.0.0.1:7002" }},
		"advertise": {"gossip.example:7001", func(c *Config) { c.Advertise = "gossip.example:7001" }},
		"join": {"seed1.example:9001, 127.0.0.2:9001,dnssrv+_grpc._tcp.gossip.default.svc.cluster.local", func(c *Config) {
			c.Join = []string{"seed1.example:9001", "127.0.0.2:9001", "dnssrv+_grpc._tcp.gossip.default.svc.cluster.local"}
		}},
		"reconnect-interval":       {"5s", func(c *Config) { c.ReconnectInterval = 5 * time.Second }},
		"data-dir":                 {"/var/lib/gossipd", func(c *Config) { c.DataDir = "/var/lib/gossipd" }},
		"admin-listen":             {"127.0.0.1:0", func(c *Config) { c.AdminListen = "127.0.0.1:0" }},
		"log-level":                {"warn", func(c *Config) { c.LogLevel = slog.LevelWarn }},
		"log-format":               {"text", func(c *Config) { c.LogFormat = "text" }},
		"fanout":                   {"2", func(c *Config) { c.Fanout = 2 }},
		"max-payload":              {"65536", func(c *Config) { c.MaxPayload = 65536 }},
		"shutdown-timeout":         {"1m30s", func(c *Config) { c.ShutdownTimeout = 90 * time.Second }},
		"probe-interval":           {"2s", func(c *Config) { c.ProbeInterval = 2 * time.Second }},
		"pprof":                    {"off", func(c *Config) { c.Pprof = PprofOff }},
		"trace-sample":             {"0.001", func(c *Config) { c.TraceSample = 0.001 }},
		"probe-timeout":            {"300ms", func(c *Config) { c.ProbeTimeout = 300 * time.Millisecond }},
		"suspicion-mult":           {"6", func(c *Config) { c.SuspicionMult = 6 }},
		"dead-reap-after":          {"1h", func(c *Config) { c.DeadReapAfter = time.Hour }},
		"fanout-extra":             {"3", func(c *Config) { c.FanoutExtra = 3 }},
		"transport":                {"unary", func(c *Config) { c.Unary = true }},
		"graft-timeout":            {"50ms", func(c *Config) { c.GraftTimeout = 50 * time.Millisecond }},
		"sync-interval":            {"5s", func(c *Config) { c.SyncInterval = 5 * time.Second }},
		"store-bytes":              {"16MiB", func(c *Config) { c.StoreBytes = 16 << 20 }},
		"stream-queue-bytes":       {"512KiB", func(c *Config) { c.StreamQueueBytes = 512 << 10 }},
		"max-queued-bytes":         {"1048576", func(c *Config) { c.MaxQueuedBytes = 1 << 20 }},
		"flow-window-bytes":        {"4MiB", func(c *Config) { c.FlowWindowBytes = 4 << 20 }},
		"max-subscribers":          {"0", func(c *Config) { c.MaxSubscribers = 0 }},
		"subscriber-buffer-budget": {"4096", func(c *Config) { c.SubscriberBufferBudget = 4096 }},
		"max-streams-per-peer":     {"8", func(c *Config) { c.MaxStreamsPerPeer = 8 }},
		"subscriber-bytes":         {"64MiB", func(c *Config) { c.SubscriberBytes = 64 << 20 }},
		"peer-inbound-rate":        {"1MiB", func(c *Config) { c.PeerInboundRate = 1 << 20 }},
		"peer-inbound-burst":       {"256KiB", func(c *Config) { c.PeerInboundBurst = 256 << 10 }},
		"tls-cert":                 {"/etc/gossip/node.pem", tls},
		"tls-key":                  {"/etc/gossip/node-key.pem", tls},
		"tls-ca":                   {"/etc/gossip/ca.pem", tls},
		"client-ca":                {"/etc/gossip/clients.pem", func(c *Config) { tls(c); c.ClientCA = "/etc/gossip/clients.pem" }},
		"trust-domain":             {"prod.example.com", func(c *Config) { c.TrustDomain = "prod.example.com" }},
		"auth-token-file":          {"/etc/gossip/tokens", func(c *Config) { tls(c); c.AuthTokenFile = "/etc/gossip/tokens" }},
		"reflection":               {"true", func(c *Config) { c.Reflection = true }},
		"publish-rate":             {"50.5", func(c *Config) { c.PublishRate = 50.5 }},
		"tls-transition":           {"true", func(c *Config) { tls(c); c.TLSTransition = true }},
		"sign":                     {"true", func(c *Config) { tls(c); c.Sign = true }},
		"sign-transition":          {"true", func(c *Config) { tls(c); c.Sign = true; c.SignTransition = true }},
		"publish-burst":            {"7", func(c *Config) { c.PublishBurst = 7 }},
		"sync":                     {"100ms", func(c *Config) { c.Sync, _ = gossip.ParseSyncPolicy("100ms") }},
		"retention":                {"1h", func(c *Config) { c.Retention = time.Hour }},
		"retention-bytes":          {"1024MiB", func(c *Config) { c.RetentionBytes = 1 << 30 }},
		"catch-up":                 {"5m", func(c *Config) { c.CatchUp = 5 * time.Minute }},
	}
	if len(values) != len(settings) {
		t.Fatalf("test covers %d settings, there are %d", len(values), len(settings))
	}
	for _, s := range settings {
		val, ok := values[s.name]
		if !ok {
			t.Fatalf("no test value for setting %q", s.name)
		}
		for _, src := range []string{"flag", "env", "yaml"} {
			t.Run(s.name+"/"+src, func(t *testing.T) {
				var (
					args []string
					env  map[string]string
					yaml string
				)
				all := map[string]string{s.name: val.v}
				for k, v := range also[s.name] {
					all[k] = v
				}
				env = map[string]string{}
				for name, v := range all {
					ss := setting{name: name}
					switch src {
					case "flag":
						args = append(args, "--"+name+"="+v)
					case "env":
						env[ss.envName()] = v
					case "yaml":
						yaml += ss.yamlKey() + ": " + v + "\n"
					}
				}
				cfg, path, err := load(t, args, env, yaml)
				if err != nil {
					t.Fatal(err)
				}
				want := DefaultConfig()
				want.ConfigFile = path
				val.want(&want)
				if !reflect.DeepEqual(cfg, want) {
					t.Errorf("\n got %+v\nwant %+v", cfg, want)
				}
			})
		}
	}
}

func TestLoadBadValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want []string // substrings of the error
	}{
		{"fanout flag", []string{"--fanout", "many"}, nil, "", []string{"--fanout", `"many"`, "command line"}},
		{"fanout zero env", nil, map[string]string{"GOSSIPD_FANOUT": "0"}, "", []string{"--fanout", "GOSSIPD_FANOUT", "-1"}},
		{"fanout negative yaml", nil, nil, "\nfanout: -2\n", []string{"--fanout", "gossipd.yaml, line 2"}},
		{"listen no port", []string{"--listen", "localhost"}, nil, "", []string{"--listen", "host:port"}},
		{"listen bad port", nil, map[string]string{"GOSSIPD_LISTEN": "127.0.0.1:99999"}, "", []string{"--listen", "GOSSIPD_LISTEN", "65535"}},
		{"advertise port 0", []string{"--advertise", "127.0.0.3:0"}, nil, "", []string{"--advertise", "port 0"}},
		{"advertise unspecified", nil, map[string]string{"GOSSIPD_ADVERTISE": "0.0.0.0:9001"}, "", []string{"--advertise", "GOSSIPD_ADVERTISE", "0.0.0.0"}},
		{"join no port", nil, nil, "join: [a:1, seed]\n", []string{"--join", "seed", "line 1"}},
		{"join port 0", []string{"--join", "a:0"}, nil, "", []string{"--join", "port 0"}},
		{"join srv empty", []string{"--join", "dnssrv+"}, nil, "", []string{"--join", "SRV record name"}},
		{"join srv with port", nil, map[string]string{"GOSSIPD_JOIN": "dnssrv+gossip.default.svc:9001"}, "", []string{"--join", "GOSSIPD_JOIN", "give no port"}},
		{"admin bad", []string{"--admin-listen", "nope"}, nil, "", []string{"--admin-listen", "host:port"}},
		{"log level", []string{"--log-level", "verbose"}, nil, "", []string{"--log-level", "debug, info, warn or error"}},
		{"log format", nil, map[string]string{"GOSSIPD_LOG_FORMAT": "xml"}, "", []string{"--log-format", "GOSSIPD_LOG_FORMAT", "json or text"}},
		{"max payload text", []string{"--max-payload", "big"}, nil, "", []string{"--max-payload", "KiB"}},
		{"max payload zero", []string{"--max-payload", "0"}, nil, "", []string{"--max-payload", "between 1 and"}},
		{"max payload too big", nil, nil, "max_payload: 17MiB\n", []string{"--max-payload", "line 1", "16MiB"}},
		{"max payload overflow", []string{"--max-payload", "9223372036854775807MiB"}, nil, "", []string{"--max-payload", "range"}},
		{"flow window too small", []string{"--flow-window-bytes", "1000"}, nil, "", []string{"--flow-window-bytes", "64KiB"}},
		{"flow window text", nil, map[string]string{"GOSSIPD_FLOW_WINDOW_BYTES": "large"}, "", []string{"--flow-window-bytes", "GOSSIPD_FLOW_WINDOW_BYTES"}},
		{"shutdown timeout unit", []string{"--shutdown-timeout", "10"}, nil, "", []string{"--shutdown-timeout", "duration"}},
		{"shutdown timeout negative", nil, map[string]string{"GOSSIPD_SHUTDOWN_TIMEOUT": "-1s"}, "", []string{"--shutdown-timeout", "positive"}},
		{"id empty", []string{"--id", ""}, nil, "", []string{"--id", "empty"}},
		{"id space", nil, nil, "id: a b\n", []string{"--id", "spaces"}},
		{"id too long", []string{"--id", strings.Repeat("x", 257)}, nil, "", []string{"--id", "257 bytes"}},
		{"unknown flag", []string{"--fan-out", "3"}, nil, "", []string{"unknown flag", "--fan-out", "--help"}},
		{"positional", []string{"start"}, nil, "", []string{`unknown command "start"`}},
		{"flag without value", []string{"--listen"}, nil, "", []string{"--listen", "needs an argument"}},
		{"missing config file", []string{"--config", "/nonexistent/gossipd.yaml"}, nil, "", []string{"--config", "/nonexistent/gossipd.yaml", "command line"}},
		{"missing config file env", nil, map[string]string{"GOSSIPD_CONFIG": "/nonexistent/g.yaml"}, "", []string{"--config", "/nonexistent/g.yaml", "GOSSIPD_CONFIG"}},
		{"yaml syntax", nil, nil, "fanout: [\n", []string{"gossipd.yaml", "line"}},
		{"yaml not a mapping", nil, nil, "- fanout\n", []string{"gossipd.yaml", "mapping"}},
		{"yaml nested value", nil, nil, "listen:\n  host: x\n", []string{"gossipd.yaml", "line 2", "listen", "single value"}},
		{"yaml repeated key", nil, nil, "fanout: 1\nfanout: 2\n", []string{"gossipd.yaml, line 2", `"fanout"`, "line 1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, tt.args, tt.env, tt.yaml)
			if err == nil {
				t.Fatal("Load succeeded")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("error is not one line: %q", msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestLoadYAMLUnknownKey(t *testing.T) {
	_, path, err := load(t, nil, nil, "fanout: 3\nfanot: 4\n")
	if err == nil {
		t.Fatal("unknown key accepted")
	}
	for _, w := range []string{path, "line 2", `unknown key "fanot"`, "known: id, listen"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	// The file's name in a key is not a setting either.
	if _, _, err := load(t, nil, nil, "config: other.yaml\n"); err == nil || !strings.Contains(err.Error(), `unknown key "config"`) {
		t.Errorf("config key: %v", err)
	}
}

func TestLoadConfigFromEnv(t *testing.T) {
	path := writeFile(t, "fanout: 2\n")
	cfg, _, err := load(t, nil, map[string]string{"GOSSIPD_CONFIG": path}, "")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Fanout != 2 || cfg.ConfigFile != path {
		t.Errorf("GOSSIPD_CONFIG: fanout %d, file %q", cfg.Fanout, cfg.ConfigFile)
	}
	// An empty file is no settings.
	cfg, _, err = load(t, nil, nil, "# nothing\n")
	if err != nil || cfg.Fanout != DefaultFanout {
		t.Errorf("empty file: %v, fanout %d", err, cfg.Fanout)
	}
}

func TestAdvertiseValidation(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		wantErr []string
	}{
		{"loopback, no advertise", []string{"--listen", "127.0.0.1:9001"}, nil, nil},
		{"ephemeral, no advertise", []string{"--listen", "127.0.0.1:0"}, nil, nil},
		{"host name, no advertise", []string{"--listen", "localhost:9001"}, nil, nil},
		{"all interfaces v4", []string{"--listen", "0.0.0.0:9001"}, nil, []string{"--advertise is required", `--listen "0.0.0.0:9001"`, "command line"}},
		{"all interfaces v6", nil, map[string]string{"GOSSIPD_LISTEN": "[::]:9001"}, []string{"--advertise is required", "GOSSIPD_LISTEN"}},
		{"no host", []string{"--listen", ":9001"}, nil, []string{"--advertise is required"}},
		{"all interfaces with advertise", []string{"--listen", "0.0.0.0:9001", "--advertise", "127.0.0.4:9001"}, nil, nil},
		{"advertise host name", []string{"--listen", ":9001", "--advertise", "node1.example:9001"}, nil, nil},
		{"advertise unspecified", []string{"--listen", ":9001", "--advertise", "[::]:9001"}, nil, []string{"--advertise", "cannot be reached"}},
		{"advertise no host", []string{"--advertise", ":9001"}, nil, []string{"--advertise", "cannot be reached"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := load(t, tt.args, tt.env, "")
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if err := cfg.Validate(); err != nil {
					t.Errorf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// Validate, for a Config built in code, applies the same rule.
	cfg := DefaultConfig()
	cfg.Listen = "0.0.0.0:9001"
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--advertise is required") {
		t.Errorf("Validate: %v", err)
	}
}

func TestDefaultID(t *testing.T) {
	tests := []struct {
		host string
		port int
		want string
	}{
		{"myhost", 9001, "myhost-9001"},
		{"node1.dc1.example.com", 7000, "node1.dc1.example.com-7000"},
		{"My Host", 1, "My-Host-1"},
		{"héte", 2, "h-te-2"},
		{"", 9001, "gossipd-9001"},
	}
	for _, tt := range tests {
		if got := DefaultID(tt.host, tt.port); got != tt.want {
			t.Errorf("DefaultID(%q, %d) = %q, want %q", tt.host, tt.port, got, tt.want)
		}
		if err := checkID(DefaultID(tt.host, tt.port), false); err != nil {
			t.Errorf("DefaultID(%q) is not a valid id: %v", tt.host, err)
		}
	}
}

func TestHelpDocumentsEverySetting(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		var out bytes.Buffer
		_, err := Load([]string{arg}, nil, &out)
		if !errors.Is(err, ErrHelp) {
			t.Fatalf("%s: err = %v, want ErrHelp", arg, err)
		}
		help := out.String()
		for _, s := range settings {
			for _, w := range []string{"--" + s.name + " ", "(default " + s.def + ";", "env " + s.envName() + ")"} {
				if !strings.Contains(strings.Join(strings.Fields(help), " "), w) {
					t.Errorf("%s output lacks %q", arg, w)
				}
			}
		}
		for _, w := range []string{"--config", "GOSSIPD_CONFIG", "precedence", "flood", "SIGTERM", "lock file"} {
			if !strings.Contains(help, w) {
				t.Errorf("%s output lacks %q", arg, w)
			}
		}
	}
	var out bytes.Buffer
	if _, err := Load([]string{"--version"}, nil, &out); !errors.Is(err, ErrHelp) || out.String() != "gossipd version "+version.Get().String()+"\n" {
		t.Errorf("--version: %v, %q", err, out.String())
	}
}

func TestJoinBackoff(t *testing.T) {
	prevMax := time.Duration(0)
	for attempt := 1; attempt <= 100; attempt++ {
		lo, hi := joinBackoff(attempt, 0), joinBackoff(attempt, 0.999999)
		base := min(joinBackoffMin<<min(attempt-1, 20), joinBackoffMax)
		if lo != time.Duration(float64(base)*0.8) || hi > joinBackoffMax || hi < lo {
			t.Errorf("attempt %d: range [%v, %v], base %v", attempt, lo, hi, base)
		}
		if hi < prevMax && hi != joinBackoffMax {
			t.Errorf("attempt %d: backoff shrank: %v after %v", attempt, hi, prevMax)
		}
		prevMax = hi
	}
	if got := joinBackoff(1, 0.5); got != joinBackoffMin {
		t.Errorf("first backoff = %v, want %v", got, joinBackoffMin)
	}
	if got := joinBackoff(1000, 0.5); got != joinBackoffMax {
		t.Errorf("late backoff = %v, want %v", got, joinBackoffMax)
	}
}

// TestHelpDescribesTheProtocol checks that --help describes what a node
// does today (whole membership from the seed, SWIM-chosen neighbours,
// Plumtree over streams, --fanout for unary neighbours only) and no longer
// the first Join (a seed and up to 3 more members, flooded with
// --fanout -1).
func TestHelpDescribesTheProtocol(t *testing.T) {
	var out bytes.Buffer
	if _, err := Load([]string{"--help"}, nil, &out); !errors.Is(err, ErrHelp) {
		t.Fatal(err)
	}
	help := strings.Join(strings.Fields(out.String()), " ")
	for _, stale := range []string{"up to 3 more members", "links to the first seed", "a flood over that overlay", "With the default --fanout -1 every node"} {
		if strings.Contains(help, stale) {
			t.Errorf("--help still says %q", stale)
		}
	}
	for _, w := range []string{
		"the whole membership",
		"ceil(ln N) + --fanout-extra (default 2) random live members, each link made both ways",
		"one gRPC stream (Gossip.Stream) per neighbour, the default --transport stream",
		"Plumtree",
		"With --transport unary, and for neighbours that do not speak Gossip.Stream",
		"--fanout applies only to those unary neighbours",
		"Stream neighbours do not use it",
		"Exit status 0: a clean shutdown, --help or --version; 1: a runtime failure",
	} {
		if !strings.Contains(help, w) {
			t.Errorf("--help lacks %q", w)
		}
	}
}

// TestCrossFieldErrorsNameTheirSources: settings that contradict each
// other are a configuration error (Main returns ExitUsage without
// starting anything), and the one line names every setting involved with
// its value and where that value came from: the command line, the
// environment variable, or the YAML key, file and line; a setting left
// alone is "the default".
func TestCrossFieldErrorsNameTheirSources(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		yaml string // written to a file named by --config, whose path replaces FILE in want
		want string
	}{
		{"timeout flag", []string{"--probe-timeout", "2s"}, nil, "",
			"invalid --probe-timeout 2s (from the command line): must be below --probe-interval 1s (the default), as indirect probes need the rest of the interval; lower --probe-timeout or raise --probe-interval"},
		{"timeout env", nil, []string{"GOSSIPD_PROBE_TIMEOUT=2s"}, "",
			"invalid --probe-timeout 2s (from environment variable GOSSIPD_PROBE_TIMEOUT): must be below --probe-interval 1s (the default)"},
		{"timeout yaml", nil, nil, "log_level: info\nprobe_timeout: 2s\n",
			"invalid --probe-timeout 2s (from key probe_timeout in FILE, line 2): must be below --probe-interval 1s (the default)"},
		{"interval yaml", nil, nil, "probe_interval: 400ms\n",
			"invalid --probe-interval 400ms (from key probe_interval in FILE, line 1): must be above --probe-timeout 500ms (the default), as indirect probes need the rest of the interval; raise --probe-interval or lower --probe-timeout"},
		{"both, flag and env", []string{"--probe-timeout=1500ms"}, []string{"GOSSIPD_PROBE_INTERVAL=1500ms"}, "",
			"invalid --probe-timeout 1.5s (from the command line): must be below --probe-interval 1.5s (from environment variable GOSSIPD_PROBE_INTERVAL)"},
		{"both, env and yaml", nil, []string{"GOSSIPD_PROBE_TIMEOUT=900ms"}, "probe_interval: 800ms\n",
			"invalid --probe-timeout 900ms (from environment variable GOSSIPD_PROBE_TIMEOUT): must be below --probe-interval 800ms (from key probe_interval in FILE, line 1)"},
		{"advertise, listen flag", []string{"--listen", "0.0.0.0:7001"}, nil, "",
			`--advertise is required when --listen "0.0.0.0:7001" (from the command line) binds all interfaces`},
		{"advertise, listen env", nil, []string{"GOSSIPD_LISTEN=[::]:7001"}, "",
			`--advertise is required when --listen "[::]:7001" (from environment variable GOSSIPD_LISTEN) binds all interfaces`},
		{"advertise, listen yaml", nil, nil, "listen: ':7001'\n",
			`--advertise is required when --listen ":7001" (from key listen in FILE, line 1) binds all interfaces`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, want := tt.args, tt.want
			if tt.yaml != "" {
				path := writeFile(t, tt.yaml)
				args = append(append([]string(nil), args...), "--config", path)
				want = strings.ReplaceAll(want, "FILE", path)
			}
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), args, tt.env, &stdout, &stderr)
			if code != ExitUsage {
				t.Errorf("exit status %d, want %d (ExitUsage)", code, ExitUsage)
			}
			lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "gossipd: ") || !strings.Contains(lines[0], want) || stdout.Len() != 0 {
				t.Errorf("stdout %q, stderr %q; want one line containing %q", stdout.String(), stderr.String(), want)
			}
		})
	}
	// A Config built in code gets the same rule from Validate, without
	// sources.
	cfg := DefaultConfig()
	cfg.ProbeTimeout = 2 * time.Second
	if err := cfg.Validate(); err == nil || !strings.HasPrefix(err.Error(), "invalid --probe-timeout 2s: must be below --probe-interval 1s,") {
		t.Errorf("Validate: %v", err)
	}
}

func TestAdminListenFor(t *testing.T) {
	for listen, want := range map[string]string{
		"127.0.0.1:9001":  "127.0.0.1:9002",
		"127.0.0.1:0":     "127.0.0.1:0",
		":9001":           ":9002",
		"0.0.0.0:7000":    "0.0.0.0:7001",
		"[::1]:9011":      "[::1]:9012",
		"localhost:65534": "localhost:65535",
	} {
		if got, err := AdminListenFor(listen); err != nil || got != want {
			t.Errorf("AdminListenFor(%q) = %q, %v; want %q", listen, got, err, want)
		}
	}
	for _, listen := range []string{"127.0.0.1:65535", "nope", "h:x"} {
		if got, err := AdminListenFor(listen); err == nil {
			t.Errorf("AdminListenFor(%q) = %q, want an error", listen, got)
		}
	}
	if got, _ := AdminListenFor(DefaultListen); got != DefaultAdminListen || DefaultConfig().AdminListen != got {
		t.Errorf("AdminListenFor(DefaultListen) = %q; DefaultAdminListen %q, DefaultConfig().AdminListen %q", got, DefaultAdminListen, DefaultConfig().AdminListen)
	}
}

// TestLoadDerivesAdminListen: without --admin-listen from any source, the
// admin server listens on the --listen host, port + 1 (port 0 stays 0);
// an --admin-listen from any source wins, and an empty one disables the
// admin server.
func TestLoadDerivesAdminListen(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want string
	}{
		{"default", nil, nil, "", "127.0.0.1:9002"},
		{"listen flag", []string{"--listen", "127.0.0.1:7010"}, nil, "", "127.0.0.1:7011"},
		{"listen env", nil, map[string]string{"GOSSIPD_LISTEN": "127.0.0.2:7020"}, "", "127.0.0.2:7021"},
		{"listen yaml", nil, nil, "listen: localhost:7030\n", "localhost:7031"},
		{"ephemeral", []string{"--listen", "127.0.0.1:0"}, nil, "", "127.0.0.1:0"},
		{"admin flag wins", []string{"--listen", "127.0.0.1:7010", "--admin-listen", "127.0.0.1:8080"}, nil, "", "127.0.0.1:8080"},
		{"admin env wins", []string{"--listen", "127.0.0.1:7010"}, map[string]string{"GOSSIPD_ADMIN_LISTEN": "127.0.0.1:8081"}, "", "127.0.0.1:8081"},
		{"admin yaml wins", []string{"--listen", "127.0.0.1:7010"}, nil, "admin_listen: 127.0.0.1:8082\n", "127.0.0.1:8082"},
		{"admin port 0 with a fixed listen", []string{"--listen", "127.0.0.1:7010", "--admin-listen", "127.0.0.1:0"}, nil, "", "127.0.0.1:0"},
		{"disabled by flag", []string{"--listen", "127.0.0.1:7010", "--admin-listen", ""}, nil, "", ""},
		{"disabled by env", nil, map[string]string{"GOSSIPD_ADMIN_LISTEN": ""}, "", ""},
		{"disabled by yaml", nil, nil, "admin_listen: \"\"\n", ""},
		{"disabled by yaml null", nil, nil, "admin_listen:\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _, err := load(t, tt.args, tt.env, tt.yaml)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.AdminListen != tt.want {
				t.Errorf("AdminListen = %q, want %q", cfg.AdminListen, tt.want)
			}
		})
	}
	// --help shows the rule and what it gives for the default --listen.
	var out bytes.Buffer
	if _, err := Load([]string{"--help"}, nil, &out); !errors.Is(err, ErrHelp) {
		t.Fatal(err)
	}
	help := strings.Join(strings.Fields(out.String()), " ")
	for _, w := range []string{
		"(default --listen's host and port + 1, " + DefaultAdminListen + "; env GOSSIPD_ADMIN_LISTEN)",
		"on --admin-listen (by default the --listen host and port + 1)",
		`empty (--admin-listen "", GOSSIPD_ADMIN_LISTEN= or admin_listen: "") disables it`,
	} {
		if !strings.Contains(help, w) {
			t.Errorf("--help lacks %q", w)
		}
	}
}

// TestAdminListenContradictions: a --listen port with no port after it,
// and an admin address on the --listen port, are configuration errors
// naming the settings and their sources.
func TestAdminListenContradictions(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		yaml string
		want []string
	}{
		{"listen 65535, flag", []string{"--listen", "127.0.0.1:65535"}, nil, "",
			[]string{"--listen 127.0.0.1:65535 (from the command line) leaves no port for the admin server", "--listen port + 1", `set --admin-listen to a free address, or to "" to disable`}},
		{"listen 65535, env", nil, map[string]string{"GOSSIPD_LISTEN": "127.0.0.1:65535"}, "",
			[]string{"(from environment variable GOSSIPD_LISTEN) leaves no port"}},
		{"same address", []string{"--listen", "127.0.0.1:7010"}, map[string]string{"GOSSIPD_ADMIN_LISTEN": "127.0.0.1:7010"}, "",
			[]string{"invalid --admin-listen 127.0.0.1:7010 (from environment variable GOSSIPD_ADMIN_LISTEN): the same port as --listen 127.0.0.1:7010 (from the command line)"}},
		{"same port, all interfaces", nil, nil, "listen: 127.0.0.1:7010\nadmin_listen: ':7010'\n",
			[]string{"invalid --admin-listen :7010 (from key admin_listen in", "line 2): the same port as --listen 127.0.0.1:7010 (from key listen in"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := load(t, tt.args, tt.env, tt.yaml)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
	// 65535 is fine with an explicit admin address, or none.
	for _, args := range [][]string{{"--listen", "127.0.0.1:65535", "--admin-listen", "127.0.0.1:0"}, {"--listen", "127.0.0.1:65535", "--admin-listen="}} {
		if _, _, err := load(t, args, nil, ""); err != nil {
			t.Errorf("%q: %v", args, err)
		}
	}
}

// helpFlags runs --help and returns each flag's description (wrapping
// undone), by flag name, in the order printed.
func helpFlags(t *testing.T) (names []string, desc map[string]string) {
	t.Helper()
	var out bytes.Buffer
	if _, err := Load([]string{"--help"}, nil, &out); !errors.Is(err, ErrHelp) {
		t.Fatal(err)
	}
	_, flags, ok := strings.Cut(out.String(), "\nFlags:\n")
	if !ok {
		t.Fatalf("no Flags: section in\n%s", out.String())
	}
	// A flag's first line: "      --name" or "  -h, --name"; wrapped lines
	// are indented further.
	start := regexp.MustCompile(`^(?:  -\w, |      )--([a-z][a-z-]*) (.*)$`)
	desc = map[string]string{}
	cur := ""
	for _, line := range strings.Split(flags, "\n") {
		if m := start.FindStringSubmatch(line); m != nil {
			cur = m[1]
			names = append(names, cur)
			desc[cur] = m[2]
		} else if cur != "" && strings.TrimSpace(line) != "" {
			desc[cur] += " " + line
		}
	}
	for n, d := range desc {
		desc[n] = strings.Join(strings.Fields(d), " ")
	}
	return names, desc
}

// TestHelpDefaultsAreTheConfigDefaults reads the default that --help
// prints for every flag and checks it against what gossipd does when the
// flag is not given: a value default, passed back as the flag's value,
// must yield exactly DefaultConfig(); a default that is a description
// (none, derived) must match the zero or derived field it stands for.
// It fails when a default changes in the code but not in the help, or the
// other way round.
func TestHelpDefaultsAreTheConfigDefaults(t *testing.T) {
	names, desc := helpFlags(t)
	def := DefaultConfig()
	// Defaults that are not values, and what they must stand for.
	described := map[string]struct {
		text  string
		check func() bool
	}{
		"config":          {"none", func() bool { return def.ConfigFile == "" }},
		"id":              {"<host name>-<gRPC port>", func() bool { return def.ID == "" && DefaultID("h", 9001) == "h-9001" }},
		"advertise":       {"the bound --listen address", func() bool { return def.Advertise == "" }},
		"join":            {"none: the first node", func() bool { return def.Join == nil }},
		"data-dir":        {"none", func() bool { return def.DataDir == "" }},
		"tls-cert":        {"none", func() bool { return def.TLSCert == "" }},
		"tls-key":         {"none", func() bool { return def.TLSKey == "" }},
		"tls-ca":          {"none", func() bool { return def.TLSCA == "" }},
		"client-ca":       {"none", func() bool { return def.ClientCA == "" }},
		"auth-token-file": {"none", func() bool { return def.AuthTokenFile == "" }},
	}
	defaultRE := regexp.MustCompile(`\(default (.*); env ([A-Z_]+)\)$`)
	seen := map[string]bool{}
	for _, name := range names {
		if name == "help" || name == "version" {
			continue
		}
		seen[name] = true
		t.Run(name, func(t *testing.T) {
			m := defaultRE.FindStringSubmatch(desc[name])
			if m == nil {
				t.Fatalf("--%s: no \"(default …; env …)\" at the end of %q", name, desc[name])
			}
			printed, env := m[1], m[2]
			if want := EnvPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_")); env != want {
				t.Errorf("--%s: help names env %s, gossipd reads %s", name, env, want)
			}
			if d, ok := described[name]; ok {
				if printed != d.text || !d.check() {
					t.Errorf("--%s: help says default %q; want %q, and DefaultConfig() to match it (%+v)", name, printed, d.text, def)
				}
				return
			}
			if name == "admin-listen" {
				// "--listen's host and port + 1, 127.0.0.1:9002": the rule,
				// then what it gives for the default --listen.
				rule, addr, ok := strings.Cut(printed, ", ")
				derived, err := AdminListenFor(def.Listen)
				if !ok || rule != "--listen's host and port + 1" || err != nil || addr != derived {
					t.Errorf("--admin-listen: help says default %q; AdminListenFor(%q) = %q, %v", printed, def.Listen, derived, err)
				}
				printed = addr
			}
			var out bytes.Buffer
			cfg, err := Load([]string{"--" + name + "=" + printed}, nil, &out)
			if err != nil {
				t.Fatalf("--%s=%s (the printed default): %v", name, printed, err)
			}
			if !reflect.DeepEqual(cfg, def) {
				t.Errorf("--%s=%s (the printed default) gives\n %+v\nbut without the flag gossipd uses\n %+v", name, printed, cfg, def)
			}
		})
	}
	for _, s := range settings {
		if !seen[s.name] {
			t.Errorf("--%s is not in --help", s.name)
		}
	}
	if len(seen) != len(settings)+1 { // + --config
		t.Errorf("--help lists %d flags besides --help and --version, gossipd has %d settings and --config", len(seen), len(settings))
	}
}
