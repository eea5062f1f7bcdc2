package swim

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// sizes returns the cluster sizes a scenario runs at: 200 always (CI runs
// the race detector without -short), 1,000 too unless -short or -race
// (the race detector makes it ten times slower; `go test ./internal/swim`
// runs it in seconds).
func sizes(t *testing.T) []int {
	if testing.Short() || raceEnabled {
		t.Log("1,000-node run skipped (-short or -race); 200-node run only")
		return []int{200}
	}
	return []int{200, 1000}
}

// TestSimJoinConverges: N members join through one seed within one second;
// every member learns every other as alive.
// convergedCluster starts n members (startCluster) and runs until their
// views agree.
func convergedCluster(t *testing.T, s *simNet, n int) []*simNode {
	t.Helper()
	nodes := startCluster(s, n)
	if !s.run(s.start.Add(10*time.Minute), 100*time.Millisecond, s.converged) {
		t.Fatalf("%d members not converged after %v", n, s.elapsed())
	}
	return nodes
}

func TestSimJoinConverges(t *testing.T) {
	for _, n := range append([]int{100}, sizes(t)...) {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := newSimNet(t, DefaultLANConfig(), uint64(n))
			convergedCluster(t, s, n)
			took := s.elapsed() - time.Second // the joins spread over the first second
			t.Logf("N=%d: converged %v after the last join started (%.1f probe rounds, %.0f gossip rounds); %d messages, %.0f per node per second",
				n, took.Round(time.Millisecond), float64(took)/float64(s.cfg.ProbeInterval), float64(took)/float64(s.cfg.GossipInterval),
				s.sent, float64(s.sent)/float64(n)/s.elapsed().Seconds())
		})
	}
}

// TestSimKill: 20% of the members crash at once; every survivor marks
// each of them dead within Config.DetectionBound, and no live member is
// declared dead by anyone.
func TestSimKill(t *testing.T) {
	for _, n := range sizes(t) {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := newSimNet(t, DefaultLANConfig(), uint64(n)+7)
			nodes := convergedCluster(t, s, n)
			victims := map[string]bool{}
			for _, i := range s.rng.Perm(n)[:n/5] {
				victims[nodes[i].n.ID()] = true
				nodes[i].down = true
			}
			killedAt := s.now
			var detect []time.Duration
			falseDead, falseSuspect := 0, 0
			s.onEvent = func(obs *simNode, e Event) {
				switch {
				case e.Kind == EventDead && victims[e.Member.ID]:
					detect = append(detect, e.At.Sub(killedAt))
				case e.Kind == EventDead:
					falseDead++
				case e.Kind == EventSuspect && !victims[e.Member.ID]:
					falseSuspect++
				}
			}
			want := (n - n/5) * (n / 5)
			bound := s.cfg.DetectionBound(n)
			if !s.run(killedAt.Add(2*bound), 100*time.Millisecond, func() bool { return len(detect) >= want }) {
				t.Fatalf("after %v only %d of %d (survivor, victim) deaths seen", s.elapsed()-killedAt.Sub(s.start), len(detect), want)
			}
			slices.Sort(detect)
			worst := detect[len(detect)-1]
			t.Logf("N=%d, %d killed: detection (crash → survivor marks dead) median %v, p99 %v, max %v; bound %v; false dead %d, false suspicions %d",
				n, n/5, detect[len(detect)/2].Round(time.Millisecond), detect[len(detect)*99/100].Round(time.Millisecond),
				worst.Round(time.Millisecond), bound, falseDead, falseSuspect)
			if worst > bound {
				t.Errorf("slowest detection %v exceeds the documented bound %v", worst, bound)
			}
			if falseDead > 0 {
				t.Errorf("%d live members declared dead", falseDead)
			}
			if !s.run(s.now.Add(time.Minute), 100*time.Millisecond, s.converged) {
				t.Error("survivors did not converge")
			}
		})
	}
}

