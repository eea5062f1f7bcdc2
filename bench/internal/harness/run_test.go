package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// fakeImpl delivers synchronously inside Publish to every node except
// those its drop function rejects; it counts one wire message per copy.
type fakeImpl struct {
	n       int
	deliver Deliver
	drop    func(id uint64, node int) bool
	msgs    atomic.Uint64
	closed  bool
}

func (f *fakeImpl) Name() string { return "fake" }
func (f *fakeImpl) Start(_ context.Context, cfg ClusterConfig, d Deliver) error {
	f.n, f.deliver = cfg.Nodes, d
	return nil
}
func (f *fakeImpl) Publish(node int, p []byte) error {
	id, _ := PayloadID(p)
	for i := range f.n {
		if f.drop == nil || !f.drop(id, i) {
			f.msgs.Add(1)
			f.deliver(i, p)
		}
	}
	return nil
}
func (f *fakeImpl) Wire() (uint64, uint64) { return f.msgs.Load(), 100 * f.msgs.Load() }
func (f *fakeImpl) Describe() []string     { return []string{"fake"} }
func (f *fakeImpl) Close() error           { f.closed = true; return nil }

func tinyPhases() Phases {
	ms := func(n int) Duration { return Duration(time.Duration(n) * time.Millisecond) }
	return Phases{
		WarmUp: ms(50), Idle: ms(50), LatencyRate: 200, Latency: ms(200), Drain: ms(100),
		RampStart: 100, RampFactor: 2, RampMax: 400, Step: ms(100), StepDrain: ms(100),
		HoldDelivery: 0.999, HoldP99: Duration(time.Second), Seed: 7,
	}
}

var discard = slog.New(slog.DiscardHandler)

func TestRunPerfectSystem(t *testing.T) {
	f := &fakeImpl{}
	res, err := Run(context.Background(), f, ClusterConfig{Nodes: 5, Profile: ProfileDefault}, tinyPhases(), 100, discard)
	if err != nil {
		t.Fatal(err)
	}
	if !f.closed {
		t.Error("not closed")
	}
	lat := res.Latency
	if lat.Scheduled == 0 || lat.Published != lat.Scheduled || lat.DeliveryRatio != 1 || lat.Complete != lat.Scheduled {
		t.Errorf("latency phase: %+v", lat)
	}
	if lat.T100.Missing != 0 || lat.T100.P99.IsInf() || len(lat.T100CDF) != 101 {
		t.Errorf("latency T100: %+v", lat.T100)
	}
	// 5 copies per message on the fake wire, 4 of them count as receipts.
	if lat.CopiesPerDelivery != 5.0/4 || lat.BytesPerDelivery != 500.0/4 {
		t.Errorf("per delivery: %g copies, %g bytes", lat.CopiesPerDelivery, lat.BytesPerDelivery)
	}
	if len(res.Ramp) != 3 || res.MaxHoldingRate != 400 {
		t.Errorf("ramp: %d steps, max %g", len(res.Ramp), res.MaxHoldingRate)
	}
	if res.CPUBasis != "ramp steps that held" {
		t.Errorf("CPU basis %q", res.CPUBasis)
	}
	if res.SelfReceipts == 0 || res.AppDuplicates != 0 || res.Unknown != 0 {
		t.Errorf("counters: self %d, dups %d, unknown %d", res.SelfReceipts, res.AppDuplicates, res.Unknown)
	}
}

// TestRunBreaksOnLoss: a system that loses nodes 3's and 4's copies of
// every 20th message delivers about 99% (< 99.9%), and the ramp stops at
// its first step.
func TestRunBreaksOnLoss(t *testing.T) {
	f := &fakeImpl{drop: func(id uint64, node int) bool { return node >= 3 && id%20 == 0 }}
	ph := tinyPhases()
	ph.RampStart, ph.Step = 400, Duration(300*time.Millisecond) // ~120 messages in the first step
	res, err := Run(context.Background(), f, ClusterConfig{Nodes: 5, Profile: ProfileDefault}, ph, 8, discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Ramp) != 1 || res.Ramp[0].Holds || res.MaxHoldingRate != 0 {
		for _, st := range res.Ramp {
			t.Errorf("step %s: delivery %g, holds %v", st.Name, st.DeliveryRatio, st.Holds)
		}
		t.Fatalf("ramp: %d steps, max holding %g; want 1 step that breaks", len(res.Ramp), res.MaxHoldingRate)
	}
	if res.CPUBasis != "latency phase (no ramp step held)" {
		t.Errorf("CPU basis %q", res.CPUBasis)
	}
}

func TestRunContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fakeImpl{}
	if _, err := Run(ctx, f, ClusterConfig{Nodes: 3}, tinyPhases(), 100, slog.New(slog.NewTextHandler(io.Discard, nil))); err == nil {
		t.Error("no error after cancel")
	}
	if !f.closed {
		t.Error("not closed after cancel")
	}
}

