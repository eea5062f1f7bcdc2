package core

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// insertAt records the first receipt of hash with the given hop count, as
// Node.Receive does.
func insertAt(tb testing.TB, s *Storage, now time.Time, hash string, hops uint32) *Entry {
	tb.Helper()
	if s.Seen(now, hash) {
		tb.Fatalf("%s already seen at %v", hash, now.Sub(t0))
	}
	e := &Entry{Hash: hash, Hops: hops}
	s.Insert(now, e)
	return e
}

func TestHotEntryExpiresAfterTTL(t *testing.T) {
	cfg := validConfig(t, nil)
	s := NewStorage(cfg)
	ttl := s.TTL()
	if ttl != 4*16*DefaultInitialRTT {
		t.Fatalf("initial TTL = %v, want ttlSafety × priorDiameter × InitialRTT = %v", ttl, 4*16*DefaultInitialRTT)
	}
	e := insertAt(t, s, t0, "m", 0)
	if !e.Expires.Equal(t0.Add(ttl)) || !e.FirstSeen.Equal(t0) || e.Copies != 1 {
		t.Fatalf("entry %+v: want FirstSeen t0, Expires t0+%v, 1 copy", e, ttl)
	}
	for _, d := range []time.Duration{0, time.Second, ttl - time.Nanosecond} {
		if n := s.Expire(t0.Add(d)); n != 0 || s.Active("m") == nil {
			t.Fatalf("Expire at +%v retired %d entries, want the entry still hot", d, n)
		}
	}
	if n := s.Expire(t0.Add(ttl)); n != 1 || s.Active("m") != nil {
		t.Fatalf("Expire at +TTL retired %d, want 1", n)
	}
	if !s.Seen(t0.Add(ttl), "m") {
		t.Fatal("id forgotten when its hot state expired")
	}
	if st := s.Stats(); st.Active != 0 || st.Seen != 1 {
		t.Fatalf("stats %+v, want Active 0, Seen 1", st)
	}
}

// Entries expire in Expires order, whatever the order of insertion.
func TestExpireOrder(t *testing.T) {
	cfg := validConfig(t, nil)
	s := NewStorage(cfg)
	s.AddPeer("slow")
	s.RecordAck(t0, "slow", time.Second, false)
	s.Expire(t0) // TTL: 4 × 16 × 1 s, capped at MaxTTL
	long := insertAt(t, s, t0, "long", 0)
	s.RemovePeer("slow") // TTL back to 3.2 s
	short := insertAt(t, s, t0.Add(time.Second), "short", 0)
	mid := insertAt(t, s, t0.Add(2*time.Second), "mid", 0)
	s.Forget("mid")
	if !long.Expires.After(short.Expires) {
		t.Fatalf("test setup: long expires %v, short %v", long.Expires.Sub(t0), short.Expires.Sub(t0))
	}
	if n := s.Expire(short.Expires); n != 1 || s.Active("short") != nil || s.Active("long") == nil {
		t.Fatalf("Expire at short's deadline retired %d, long hot=%v short hot=%v", n, s.Active("long") != nil, s.Active("short") != nil)
	}
	if n := s.Expire(mid.Expires); n != 0 {
		t.Fatalf("Expire retired %d forgotten entries", n)
	}
	if n := s.Expire(long.Expires); n != 1 || s.Stats().Active != 0 {
		t.Fatalf("Expire at long's deadline retired %d", n)
	}
}