// TestSimKillSmall: in clusters of 2 to 5 one member crashes; every
// survivor marks it dead within Config.DetectionBound. (A failed probe of
// a member already suspect used to restart its suspicion: with so few
// members each survivor probes it every round or two, and a crashed
// member of a 3-node cluster stayed suspect forever.)
func TestSimKillSmall(t *testing.T) {
	for n := 2; n <= 5; n++ {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			s := newSimNet(t, DefaultLANConfig(), uint64(n)+70)
			nodes := convergedCluster(t, s, n)
			victim := nodes[n-1]
			victim.down = true
			killedAt := s.now
			dead := map[string]time.Duration{}
			s.onEvent = func(obs *simNode, e Event) {
				if e.Kind == EventDead && e.Member.ID == victim.n.ID() {
					dead[obs.n.ID()] = e.At.Sub(killedAt)
				}
			}
			bound := s.cfg.DetectionBound(n)
			if !s.run(killedAt.Add(3*bound), 100*time.Millisecond, func() bool { return len(dead) == n-1 }) {
				t.Fatalf("after %v, %d of %d survivors marked the crashed member dead (%v)", s.now.Sub(killedAt), len(dead), n-1, dead)
			}
			for id, d := range dead {
				if d > bound {
					t.Errorf("%s marked it dead after %v, bound %v", id, d, bound)
				}
			}
		})
	}
}

// TestSimPacketLoss: 10% of all messages lost, for a long run: no live
// member is declared dead. Reports the false-suspicion rate.
func TestSimPacketLoss(t *testing.T) {
	n, span := 100, 30*time.Minute
	if testing.Short() || raceEnabled {
		span = 10 * time.Minute
	}
	s := newSimNet(t, DefaultLANConfig(), 42)
	convergedCluster(t, s, n)
	falseDead, falseSuspect, raised := 0, 0, 0
	s.onEvent = func(obs *simNode, e Event) {
		switch e.Kind {
		case EventDead:
			falseDead++
		case EventSuspect:
			falseSuspect++
			if m := obs.n.members[e.Member.ID]; m != nil && m.susp != nil && m.susp.origin == obs.n.ID() {
				raised++ // this observer's own probe failed
			}
		}
	}
	s.loss = 0.10
	from := s.now
	s.run(from.Add(span), time.Hour, nil)
	nodeHours := float64(n) * span.Hours()
	t.Logf("N=%d, 10%% loss, %v: %d false dead; %d false suspicions raised (%.1f per node-hour, every one refuted), seen %d times in all; %d of %d messages dropped",
		n, span, falseDead, raised, float64(raised)/nodeHours, falseSuspect, s.dropped, s.sent)
	if falseDead != 0 {
		t.Errorf("%d live members declared dead (%.3f per node-hour)", falseDead, float64(falseDead)/nodeHours)
	}
	s.loss = 0
	if !s.run(s.now.Add(time.Minute), 100*time.Millisecond, s.converged) {
		t.Error("not converged after the loss stopped")
	}
}

// TestSimPartitionHeals: the cluster splits in two long enough for each
// side to declare the other dead, then heals; push-pull with not-yet-reaped
// dead members merges it back into one membership.
func TestSimPartitionHeals(t *testing.T) {
	n := 100
	s := newSimNet(t, DefaultLANConfig(), 9)
	nodes := convergedCluster(t, s, n)
	for i, sn := range nodes {
		sn.group = i % 2
	}
	s.partitioned = true
	split := func() bool {
		for _, sn := range nodes {
			if sn.n.NumLive() != n/2 {
				return false
			}
		}
		return true
	}
	if !s.run(s.now.Add(5*time.Minute), 100*time.Millisecond, split) {
		t.Fatal("the sides did not declare each other dead")
	}
	splitAt := s.now
	s.partitioned = false
	if !s.run(s.now.Add(s.cfg.DeadReapAfter), 100*time.Millisecond, s.converged) {
		live := make([]int, 0, n)
		for _, sn := range nodes {
			live = append(live, sn.n.NumLive())
		}
		t.Fatalf("not merged %v after healing: live counts %v", s.now.Sub(splitAt), live)
	}
	t.Logf("N=%d: partition healed; one membership again after %v (push-pull interval %v)", n, s.now.Sub(splitAt).Round(time.Millisecond), s.cfg.PushPullInterval)
}

