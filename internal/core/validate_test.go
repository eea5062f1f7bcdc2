package core

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"

	pb "github.com/grpc-gossip/gossip/proto/gossip/v1"
)

func TestValidateMessage(t *testing.T) {
	c := validConfig(t, func(c *Config) {
		c.MaxHashBytes = 8
		c.MaxPayloadBytes = 16
	})
	long := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name    string
		msg     *pb.GossipMessage
		wantErr error // nil means valid
	}{
		{"nil", nil, ErrNilMessage},
		{"empty message", &pb.GossipMessage{}, ErrEmptyHash},
		{"empty hash with payload", &pb.GossipMessage{Payload: "p", Origin: "o"}, ErrEmptyHash},
		{"minimal", &pb.GossipMessage{Hash: "h"}, nil},
		{"hash at limit", &pb.GossipMessage{Hash: long(8)}, nil},
		{"hash over limit", &pb.GossipMessage{Hash: long(9)}, ErrHashTooLong},
		{"from_hash at limit", &pb.GossipMessage{Hash: "h", FromHash: long(8)}, nil},
		{"from_hash over limit", &pb.GossipMessage{Hash: "h", FromHash: long(9)}, ErrFieldTooLong},
		{"origin at limit", &pb.GossipMessage{Hash: "h", Origin: long(8)}, nil},
		{"origin over limit", &pb.GossipMessage{Hash: "h", Origin: long(9)}, ErrFieldTooLong},
		{"payload empty", &pb.GossipMessage{Hash: "h", Payload: ""}, nil},
		{"payload at limit", &pb.GossipMessage{Hash: "h", Payload: long(16)}, nil},
		{"payload one over", &pb.GossipMessage{Hash: "h", Payload: long(17)}, ErrPayloadTooLarge},
		{"multi-byte runes count bytes", &pb.GossipMessage{Hash: "ééééé"}, ErrHashTooLong}, // 10 bytes, 5 runes
		{"hops and time are not limited", &pb.GossipMessage{Hash: "h", Hops: ^uint32(0), CreatedUnixNano: -1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateMessage(c, tt.msg)
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("ValidateMessage = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ValidateMessage = %v, want errors.Is(err, %v)", err, tt.wantErr)
			}
		})
	}
}

// The default limits, at their exact boundaries.
func TestValidateMessageDefaultLimits(t *testing.T) {
	c := validConfig(t, nil)
	at := &pb.GossipMessage{
		Hash:     strings.Repeat("h", DefaultMaxHashBytes),
		FromHash: strings.Repeat("f", DefaultMaxHashBytes),
		Origin:   strings.Repeat("o", DefaultMaxHashBytes),
		Payload:  strings.Repeat("p", DefaultMaxPayloadBytes),
	}
	if err := ValidateMessage(c, at); err != nil {
		t.Fatalf("every field at its limit: %v, want nil", err)
	}
	over := proto.Clone(at).(*pb.GossipMessage)
	over.Payload += "p"
	if err := ValidateMessage(c, over); !errors.Is(err, ErrPayloadTooLarge) {
		t.Fatalf("payload %d bytes: %v, want ErrPayloadTooLarge", len(over.Payload), err)
	}
}

// fuzzConfigs are the limits the fuzz targets check against: the defaults,
// and small ones the fuzzer can reach.
func fuzzConfigs(tb testing.TB) []*Config {
	return []*Config{
		validConfig(tb, nil),
		validConfig(tb, func(c *Config) { c.MaxHashBytes, c.MaxPayloadBytes = 4, 8 }),
	}
}

func addValidateSeeds(f *testing.F) {
	seeds := []*pb.GossipMessage{
		{},
		{Hash: "h"},
		{Hash: "abc", FromHash: "n1", Payload: "hello", Origin: "n0", Hops: 3, CreatedUnixNano: 1},
		{Hash: "toolonghash", Payload: "p"},
		{Hash: "h", Payload: "a payload longer than eight bytes"},
		{Hash: "h", FromHash: "self", Origin: "self"},
		{Hash: "h", Hops: ^uint32(0), CreatedUnixNano: -1},
	}
	for _, m := range seeds {
		b, err := proto.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0xc3, 0x28})    // hash with invalid UTF-8: Unmarshal rejects it
	f.Add([]byte{0x0a, 0x05, 'h', 'a', 's'}) // truncated
	f.Add([]byte{0xff, 0xff, 0xff})
}

