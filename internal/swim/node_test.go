package swim

import (
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newTestNode(t *testing.T, id string, others ...Update) *Node {
	t.Helper()
	cfg := DefaultLANConfig()
	cfg.Seed = 1
	n, err := New(t0, id, id+":1", cfg)
	if err != nil {
		t.Fatal(err)
	}
	n.mergeAll(t0, others, false)
	n.Ready()
	return n
}

func alive(id string, inc uint64) Update {
	return Update{ID: id, Addr: id + ":1", State: Alive, Incarnation: inc}
}

func upd(id string, st State, inc uint64, from string) Update {
	return Update{ID: id, Addr: id + ":1", State: st, Incarnation: inc, From: from}
}

// TestMergeRules: what a piece of news does to a member in a given state.
func TestMergeRules(t *testing.T) {
	tests := []struct {
		name      string
		have      []Update // applied first, in order
		news      Update
		fromSync  bool
		wantState State // 0: unknown member
		wantInc   uint64
		wantAddr  string
		wantEvent EventKind // 0: none
	}{
		{"new alive member joins", nil, alive("b", 0), false, Alive, 0, "b:1", EventJoin},
		{"dead stranger ignored", nil, upd("b", Dead, 3, "x"), false, 0, 0, "", 0},
		{"left stranger ignored", nil, upd("b", Left, 3, "b"), false, 0, 0, "", 0},
		{"same alive is a no-op", []Update{alive("b", 2)}, alive("b", 2), false, Alive, 2, "b:1", 0},
		{"older alive ignored", []Update{alive("b", 2)}, alive("b", 1), false, Alive, 2, "b:1", 0},
		{"newer alive updates", []Update{alive("b", 2)}, alive("b", 3), false, Alive, 3, "b:1", EventUpdate},
		{"newer alive at a new address re-addresses", []Update{alive("b", 2)}, Update{ID: "b", Addr: "b:2", State: Alive, Incarnation: 3}, false, Alive, 3, "b:2", EventUpdate},
		{"same-incarnation alive at another address ignored", []Update{alive("b", 2)}, Update{ID: "b", Addr: "b:2", State: Alive, Incarnation: 2}, false, Alive, 2, "b:1", 0},
		{"suspect at same incarnation", []Update{alive("b", 2)}, upd("b", Suspect, 2, "c"), false, Suspect, 2, "b:1", EventSuspect},
		{"suspect at older incarnation ignored", []Update{alive("b", 2)}, upd("b", Suspect, 1, "c"), false, Alive, 2, "b:1", 0},
		{"alive at same incarnation does not clear suspicion", []Update{alive("b", 2), upd("b", Suspect, 2, "c")}, alive("b", 2), false, Suspect, 2, "b:1", 0},
		{"refutation clears suspicion", []Update{alive("b", 2), upd("b", Suspect, 2, "c")}, alive("b", 3), false, Alive, 3, "b:1", EventAliveAgain},
		{"dead beats alive at same incarnation", []Update{alive("b", 2)}, upd("b", Dead, 2, "c"), false, Dead, 2, "b:1", EventDead},
		{"dead beats suspect", []Update{alive("b", 2), upd("b", Suspect, 2, "c")}, upd("b", Dead, 2, "c"), false, Dead, 2, "b:1", EventDead},
		{"dead from a full state only suspects", []Update{alive("b", 2)}, upd("b", Dead, 2, "c"), true, Suspect, 2, "b:1", EventSuspect},
		{"left is final at its incarnation", []Update{alive("b", 2)}, upd("b", Left, 3, "b"), false, Left, 3, "b:1", EventLeave},
		{"alive after left needs a higher incarnation", []Update{alive("b", 2), upd("b", Left, 3, "b")}, alive("b", 3), false, Left, 3, "b:1", 0},
		{"rejoin after left", []Update{alive("b", 2), upd("b", Left, 3, "b")}, alive("b", 4), false, Alive, 4, "b:1", EventAliveAgain},
		{"rejoin after death at a new address", []Update{alive("b", 2), upd("b", Dead, 2, "c")}, Update{ID: "b", Addr: "b:9", State: Alive, Incarnation: 3}, false, Alive, 3, "b:9", EventAliveAgain},
		{"dead after dead ignored", []Update{alive("b", 2), upd("b", Dead, 2, "c")}, upd("b", Dead, 2, "d"), false, Dead, 2, "b:1", 0},
		{"invalid state ignored", nil, Update{ID: "b", Addr: "b:1", State: 9}, false, 0, 0, "", 0},
		{"empty id ignored", nil, Update{Addr: "b:1", State: Alive}, false, 0, 0, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, "a", alive("c", 0), alive("d", 0))
			n.mergeAll(t0, tt.have, false)
			n.Ready()
			n.merge(t0.Add(time.Second), tt.news, tt.fromSync)
			m, ok := n.Member(tt.news.ID)
			if tt.wantState == 0 {
				if ok {
					t.Fatalf("member known: %+v", m)
				}
				return
			}
			if m.State != tt.wantState || m.Incarnation != tt.wantInc || m.Addr != tt.wantAddr {
				t.Errorf("got %v inc %d at %s, want %v inc %d at %s", m.State, m.Incarnation, m.Addr, tt.wantState, tt.wantInc, tt.wantAddr)
			}
			_, evs := n.Ready()
			var got EventKind
			if len(evs) > 0 {
				got = evs[len(evs)-1].Kind
			}
			if got != tt.wantEvent {
				t.Errorf("event %v, want %v", got, tt.wantEvent)
			}
		})
	}
}

