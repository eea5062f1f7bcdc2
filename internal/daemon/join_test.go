package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpc-gossip/gossip/internal/testutil"
	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
	pbgrpc "github.com/grpc-gossip/gossip/proto/gossip/v1/gossipv1grpc"
)

// fakeResolver answers from maps that a test may change while daemons
// run; no real DNS is asked. A name missing from the maps is NXDOMAIN.
type fakeResolver struct {
	mu      sync.Mutex
	hosts   map[string][]string
	srv     map[string][]*net.SRV
	lookups map[string]int
}

func newFakeResolver() *fakeResolver {
	return &fakeResolver{hosts: map[string][]string{}, srv: map[string][]*net.SRV{}, lookups: map[string]int{}}
}

func (f *fakeResolver) setHost(name string, ips ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hosts[name] = ips
}

func (f *fakeResolver) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lookups[name]
}

func (f *fakeResolver) LookupHost(_ context.Context, host string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups[host]++
	if ips, ok := f.hosts[host]; ok {
		return ips, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

func (f *fakeResolver) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups[name]++
	if service != "" || proto != "" {
		return "", nil, fmt.Errorf("LookupSRV(%q, %q, %q): want the full name alone", service, proto, name)
	}
	if recs, ok := f.srv[name]; ok {
		return name, recs, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func TestResolveSeeds(t *testing.T) {
	r := newFakeResolver()
	r.setHost("gossip-headless", "10.0.0.1", "10.0.0.2", "10.0.0.3")
	r.setHost("node-0.gossip", "10.0.0.1")
	r.setHost("empty", []string{}...)
	r.srv["_grpc._tcp.gossip.default.svc.cluster.local"] = []*net.SRV{
		{Target: "node-0.gossip.", Port: 9001}, {Target: "gone.gossip.", Port: 9001}, {Target: "10.0.0.7", Port: 7001},
	}
	for _, tc := range []struct {
		name    string
		specs   []string
		want    []string
		wantErr []string // substrings; none means no error
	}{
		{"every address of a name", []string{"gossip-headless:9001"}, []string{"10.0.0.1:9001", "10.0.0.2:9001", "10.0.0.3:9001"}, nil},
		{"ip literals as they are", []string{"10.1.1.1:9001", "[fd00::1]:9001"}, []string{"10.1.1.1:9001", "[fd00::1]:9001"}, nil},
		{"repeats removed, order kept", []string{"node-0.gossip:9001", "gossip-headless:9001"}, []string{"10.0.0.1:9001", "10.0.0.2:9001", "10.0.0.3:9001"}, nil},
		{"srv targets and ports", []string{"dnssrv+_grpc._tcp.gossip.default.svc.cluster.local"}, []string{"10.0.0.1:9001", "10.0.0.7:7001"},
			[]string{"--join dnssrv+_grpc._tcp.gossip.default.svc.cluster.local: target gone.gossip:", "no such host"}},
		{"a missing name does not hide the others", []string{"node-9.gossip:9001", "node-0.gossip:9001"}, []string{"10.0.0.1:9001"},
			[]string{"--join node-9.gossip:9001:", "no such host"}},
		{"no addresses", []string{"empty:9001"}, nil, []string{"--join empty:9001: empty has no addresses"}},
		{"no srv record", []string{"dnssrv+_grpc._tcp.nothing"}, nil, []string{"--join dnssrv+_grpc._tcp.nothing:", "no such host"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveSeeds(context.Background(), r, tc.specs)
			if len(got) == 0 {
				got = nil
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("seeds %q, want %q", got, tc.want)
			}
			if len(tc.wantErr) == 0 && err != nil {
				t.Errorf("error %v, want none", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want it to contain %q", err, w)
				}
			}
		})
	}
}

// loopbackPort returns a port that is free on 127.0.0.1, 127.0.0.2 and
// 127.0.0.3 a moment ago, so that nodes on several loopback addresses can
// share it as pods behind one Service name do.
func loopbackPort(t *testing.T) string {
	t.Helper()
	for range 20 {
		_, port, _ := net.SplitHostPort(reservePort(t))
		ok := true
		for _, ip := range []string{"127.0.0.2", "127.0.0.3"} {
			l, err := net.Listen("tcp", net.JoinHostPort(ip, port))
			if err != nil {
				ok = false
				break
			}
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on 127.0.0.1-3")
	return ""
}

// liveMembers is the number of alive members the daemon at addr lists.
func liveMembers(t *testing.T, addr string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := pbgrpc.NewNodeServiceClient(dial(t, addr)).Members(ctx, &pb.MembersRequest{})
	if err != nil {
		return -1
	}
	n := 0
	for _, m := range resp.GetMembers() {
		if m.GetState() == pb.MemberState_MEMBER_STATE_ALIVE {
			n++
		}
	}
	return n
}

// TestJoinThroughHeadlessName: --join NAME:PORT, where NAME resolves to
// several addresses (a headless Service), tries every one of them; NAME is
// resolved again before every attempt, so a name that does not resolve
// yet (a pod not scheduled) does not stop the node from joining later.
func TestJoinThroughHeadlessName(t *testing.T) {
	port := loopbackPort(t)
	r := newFakeResolver()
	cfgA := testConfig("node-a")
	cfgA.Listen = "127.0.0.2:" + port
	a := runDaemon(t, cfgA)

	cfgB := testConfig("node-b", "gossip-headless:"+port)
	cfgB.resolver = r
	b := runDaemon(t, cfgB)
	testutil.WaitFor(t, waitTimeout, "failed attempts while the name does not resolve", func() error {
		return loggedAtLeast(b.log, "join attempt failed", 2)
	})
	if f := b.log.find("join attempt failed")[0]; !strings.Contains(f.attrs["err"], "--join gossip-headless:"+port) {
		t.Errorf("failed attempt logged as %v, want the entry that did not resolve", f.attrs)
	}
	// 127.0.0.3 has nothing listening: the node must go on to 127.0.0.2.
	r.setHost("gossip-headless", "127.0.0.3", "127.0.0.2")
	testutil.WaitFor(t, waitTimeout, "node-b joined", func() error { return loggedAtLeast(b.log, "ready", 1) })
	if got := b.log.find("ready")[0].attrs["seeds"]; got != "127.0.0.3:"+port+",127.0.0.2:"+port {
		t.Errorf("joined with seeds %q, want both addresses of the name", got)
	}
	if n := r.count("gossip-headless"); n < 3 {
		t.Errorf("the name was resolved %d times, want once per attempt (>= 3)", n)
	}
	testutil.WaitFor(t, waitTimeout, "both see each other", func() error {
		if liveMembers(t, a.addr) != 2 || liveMembers(t, b.addr) != 2 {
			return errors.New("not yet")
		}
		return nil
	})
}

// TestJoinThroughSRV: --join dnssrv+NAME joins through the record's
// targets and ports.
func TestJoinThroughSRV(t *testing.T) {
	a := runDaemon(t, testConfig("node-a"))
	host, port, _ := net.SplitHostPort(a.addr)
	var p uint16
	fmt.Sscan(port, &p)
	r := newFakeResolver()
	r.setHost("node-a.gossip.default.svc.cluster.local", host)
	r.srv["_grpc._tcp.gossip.default.svc.cluster.local"] = []*net.SRV{{Target: "node-a.gossip.default.svc.cluster.local.", Port: p}}
	cfgB := testConfig("node-b", "dnssrv+_grpc._tcp.gossip.default.svc.cluster.local")
	cfgB.resolver = r
	b := runDaemon(t, cfgB)
	testutil.WaitFor(t, waitTimeout, "node-b joined", func() error { return loggedAtLeast(b.log, "ready", 1) })
	if got := b.log.find("ready")[0].attrs["seeds"]; got != a.addr {
		t.Errorf("joined with seeds %q, want %s", got, a.addr)
	}
}

// TestLoneNodesMergeWhenTheNameGrows: two nodes whose --join name first
// resolves to each one alone (pods that started together before DNS
// listed both) both start as first nodes; once the name lists both, the
// seed refresh (every --reconnect-interval) hands them to membership's
// reconnection and the two merge into one cluster.
func TestLoneNodesMergeWhenTheNameGrows(t *testing.T) {
	port := loopbackPort(t)
	ra, rb := newFakeResolver(), newFakeResolver()
	ra.setHost("gossip-headless", "127.0.0.2")
	rb.setHost("gossip-headless", "127.0.0.3")
	start := func(id, ip string, r *fakeResolver) *running {
		cfg := testConfig(id, "gossip-headless:"+port)
		cfg.Listen = ip + ":" + port
		cfg.ReconnectInterval = 100 * time.Millisecond
		cfg.resolver = r
		return runDaemon(t, cfg)
	}
	a := start("node-a", "127.0.0.2", ra)
	b := start("node-b", "127.0.0.3", rb)
	for _, n := range []*running{a, b} {
		testutil.WaitFor(t, waitTimeout, n.id+" ready", func() error { return loggedAtLeast(n.log, "ready", 1) })
		if how := n.log.find("ready")[0].attrs["how"]; how != "first node" {
			t.Errorf("%s ready as %q, want first node", n.id, how)
		}
		if got := liveMembers(t, n.addr); got != 1 {
			t.Errorf("%s has %d live members before the name grows, want 1", n.id, got)
		}
	}
	ra.setHost("gossip-headless", "127.0.0.2", "127.0.0.3")
	rb.setHost("gossip-headless", "127.0.0.2", "127.0.0.3")
	testutil.WaitFor(t, waitTimeout, "one cluster of two", func() error {
		if x, y := liveMembers(t, a.addr), liveMembers(t, b.addr); x != 2 || y != 2 {
			return fmt.Errorf("live members %d and %d", x, y)
		}
		return nil
	})
	if len(a.log.find("seeds changed")) == 0 && len(b.log.find("seeds changed")) == 0 {
		t.Error(`no "seeds changed" logged`)
	}
}
