package core

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

func targetIDs(ts []Target) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

func TestReceiveFreshThenDuplicate(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a", "b", "c", "d", "e")
	now := t0

	res, err := n.Receive(now, gossipMsg("m", "a", "o", 2))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fresh {
		t.Fatal("first copy is not Fresh")
	}
	if res.Ack.GetHash() != "m" || res.Ack.GetFrom() != "self" || res.Ack.GetDuplicate() {
		t.Fatalf("fresh Ack = %v, want {hash m, from self, duplicate false}", res.Ack)
	}
	if len(res.Targets) != 3 {
		t.Fatalf("targets %v, want 3 (the default fanout)", res.Targets)
	}
	e := n.Storage().Active("m")
	if e == nil || e.Copies != 1 || e.FirstFrom != "a" || e.Origin != "o" || e.Hops != 2 || !e.FirstSeen.Equal(now) {
		t.Fatalf("hot entry = %+v", e)
	}
	if got := len(e.Targets); got != len(res.Targets) {
		t.Fatalf("entry tracks %d targets, result has %d", got, len(res.Targets))
	}

	for i, from := range []string{"b", "a", "", "stranger"} {
		res, err := n.Receive(now.Add(time.Duration(i)*time.Millisecond), gossipMsg("m", from, "o", 5))
		if err != nil {
			t.Fatal(err)
		}
		if res.Fresh || res.Forward != nil || res.Targets != nil {
			t.Fatalf("copy from %q: Fresh=%v Forward=%v Targets=%v, want a bare duplicate", from, res.Fresh, res.Forward, res.Targets)
		}
		if res.Ack.GetHash() != "m" || res.Ack.GetFrom() != "self" || !res.Ack.GetDuplicate() {
			t.Fatalf("duplicate Ack = %v, want {hash m, from self, duplicate true}", res.Ack)
		}
	}
	if e.Copies != 5 || e.Hops != 2 || e.FirstFrom != "a" {
		t.Fatalf("after duplicates, entry = %+v: want 5 copies and the first copy's hops and sender", e)
	}
	want := Counters{Received: 5, Delivered: 1, Duplicates: 4, Forwards: 3}
	if got := n.Counters(); got != want {
		t.Fatalf("counters = %+v, want %+v", got, want)
	}
}

func TestReceiveRejectsInvalid(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a")
	for _, msg := range []*pb.GossipMessage{nil, {}, {Hash: strings.Repeat("h", 257)}} {
		res, err := n.Receive(t0, msg)
		if err == nil || res.Ack != nil || res.Fresh {
			t.Fatalf("Receive(%v) = %+v, %v: want an error and an empty Result", msg, res, err)
		}
	}
	if got := n.Counters(); got != (Counters{Invalid: 3}) {
		t.Fatalf("counters = %+v, want only Invalid: 3", got)
	}
	if n.Storage().Stats().Active != 0 {
		t.Fatal("an invalid message was stored")
	}
}

func TestReceiveOriginAndForward(t *testing.T) {
	const created = int64(1234567)
	now := t0.Add(time.Second)
	tests := []struct {
		name        string
		msg         *pb.GossipMessage
		wantOrigin  string
		wantCreated int64
	}{
		{"local publish: origin defaults to self, created set now",
			&pb.GossipMessage{Hash: "m", Payload: "p"}, "self", now.UnixNano()},
		{"client publish with a sender but no origin",
			&pb.GossipMessage{Hash: "m", FromHash: "client", Payload: "p"}, "self", now.UnixNano()},
		{"publish that already carries its creation time",
			&pb.GossipMessage{Hash: "m", Payload: "p", CreatedUnixNano: created}, "self", created},
		{"forwarded copy keeps its origin and time",
			&pb.GossipMessage{Hash: "m", FromHash: "a", Origin: "o", Hops: 3, Payload: "p", CreatedUnixNano: created}, "o", created},
		{"forwarded copy without a time is not stamped here",
			&pb.GossipMessage{Hash: "m", FromHash: "a", Origin: "o", Hops: 3, Payload: "p"}, "o", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, "self", nil, 1, "a", "b")
			res, err := n.Receive(now, tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			want := &pb.GossipMessage{
				Hash:            tt.msg.Hash,
				FromHash:        "self",
				Payload:         tt.msg.Payload,
				Origin:          tt.wantOrigin,
				Hops:            tt.msg.Hops + 1,
				CreatedUnixNano: tt.wantCreated,
			}
			f := res.Forward
			if f.GetHash() != want.Hash || f.GetFromHash() != want.FromHash || f.GetPayload() != want.Payload ||
				f.GetOrigin() != want.Origin || f.GetHops() != want.Hops || f.GetCreatedUnixNano() != want.CreatedUnixNano {
				t.Fatalf("Forward = %v, want %v", f, want)
			}
			if e := n.Storage().Active("m"); e.Origin != tt.wantOrigin {
				t.Fatalf("entry origin = %q, want %q", e.Origin, tt.wantOrigin)
			}
			if f == tt.msg {
				t.Fatal("Forward is the received message itself, not a copy")
			}
		})
	}
}