// FuzzValidateMessage feeds raw wire bytes to the decoder and the
// validator. ValidateMessage must never panic, and a message it accepts
// must be accepted by a fresh Node too.
func FuzzValidateMessage(f *testing.F) {
	addValidateSeeds(f)
	cfgs := fuzzConfigs(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var msg pb.GossipMessage
		if err := proto.Unmarshal(data, &msg); err != nil {
			return
		}
		for _, c := range cfgs {
			if err := ValidateMessage(c, &msg); err != nil {
				if !wrapsValidationSentinel(err) {
					t.Fatalf("ValidateMessage = %v: wraps no sentinel error", err)
				}
				continue
			}
			n := newTestNode(t, "self", c, 1, "a", "b", "c", "d")
			res, err := n.Receive(t0, &msg)
			if err != nil {
				t.Fatalf("ValidateMessage accepted %v but Receive = %v", &msg, err)
			}
			if res.Ack == nil || res.Ack.GetHash() != msg.GetHash() || res.Ack.GetFrom() != "self" {
				t.Fatalf("Receive(%v).Ack = %v, want hash %q from self", &msg, res.Ack, msg.GetHash())
			}
			if !res.Fresh || res.Ack.GetDuplicate() {
				t.Fatalf("first receipt on a fresh node: Fresh=%v Duplicate=%v", res.Fresh, res.Ack.GetDuplicate())
			}
		}
	})
}

// FuzzReceive drives one Node with a sequence of messages built from a
// fuzzed script and checks it against a model of what it has seen.
//
// The script is lines of "hash|from|origin|hops|advance-ms"; missing
// fields are empty (zero). A from or origin of the form "#k" names the
// k-th neighbour, so the fuzzer reaches the neighbour exclusions easily.
// Virtual time advances by at most 255 ms per message, far less than any
// TTL could expire over a sequence the fuzzer builds.
func FuzzReceive(f *testing.F) {
	f.Add("m1|#0||0|0\nm1|#1|#0|1|5\nm2|||0|0\nm2|#2|self|1|1\nm1|#3|#0|2|0", uint8(3), uint64(1))
	f.Add("a|#0|#0\na|#0|#0\nb|#1|#2|7\nc|x|y|4294967295|255\nb|#1\n", uint8(1), uint64(2))
	f.Add("h|self|self\nh|#4|#4\ntoolongahashforthesmallconfig|#0\n|#0\n", uint8(8), uint64(3))
	f.Add(strings.Repeat("z|#1|#1|3|1\n", 20), uint8(0), uint64(4))

	neighbors := []string{"n0", "n1", "n2", "n3", "n4", "n5"}
	resolve := func(s string) string {
		if len(s) >= 2 && s[0] == '#' {
			return neighbors[int(s[1])%len(neighbors)]
		}
		return s
	}
	f.Fuzz(func(t *testing.T, script string, fanout uint8, seed uint64) {
		cfg := validConfig(t, func(c *Config) {
			c.Fanout = int(fanout % 8) // 0 means the default, 3
			c.MaxHashBytes = 16
		})
		const self = "self"
		n := newTestNode(t, self, cfg, seed, neighbors...)
		clock := newFakeClock()

		seen := make(map[string]bool)
		var valid, dups uint64
		for i, line := range strings.Split(script, "\n") {
			if i >= 200 {
				break
			}
			fields := strings.SplitN(line, "|", 5)
			for len(fields) < 5 {
				fields = append(fields, "")
			}
			msg := &pb.GossipMessage{
				Hash:     fields[0],
				FromHash: resolve(fields[1]),
				Origin:   resolve(fields[2]),
				Hops:     parseUint32(fields[3]),
				Payload:  line,
			}
			if !utf8.ValidString(msg.Hash) || !utf8.ValidString(msg.FromHash) || !utf8.ValidString(msg.Origin) || !utf8.ValidString(msg.Payload) {
				continue // proto3 decoding would have rejected it
			}
			now := clock.Advance(time.Duration(parseUint32(fields[4])%256) * time.Millisecond)

			verr := ValidateMessage(cfg, msg)
			res, err := n.Receive(now, msg)
			if verr != nil {
				if err == nil || err.Error() != verr.Error() {
					t.Fatalf("line %d: Receive err = %v, ValidateMessage err = %v", i, err, verr)
				}
				continue
			}
			if err != nil {
				t.Fatalf("line %d: Receive(%v) = %v", i, msg, err)
			}
			valid++
			checkReceive(t, n, msg, res, !seen[msg.Hash])
			if !res.Fresh {
				dups++
			}
			seen[msg.Hash] = true
			if ttl := n.Storage().TTL(); ttl < cfg.MinTTL || ttl > cfg.MaxTTL {
				t.Fatalf("line %d: TTL %v outside [%v, %v]", i, ttl, cfg.MinTTL, cfg.MaxTTL)
			}
		}
		c := n.Counters()
		if c.Received != valid || c.Delivered != uint64(len(seen)) || c.Duplicates != dups {
			t.Fatalf("counters %+v, want Received=%d Delivered=%d Duplicates=%d", c, valid, len(seen), dups)
		}
	})
}