// rateLimited is a fakeImpl that loses node 1's copy of every message
// published while the rate over the last 100 publishes is above limit.
func rateLimited(limit float64) *fakeImpl {
	var times []time.Time
	return &fakeImpl{drop: func(_ uint64, node int) bool {
		if node != 1 {
			return false
		}
		now := time.Now()
		times = append(times, now)
		if len(times) > 100 {
			times = times[1:]
			return 100/now.Sub(times[0]).Seconds() > limit
		}
		return false
	}}
}

// TestRunRefines: after the doubling ramp fails, a refinement step at the
// geometric mean of the last rate that held and the first that did not
// tells a system that holds it (max rate 800) from one that does not
// (max rate 400).
func TestRunRefines(t *testing.T) {
	ph := tinyPhases()
	ph.RampStart, ph.RampFactor, ph.RampMax, ph.RampRefine = 100, 4, 1600, 1
	ph.Step, ph.StepDrain = Duration(500*time.Millisecond), Duration(100*time.Millisecond)
	for _, tc := range []struct {
		limit, want float64
	}{{1200, 800}, {560, 400}} {
		res, err := Run(context.Background(), rateLimited(tc.limit), ClusterConfig{Nodes: 3, Profile: ProfileDefault}, ph, 8, discard)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, st := range res.Ramp {
			got = append(got, fmt.Sprintf("%s holds=%v", st.Name, st.Holds))
		}
		if len(res.Ramp) != 4 || res.Ramp[3].Name != "ramp-refine-800" || res.MaxHoldingRate != tc.want {
			t.Errorf("limit %g: max rate %g, want %g; steps %q", tc.limit, res.MaxHoldingRate, tc.want, got)
		}
	}
}

// slowImpl is a fakeImpl whose Publish takes delay before it delivers
// (as one that waits for a commit does) and fails every 10th message.
type slowImpl struct {
	fakeImpl
	delay time.Duration
}

func (s *slowImpl) Publish(node int, p []byte) error {
	time.Sleep(s.delay) // the simulated wait for an acknowledgement
	if id, _ := PayloadID(p); id%10 == 0 {
		return fmt.Errorf("refused %d", id)
	}
	return s.fakeImpl.Publish(node, p)
}

// TestRunConcurrentPublishers: a Publish that takes 20 ms limits one
// publisher at a time to 50 msg/s, so at 200 msg/s the pacer falls behind
// and stops at the end of the drain window; with 32 calls in flight every
// message is published. Failed publishes are counted either way.
func TestRunConcurrentPublishers(t *testing.T) {
	ph := tinyPhases()
	ph.WarmUp, ph.RampMax = 0, 0
	ph.LatencyRate, ph.Latency, ph.Drain = 200, Duration(300*time.Millisecond), Duration(200*time.Millisecond)
	for _, window := range []int{1, 32} {
		ph.Publishers = window
		res, err := Run(context.Background(), &slowImpl{delay: 20 * time.Millisecond}, ClusterConfig{Nodes: 3, Profile: ProfileDefault}, ph, 8, discard)
		if err != nil {
			t.Fatal(err)
		}
		lat := res.Latency
		registered := lat.Scheduled - lat.Unpublished
		wantErrors := (registered + 9) / 10 // the ids of this phase start at 0 (no warm-up messages)
		if lat.PublishErrors != wantErrors || lat.Published != registered-wantErrors {
			t.Errorf("window %d: %d registered, %d published, %d errors; want %d errors", window, registered, lat.Published, lat.PublishErrors, wantErrors)
		}
		switch {
		case window == 1 && lat.Unpublished == 0:
			t.Errorf("window 1: all %d messages published in time at 20 ms each", lat.Scheduled)
		case window > 1 && lat.Unpublished != 0:
			t.Errorf("window %d: %d of %d messages unpublished", window, lat.Unpublished, lat.Scheduled)
		}
	}
}

// overloadFake delivers like fakeImpl until the rate over its last 100
// publishes exceeds limit; above it, it refuses (ResourceExhausted and
// DeadlineExceeded, delivering nothing), acknowledges but loses node 1's
// copy, or fails the call after delivering, as mode says.
type overloadFake struct {
	fakeImpl
	limit float64
	mode  string // "refuse", "drop" or "fail-after-send"
	mu    sync.Mutex
	times []time.Time
}

func (f *overloadFake) over() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	f.times = append(f.times, now)
	if len(f.times) <= 100 {
		return false
	}
	f.times = f.times[1:]
	return 100/now.Sub(f.times[0]).Seconds() > f.limit
}

func (f *overloadFake) Publish(node int, p []byte) error {
	if !f.over() {
		return f.fakeImpl.Publish(node, p)
	}
	id, _ := PayloadID(p)
	switch f.mode {
	case "refuse":
		if id%2 == 0 {
			return status.Error(codes.ResourceExhausted, "saturated")
		}
		return fmt.Errorf("waiting for room: %w", context.DeadlineExceeded)
	case "drop":
		for i := range f.n {
			if i != 1 {
				f.deliver(i, p)
			}
		}
		return nil
	}
	f.fakeImpl.Publish(node, p)
	return errors.New("log write failed")
}

