package daemon

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
)

// The join loop's backoff: the delay after the first failed attempt, and
// the most it grows to.
const (
	joinBackoffMin = 100 * time.Millisecond
	joinBackoffMax = 5 * time.Second
)

// joinBackoff is the delay after failed attempt number attempt (from 1):
// joinBackoffMin doubled per attempt, capped at joinBackoffMax, times a
// jitter factor in [0.8, 1.2) chosen by r in [0, 1), and capped again (so
// at the cap it lies in [4 s, 5 s]). Jitter keeps nodes that started
// together from retrying in lockstep.
func joinBackoff(attempt int, r float64) time.Duration {
	d := joinBackoffMax
	if attempt < 16 { // 100 ms << 15 is far past the cap; also no overflow
		d = min(joinBackoffMin<<max(attempt-1, 0), joinBackoffMax)
	}
	return min(time.Duration(float64(d)*(0.8+0.4*r)), joinBackoffMax)
}

// joinLoop calls Join until a seed answers or ctx ends. Each failed
// attempt is logged at info (failures are expected while the cluster
// starts) with its error and the delay before the next one, and becomes
// /readyz's reason.
func (d *daemon) joinLoop(ctx context.Context, seeds []string) {
	defer close(d.joinDone)
	for attempt := 1; ; attempt++ {
		members, err := d.node.Join(ctx, seeds)
		if err == nil {
			d.becomeReady("joined", "members", members, "attempts", attempt)
			return
		}
		if ctx.Err() != nil {
			return
		}
		wait := joinBackoff(attempt, rand.Float64())
		reason := fmt.Sprintf("joining: attempt %d failed: %s", attempt, oneLine(err))
		d.notReady.Store(&reason)
		d.logger.Info("join attempt failed", "attempt", attempt, "seeds", strings.Join(seeds, ","), "retry_in", wait.Round(time.Millisecond).String(), "err", oneLine(err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}
