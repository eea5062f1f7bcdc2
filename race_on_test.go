//go:build race

package gossip

// raceEnabled: the race detector slows these tests about tenfold, so the
// default-path scenarios run smaller under it (make test runs them again
// at 200 nodes without it).
const raceEnabled = true