func TestReceiveTargets(t *testing.T) {
	tests := []struct {
		name      string
		neighbors []string
		fanout    int
		msg       *pb.GossipMessage
		want      []string // exact targets, in order; nil means none
		wantAnyOf []string // when set: len(targets) == fanout, all from this set
	}{
		{"only neighbour is the sender", []string{"a"}, 3, gossipMsg("m", "a", "o", 1), nil, nil},
		{"only neighbour is the origin", []string{"o"}, 3, gossipMsg("m", "x", "o", 1), nil, nil},
		{"only neighbours are the sender and the origin", []string{"a", "o"}, 3, gossipMsg("m", "a", "o", 1), nil, nil},
		{"no neighbours", nil, 3, gossipMsg("m", "", "", 0), nil, nil},
		{"fanout above candidates: all, sorted", []string{"e", "c", "a", "d", "b"}, 10, gossipMsg("m", "a", "b", 1), []string{"c", "d", "e"}, nil},
		{"local publish goes to all of a small ring", []string{"b", "a"}, 3, gossipMsg("m", "", "", 0), []string{"a", "b"}, nil},
		{"sender unknown to us", []string{"a", "b"}, 3, gossipMsg("m", "client", "", 0), []string{"a", "b"}, nil},
		{"fanout below candidates", []string{"a", "b", "c", "d", "e", "f"}, 2, gossipMsg("m", "a", "f", 1), nil, []string{"b", "c", "d", "e"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig(t, func(c *Config) { c.Fanout = tt.fanout })
			for seed := range uint64(30) {
				n := newTestNode(t, "self", cfg, seed, tt.neighbors...)
				res, err := n.Receive(t0, tt.msg)
				if err != nil || !res.Fresh || res.Forward == nil {
					t.Fatalf("Receive = %+v, %v: want a fresh result with a Forward", res, err)
				}
				got := targetIDs(res.Targets)
				if tt.wantAnyOf == nil {
					if !slices.Equal(got, tt.want) {
						t.Fatalf("seed %d: targets %v, want %v", seed, got, tt.want)
					}
				} else {
					if len(got) != tt.fanout {
						t.Fatalf("seed %d: targets %v, want %d of them", seed, got, tt.fanout)
					}
					for _, id := range got {
						if !slices.Contains(tt.wantAnyOf, id) {
							t.Fatalf("seed %d: target %q not among %v", seed, id, tt.wantAnyOf)
						}
					}
				}
				for _, tg := range res.Targets {
					if tg.Addr != addrOf(tg.ID) {
						t.Fatalf("target %+v has the wrong endpoint", tg)
					}
				}
				if got := n.Counters().Forwards; got != uint64(len(res.Targets)) {
					t.Fatalf("Forwards = %d, want %d", got, len(res.Targets))
				}
			}
		})
	}
}

// badRouter returns whatever it was told to, ignoring the candidates.
type badRouter struct{ out []string }

func (r badRouter) SelectTargets(_ *pb.GossipMessage, _ []string, _ int, _ *rand.Rand) []string {
	return r.out
}

