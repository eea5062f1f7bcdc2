package testutil

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeTB records a Fatalf and ends the goroutine that called it, as
// testing.T does. Its other methods are testing.TB's nil ones: calling one
// panics (only Helper and Fatalf are expected).
type fakeTB struct {
	testing.TB
	fatal string // the Fatalf message; "" if none
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// onOwnGoroutine runs fn on a goroutine of its own (which Fatalf ends)
// and waits for it.
func onOwnGoroutine(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

func TestWaitForSucceeds(t *testing.T) {
	calls := 0
	WaitFor(t, 10*time.Second, "the third call", func() error {
		if calls++; calls < 3 {
			return errors.New("too early")
		}
		return nil
	})
	if calls != 3 {
		t.Errorf("cond called %d times after it held, want 3", calls)
	}
}

// TestWaitForFails: the failure names what, the timeout and the error
// of the last call, and comes at the deadline, not before.
func TestWaitForFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTB{}
		calls := 0
		start := time.Now()
		var failedAt time.Time
		onOwnGoroutine(func() {
			defer func() { failedAt = time.Now() }()
			WaitFor(ft, 2*time.Second, "the moon", func() error {
				calls++
				return fmt.Errorf("call %d: not yet", calls)
			})
		})
		want := fmt.Sprintf("timed out after 2s waiting for the moon: call %d: not yet", calls)
		if ft.fatal != want {
			t.Errorf("Fatalf(%q), want %q", ft.fatal, want)
		}
		if took := failedAt.Sub(start); took != 2*time.Second {
			t.Errorf("failed after %v (virtual), want at the 2s deadline", took)
		}
		// At 0, 1, 3, 7, 15, 31 and 63 ms, every 50 ms after that (113 …
		// 1963 ms), and a last time at the 2 s deadline: 46 calls.
		if calls != 46 {
			t.Errorf("cond called %d times in 2s, want 46", calls)
		}
	})
}

// TestWaitForSynctest: in a bubble WaitFor's pauses advance the fake
// clock, so a condition that holds after 10 virtual seconds is seen then,
// in no real time, and other goroutines of the bubble run between polls.
func TestWaitForSynctest(t *testing.T) {
	realStart := time.Now()
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		ready := make(chan struct{})
		go func() {
			time.Sleep(10 * time.Second)
			close(ready)
		}()
		WaitFor(t, time.Minute, "ready", func() error {
			select {
			case <-ready:
				return nil
			default:
				return errors.New("not ready")
			}
		})
		if took := time.Since(start); took < 10*time.Second || took > 10*time.Second+maxPause {
			t.Errorf("ready seen after %v (virtual), want 10s plus at most one pause", took)
		}
	})
	if took := time.Since(realStart); took > 5*time.Second {
		t.Errorf("a 10 s virtual wait took %v of real time", took)
	}
}

func TestAwait(t *testing.T) {
	values := make(chan int, 1)
	values <- 7
	if got := Await(t, values, time.Second, "a value"); got != 7 {
		t.Errorf("Await = %d, want 7", got)
	}
	closed := make(chan struct{})
	close(closed)
	Await(t, closed, time.Second, "the close")
}

func TestAwaitFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ft := &fakeTB{}
		never := make(chan string)
		got := "unset"
		start := time.Now()
		onOwnGoroutine(func() { got = Await(ft, never, 3*time.Second, "a word") })
		if want := "timed out after 3s waiting for a word"; ft.fatal != want {
			t.Errorf("Fatalf(%q), want %q", ft.fatal, want)
		}
		if took := time.Since(start); took != 3*time.Second {
			t.Errorf("failed after %v (virtual), want 3s", took)
		}
		if got != "unset" {
			t.Errorf("Await returned %q after Fatalf", got)
		}
	})
}

// TestFatalfThatReturns: with a t whose Fatalf returns (not testing.T's),
// WaitFor and Await return instead of waiting on.
func TestFatalfThatReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := &returningTB{}
		WaitFor(rt, time.Second, "never", func() error { return errors.New("no") })
		if v := Await(rt, make(chan int), time.Second, "never"); v != 0 {
			t.Errorf("Await = %d, want the zero value", v)
		}
		if len(rt.fatals) != 2 || !strings.Contains(rt.fatals[0], "never: no") {
			t.Errorf("Fatalf calls %q", rt.fatals)
		}
	})
}

type returningTB struct {
	testing.TB
	fatals []string
}

func (r *returningTB) Helper() {}

func (r *returningTB) Fatalf(format string, args ...any) {
	r.fatals = append(r.fatals, fmt.Sprintf(format, args...))
}