// TestRefute: news about the node itself.
func TestRefute(t *testing.T) {
	tests := []struct {
		name    string
		news    Update
		wantInc uint64
		wantLHM int
	}{
		{"alive as I am", Update{ID: "a", Addr: "a:1", State: Alive}, 0, 0},
		{"suspected", Update{ID: "a", Addr: "a:1", State: Suspect, From: "b"}, 1, 1},
		{"declared dead at a later incarnation", Update{ID: "a", Addr: "a:1", State: Dead, Incarnation: 7}, 8, 1},
		{"my old address (a restart)", Update{ID: "a", Addr: "a:0", State: Alive, Incarnation: 5}, 6, 0},
		{"left, but I did not leave", Update{ID: "a", Addr: "a:1", State: Left, Incarnation: 2}, 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := newTestNode(t, "a", alive("b", 0))
			n.merge(t0, tt.news, false)
			if n.Incarnation() != tt.wantInc || n.Health() != tt.wantLHM {
				t.Errorf("incarnation %d LHM %d, want %d and %d", n.Incarnation(), n.Health(), tt.wantInc, tt.wantLHM)
			}
			if tt.wantInc > 0 {
				ups := n.piggyback()
				if len(ups) == 0 || ups[0].ID != "a" || ups[0].State != Alive || ups[0].Incarnation != tt.wantInc {
					t.Errorf("refutation not queued: %+v", ups)
				}
			}
		})
	}
}

// TestSuspicionTimeout: the Lifeguard formula, and the cluster-size scaling.
func TestSuspicionTimeout(t *testing.T) {
	cfg := DefaultLANConfig()
	for _, tt := range []struct {
		n      int
		lo, hi time.Duration
	}{
		{1, 4 * time.Second, 24 * time.Second},
		{9, 4 * time.Second, 24 * time.Second},
		{99, 8 * time.Second, 48 * time.Second},
		{999, 12 * time.Second, 72 * time.Second},
	} {
		lo, hi := cfg.SuspicionTimeouts(tt.n)
		if lo != tt.lo || hi != tt.hi {
			t.Errorf("N=%d: %v..%v, want %v..%v", tt.n, lo, hi, tt.lo, tt.hi)
		}
	}
	s := &suspicion{start: t0, lo: 4 * time.Second, hi: 24 * time.Second, k: 2, confirm: map[string]bool{}}
	want := []time.Duration{24 * time.Second, 24*time.Second - 12618595071*time.Nanosecond, 4 * time.Second}
	for c, w := range want {
		if got := s.deadline().Sub(t0); (got - w).Abs() > time.Millisecond {
			t.Errorf("%d confirmations: %v, want %v", c, got, w)
		}
		s.confirm[fmt.Sprint(c)] = true
	}
	if got := cfg.RetransmitLimit(999); got != 12 {
		t.Errorf("retransmit limit at N=999: %d, want 12", got)
	}
}