// The Node does not trust its Router with the exclusions.
func TestReceiveFiltersRouterMistakes(t *testing.T) {
	cfg := validConfig(t, nil)
	n := NewNode("self", cfg, NewStorage(cfg), badRouter{out: []string{"self", "a", "o", "unknown", "b"}}, 1)
	for _, id := range []string{"a", "b", "o"} {
		if err := n.AddNeighbor(id, addrOf(id)); err != nil {
			t.Fatal(err)
		}
	}
	res, err := n.Receive(t0, gossipMsg("m", "a", "o", 1))
	if err != nil {
		t.Fatal(err)
	}
	if got := targetIDs(res.Targets); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("targets %v, want [b]", got)
	}
	if e := n.Storage().Active("m"); len(e.Targets) != 1 || e.Targets[0].Peer != "b" {
		t.Fatalf("entry targets %+v, want only b", e.Targets)
	}
}

func TestAddNeighborErrors(t *testing.T) {
	tests := []struct {
		name     string
		id, addr string
		wantErr  error
	}{
		{"empty id", "", "x:1", ErrEmptyNeighbor},
		{"empty endpoint", "a", "", ErrEmptyNeighbor},
		{"both empty", "", "", ErrEmptyNeighbor},
		{"self", "self", "x:1", ErrSelfNeighbor},
		{"id over limit", strings.Repeat("i", DefaultMaxHashBytes+1), "x:1", ErrFieldTooLong},
		{"id at limit", strings.Repeat("i", DefaultMaxHashBytes), "x:1", nil},
		{"ordinary", "a", "x:1", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, "self", nil, 1)
			err := n.AddNeighbor(tt.id, tt.addr)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("AddNeighbor(%q, %q) = %v, want %v", tt.id, tt.addr, err, tt.wantErr)
			}
			wantLen := 0
			if tt.wantErr == nil {
				wantLen = 1
			}
			if got := len(n.Neighbors()); got != wantLen {
				t.Fatalf("%d neighbours after AddNeighbor, want %d", got, wantLen)
			}
			if got := len(n.Storage().Peers()); got != wantLen {
				t.Fatalf("%d ACK table rows after AddNeighbor, want %d", got, wantLen)
			}
		})
	}
}

func TestNeighborLifecycle(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "c", "a", "b")
	want := []Target{{"a", addrOf("a")}, {"b", addrOf("b")}, {"c", addrOf("c")}}
	if got := n.Neighbors(); !slices.Equal(got, want) {
		t.Fatalf("Neighbors = %v, want %v (sorted)", got, want)
	}

	// Re-addressing keeps one entry, and keeps the ACK statistics.
	n.Storage().RecordSent("b")
	if err := n.AddNeighbor("b", "new:2"); err != nil {
		t.Fatal(err)
	}
	want[1].Addr = "new:2"
	if got := n.Neighbors(); !slices.Equal(got, want) {
		t.Fatalf("after re-address Neighbors = %v, want %v", got, want)
	}
	if p := n.Storage().Peer("b"); p == nil || p.Sent != 1 {
		t.Fatalf("re-address reset the ACK row of b: %+v", p)
	}
	res, _ := n.Receive(t0, gossipMsg("m1", "", "", 0))
	for _, tg := range res.Targets {
		if tg.ID == "b" && tg.Addr != "new:2" {
			t.Fatalf("target b has endpoint %q, want the new one", tg.Addr)
		}
	}

	if !n.RemoveNeighbor("b") {
		t.Fatal("RemoveNeighbor(b) = false for a known neighbour")
	}
	if n.RemoveNeighbor("b") {
		t.Fatal("second RemoveNeighbor(b) = true")
	}
	if n.RemoveNeighbor("never") {
		t.Fatal("RemoveNeighbor(never) = true")
	}
	want = []Target{want[0], want[2]}
	if got := n.Neighbors(); !slices.Equal(got, want) {
		t.Fatalf("after remove Neighbors = %v, want %v", got, want)
	}
	if n.Storage().Peer("b") != nil {
		t.Fatal("the ACK row of a removed neighbour remains")
	}
	res, _ = n.Receive(t0, gossipMsg("m2", "", "", 0))
	if got := targetIDs(res.Targets); !slices.Equal(got, []string{"a", "c"}) {
		t.Fatalf("targets after remove = %v, want [a c]", got)
	}
}