func TestLongTTL(t *testing.T) {
	// Without periodic Expire calls, the long-TTL cache must still drop ids
	// on time (one Expire is needed to end the hot state: until Expire
	// runs, a hot entry counts as seen).
	for _, withExpire := range []bool{false, true} {
		t.Run(fmt.Sprintf("expire=%v", withExpire), func(t *testing.T) {
			cfg := validConfig(t, nil)
			s := NewStorage(cfg)
			clock := newFakeClock()
			insertAt(t, s, clock.now, "m", 0)
			insertAt(t, s, clock.Advance(time.Minute), "later", 0)
			if n := s.Expire(clock.Advance(cfg.MaxTTL)); n != 2 {
				t.Fatalf("Expire after MaxTTL retired %d hot entries, want 2", n)
			}
			for clock.now.Before(t0.Add(cfg.LongTTL - time.Second)) {
				now := clock.Advance(time.Second)
				if withExpire {
					s.Expire(now)
				}
				if !s.Seen(now, "m") {
					t.Fatalf("m forgotten at +%v, before LongTTL", now.Sub(t0))
				}
			}
			if !s.Seen(t0.Add(cfg.LongTTL-time.Nanosecond), "m") {
				t.Fatal("m forgotten 1ns before LongTTL")
			}
			end := t0.Add(cfg.LongTTL)
			if withExpire {
				s.Expire(end)
			}
			if s.Seen(end, "m") {
				t.Fatal("m still seen at LongTTL")
			}
			if !s.Seen(end, "later") {
				t.Fatal("later, received a minute after m, forgotten with it")
			}
			if withExpire {
				if st := s.Stats(); st.Seen != 1 || st.Active != 0 || st.SeenEvicted != 0 {
					t.Fatalf("stats at LongTTL %+v, want Seen 1", st)
				}
				s.Expire(end.Add(time.Minute))
				if st := s.Stats(); st.Seen != 0 {
					t.Fatalf("stats after both LongTTLs %+v, want Seen 0", st)
				}
			}
		})
	}
}

// wantTTL is the documented TTL: clamp(MinTTL, MaxTTL, 4 × diameter ×
// (SRTT or InitialRTT + loss × (AckTimeout + RetryBackoff))), computed in
// floating point so that it cannot overflow.
// wantTTL is the documented formula for one neighbour that has ACKed.
func wantTTL(c *Config, diameter float64, srtt time.Duration, loss float64) time.Duration {
	hop := float64(srtt) + loss*float64(c.AckTimeout+c.RetryBackoff)
	t := ttlSafety * diameter * hop
	return time.Duration(math.Min(math.Max(t, float64(c.MinTTL)), float64(c.MaxTTL)))
}

