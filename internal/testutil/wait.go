// Package testutil holds what the module's test packages share: waiting
// for a condition or a channel with a deadline, instead of sleeping for a
// guessed time (STYLE.md, habit 4).
//
// It is an ordinary package, so that any test package can import it, but
// only tests should: it reports failures through testing.TB.
//
// Both helpers work inside a testing/synctest bubble. There, time.Now,
// time.Sleep and timers run on the bubble's fake clock, which advances
// only when every goroutine in the bubble is blocked: each pause of
// WaitFor lets the code under test do all it can at that instant, then
// moves virtual time on at once, and the timeouts are virtual durations.
// A wait that can never end fails at its virtual deadline in no real time.
package testutil

import (
	"testing"
	"time"
)

// Pauses between two calls of a WaitFor condition: the first is
// firstPause, each next one twice as long, up to maxPause. Short pauses
// see cheap in-process state change almost at once; the cap keeps an
// expensive condition (e2e's runs a gossipctl process per call) from
// loading the machine that runs the system under test, and bounds how
// late a condition that became true is seen.
const (
	firstPause = time.Millisecond
	maxPause   = 50 * time.Millisecond
)

// WaitFor calls cond until it returns nil (the nats-server checkFor
// pattern), for state that has no channel or event to wait on: cond is
// called at once, then after pauses growing from 1 ms to 50 ms. If cond
// has not returned nil when timeout has passed, WaitFor fails the test
// with t.Fatalf, naming what was awaited, the timeout and cond's last
// error; so what should read well after "waiting for", and the error
// should say what cond saw instead.
//
// As t.Fatalf requires, WaitFor must be called from the goroutine running
// the test; cond runs on that goroutine too, and may itself fail the test.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := firstPause
	for {
		err := cond()
		if err == nil {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
			return // for a t whose Fatalf returns
		}
		time.Sleep(min(pause, time.Until(deadline)))
		pause = min(2*pause, maxPause)
	}
}

// Await receives from ch and returns the value, or T's zero value once ch
// is closed (so it waits for a chan struct{} to be closed, or for a
// value). If nothing arrives within timeout it fails the test with
// t.Fatalf naming what was awaited and the timeout (and returns T's zero
// value, for a t whose Fatalf returns). It must be called from the
// goroutine running the test.
func Await[T any](t testing.TB, ch <-chan T, timeout time.Duration, what string) T {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %v waiting for %s", timeout, what)
		var zero T
		return zero
	}
}
