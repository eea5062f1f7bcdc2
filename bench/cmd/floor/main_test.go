package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestFloorMeasures runs the floor program on a few copies and checks that
// every copy was moved and costed: a batch that acked fewer copies than it
// sent would hang, and a zero CPU or rate figure would make the ceiling
// meaningless.
// Both window settings run: the library's static windows (the default)
// and gRPC's dynamic ones (--window 0).
func TestFloorMeasures(t *testing.T) {
	for _, window := range []string{"1048576", "0"} {
		t.Run("window="+window, func(t *testing.T) { floorMeasures(t, window) })
	}
}

func floorMeasures(t *testing.T, window string) {
	var out bytes.Buffer
	if err := run([]string{"--batch", "1,8", "--copies", "2000", "--payload", "64", "--window", window, "--json"}, &out); err != nil {
		t.Fatal(err)
	}
	var rs []result
	if err := json.Unmarshal(out.Bytes(), &rs); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	if len(rs) != 2 || rs[0].Batch != 1 || rs[1].Batch != 8 {
		t.Fatalf("results %+v: want batches 1 and 8", rs)
	}
	for _, r := range rs {
		if r.Copies != 2000 || r.PayloadBytes != 64 || r.CopiesPerSec <= 0 || r.CPUMicrosPer <= 0 || r.CeilingMsgPerSec <= 0 || r.AllocsPerCopy <= 0 {
			t.Errorf("batch %d: %+v: want 2000 copies of 64 B with positive rate, CPU, allocations and ceiling", r.Batch, r)
		}
	}
}

func TestFloorBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--batch", "0"}, {"--batch", "x"}, {"--nodes", "1"}, {"--window", "1000"}} {
		err := run(args, new(bytes.Buffer))
		if err == nil || !strings.Contains(err.Error(), "--") {
			t.Errorf("%v: error %v, want one naming the flag", args, err)
		}
	}
}