// TestTTLProperties sweeps hop counts, RTTs and loss ratios: the TTL stays
// within [MinTTL, MaxTTL], matches its formula, and never shrinks when the
// network gets longer, slower or lossier.
func TestTTLProperties(t *testing.T) {
	cfg := validConfig(t, func(c *Config) { c.MaxSeen = 16 })
	var hopsList []uint32
	for h := range uint32(101) {
		hopsList = append(hopsList, h)
	}
	// Hop counts come from the wire: any uint32 is possible.
	hopsList = append(hopsList, 1000, 1<<16, 1<<24, 1<<31, math.MaxUint32-1, math.MaxUint32)
	rtts := []time.Duration{0, time.Microsecond, time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second}
	losses := []float64{0, 0.01, 0.1, 0.25, 0.5, 0.9, 1}

	// ttls[h][r][l]
	ttls := make([][][]time.Duration, len(hopsList))
	for hi, hops := range hopsList {
		s := NewStorage(cfg)
		s.AddPeer("p")
		insertAt(t, s, t0, "m", hops)
		diameter := float64(hops) + 1
		if hops == 0 {
			diameter = priorDiameter
		}
		if got := s.Diameter(); float64(got) != diameter {
			t.Fatalf("hops %d: Diameter = %d, want %v", hops, got, diameter)
		}
		ttls[hi] = make([][]time.Duration, len(rtts))
		for ri, rtt := range rtts {
			ttls[hi][ri] = make([]time.Duration, len(losses))
			for li, loss := range losses {
				p := s.Peer("p")
				p.SRTT, p.Loss, p.Acked = rtt, loss, 1
				s.Expire(t0)
				got := s.TTL()
				if got < cfg.MinTTL || got > cfg.MaxTTL {
					t.Fatalf("hops %d rtt %v loss %v: TTL %v outside [%v, %v]", hops, rtt, loss, got, cfg.MinTTL, cfg.MaxTTL)
				}
				want := wantTTL(cfg, diameter, rtt, loss)
				if d := got - want; d < -time.Microsecond || d > time.Microsecond {
					t.Fatalf("hops %d rtt %v loss %v: TTL %v, want %v", hops, rtt, loss, got, want)
				}
				ttls[hi][ri][li] = got
			}
		}
	}
	// Monotonicity. Hops 0 (no observation: the prior) and RTT 0 (no
	// sample: InitialRTT) are not on the scale, so start at index 1.
	for hi := range hopsList {
		for ri := range rtts {
			for li := range losses {
				ttl := ttls[hi][ri][li]
				if hi > 1 && ttl < ttls[hi-1][ri][li] {
					t.Errorf("TTL shrinks from %v to %v as hops grow %d→%d (rtt %v loss %v)",
						ttls[hi-1][ri][li], ttl, hopsList[hi-1], hopsList[hi], rtts[ri], losses[li])
				}
				if ri > 1 && ttl < ttls[hi][ri-1][li] {
					t.Errorf("TTL shrinks from %v to %v as RTT grows %v→%v (hops %d loss %v)",
						ttls[hi][ri-1][li], ttl, rtts[ri-1], rtts[ri], hopsList[hi], losses[li])
				}
				if li > 0 && ttl < ttls[hi][ri][li-1] {
					t.Errorf("TTL shrinks from %v to %v as loss grows %v→%v (hops %d rtt %v)",
						ttls[hi][ri][li-1], ttl, losses[li-1], losses[li], hopsList[hi], rtts[ri])
				}
			}
		}
	}
}

// The TTL follows the network: longer paths and slower links raise it,
// and it comes back down once the long paths are one to two HopWindows in
// the past.
func TestTTLAdapts(t *testing.T) {
	cfg := validConfig(t, nil)
	s := NewStorage(cfg)
	clock := newFakeClock()
	ttlFor := func(diameter int) time.Duration { return wantTTL(cfg, float64(diameter), cfg.InitialRTT, 0) } // no peer: InitialRTT

	if got, want := s.TTL(), ttlFor(priorDiameter); got != want {
		t.Fatalf("prior TTL %v, want %v", got, want)
	}
	// Short paths: the diameter estimate drops below the prior.
	insertAt(t, s, clock.now, "h2", 2)
	if got, want := s.TTL(), cfg.MinTTL; got != want || s.Diameter() != 3 {
		t.Fatalf("after a 2-hop message TTL %v diameter %d, want %v and 3", got, s.Diameter(), want)
	}
	// Longer paths raise the TTL at once.
	var last time.Duration
	for i, hops := range []uint32{10, 20, 40} {
		insertAt(t, s, clock.Advance(time.Second), fmt.Sprint("long", i), hops)
		got := s.TTL()
		if want := ttlFor(int(hops) + 1); got != want || got <= last {
			t.Fatalf("after a %d-hop message TTL %v (was %v), want %v", hops, got, last, want)
		}
		last = got
	}
	// Slower links raise it at the next Expire.
	s.AddPeer("p")
	s.RecordAck(clock.now, "p", 200*time.Millisecond, false)
	s.Expire(clock.Advance(time.Second))
	slow := s.TTL()
	if want := wantTTL(cfg, 41, 200*time.Millisecond, 0); slow != want || slow <= last {
		t.Fatalf("with a 200ms neighbour TTL %v (was %v), want %v", slow, last, want)
	}

	// Only short paths from now on, one message a second with an Expire
	// each second: the 40 hops seen at t0+3s are remembered for the rest of
	// that window (until t0+60s) and all of the next one (until t0+120s).
	for i := 0; clock.now.Before(t0.Add(3 * cfg.HopWindow)); i++ {
		now := clock.Advance(time.Second)
		insertAt(t, s, now, fmt.Sprint("short", i), 4)
		s.Expire(now)
		elapsed := now.Sub(t0)
		switch {
		case elapsed < 2*cfg.HopWindow && s.TTL() != slow:
			t.Fatalf("at +%v TTL %v, want %v: the long path is forgotten too early", elapsed, s.TTL(), slow)
		case elapsed >= 2*cfg.HopWindow && s.Diameter() != 5:
			t.Fatalf("at +%v diameter %d, want 5: the long path is remembered too long", elapsed, s.Diameter())
		}
	}
	if want := wantTTL(cfg, 5, 200*time.Millisecond, 0); s.TTL() != want {
		t.Fatalf("after the windows TTL %v, want %v", s.TTL(), want)
	}

	// No traffic at all for two windows: back to the prior.
	for range 2 * 60 {
		s.Expire(clock.Advance(time.Second))
	}
	if s.Diameter() != priorDiameter {
		t.Fatalf("after two idle windows diameter %d, want the prior %d", s.Diameter(), priorDiameter)
	}
}

