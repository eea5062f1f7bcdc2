package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// TestPublishLines publishes 3,000 lines over one PublishStream call: each
// non-empty line is one message, delivered once with the line as payload;
// empty lines are skipped and counted.
func TestPublishLines(t *testing.T) {
	n := startNode(t, "node-1")
	sub, err := n.Subscribe(8192)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var in strings.Builder
	want := map[string]bool{}
	for i := range 3000 {
		fmt.Fprintf(&in, "line-%d\n", i)
		want[fmt.Sprint("line-", i)] = true
		if i%1000 == 0 {
			in.WriteString("\n")
		}
	}
	r := runWith(t, context.Background(), strings.NewReader(in.String()), noEnv, "publish", "--addr", n.addr, "--lines", "-")
	wantOK(t, r)
	if !regexp.MustCompile(`^published 3000 messages in [0-9.]+s \([0-9]+ msg/s\), 0 failed, 3 empty lines skipped\n$`).MatchString(r.stdout) {
		t.Fatalf("stdout %q", r.stdout)
	}
	for range 3000 {
		d := <-sub.C()
		if !want[d.Payload] {
			t.Fatalf("delivered %q: not a line, or twice", d.Payload)
		}
		want[d.Payload] = false
	}
	if st := n.Stats(); st.Delivered != 3000 {
		t.Fatalf("node delivered %d, want 3000", st.Delivered)
	}
}

// TestPublishLinesFailures: a line the node refuses (just over its payload
// limit) is named on stderr with its line number and code, the others are
// published, the JSON summary counts both, and the command fails. A line
// far over it ends the call, reported in our words.
func TestPublishLinesFailures(t *testing.T) {
	n := startNode(t, "node-1")
	big := strings.Repeat("x", 1<<20+1) // over the node's default 1 MiB, within gRPC's limit
	in := "a\nb\n" + big + "\nc\n"
	r := runWith(t, context.Background(), strings.NewReader(in), noEnv, "publish", "--addr", n.addr, "--lines", "-o", "json", "-")
	if r.code != exitFail {
		t.Fatalf("exit %d, want %d; stdout %q stderr %q", r.code, exitFail, r.stdout, r.stderr)
	}
	var got linesResult
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("stdout %q: %v", r.stdout, err)
	}
	if got.Published != 3 || got.Failed != 1 {
		t.Fatalf("summary %+v, want 3 published and 1 failed", got)
	}
	lines := r.stderrLines()
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "gossipctl: publish: line 3: ResourceExhausted: ") ||
		lines[1] != "gossipctl: publish: 1 of 4 lines were not published" {
		t.Fatalf("stderr %q: want line 3 named with its code, then the count", r.stderr)
	}
	if st := n.Stats(); st.Delivered != 3 {
		t.Fatalf("node delivered %d, want 3", st.Delivered)
	}

	huge := strings.Repeat("y", 4<<20)
	r = runWith(t, context.Background(), strings.NewReader("d\n"+huge+"\n"), noEnv, "publish", "--addr", n.addr, "--lines", "-")
	if r.code != exitFail || !strings.Contains(r.stderr, "the call ended at the longest line: payload is 4 MiB, more than node") {
		t.Fatalf("a line over gRPC's limit: exit %d stderr %q, want the size in our words", r.code, r.stderr)
	}
}

func TestPublishLinesUsage(t *testing.T) {
	for _, args := range [][]string{{"--lines", "hello"}, {"--lines", "--id", "x", "-"}} {
		r := runWith(t, context.Background(), strings.NewReader(""), noEnv, append([]string{"publish", "--addr", "127.0.0.1:1"}, args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "--lines reads the messages from stdin") {
			t.Errorf("%v: exit %d stderr %q, want a usage error about --lines", args, r.code, r.stderr)
		}
	}
}
