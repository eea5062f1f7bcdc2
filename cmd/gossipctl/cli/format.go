package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// JSON conventions, shared by every -o json output: keys are the proto
// field names; counters are numbers; timestamps are RFC 3339 strings (null
// when unset); durations are float seconds in a key ending in _seconds.

// writeJSON prints v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable returns a tabwriter for aligned columns; Flush it when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
}

// output reports a failure to write to stdout (a closed pipe, a full disk).
func output(name string, err error) error {
	if err == nil {
		return nil
	}
	return failf("%s: writing output: %v", name, err)
}

// jsonTime is ts for JSON: nil (null) when unset.
func jsonTime(ts *timestamppb.Timestamp) *time.Time {
	if ts == nil {
		return nil
	}
	t := ts.AsTime()
	return &t
}

// seconds is d in seconds (0 when unset).
func seconds(d *durationpb.Duration) float64 {
	if d == nil {
		return 0
	}
	return d.AsDuration().Seconds()
}

// humanDuration rounds d for a table: "1.235ms", "2.5s", "3m4s"; "-" when
// unset.
func humanDuration(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	return roundDuration(d.AsDuration()).String()
}

func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= time.Minute:
		return d.Round(time.Second)
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(time.Microsecond)
	}
	return d
}

// age is how long before now ts was, for a table: "1.2s ago", "3m4s ago",
// "2h5m ago"; "-" when unset.
func age(now time.Time, ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	d := max(now.Sub(ts.AsTime()), 0) // clocks of client and daemon may differ
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs ago", d.Seconds())
	case d < time.Hour:
		return d.Round(time.Second).String() + " ago"
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%dm ago", int(d.Hours()), int(d.Minutes())%60)
}

// timeString is ts in RFC 3339 with nanoseconds, or "-" when unset.
func timeString(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	return ts.AsTime().Format(time.RFC3339Nano)
}

// orDash is s, or "-" when s is empty (an empty cell would shift the
// columns of a table for awk and cut).
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