func TestAddRemovePeerRefreshesTTL(t *testing.T) {
	cfg := validConfig(t, nil)
	s := NewStorage(cfg)
	s.AddPeer("slow")
	s.RecordAck(t0, "slow", 500*time.Millisecond, false)
	s.Expire(t0)
	one := s.TTL()
	if want := wantTTL(cfg, priorDiameter, 500*time.Millisecond, 0); one != want {
		t.Fatalf("TTL with one slow peer %v, want %v", one, want)
	}
	s.AddPeer("fresh") // no RTT sample yet: counts as InitialRTT, lowering the mean
	two := s.TTL()
	if want := wantTTL(cfg, priorDiameter, (500*time.Millisecond+cfg.InitialRTT)/2, 0); two != want {
		t.Fatalf("TTL after AddPeer %v, want %v (refreshed without Expire)", two, want)
	}
	s.AddPeer("fresh") // already known: no change, row kept
	if s.TTL() != two || len(s.Peers()) != 2 {
		t.Fatal("re-adding a peer changed the TTL or the table")
	}
	s.RemovePeer("fresh")
	if s.TTL() != one {
		t.Fatalf("TTL after RemovePeer %v, want %v (refreshed without Expire)", s.TTL(), one)
	}
	s.RemovePeer("slow")
	if want := wantTTL(cfg, priorDiameter, cfg.InitialRTT, 0); s.TTL() != want || s.HopLatency() != cfg.InitialRTT {
		t.Fatalf("TTL with no peers %v, want %v", s.TTL(), want)
	}
	// Statistics of unknown peers are ignored, not created.
	s.RecordSent("ghost")
	s.RecordAck(t0, "ghost", time.Second, false)
	s.RecordFailure(t0, "ghost")
	if s.Peer("ghost") != nil {
		t.Fatal("recording for an unknown peer created a row")
	}
}

func TestMaxActiveRetiresEarliestExpiring(t *testing.T) {
	cfg := validConfig(t, func(c *Config) { c.MaxActive = 2 })
	s := NewStorage(cfg)
	s.AddPeer("slow")
	s.RecordAck(t0, "slow", time.Second, false)
	s.Expire(t0)
	a := insertAt(t, s, t0, "a", 0) // expires at t0+MaxTTL
	s.RemovePeer("slow")
	b := insertAt(t, s, t0.Add(time.Second), "b", 0) // expires at t0+1s+3.2s
	if !b.Expires.Before(a.Expires) {
		t.Fatalf("test setup: b expires %v, a %v", b.Expires.Sub(t0), a.Expires.Sub(t0))
	}
	insertAt(t, s, t0.Add(2*time.Second), "c", 0)
	if s.Active("b") != nil || s.Active("a") == nil || s.Active("c") == nil {
		t.Fatal("MaxActive did not retire the earliest-expiring entry (b)")
	}
	if !s.Seen(t0.Add(2*time.Second), "b") {
		t.Fatal("an entry retired early is no longer de-duplicated")
	}
	if st := s.Stats(); st.Active != 2 || st.RetiredEarly != 1 {
		t.Fatalf("stats %+v, want Active 2, RetiredEarly 1", st)
	}
	insertAt(t, s, t0.Add(3*time.Second), "d", 0)
	if s.Active("c") != nil || s.Active("a") == nil || s.Stats().RetiredEarly != 2 {
		t.Fatal("second overflow did not retire c")
	}
}