// backoffBounds is the documented retry delay after a failed attempt:
// RetryBackoff·2^(attempt-1), capped at MaxRetryBackoff, ±20%.
func backoffBounds(c *Config, attempt int) (lo, hi time.Duration) {
	base := float64(c.RetryBackoff) * math.Pow(2, float64(attempt-1))
	base = math.Min(base, float64(c.MaxRetryBackoff))
	return time.Duration(0.8 * base), time.Duration(math.Ceil(1.2 * base))
}

func TestSendResultAck(t *testing.T) {
	for _, dup := range []bool{false, true} {
		n := newTestNode(t, "self", nil, 1, "a")
		res, _ := n.Receive(t0, gossipMsg("m", "", "", 0))
		tg := res.Targets[0]
		n.AttemptStarted(tg, 1)
		now := t0.Add(30 * time.Millisecond)
		retry, after := n.SendResult(now, tg, "m", 1, &pb.GossipAck{Hash: "m", From: "a", Duplicate: dup}, nil, false, 30*time.Millisecond)
		if retry || after != 0 {
			t.Fatalf("ACK: retry=%v after=%v, want no retry", retry, after)
		}
		if got, want := n.Counters(), (Counters{Received: 1, Delivered: 1, Forwards: 1, Sent: 1, Acked: 1}); got != want {
			t.Fatalf("counters %+v, want %+v", got, want)
		}
		if ts := n.Storage().Active("m").Targets[0]; ts != (TargetStatus{Peer: "a", Attempts: 1, Acked: true}) {
			t.Fatalf("target status %+v", ts)
		}
		p := n.Storage().Peer("a")
		wantDup := uint64(0)
		if dup {
			wantDup = 1
		}
		if p.Sent != 1 || p.Acked != 1 || p.Failed != 0 || p.Duplicates != wantDup ||
			p.LastRTT != 30*time.Millisecond || p.SRTT != 30*time.Millisecond || !p.LastAck.Equal(now) || p.Loss != 0 {
			t.Fatalf("peer stats %+v (duplicate=%v)", *p, dup)
		}
	}
}

func TestSendResultRetries(t *testing.T) {
	errTimeout := errors.New("deadline exceeded")
	tests := []struct {
		name        string
		maxAttempts int
		retryable   bool
		removePeer  bool
		wantRetries int // retries granted before giving up
	}{
		{"retryable, default attempts", 0, true, false, 3},
		{"retryable, ten attempts (reaches the cap)", 10, true, false, 9},
		{"retries disabled", 1, true, false, 0},
		{"non-retryable", 0, false, false, 0},
		{"neighbour removed mid-flight", 0, true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := validConfig(t, func(c *Config) { c.MaxAttempts = tt.maxAttempts })
			n := newTestNode(t, "self", cfg, 7, "a")
			res, _ := n.Receive(t0, gossipMsg("m", "", "", 0))
			tg := res.Targets[0]
			if tt.removePeer {
				n.RemoveNeighbor("a")
			}
			now := t0
			attempt := 1
			for ; ; attempt++ {
				n.AttemptStarted(tg, attempt)
				now = now.Add(cfg.AckTimeout)
				retry, after := n.SendResult(now, tg, "m", attempt, nil, errTimeout, tt.retryable, cfg.AckTimeout)
				if !retry {
					if after != 0 {
						t.Fatalf("attempt %d: no retry but after = %v", attempt, after)
					}
					break
				}
				if attempt > cfg.MaxAttempts {
					t.Fatalf("attempt %d of at most %d was granted a retry", attempt, cfg.MaxAttempts)
				}
				if lo, hi := backoffBounds(cfg, attempt); after < lo || after > hi {
					t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, after, lo, hi)
				}
				now = now.Add(after)
			}
			if got := attempt - 1; got != tt.wantRetries {
				t.Fatalf("%d retries, want %d", got, tt.wantRetries)
			}
			c := n.Counters()
			want := uint64(tt.wantRetries + 1)
			if c.Sent != want || c.AckFailed != want || c.Retries != want-1 || c.GaveUp != 1 || c.Acked != 0 {
				t.Fatalf("counters %+v: want Sent=AckFailed=%d Retries=%d GaveUp=1", c, want, want-1)
			}
			ts := n.Storage().Active("m").Targets[0]
			if ts != (TargetStatus{Peer: "a", Attempts: attempt, GaveUp: true}) {
				t.Fatalf("target status %+v", ts)
			}
			if p := n.Storage().Peer("a"); !tt.removePeer && (p.Sent != want || p.Failed != want || !p.LastFail.Equal(now)) {
				t.Fatalf("peer stats %+v", *p)
			}
		})
	}
}

