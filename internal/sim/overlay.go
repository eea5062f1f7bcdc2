package sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/grpc-gossip/gossip/internal/swim"
)

// overlay is the runtime's neighbour-set manager (membership.go at the
// module root: rebalance and inbound) for the membership topology: each
// node keeps k = ceil(ln live) + FanoutExtra neighbours it chose (live:
// the members it believes alive or suspect, itself included), every
// choice is told to the chosen member (Link) which links back, and
// neighbours that are dead, left or forgotten are removed — static
// neighbours never, but here every neighbour is managed.
//
// What a node believes comes from its view: the real SWIM core of the
// node (RepairSwim, swim.go), or the detection model (RepairModel): a
// crashed member j becomes dead in node i's view at CrashAt + d(i, j),
// where d is drawn (by a hash of i and j, so each pair gets one fixed
// delay) from the detection times the real SWIM core measured at
// min(N, CalibrationNodes) nodes with the same fraction crashed, scaled by
// the growth of SWIM's suspicion timeout with log10 N; the live count is
// N minus the expected number of deaths detected by then. With
// RepairNone the overlay stays as built.
type overlay struct {
	e     *ptEngine
	mode  string
	extra int
	nb    [][]mnb      // the neighbours membership manages, per node
	rnd   []*rand.Rand // each node's membership randomness
	sw    *swimNet     // RepairSwim
	det   *detection   // RepairModel
	kill  int64        // when the nodes crashed; -1 before
	nDead int

	sum MembershipSummary
}

// mnb is one managed neighbour; out is set when the node chose it (the
// others chose the node: they do not count towards its k).
type mnb struct {
	peer int32
	out  bool
}

func newOverlay(e *ptEngine, chosen [][]int32) *overlay {
	o := &overlay{e: e, mode: e.sc.Repair, extra: e.sc.FanoutExtra, kill: -1,
		nb: make([][]mnb, len(chosen)), rnd: make([]*rand.Rand, len(chosen))}
	o.sum.Mode = o.mode
	for i := range o.rnd {
		o.rnd[i] = rand.New(rand.NewPCG(splitmix64(e.sc.Seed^uint64(i)^0x6d73), uint64(i)+1))
	}
	for i, cs := range chosen {
		for _, j := range cs {
			o.nb[i] = append(o.nb[i], mnb{peer: j, out: true})
			o.nb[j] = append(o.nb[j], mnb{peer: int32(i)})
			e.addNeighbor(int32(i), j, true)
			e.addNeighbor(j, int32(i), false)
		}
	}
	return o
}

// start sets up the views: the SWIM cores, or the detection model's
// calibration (which runs the real SWIM core at the calibration size).
func (o *overlay) start() error {
	switch o.mode {
	case RepairSwim:
		o.sw = newSwimNet(o.e, swim.DefaultLANConfig(), o.swimEvents)
		o.sw.start()
	case RepairModel:
		if o.e.sc.Crash > 0 {
			d, err := detectionFor(o.e.sc)
			if err != nil {
				return err
			}
			o.det = d
			o.sum.Detection = d.summary()
		}
	}
	return nil
}

// handle runs the overlay's events.
func (o *overlay) handle(ev *pevent) {
	e := o.e
	switch ev.kind {
	case pkLink:
		if !e.crashed[ev.j] {
			o.inbound(ev.j, ev.i, ev.dir == 1)
		}
	case pkDetect:
		o.rebalance(ev.i)
	case pkRebalance:
		for i := range e.nodes {
			o.rebalance(int32(i))
		}
	case pkSwimMsg, pkSwimWake, pkSwimRelay:
		o.sw.handle(ev)
	default:
		panic(fmt.Sprintf("sim: unknown event kind %d", ev.kind)) // broken invariant
	}
}