// checkReceive checks the invariants of one accepted Receive.
func checkReceive(t *testing.T, n *Node, msg *pb.GossipMessage, res Result, wantFresh bool) {
	t.Helper()
	self := n.ID()
	if res.Fresh != wantFresh {
		t.Fatalf("Receive(%v).Fresh = %v, want %v", msg, res.Fresh, wantFresh)
	}
	if res.Ack == nil || res.Ack.GetHash() != msg.GetHash() || res.Ack.GetFrom() != self || res.Ack.GetDuplicate() == wantFresh {
		t.Fatalf("Receive(%v).Ack = %v, want hash %q from %q duplicate=%v", msg, res.Ack, msg.GetHash(), self, !wantFresh)
	}
	if !res.Fresh {
		if res.Forward != nil || len(res.Targets) != 0 {
			t.Fatalf("duplicate has Forward %v and Targets %v", res.Forward, res.Targets)
		}
		return
	}
	origin := msg.GetOrigin()
	if origin == "" {
		origin = self
	}
	fwd := res.Forward
	if fwd.GetHash() != msg.GetHash() || fwd.GetFromHash() != self || fwd.GetOrigin() != origin ||
		fwd.GetHops() != min(msg.GetHops(), math.MaxUint32-1)+1 || fwd.GetPayload() != msg.GetPayload() {
		t.Fatalf("Forward = %v for %v", fwd, msg)
	}
	if len(res.Targets) > n.Config().Fanout {
		t.Fatalf("%d targets, fanout %d", len(res.Targets), n.Config().Fanout)
	}
	ids := make(map[string]bool)
	for _, tg := range res.Targets {
		switch {
		case tg.ID == self || tg.ID == msg.GetFromHash() || tg.ID == origin:
			t.Fatalf("target %q is self, the sender or the origin of %v", tg.ID, msg)
		case ids[tg.ID]:
			t.Fatalf("target %q chosen twice: %v", tg.ID, res.Targets)
		case tg.Addr != addrOf(tg.ID):
			t.Fatalf("target %q has endpoint %q", tg.ID, tg.Addr)
		}
		ids[tg.ID] = true
	}
	// With enough candidates the node uses its whole fanout.
	candidates := 0
	for _, nb := range n.Neighbors() {
		if nb.ID != msg.GetFromHash() && nb.ID != origin {
			candidates++
		}
	}
	if want := min(candidates, n.Config().Fanout); len(res.Targets) != want {
		t.Fatalf("%d targets from %d candidates with fanout %d", len(res.Targets), candidates, n.Config().Fanout)
	}
}

func parseUint32(s string) uint32 {
	var v uint32
	for _, r := range s {
		if r < '0' || r > '9' {
			break
		}
		v = v*10 + uint32(r-'0') // wraps: any uint32 is fine
	}
	return v
}

func wrapsValidationSentinel(err error) bool {
	for _, sentinel := range []error{ErrEmptyHash, ErrHashTooLong, ErrFieldTooLong, ErrPayloadTooLarge} {
		if errors.Is(err, sentinel) {
			return true
		}
	}
	return false
}