// TestConfirmations: independent suspicions shorten the timeout; the
// originator's and repeated ones do not.
func TestConfirmations(t *testing.T) {
	n := newTestNode(t, "a", alive("b", 0), alive("c", 0), alive("d", 0), alive("e", 0), alive("f", 0))
	n.merge(t0, upd("b", Suspect, 0, "c"), false)
	m := n.members["b"]
	first := m.susp.deadline()
	n.merge(t0, upd("b", Suspect, 0, "c"), false) // the originator again
	n.merge(t0, upd("b", Suspect, 0, "d"), false)
	n.merge(t0, upd("b", Suspect, 0, "d"), false) // d again
	if len(m.susp.confirm) != 1 || !m.susp.deadline().Before(first) {
		t.Errorf("confirmations %v, deadline %v (first %v)", m.susp.confirm, m.susp.deadline(), first)
	}
	n.Tick(m.susp.deadline())
	if m.State != Dead {
		t.Errorf("after the deadline: %v", m.State)
	}
}

// TestFailedProbeOfASuspectKeepsItsTimer: a member already suspected
// (by another node) that fails this node's probe again keeps the
// suspicion it has: the failure counts as a confirmation, the deadline
// does not move later, and the member is declared dead at it. (It used to
// restart the suspicion, so a suspect probed more often than its timeout
// stayed suspect for ever: found by the Docker fault suite, where the
// two nodes cut off from three kept two of them suspect for minutes.)
func TestFailedProbeOfASuspectKeepsItsTimer(t *testing.T) {
	n := newTestNode(t, "a", alive("b", 0), alive("c", 0), alive("d", 0), alive("e", 0), alive("f", 0))
	n.merge(t0, upd("b", Suspect, 0, "c"), false)
	m := n.members["b"]
	first := m.susp.deadline()
	for i := 1; i <= 3; i++ {
		now := t0.Add(time.Duration(i) * n.cfg.ProbeInterval)
		n.finishProbe(now, &probe{target: m, targetIncn: m.Incarnation, start: now, end: now})
		if m.State != Suspect || m.susp == nil || m.susp.start != t0 {
			t.Fatalf("after failed probe %d: state %v, suspicion %+v: want the suspicion of t0 kept", i, m.State, m.susp)
		}
	}
	if !m.susp.confirm["a"] || len(m.susp.confirm) != 1 {
		t.Errorf("confirmations %v, want this node's own failed probes counted once", m.susp.confirm)
	}
	if d := m.susp.deadline(); d.After(first) {
		t.Errorf("deadline moved from %v to %v", first, d)
	}
	n.Tick(m.susp.deadline())
	if m.State != Dead {
		t.Errorf("at the deadline: %v, want dead", m.State)
	}
}