// crashed is called right after the nodes crashed.
func (o *overlay) crashed() {
	e := o.e
	o.kill = e.now
	for i, c := range e.crashed {
		if c {
			o.nDead++
			continue
		}
		live := 0
		for _, ri := range e.pn[i].links {
			if !e.crashed[e.rels[ri].to] {
				live++
			}
		}
		if live == 0 {
			o.sum.IsolatedAtCrash++
		}
	}
	if o.mode != RepairModel {
		return
	}
	for i := range e.nodes {
		if e.crashed[i] {
			continue
		}
		for _, x := range o.nb[i] {
			o.watch(int32(i), x.peer)
		}
	}
	// The k of every node follows its live count: rebalance everyone when
	// the expected count crosses a threshold of ceil(ln live).
	n, k := e.sc.Nodes, MembershipK(e.sc.Nodes, o.extra)
	for _, t := range o.det.times() {
		if kk := MembershipK(n-o.det.detected(t, o.nDead), o.extra); kk != k {
			k = kk
			e.push(pevent{at: o.kill + t, kind: pkRebalance})
		}
	}
}

// watch schedules, in the model, when node i learns that neighbour j is
// dead (if j crashed and i does not know yet).
func (o *overlay) watch(i, j int32) {
	e := o.e
	if o.mode != RepairModel || o.kill < 0 || !e.crashed[j] {
		return
	}
	if d, ok := o.det.delay(e.sc.Seed, i, j); ok && o.kill+d >= e.now {
		e.push(pevent{at: o.kill + d, kind: pkDetect, i: i, j: j})
	}
}

// state is member j as node i sees it (0: unknown).
func (o *overlay) state(i, j int32) swim.State {
	if o.mode == RepairSwim {
		m, ok := o.sw.nodes[i].Member(o.e.ids[j])
		if !ok {
			return 0
		}
		return m.State
	}
	if o.kill >= 0 && o.e.crashed[j] {
		if d, ok := o.det.delay(o.e.sc.Seed, i, j); ok && o.e.now >= o.kill+d {
			return swim.Dead
		}
	}
	return swim.Alive
}

// numLive is the number of members node i believes alive or suspect,
// itself included.
func (o *overlay) numLive(i int32) int {
	if o.mode == RepairSwim {
		return o.sw.nodes[i].NumLive()
	}
	if o.kill < 0 {
		return o.e.sc.Nodes
	}
	return o.e.sc.Nodes - o.det.detected(o.e.now-o.kill, o.nDead)
}

func (o *overlay) find(i, j int32) int {
	return slices.IndexFunc(o.nb[i], func(x mnb) bool { return x.peer == j })
}

// rebalance is the runtime's rebalance at node i.
func (o *overlay) rebalance(i int32) {
	e := o.e
	if o.mode == RepairNone || e.crashed[i] {
		return
	}
	var remove []int32
	keep := o.nb[i][:0]
	for _, x := range o.nb[i] {
		if st := o.state(i, x.peer); st == 0 || st == swim.Dead || st == swim.Left {
			remove = append(remove, x.peer)
			continue
		}
		keep = append(keep, x)
	}
	clear(o.nb[i][len(keep):])
	o.nb[i] = keep
	k := MembershipK(o.numLive(i), o.extra)
	chosen := 0
	for _, x := range o.nb[i] {
		if x.out {
			chosen++
		}
	}
	var add []int32
	if chosen < k {
		add = o.candidates(i, k-chosen, remove)
	}
	var drop []int32
	for chosen-len(drop) > k {
		var outs []int
		for x, m := range o.nb[i] {
			if m.out {
				outs = append(outs, x)
			}
		}
		x := outs[o.rnd[i].IntN(len(outs))]
		drop = append(drop, o.nb[i][x].peer)
		o.nb[i] = slices.Delete(o.nb[i], x, x+1)
	}
	for _, j := range remove {
		e.removeNeighbor(i, j)
		o.sum.Removed++
	}
	for _, j := range add {
		o.nb[i] = append(o.nb[i], mnb{peer: j, out: true})
		e.addNeighbor(i, j, true)
		o.watch(i, j)
		o.sum.Added++
		e.push(pevent{at: e.now + e.delay(), kind: pkLink, i: i, j: j})
	}
	for _, j := range drop {
		e.removeNeighbor(i, j)
		o.sum.Dropped++
		e.push(pevent{at: e.now + e.delay(), kind: pkLink, i: i, j: j, dir: 1})
	}
}