// A retry that succeeds ends the forward as acknowledged.
func TestSendResultRetryThenAck(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a")
	res, _ := n.Receive(t0, gossipMsg("m", "", "", 0))
	tg := res.Targets[0]
	n.AttemptStarted(tg, 1)
	if retry, _ := n.SendResult(t0, tg, "m", 1, nil, errors.New("unavailable"), true, 0); !retry {
		t.Fatal("first failure not retried")
	}
	n.AttemptStarted(tg, 2)
	if retry, _ := n.SendResult(t0, tg, "m", 2, &pb.GossipAck{Hash: "m", From: "a"}, nil, false, time.Millisecond); retry {
		t.Fatal("ACK retried")
	}
	if ts := n.Storage().Active("m").Targets[0]; ts != (TargetStatus{Peer: "a", Attempts: 2, Acked: true}) {
		t.Fatalf("target status %+v", ts)
	}
	if c := n.Counters(); c.Sent != 2 || c.Retries != 1 || c.Acked != 1 || c.AckFailed != 1 || c.GaveUp != 0 {
		t.Fatalf("counters %+v", c)
	}
}

// The ±20% jitter is really applied, and spreads over its range.
func TestBackoffJitter(t *testing.T) {
	cfg := validConfig(t, nil)
	n := newTestNode(t, "self", cfg, 3, "a")
	for attempt := 1; attempt <= 8; attempt++ {
		lo, hi := backoffBounds(cfg, attempt)
		minSeen, maxSeen := time.Duration(math.MaxInt64), time.Duration(0)
		for range 2000 {
			d := n.backoff(attempt)
			if d < lo || d > hi {
				t.Fatalf("attempt %d: backoff %v outside [%v, %v]", attempt, d, lo, hi)
			}
			minSeen, maxSeen = min(minSeen, d), max(maxSeen, d)
		}
		// 2000 uniform draws cover all but a sliver of each end.
		span := hi - lo
		if minSeen > lo+span/50 || maxSeen < hi-span/50 {
			t.Fatalf("attempt %d: backoff range seen [%v, %v], want close to [%v, %v]", attempt, minSeen, maxSeen, lo, hi)
		}
	}
}

// A message that arrives after its hot state has expired, or for which
// the node has lost its hot state, is still handled.
func TestSendResultWithoutHotState(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a")
	tg := Target{ID: "a", Addr: addrOf("a")}
	n.AttemptStarted(tg, 1)
	if retry, _ := n.SendResult(t0, tg, "unknown", 1, nil, errors.New("x"), true, 0); !retry {
		t.Fatal("a retryable failure of an unknown message is not retried")
	}
	if retry, _ := n.SendResult(t0, tg, "unknown", 2, &pb.GossipAck{}, nil, false, time.Millisecond); retry {
		t.Fatal("an ACK is retried")
	}
	if p := n.Storage().Peer("a"); p.Acked != 1 || p.Failed != 1 {
		t.Fatalf("peer stats %+v", *p)
	}
}

func TestForget(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a")
	msg := gossipMsg("m", "a", "o", 1)
	if res, _ := n.Receive(t0, msg); !res.Fresh {
		t.Fatal("first copy not Fresh")
	}
	n.Forget(msg)
	if n.Storage().Seen(t0, "m") || n.Storage().Active("m") != nil {
		t.Fatal("m is still remembered after Forget")
	}
	res, err := n.Receive(t0.Add(time.Second), msg)
	if err != nil || !res.Fresh {
		t.Fatalf("copy after Forget: Fresh=%v err=%v, want Fresh", res.Fresh, err)
	}
	if c := n.Counters(); c.Delivered != 1 || c.Forgotten != 1 || c.Received != 2 || c.Duplicates != 0 {
		t.Fatalf("counters %+v: want Delivered=1 Forgotten=1 Received=2", c)
	}

	// Forget works on an id whose hot state has already expired.
	n.Tick(t0.Add(DefaultMaxTTL + 2*time.Second))
	if n.Storage().Active("m") != nil || !n.Storage().Seen(t0.Add(DefaultMaxTTL+2*time.Second), "m") {
		t.Fatal("after Tick, m should be only in the long-TTL cache")
	}
	n.Forget(msg)
	if res, _ := n.Receive(t0.Add(DefaultMaxTTL+3*time.Second), msg); !res.Fresh {
		t.Fatal("copy after Forget of a long-TTL id not Fresh")
	}
}