// Past MaxSeen the oldest ids go first: under sustained overflow the cache
// still covers the most recent MaxSeen ids, so only the latest duplicates
// get through, never one that is seconds late.
func TestMaxSeenEvictsOldestFirst(t *testing.T) {
	cfg := validConfig(t, func(c *Config) { c.MaxSeen = 1000 })
	s := NewStorage(cfg)
	clock := newFakeClock()
	const rate = 100 // ids per virtual second: MaxSeen covers the last 10 s
	total := 0
	for range 60 {
		start := clock.now
		for i := range rate {
			insertAt(t, s, start.Add(time.Duration(i)*time.Second/rate), strconv.Itoa(total), 1)
			total++
		}
		s.Expire(clock.Advance(time.Second))
	}
	now := clock.now
	for back := 1; back <= cfg.MaxSeen; back++ {
		if id := strconv.Itoa(total - back); !s.Seen(now, id) {
			t.Fatalf("id %s, %.2fs old (hot: %v), was evicted: the newest %d ids should all be remembered",
				id, float64(back)/rate, s.Active(id) != nil, cfg.MaxSeen)
		}
	}
	for back := cfg.MaxSeen + 1; back <= total; back++ {
		if id := strconv.Itoa(total - back); s.Seen(now, id) {
			t.Fatalf("id %s, %.2fs old, is still remembered beyond MaxSeen", id, float64(back)/rate)
		}
	}
	if st := s.Stats(); st.Seen != cfg.MaxSeen || st.SeenEvicted != uint64(total-cfg.MaxSeen) {
		t.Fatalf("stats %+v, want Seen %d and SeenEvicted %d", st, cfg.MaxSeen, total-cfg.MaxSeen)
	}
}

// Forget leaves a stale record of the id in the long-TTL queue; neither it
// nor a later receipt of the same id may be confused with the other.
func TestForgetThenReinsert(t *testing.T) {
	cfg := validConfig(t, func(c *Config) { c.MaxSeen = 3 })
	s := NewStorage(cfg)
	insertAt(t, s, t0, "a", 1)
	s.Forget("a")
	if s.Seen(t0, "a") || s.Stats().Seen != 0 {
		t.Fatal("a still seen after Forget")
	}
	insertAt(t, s, t0.Add(time.Second), "a", 1)
	// The stale record (t0+LongTTL) must not take the new receipt with it.
	s.Expire(t0.Add(cfg.LongTTL))
	if !s.Seen(t0.Add(cfg.LongTTL), "a") {
		t.Fatal("the stale record of a removed its second receipt")
	}
	s.Expire(t0.Add(cfg.LongTTL + time.Second))
	if s.Seen(t0.Add(cfg.LongTTL+time.Second), "a") || s.Stats().Seen != 0 {
		t.Fatal("a outlived the LongTTL of its second receipt")
	}

	// Stale records do not count against MaxSeen, and evicting past them
	// removes the oldest live id.
	now := t0.Add(time.Hour)
	for _, h := range []string{"x", "y"} {
		insertAt(t, s, now, h, 1)
		s.Forget(h)
	}
	for i, h := range []string{"p", "q", "r", "s"} {
		insertAt(t, s, now.Add(time.Duration(i)*time.Second), h, 1)
	}
	s.Expire(now.Add(cfg.MaxTTL + 4*time.Second)) // hot state gone: only the long-TTL cache decides
	got := ""
	for _, h := range []string{"x", "y", "p", "q", "r", "s"} {
		if s.Seen(now.Add(cfg.MaxTTL+4*time.Second), h) {
			got += h
		}
	}
	if got != "qrs" {
		t.Fatalf("remembered %q, want %q", got, "qrs")
	}
	if st := s.Stats(); st.SeenEvicted != 1 || st.Seen != 3 {
		t.Fatalf("stats %+v, want SeenEvicted 1, Seen 3", st)
	}
}