// TestProbeCycle drives one node through a probe that fails directly,
// indirect probes, nacks, and a verdict; and one that succeeds.
func TestProbeCycle(t *testing.T) {
	n := newTestNode(t, "a", alive("b", 0), alive("c", 0), alive("d", 0), alive("e", 0))
	now := n.nextProbe
	n.Tick(now)
	msgs, _ := n.Ready()
	var ping Message
	for _, m := range msgs {
		if m.Kind == KindPing {
			ping = m
		}
	}
	if ping.Kind != KindPing || ping.Target == "" {
		t.Fatalf("no ping in %+v", msgs)
	}
	// No ack: after ProbeTimeout, PingReqs to IndirectChecks others.
	now = now.Add(n.cfg.ProbeTimeout)
	n.Tick(now)
	msgs, _ = n.Ready()
	var reqs []Message
	for _, m := range msgs {
		if m.Kind == KindPingReq {
			reqs = append(reqs, m)
			if m.Target != ping.Target || m.To == ping.Target || m.Seq != ping.Seq {
				t.Errorf("bad ping-req %+v", m)
			}
		}
	}
	if len(reqs) != 3 {
		t.Fatalf("%d ping-reqs", len(reqs))
	}
	// Every helper nacks: the target is suspect, this node's health unchanged.
	for _, r := range reqs {
		n.Step(now, Message{Kind: KindNack, From: r.To, Seq: r.Seq})
	}
	now = now.Add(n.cfg.ProbeInterval - n.cfg.ProbeTimeout)
	n.Tick(now)
	if m, _ := n.Member(ping.Target); m.State != Suspect || n.Health() != 0 {
		t.Errorf("after nacks: %v, LHM %d", m.State, n.Health())
	}

	// The next probe started at the verdict. No ack and no nacks: each
	// missing nack raises this node's local health multiplier, and its
	// probe interval widens.
	p := n.probe
	if p == nil {
		t.Fatal("no probe running after the verdict")
	}
	n.Ready()
	n.Tick(p.timeoutAt)
	msgs, _ = n.Ready()
	missing := 0
	for _, m := range msgs {
		if m.Kind == KindPingReq {
			missing++
		}
	}
	now = p.end
	n.Tick(now)
	if missing == 0 || n.Health() != missing {
		t.Errorf("LHM %d after a probe with %d missing nacks", n.Health(), missing)
	}
	if d := n.nextProbe.Sub(now); d != time.Duration(missing+1)*n.cfg.ProbeInterval {
		t.Errorf("next probe in %v, want %v", d, time.Duration(missing+1)*n.cfg.ProbeInterval)
	}

	// A direct ack: health improves by one.
	msgs, _ = n.Ready()
	for _, m := range msgs {
		if m.Kind == KindPing {
			n.Step(now, Message{Kind: KindAck, From: m.Target, Seq: m.Seq})
		}
	}
	if n.Health() != missing-1 {
		t.Errorf("LHM %d after an ack, want %d", n.Health(), missing-1)
	}
}

// TestStepReplies: Ping is acked unless it is for another id; PingReq
// becomes a Ping to the target; Sync is answered with the full state.
func TestStepReplies(t *testing.T) {
	n := newTestNode(t, "a", alive("b", 0))
	r, ok := n.Step(t0, Message{Kind: KindPing, From: "b", FromAddr: "b:1", Seq: 4, Target: "a", Updates: []Update{alive("c", 0)}})
	if !ok || r.Kind != KindAck || r.Seq != 4 || r.To != "b" || r.ToAddr != "b:1" {
		t.Errorf("ping reply %+v %v", r, ok)
	}
	if m, ok := n.Member("c"); !ok || m.State != Alive {
		t.Error("piggybacked join not merged")
	}
	if m, _ := n.Member("b"); !m.LastHeard.Equal(t0) {
		t.Errorf("LastHeard %v", m.LastHeard)
	}
	if _, ok := n.Step(t0, Message{Kind: KindPing, From: "b", Target: "someone-else"}); ok {
		t.Error("acked a ping meant for another id")
	}
	r, ok = n.Step(t0, Message{Kind: KindPingReq, From: "b", Seq: 9, Target: "c", TargetAddr: "c:1"})
	if !ok || r.Kind != KindPing || r.ToAddr != "c:1" || r.Target != "c" || r.Seq == 9 {
		t.Errorf("ping-req reply %+v", r)
	}
	r, ok = n.Step(t0, Message{Kind: KindSync, From: "d", FromAddr: "d:1", Updates: []Update{alive("d", 0)}})
	if !ok || r.Kind != KindSyncReply || len(r.Updates) != 4 || r.Updates[0].ID != "a" {
		t.Errorf("sync reply %+v", r)
	}
}