func TestTickExpires(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a")
	for _, h := range []string{"x", "y", "z"} {
		if _, err := n.Receive(t0, gossipMsg(h, "", "", 0)); err != nil {
			t.Fatal(err)
		}
	}
	ttl := n.Storage().Active("x").Expires.Sub(t0)
	n.Tick(t0.Add(ttl - 1))
	if got := n.Counters().Expired; got != 0 {
		t.Fatalf("Expired = %d before the TTL", got)
	}
	n.Tick(t0.Add(ttl))
	if got := n.Counters().Expired; got != 3 {
		t.Fatalf("Expired = %d at the TTL, want 3", got)
	}
	if res, _ := n.Receive(t0.Add(ttl), gossipMsg("x", "a", "", 1)); res.Fresh {
		t.Fatal("a copy after hot expiry but within LongTTL is Fresh")
	}
}

// Per-neighbour statistics follow their documented EWMAs (weight 1/8).
func TestPeerStats(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a", "b")
	st := n.Storage()
	a := Target{ID: "a", Addr: addrOf("a")}
	ack := &pb.GossipAck{Hash: "m", From: "a"}
	dup := &pb.GossipAck{Hash: "m", From: "a", Duplicate: true}
	fail := errors.New("timeout")

	type step struct {
		ack      *pb.GossipAck // nil: a failure
		rtt      time.Duration
		wantSRTT time.Duration
		wantLoss float64
	}
	steps := []step{
		{ack, 100 * time.Millisecond, 100 * time.Millisecond, 0},              // first ACK sets SRTT
		{ack, 200 * time.Millisecond, 112500 * time.Microsecond, 0},           // 100 + (200-100)/8
		{nil, 0, 112500 * time.Microsecond, 0.125},                            // 0 + (1-0)/8
		{nil, 0, 112500 * time.Microsecond, 0.234375},                         // .125 + .875/8
		{dup, 12500 * time.Microsecond, 100 * time.Millisecond, 0.205078125},  // 112.5 + (12.5-112.5)/8; loss × 7/8
		{ack, 100 * time.Millisecond, 100 * time.Millisecond, 0.179443359375}, // unchanged SRTT; loss × 7/8
	}
	now := t0
	var acked, failed, dups uint64
	for i, s := range steps {
		now = now.Add(time.Second)
		n.AttemptStarted(a, 1)
		var err error
		if s.ack == nil {
			err = fail
			failed++
		} else {
			acked++
			if s.ack.Duplicate {
				dups++
			}
		}
		n.SendResult(now, a, "m", 1, s.ack, err, false, s.rtt)
		p := st.Peer("a")
		if p.Sent != uint64(i+1) || p.Acked != acked || p.Failed != failed || p.Duplicates != dups {
			t.Fatalf("step %d: counts %+v, want Sent=%d Acked=%d Failed=%d Duplicates=%d", i, *p, i+1, acked, failed, dups)
		}
		if p.SRTT != s.wantSRTT {
			t.Fatalf("step %d: SRTT = %v, want %v", i, p.SRTT, s.wantSRTT)
		}
		if math.Abs(p.Loss-s.wantLoss) > 1e-12 {
			t.Fatalf("step %d: Loss = %v, want %v", i, p.Loss, s.wantLoss)
		}
		if s.ack != nil && (p.LastRTT != s.rtt || !p.LastAck.Equal(now)) {
			t.Fatalf("step %d: LastRTT=%v LastAck=%v", i, p.LastRTT, p.LastAck)
		}
		if s.ack == nil && !p.LastFail.Equal(now) {
			t.Fatalf("step %d: LastFail=%v", i, p.LastFail)
		}
	}

	// Loss stays within [0, 1] however long a streak is.
	for range 500 {
		n.SendResult(now, a, "m", 1, nil, fail, false, 0)
	}
	if p := st.Peer("a"); p.Loss > 1 || p.Loss < 0.999 {
		t.Fatalf("after 500 failures Loss = %v, want just under 1", p.Loss)
	}
	for range 500 {
		n.SendResult(now, a, "m", 1, ack, nil, false, time.Millisecond)
	}
	if p := st.Peer("a"); p.Loss < 0 || p.Loss > 0.001 {
		t.Fatalf("after 500 ACKs Loss = %v, want just above 0", p.Loss)
	}

	// b was never used; Peers is sorted and reports both.
	peers := st.Peers()
	if len(peers) != 2 || peers[0].ID != "a" || peers[1].ID != "b" || peers[1].PeerStats != (PeerStats{}) {
		t.Fatalf("Peers = %+v", peers)
	}
	// Peers is a copy.
	peers[0].Sent = 0
	if st.Peer("a").Sent == 0 {
		t.Fatal("Peers returned the live rows")
	}
}