// An id past its LongTTL but not yet dropped by Expire is new again.
func TestReceiveAfterLongTTLWithoutExpire(t *testing.T) {
	n := newTestNode(t, "self", nil, 1, "a")
	msg := gossipMsg("m", "a", "o", 1)
	n.Receive(t0, msg)
	n.Tick(t0.Add(DefaultMaxTTL))
	if res, _ := n.Receive(t0.Add(DefaultLongTTL-time.Nanosecond), msg); res.Fresh {
		t.Fatal("copy just before LongTTL is Fresh")
	}
	if res, _ := n.Receive(t0.Add(DefaultLongTTL), msg); !res.Fresh {
		t.Fatal("copy at LongTTL is not Fresh")
	}
	// And the new receipt gets a full LongTTL of its own.
	n.Tick(t0.Add(DefaultLongTTL + DefaultMaxTTL))
	if !n.Storage().Seen(t0.Add(2*DefaultLongTTL-time.Nanosecond), "m") {
		t.Fatal("second receipt forgotten early")
	}
}

func TestMaxSeenEvicts(t *testing.T) {
	cfg := validConfig(t, func(c *Config) { c.MaxSeen, c.MaxActive = 100, 10 })
	s := NewStorage(cfg)
	now := t0
	for i := range 1000 {
		now = now.Add(time.Millisecond)
		insertAt(t, s, now, strconv.Itoa(i), 1)
	}
	s.Expire(now)
	st := s.Stats()
	if st.Seen > cfg.MaxSeen || st.Active > cfg.MaxActive {
		t.Fatalf("stats %+v: Seen over MaxSeen %d or Active over MaxActive %d", st, cfg.MaxSeen, cfg.MaxActive)
	}
	if st.SeenEvicted < uint64(1000-cfg.MaxSeen) {
		t.Fatalf("SeenEvicted = %d, want at least %d", st.SeenEvicted, 1000-cfg.MaxSeen)
	}
}