// TestQueue: fewest transmissions first, newest first among equals, one
// entry per member, dropped after the limit.
func TestQueue(t *testing.T) {
	q := newQueue()
	q.push(alive("a", 0))
	q.push(alive("b", 0))
	q.push(alive("a", 1)) // replaces a@0
	got := q.take(1, 2)
	if len(got) != 1 || got[0].ID != "a" || got[0].Incarnation != 1 {
		t.Fatalf("first take %+v", got)
	}
	got = q.take(5, 2) // b (0 sends) before a (1 send); a then reaches the limit
	if len(got) != 2 || got[0].ID != "b" || got[1].ID != "a" {
		t.Fatalf("second take %+v", got)
	}
	got = q.take(5, 2)
	if len(got) != 1 || got[0].ID != "b" || q.len() != 0 {
		t.Fatalf("third take %+v, %d left", got, q.len())
	}
	for i := range 1000 {
		q.push(alive("m", uint64(i))) // replaced entries are compacted away
	}
	if q.len() != 1 || q.slots > 100 {
		t.Errorf("len %d, slots %d", q.len(), q.slots)
	}
}

// TestConfigValidate: defaults fill in; impossible values are rejected.
func TestConfigValidate(t *testing.T) {
	var c Config
	if err := c.Validate(); err != nil || c != DefaultLANConfig() {
		t.Errorf("zero config: %+v %v", c, err)
	}
	for _, preset := range []Config{DefaultWANConfig(), DefaultLocalConfig()} {
		if err := preset.Validate(); err != nil {
			t.Errorf("preset %+v: %v", preset, err)
		}
	}
	for _, bad := range []Config{
		{ProbeInterval: time.Second, ProbeTimeout: time.Second},
		{ProbeInterval: -time.Second},
		{IndirectChecks: -1},
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	if _, err := New(t0, "", "x", Config{}); err == nil {
		t.Error("empty id accepted")
	}
}

// TestLeaveAndReap: a leaving node stops probing, queues its leave, and
// reports it spread once sent; a left member is reaped after
// DeadReapAfter with an event.
func TestLeaveAndReap(t *testing.T) {
	n := newTestNode(t, "a", alive("b", 0), alive("c", 0))
	n.Leave(t0)
	msgs, _ := n.Ready()
	if len(msgs) != 2 || n.Incarnation() != 1 || !n.LeaveSpread() {
		t.Errorf("leave: %d messages, incarnation %d, spread %v", len(msgs), n.Incarnation(), n.LeaveSpread())
	}
	m := newTestNode(t, "x", alive("b", 0))
	m.merge(t0, upd("b", Left, 1, "b"), false)
	m.Tick(t0.Add(m.cfg.DeadReapAfter))
	_, evs := m.Ready()
	if _, ok := m.Member("b"); ok || len(evs) == 0 || evs[len(evs)-1].Kind != EventReap {
		t.Errorf("not reaped: %+v", evs)
	}
}

// TestBuddySystem: a ping to a suspect carries the suspicion (Lifeguard),
// and the suspect refutes it in its ack.
func TestBuddySystem(t *testing.T) {
	a := newTestNode(t, "a", alive("b", 0))
	b := newTestNode(t, "b", alive("a", 0))
	a.merge(t0, upd("b", Suspect, 0, "c"), false)
	a.Ready()
	a.Tick(a.nextProbe)
	msgs, _ := a.Ready()
	var ping Message
	for _, m := range msgs {
		if m.Kind == KindPing {
			ping = m
		}
	}
	if len(ping.Updates) == 0 || ping.Updates[0].ID != "b" || ping.Updates[0].State != Suspect {
		t.Fatalf("ping to a suspect: %+v", ping)
	}
	ack, ok := b.Step(a.nextProbe, ping)
	if !ok || b.Incarnation() != 1 {
		t.Fatalf("no refutation: incarnation %d", b.Incarnation())
	}
	a.Step(a.nextProbe, ack)
	if m, _ := a.Member("b"); m.State != Alive || m.Incarnation != 1 {
		t.Errorf("after the ack b is %v at %d", m.State, m.Incarnation)
	}
}