// greedyRouter returns every candidate twice, plus ids it must not.
type greedyRouter struct{}

func (greedyRouter) SelectTargets(_ *pb.GossipMessage, candidates []string, _ int, _ *rand.Rand) []string {
	out := append([]string{"self-node", "a", "unknown"}, candidates...)
	return append(out, candidates...)
}

func TestReceiveSanitisesRouterOutput(t *testing.T) {
	cfg := Config{Fanout: 2}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := NewNode("self-node", &cfg, NewStorage(&cfg), greedyRouter{}, 1)
	for _, id := range []string{"a", "b", "c", "d"} {
		if err := n.AddNeighbor(id, id+":1"); err != nil {
			t.Fatal(err)
		}
	}
	res, err := n.Receive(time.Unix(0, 0), &pb.GossipMessage{Hash: "m", FromHash: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Targets) != 2 || res.Targets[0].ID != "b" || res.Targets[1].ID != "c" {
		t.Errorf("targets = %v, want [b c]", res.Targets)
	}
}

func TestForgetUnknownIsNoOp(t *testing.T) {
	cfg := Config{}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := NewNode("x", &cfg, NewStorage(&cfg), nil, 1)
	n.Forget(&pb.GossipMessage{Hash: "never-seen"})
	if c := n.Counters(); c.Forgotten != 0 || c.Delivered != 0 {
		t.Errorf("counters after Forget of an unknown id: %+v", c)
	}
}

func TestFanoutAllFloods(t *testing.T) {
	cfg := Config{Fanout: FanoutAll}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	n := NewNode("x", &cfg, NewStorage(&cfg), nil, 1)
	for i := range 10 {
		n.AddNeighbor(fmt.Sprintf("p%d", i), "addr")
	}
	res, err := n.Receive(time.Unix(0, 0), &pb.GossipMessage{Hash: "m", FromHash: "p3", Origin: "p7"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Targets) != 8 {
		t.Errorf("FanoutAll chose %d of 8 candidates: %v", len(res.Targets), res.Targets)
	}
}

func TestBinaryPayload(t *testing.T) {
	cfg := Config{MaxPayloadBytes: 4}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		msg  *pb.GossipMessage
		want error
	}{
		{&pb.GossipMessage{Hash: "a", BinaryPayload: []byte{0xff, 0, 1, 2}}, nil},
		{&pb.GossipMessage{Hash: "a", BinaryPayload: []byte{0xff, 0, 1, 2, 3}}, ErrPayloadTooLarge},
		{&pb.GossipMessage{Hash: "a", Payload: "ab", BinaryPayload: []byte{1, 2}}, ErrTwoPayloads},
	} {
		if err := ValidateMessage(&cfg, tc.msg); !errors.Is(err, tc.want) {
			t.Errorf("%v: %v, want %v", tc.msg, err, tc.want)
		}
	}
	n := NewNode("x", &cfg, NewStorage(&cfg), nil, 1)
	n.AddNeighbor("p", "addr")
	res, _ := n.Receive(time.Unix(0, 0), &pb.GossipMessage{Hash: "b", BinaryPayload: []byte{0xff}})
	if string(res.Forward.GetBinaryPayload()) != "\xff" {
		t.Errorf("forward lost the binary payload: %v", res.Forward)
	}
}
