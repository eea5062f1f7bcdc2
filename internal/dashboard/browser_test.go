package dashboard

import (
	"context"
	"fmt"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	gossip "github.com/grpc-gossip/gossip"
	"github.com/grpc-gossip/gossip/internal/testutil"
)

// chromium finds the browser: $CHROMIUM, else chromium or chromium-browser
// on PATH (Debian: apt-get install chromium; .ci/run installs it).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("the dashboard test needs Chromium: apt-get install chromium (or set CHROMIUM to a Chrome binary)")
	return ""
}

// cluster starts n nodes with real gRPC servers on 127.0.0.1:0, joined
// through the first, and waits until each sees n alive members.
func cluster(t *testing.T, n int) []*gossip.GossipNode {
	t.Helper()
	mc := gossip.DefaultLocalMembershipConfig()
	mc.ProbeInterval, mc.ProbeTimeout, mc.SuspicionMult = 100*time.Millisecond, 50*time.Millisecond, 3
	var nodes []*gossip.GossipNode
	for i := range n {
		node, err := gossip.New(fmt.Sprintf("node-%d", i+1), "", nil, nil, nil, nil, gossip.WithMembership(mc))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { node.Close() })
		if err := node.StartGRPCServer("127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			node.MarkReady()
		} else if _, err := node.Join(context.Background(), []string{nodes[0].ListenAddr()}); err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, node)
	}
	testutil.WaitFor(t, 20*time.Second, "every node to see every other alive", func() error {
		for _, node := range nodes {
			alive := 0
			for _, m := range node.Members() {
				if m.State == gossip.MemberAlive {
					alive++
				}
			}
			if alive != n {
				return fmt.Errorf("%s sees %d alive", node.Hash, alive)
			}
		}
		return nil
	})
	return nodes
}

// TestDashboardInBrowser opens node-1's dashboard of a 3-node cluster in
// headless Chromium: the page loads with no console error, exception or
// request to another host, lists the 3 members, draws the rate charts
// while messages flow, draws a traced message's tree (rooted at node-1,
// 3 nodes), and shows node-3 dead after it is killed (and the event in its
// log). The screenshot is saved in the test's artifact
// directory (go test -artifacts -outputdir DIR keeps it).
func TestDashboardInBrowser(t *testing.T) {
	exe := chromium(t)
	nodes := cluster(t, 3)
	dash := New(nodes[0])
	srv := httptest.NewServer(dash)
	defer srv.Close()
	defer dash.Close()
	host := strings.TrimPrefix(srv.URL, "http://")

	// Publish from node-2 every 50 ms while the page is open.
	stop := make(chan struct{})
	var pubs sync.WaitGroup
	pubs.Go(func() {
		tk := time.NewTicker(50 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tk.C:
			}
			// 1 to 4 messages per tick, changing every 2 s, so the
			// charts show rates that move.
			for range 1 + (i/40)%4 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				nodes[1].Publish(ctx, "", []byte(fmt.Sprintf("message %d", i)))
				cancel()
			}
		}
	})
	defer pubs.Wait()
	defer close(stop)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1400, 640), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var mu sync.Mutex
	var problems []string
	// Listen starts the browser (on a context without a deadline, which
	// would end the browser with it); chromedp enables Log and Network.
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeWarning {
				var args []string
				for _, a := range e.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, fmt.Sprintf("console.%s: %s", e.Type, strings.Join(args, " ")))
			}
		case *runtime.EventExceptionThrown:
			d := e.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber, msg))
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError || e.Entry.Level == log.EntryLevelWarning {
				problems = append(problems, fmt.Sprintf("log %s: %s %s", e.Entry.Level, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			if u, err := url.Parse(e.Request.URL); err == nil && u.Scheme != "data" && u.Host != host {
				problems = append(problems, "request to another host: "+e.Request.URL)
			}
		}
	}); err != nil {
		t.Fatalf("starting %s: %v", exe, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 5*time.Minute)
	defer cancel()
	report := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, p := range problems {
			t.Errorf("browser: %s", p)
		}
		problems = nil
	}
	poll := func(what string, expr string, timeout time.Duration) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(timeout))); err != nil {
			report()
			t.Fatalf("waiting for %s: %v", what, err)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("members"))); err != nil {
		report()
		t.Fatalf("loading the page: %v", err)
	}
	poll("3 alive members", `document.querySelectorAll('#members tr').length === 3 &&
		[...document.querySelectorAll('#members tr')].every(r => r.dataset.state === 'alive')`, 20*time.Second)
	poll("2 neighbours", `document.querySelectorAll('#neighbors tr').length === 2`, 20*time.Second)
	poll("delivery rates", `points.delivered.length >= 4 && points.delivered[points.delivered.length-1].v > 0`, 20*time.Second)
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(title, "node-1") || !strings.Contains(title, "3 alive") {
		t.Errorf("title %q", title)
	}
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('#members tr')].map(r => r.dataset.member)`))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ids, ",") != "node-1,node-2,node-3" {
		t.Errorf("members listed: %v", ids)
	}

	// A traced message published on node-1 appears as a tree of the 3 nodes.
	traced, _, err := nodes[0].Publish(ctx, "", []byte("traced"), gossip.Traced())
	if err != nil {
		t.Fatal(err)
	}
	poll("the traced message's tree", `(() => {
		const t = document.querySelector('.trace[data-trace="`+traced+`"]');
		return t && t.dataset.receipts === '3' && t.querySelectorAll('li[data-node]').length === 3 &&
			t.querySelector('ul.tree > li').dataset.node === 'node-1' &&
			t.textContent.includes('3/3 members');
	})()`, 20*time.Second)

	// GOSSIP_DASHBOARD_WARMUP (a duration) lets the charts fill before the
	// kill, for the README's screenshot (docs/dashboard.png):
	//   GOSSIP_DASHBOARD_WARMUP=60s go test -run TestDashboardInBrowser -artifacts -outputdir DIR ./internal/dashboard
	if w, err := time.ParseDuration(os.Getenv("GOSSIP_DASHBOARD_WARMUP")); err == nil {
		if err := chromedp.Do(ctx, chromedp.Sleep(w)); err != nil {
			t.Fatal(err)
		}
	}

	// Kill node-3 (no leave: a crash).
	nodes[2].Close()
	poll("node-3 shown dead", `(document.querySelector('tr[data-member="node-3"]') || {dataset: {}}).dataset.state === 'dead'`, 30*time.Second)
	events, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById('events').textContent`))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(events, "dead") || !strings.Contains(events, "node-3") {
		t.Errorf("event log does not show node-3's death: %q", events)
	}
	// A few more points, and the state change's highlight faded: cosmetic
	// only, nothing is asserted after the pause.
	if err := chromedp.Do(ctx, chromedp.Sleep(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.ArtifactDir(), "dashboard.png")
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
	report()
}
