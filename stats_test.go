package gossip

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestStatsDefined: every number in Stats has a definition (a stat tag
// with a group, a kind and help), names are unique, and Counters lists
// them all; so a counter added to Stats reaches Status, gossipctl and the
// metrics, and one without a definition fails here.
func TestStatsDefined(t *testing.T) {
	var walk func(t0 reflect.Type, path string)
	numbers := 0
	walk = func(t0 reflect.Type, path string) {
		for i := range t0.NumField() {
			f := t0.Field(i)
			switch {
			case f.Type == reflect.TypeOf(time.Time{}) || f.Type.Kind() == reflect.String:
				continue
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, path+f.Name+".")
				continue
			case f.Name == "Uptime" || f.Name == "Ready":
				continue // identity, in StatusResponse's own fields
			}
			numbers++
			tag, ok := f.Tag.Lookup("stat")
			name, kind, _ := strings.Cut(tag, ",")
			if !ok || !strings.Contains(name, ".") || (kind != "counter" && kind != "gauge") || f.Tag.Get("help") == "" {
				t.Errorf("%s%s has no complete definition (stat:\"group.name,counter|gauge\" help:\"…\"): %q", path, f.Name, f.Tag)
			}
		}
	}
	walk(reflect.TypeOf(Stats{}), "Stats.")
	cs := (Stats{Stream: StreamStats{Congested: true}, TTL: 1500 * time.Millisecond}).Counters()
	if len(cs) != numbers {
		t.Errorf("Counters lists %d, Stats has %d numbers", len(cs), numbers)
	}
	seen := map[string]bool{}
	for _, c := range cs {
		if seen[c.Name] {
			t.Errorf("counter %s defined twice", c.Name)
		}
		seen[c.Name] = true
		if !strings.HasPrefix(c.Name, c.Group+".") {
			t.Errorf("counter %s in group %s", c.Name, c.Group)
		}
		switch c.Name {
		case "stream.congested":
			if c.Value != 1 {
				t.Errorf("a true gauge is %v", c.Value)
			}
		case "core.ttl_seconds":
			if c.Value != 1.5 {
				t.Errorf("a duration is %v, want seconds", c.Value)
			}
		}
	}
}