// TestSimRestartNewAddress: a member crashes and restarts with the same id
// at a new address and incarnation 0, before or after the others declared
// it dead; it joins through the seed and every member sees it alive at the
// new address.
func TestSimRestartNewAddress(t *testing.T) {
	for _, wait := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint(wait), func(t *testing.T) {
			n := 50
			s := newSimNet(t, DefaultLANConfig(), 5)
			nodes := convergedCluster(t, s, n)
			victim := nodes[7]
			victim.down = true
			s.run(s.now.Add(wait), time.Hour, nil)
			again := s.add(victim.n.ID(), "new-address", "a0")
			ok := func() bool {
				for _, sn := range s.live() {
					if m, _ := sn.n.Member(victim.n.ID()); m.State != Alive || m.Addr != "new-address" {
						return false
					}
				}
				return s.converged()
			}
			if !s.run(s.now.Add(time.Minute), 100*time.Millisecond, ok) {
				m, _ := nodes[0].n.Member(victim.n.ID())
				t.Fatalf("restarted member not alive everywhere: seed sees %+v", m)
			}
			t.Logf("rejoined at incarnation %d", again.n.Incarnation())
		})
	}
}

// TestSimLeave: a member leaves gracefully; everyone marks it left, nobody
// marks it dead, and it is reaped after DeadReapAfter.
func TestSimLeave(t *testing.T) {
	n := 50
	s := newSimNet(t, DefaultLANConfig(), 11)
	nodes := convergedCluster(t, s, n)
	dead := 0
	s.onEvent = func(_ *simNode, e Event) {
		if e.Kind == EventDead {
			dead++
		}
	}
	leaver := nodes[3]
	leaver.n.Leave(s.now)
	s.settle(leaver)
	if !s.run(s.now.Add(10*time.Second), 10*time.Millisecond, leaver.n.LeaveSpread) {
		t.Fatal("leave not spread")
	}
	leaver.down = true
	left := func() bool {
		for _, sn := range s.live() {
			if m, _ := sn.n.Member(leaver.n.ID()); m.State != Left {
				return false
			}
		}
		return true
	}
	leftAt := s.now
	if !s.run(s.now.Add(time.Minute), 10*time.Millisecond, left) {
		t.Fatal("not every member saw the leave")
	}
	t.Logf("leave seen by all %d members in %v", n-1, s.now.Sub(leftAt))
	if dead != 0 {
		t.Errorf("%d dead declarations after a graceful leave", dead)
	}
	reaped := func() bool {
		for _, sn := range s.live() {
			if _, ok := sn.n.Member(leaver.n.ID()); ok {
				return false
			}
		}
		return true
	}
	if !s.run(s.now.Add(s.cfg.DeadReapAfter+time.Second), time.Second, reaped) {
		t.Error("left member not reaped")
	}
}

// TestSimSlowNodes is Lifeguard's experiment in miniature: a few members
// are overloaded (every message to or from them takes 600 ms more: a
// round trip beyond the probe interval), for 10 minutes (3 with -race). With the local health multiplier
// they widen their own timeouts instead of accusing healthy members; with
// it disabled (AwarenessMax 1) they raise many more false suspicions.
// Nobody healthy is declared dead either way.
func TestSimSlowNodes(t *testing.T) {
	span := 10 * time.Minute
	if testing.Short() || raceEnabled {
		span = 3 * time.Minute
	}
	run := func(awareness int) (raisedBySlow, falseDead int) {
		cfg := DefaultLANConfig()
		cfg.AwarenessMax = awareness
		s := newSimNet(t, cfg, 21)
		nodes := convergedCluster(t, s, 50)
		slow := map[string]bool{}
		for _, sn := range nodes[1:4] {
			sn.slow = 600 * time.Millisecond
			slow[sn.n.ID()] = true
		}
		s.onEvent = func(obs *simNode, e Event) {
			switch {
			case e.Kind == EventDead:
				falseDead++
			case e.Kind == EventSuspect && slow[obs.n.ID()] && !slow[e.Member.ID]:
				if m := obs.n.members[e.Member.ID]; m != nil && m.susp != nil && m.susp.origin == obs.n.ID() {
					raisedBySlow++
				}
			}
		}
		s.run(s.now.Add(span), time.Hour, nil)
		return raisedBySlow, falseDead
	}
	withLHM, deadWith := run(8)
	without, deadWithout := run(1)
	t.Logf("3 of 50 members 600 ms slow, %v: suspicions of healthy members raised by the slow ones: %d with LHM, %d without; false dead %d and %d",
		span, withLHM, without, deadWith, deadWithout)
	if deadWith != 0 {
		t.Errorf("%d members declared dead with LHM", deadWith)
	}
	if withLHM >= without {
		t.Errorf("LHM did not reduce false suspicions: %d with, %d without", withLHM, without)
	}
}