// sustainedLoad pushes rate messages per virtual second for the given
// virtual duration, with an Expire every virtual second, through a Storage
// with a small MaxSeen (50,000). Ten per cent of the copies are duplicates
// of one of the last 20,000 messages, most of them out of hot state by then
// but still within MaxSeen: each must be seen. It checks the size bounds
// every second and returns the HeapInuse (after GC) at the checkpoint and
// at the end.
func sustainedLoad(tb testing.TB, rate int, dur, checkpoint time.Duration, logf func(string, ...any)) (atCheckpoint, atEnd uint64, final StorageStats) {
	cfg := validConfig(tb, func(c *Config) { c.MaxSeen = 50_000 })
	s := NewStorage(cfg)
	for _, p := range []string{"a", "b", "c"} {
		s.AddPeer(p)
		s.RecordAck(t0, p, 20*time.Millisecond, false)
	}
	clock := newFakeClock()
	rnd := rand.New(rand.NewPCG(1, 2))
	maxActive, maxSeen := 0, 0
	var next uint64
	buf := make([]byte, 0, 32)
	heapInuse := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapInuse
	}
	step := time.Second / time.Duration(rate)
	for sec := 1; time.Duration(sec)*time.Second <= dur; sec++ {
		start := clock.now
		for i := range rate {
			now := start.Add(time.Duration(i) * step)
			if next > 0 && rnd.IntN(10) == 0 {
				back := min(next-1, uint64(rnd.IntN(20_000)))
				h := string(strconv.AppendUint(append(buf[:0], "msg-"...), next-1-back, 10))
				if !s.Seen(now, h) {
					tb.Fatalf("at +%v: message %s, %d messages ago, not seen", now.Sub(t0), h, back+1)
				}
				continue
			}
			h := string(strconv.AppendUint(append(buf[:0], "msg-"...), next, 10))
			next++
			if s.Seen(now, h) {
				tb.Fatalf("new message %s seen", h)
			}
			s.Insert(now, &Entry{Hash: h, Origin: "o", FirstFrom: "a", Hops: uint32(1 + rnd.IntN(12))})
		}
		now := clock.Advance(time.Second)
		s.Expire(now)
		st := s.Stats()
		maxActive, maxSeen = max(maxActive, st.Active), max(maxSeen, st.Seen)
		if st.Active > rate*int(cfg.MaxTTL/time.Second) || st.Active > cfg.MaxActive {
			tb.Fatalf("at +%v Active = %d, over rate×MaxTTL = %d", now.Sub(t0), st.Active, rate*int(cfg.MaxTTL/time.Second))
		}
		if st.Seen > cfg.MaxSeen {
			tb.Fatalf("at +%v Seen = %d, over MaxSeen = %d", now.Sub(t0), st.Seen, cfg.MaxSeen)
		}
		if elapsed := now.Sub(t0); elapsed == checkpoint {
			atCheckpoint = heapInuse()
			logf("at +%v: HeapInuse %.1f MiB, %+v", elapsed, float64(atCheckpoint)/(1<<20), st)
		}
	}
	atEnd = heapInuse()
	final = s.Stats()
	logf("at +%v: HeapInuse %.1f MiB, %+v; max Active %d, max Seen %d, %d messages",
		clock.now.Sub(t0), float64(atEnd)/(1<<20), final, maxActive, maxSeen, next)
	runtime.KeepAlive(s)
	return atCheckpoint, atEnd, final
}

// TestStorageMemoryFlat: under sustained traffic far above MaxSeen per
// LongTTL, the sizes stay bounded and the heap stops growing once the
// caches are full.
func TestStorageMemoryFlat(t *testing.T) {
	rate, dur, checkpoint := 2000, 30*time.Minute, 11*time.Minute
	if testing.Short() || raceEnabled {
		rate, dur, checkpoint = 500, 15*time.Minute, 11*time.Minute
	}
	atCheckpoint, atEnd, final := sustainedLoad(t, rate, dur, checkpoint, t.Logf)
	// Allow 25% plus 4 MiB of noise (GC timing, map bucket growth).
	if limit := atCheckpoint + atCheckpoint/4 + 4<<20; atEnd > limit {
		t.Fatalf("HeapInuse grew from %d at +%v to %d at the end, limit %d", atCheckpoint, checkpoint, atEnd, limit)
	}
	if final.SeenEvicted == 0 {
		t.Fatal("the load never filled the long-TTL cache: the test does not test MaxSeen")
	}
}

// BenchmarkStorageSustained is the full memory-flat load: 2,000 messages per
// virtual second for 30 virtual minutes (3.2 million ids through a 50,000-id
// long-TTL cache). It reports the final sizes and the heap at minute 11 and
// at the end. Run it with -benchtime=1x.
func BenchmarkStorageSustained(b *testing.B) {
	b.ReportAllocs()
	for range b.N {
		atCheckpoint, atEnd, final := sustainedLoad(b, 2000, 30*time.Minute, 11*time.Minute, b.Logf)
		b.ReportMetric(float64(final.Active), "active")
		b.ReportMetric(float64(final.Seen), "seen")
		b.ReportMetric(float64(atCheckpoint)/(1<<20), "heapMiB@11m")
		b.ReportMetric(float64(atEnd)/(1<<20), "heapMiB@30m")
	}
}