// TestRunOverload: the ramp holds up to 400 msg/s, the overload phase
// offers 3 × 400, above the fake's limit of 800. Only acknowledged
// messages a receiver lacks are lost: refused publishes are not, nor are
// failed ones that were delivered anyway.
func TestRunOverload(t *testing.T) {
	ph := tinyPhases()
	ph.Overload, ph.OverloadFactor, ph.OverloadDrain = Duration(300*time.Millisecond), 3, Duration(150*time.Millisecond)
	for _, mode := range []string{"refuse", "drop", "fail-after-send"} {
		t.Run(mode, func(t *testing.T) {
			res, err := Run(context.Background(), &overloadFake{limit: 800, mode: mode}, ClusterConfig{Nodes: 5, Profile: ProfileDefault}, ph, 16, discard)
			if err != nil {
				t.Fatal(err)
			}
			o := res.Overload
			if res.MaxHoldingRate != 400 || o == nil || o.Phase.OfferedRate != 1200 || o.BaseRate != 400 || o.Basis != "max holding rate" {
				t.Fatalf("max rate %g, overload %+v", res.MaxHoldingRate, o)
			}
			st := o.Phase
			kinds := 0
			for _, n := range st.PublishErrorKinds {
				kinds += n
			}
			if st.Published+st.PublishErrors+st.Unpublished != st.Scheduled || kinds != st.PublishErrors {
				t.Errorf("%d offered ≠ %d acked + %d failed + %d not attempted; kinds %v", st.Scheduled, st.Published, st.PublishErrors, st.Unpublished, st.PublishErrorKinds)
			}
			if o.AckedRate != float64(st.Published)/st.DurationSec {
				t.Errorf("acked rate %g", o.AckedRate)
			}
			switch mode {
			case "refuse":
				if o.Lost != 0 || !o.Drained || st.PublishErrorKinds["ResourceExhausted"] == 0 || st.PublishErrorKinds["DeadlineExceeded"] == 0 {
					t.Errorf("lost %d, drained %v, kinds %v", o.Lost, o.Drained, st.PublishErrorKinds)
				}
			case "drop":
				if o.Lost == 0 || o.LostReceipts != o.Lost || o.LostMaxPerNode != o.Lost || o.Drained || st.PublishErrors != 0 {
					t.Errorf("lost %d (%d receipts, max %d per node), drained %v, %d failed", o.Lost, o.LostReceipts, o.LostMaxPerNode, o.Drained, st.PublishErrors)
				}
				if o.DrainSec < ph.OverloadDrain.D().Seconds()*0.9 {
					t.Errorf("drained for %.3f s, want the bound (%v)", o.DrainSec, ph.OverloadDrain.D())
				}
			case "fail-after-send":
				if o.Lost != 0 || st.PublishErrors == 0 || o.FailedButDelivered != st.PublishErrors || st.PublishErrorKinds["other"] != st.PublishErrors {
					t.Errorf("lost %d, %d failed, %d of them delivered, kinds %v", o.Lost, st.PublishErrors, o.FailedButDelivered, st.PublishErrorKinds)
				}
			}
		})
	}
}

// TestRunOverloadStopsPacer: a Publish that blocks 20 ms, one call at a
// time, cannot keep up with 3 × 400 msg/s; the pacer stops at the end of
// the offer window and counts the rest as not attempted, instead of
// publishing on into the drain.
func TestRunOverloadStopsPacer(t *testing.T) {
	ph := tinyPhases()
	ph.WarmUp, ph.RampMax, ph.LatencyRate = 0, 0, 400 // no ramp: 3 × the latency rate
	ph.Overload, ph.OverloadFactor, ph.OverloadDrain = Duration(300*time.Millisecond), 3, Duration(300*time.Millisecond)
	res, err := Run(context.Background(), &slowImpl{delay: 20 * time.Millisecond}, ClusterConfig{Nodes: 3, Profile: ProfileDefault}, ph, 8, discard)
	if err != nil {
		t.Fatal(err)
	}
	o, st := res.Overload, res.Overload.Phase
	if !strings.Contains(o.Basis, "no ramp") || st.Unpublished == 0 || st.Published+st.PublishErrors > 20 {
		t.Errorf("basis %q: %d offered, %d acked, %d failed, %d not attempted", o.Basis, st.Scheduled, st.Published, st.PublishErrors, st.Unpublished)
	}
	if o.PublishSec > 0.3+0.1 || o.Lost != 0 || !o.Drained {
		t.Errorf("publishing took %.3f s; lost %d, drained %v", o.PublishSec, o.Lost, o.Drained)
	}
}