// TestSimPartitionLongerThanReapHeals: the two sides of a partition that
// lasts longer than DeadReapAfter have forgotten each other; reconnection
// (to the seed and to reaped members' addresses) merges them once the
// network heals. Before reconnection existed they stayed split for good.
func TestSimPartitionLongerThanReapHeals(t *testing.T) {
	n := 60
	cfg := DefaultLANConfig()
	cfg.DeadReapAfter = 30 * time.Second
	s := newSimNet(t, cfg, 21)
	nodes := convergedCluster(t, s, n)
	for _, sn := range nodes {
		sn.n.SetSeeds([]string{"a0"})
	}
	for i, sn := range nodes {
		sn.group = i % 2
	}
	s.partitioned = true
	forgotten := func() bool {
		for _, sn := range nodes {
			if len(sn.n.Members()) != n/2 {
				return false
			}
		}
		return true
	}
	if !s.run(s.now.Add(5*time.Minute), 100*time.Millisecond, forgotten) {
		t.Fatal("the sides did not reap each other")
	}
	s.run(s.now.Add(80*time.Second), time.Hour, nil) // stay cut well past the reap
	healAt := s.now
	s.partitioned = false
	bound := 2*cfg.ReconnectInterval + cfg.PushPullInterval
	if !s.run(s.now.Add(bound), 100*time.Millisecond, s.converged) {
		t.Fatalf("not one membership %v after healing (bound %v)", s.now.Sub(healAt), bound)
	}
	var tries uint64
	for _, sn := range nodes {
		tries += sn.n.Stats().Reconnects
	}
	t.Logf("N=%d, partition %v > DeadReapAfter %v: one membership %v after healing; %d reconnection attempts in all",
		n, healAt.Sub(s.start).Round(time.Second), cfg.DeadReapAfter, s.now.Sub(healAt).Round(time.Millisecond), tries)
}

// TestSimFalseLeftRefuted: one forged update ("n3 left", incarnation 1000)
// given to a single member makes it, and whoever it gossips to, list a
// healthy member as left; the victim hears it (gossip reaches recently
// dead and left members too) and refutes it within a few gossip rounds.
// The same update at incarnation 2^64−1 is ignored: nothing could ever
// refute it.
func TestSimFalseLeftRefuted(t *testing.T) {
	for _, tc := range []struct {
		inc     uint64
		ignored bool
	}{{1000, false}, {^uint64(0), true}} {
		t.Run(fmt.Sprint(tc.inc), func(t *testing.T) {
			n := 20
			s := newSimNet(t, DefaultLANConfig(), 3)
			nodes := convergedCluster(t, s, n)
			victim := nodes[3]
			forged := Message{Kind: KindGossip, From: "intruder", FromAddr: "nowhere", To: nodes[1].n.ID(), ToAddr: nodes[1].addr,
				Updates: []Update{{ID: victim.n.ID(), Addr: victim.addr, State: Left, Incarnation: tc.inc, From: victim.n.ID()}}}
			s.deliver(nodes[1], forged)
			if m, _ := nodes[1].n.Member(victim.n.ID()); tc.ignored != (m.State == Alive) {
				t.Fatalf("after the forged update node 1 sees the victim %v at %d", m.State, m.Incarnation)
			}
			if tc.ignored {
				if nodes[1].n.Stats().Ignored != 1 {
					t.Errorf("Ignored = %d", nodes[1].n.Stats().Ignored)
				}
				s.run(s.now.Add(10*time.Second), time.Hour, nil)
				if !s.converged() || victim.n.Incarnation() != 0 {
					t.Errorf("converged %v, victim incarnation %d", s.converged(), victim.n.Incarnation())
				}
				return
			}
			start := s.now
			ok := func() bool {
				for _, sn := range nodes {
					if m, _ := sn.n.Member(victim.n.ID()); m.State != Alive || m.Incarnation != tc.inc+1 {
						return false
					}
				}
				return true
			}
			bound := 3 * s.cfg.ProbeInterval
			if !s.run(s.now.Add(bound), 10*time.Millisecond, ok) {
				m, _ := nodes[1].n.Member(victim.n.ID())
				t.Fatalf("not refuted everywhere within %v: node 1 sees %v at %d, the victim is at %d", bound, m.State, m.Incarnation, victim.n.Incarnation())
			}
			t.Logf("refuted everywhere %v after the forged update (victim at incarnation %d)", s.now.Sub(start).Round(time.Millisecond), victim.n.Incarnation())
		})
	}
}