// candidates picks need random members node i believes alive that are
// neither its neighbours (nor were a moment ago: removed) nor managed:
// the runtime's shuffle of every such member, drawn here by rejection
// sampling (the same uniform choice), with a full scan when candidates
// are rare.
func (o *overlay) candidates(i int32, need int, removed []int32) []int32 {
	e := o.e
	n := e.sc.Nodes
	ok := func(j int32, picked []int32) bool {
		return j != i && e.linkTo(i, j) < 0 && o.find(i, j) < 0 && !slices.Contains(removed, j) &&
			!slices.Contains(picked, j) && o.state(i, j) == swim.Alive
	}
	var out []int32
	for try := 0; len(out) < need && try < 32*need; try++ {
		if j := int32(o.rnd[i].IntN(n)); ok(j, out) {
			out = append(out, j)
		}
	}
	if len(out) == need {
		return out
	}
	var all []int32
	for j := range int32(n) {
		if ok(j, out) {
			all = append(all, j)
		}
	}
	o.rnd[i].Shuffle(len(all), func(a, b int) { all[a], all[b] = all[b], all[a] })
	return append(out, all[:min(need-len(out), len(all))]...)
}

// inbound is the runtime's inbound at node j: member i chose j as its
// neighbour (Link, or its stream's hello), or dropped it (unlink).
func (o *overlay) inbound(j, i int32, unlink bool) {
	e := o.e
	x := o.find(j, i)
	managed := x >= 0
	isNb := e.linkTo(j, i) >= 0
	switch {
	case unlink && managed && !o.nb[j][x].out:
		o.nb[j] = slices.Delete(o.nb[j], x, x+1)
		e.removeNeighbor(j, i)
		return
	case unlink || (isNb && !managed):
		return
	}
	if !managed {
		o.nb[j] = append(o.nb[j], mnb{peer: i})
		o.watch(j, i)
	}
	if o.mode == RepairSwim {
		if _, known := o.sw.nodes[j].Member(e.ids[i]); !known {
			o.sw.nodes[j].Step(e.at(), swim.Message{Kind: swim.KindGossip, From: e.ids[i], FromAddr: e.addrs[i],
				Updates: []swim.Update{{ID: e.ids[i], Addr: e.addrs[i], State: swim.Alive}}})
			o.sw.settle(j)
		}
	}
	e.addNeighbor(j, i, false)
}

// swimEvents is what the runtime's flush does with a node's membership
// events: rebalance (and here, count).
func (o *overlay) swimEvents(i int32, evs []swim.Event) {
	e := o.e
	for _, ev := range evs {
		if ev.Kind != swim.EventDead {
			continue
		}
		j := nodeIndex(ev.Member.ID)
		if e.crashed[j] && o.kill >= 0 {
			o.sum.detect = append(o.sum.detect, time.Duration(e.now-o.kill))
		} else {
			o.sum.FalseDead++
		}
	}
	o.rebalance(i)
}

// finish fills the summary at the end of the run.
func (o *overlay) finish() MembershipSummary {
	e := o.e
	s := o.sum
	for i := range e.nodes {
		if e.crashed[i] {
			continue
		}
		live := 0
		for _, ri := range e.pn[i].links {
			if !e.crashed[e.rels[ri].to] {
				live++
			}
		}
		if live == 0 {
			s.IsolatedAtEnd++
		}
		s.DegreeAtEnd += float64(len(e.pn[i].links))
		s.DeadNeighborsAtEnd += len(e.pn[i].links) - live
	}
	if live := e.sc.Nodes - o.nDead; live > 0 {
		s.DegreeAtEnd /= float64(live)
	}
	if o.mode == RepairSwim {
		s.Detection = detectionSummary(s.detect, 0, e.sc.Nodes, e.sc.Nodes, 1)
		s.SwimMessages, s.SwimDropped = o.sw.sent, o.sw.dropped
	}
	s.detect = nil
	return s
}
