package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// runMainEnv makes the test binary run main instead of the tests, so that
// the tests can run gossipd as a real process (signals, exit status).
const runMainEnv = "TEST_GOSSIPD_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	goleak.VerifyTestMain(m)
}

// gossipd returns a command running this binary as gossipd with args.
func gossipd(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	// GORACE: the race runtime otherwise sleeps 1 s before exiting 0.
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "GORACE=atexit_sleep_ms=0")
	return cmd
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := gossipd(t, "--help")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("--help: %v; stderr %q", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "--shutdown-timeout") || stderr.Len() != 0 {
		t.Errorf("--help: stdout %q, stderr %q", stdout.String(), stderr.String())
	}
}

func TestBadValueExits2(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := gossipd(t, "--fanout", "lots")
	cmd.Env = append(cmd.Env, "GOSSIPD_LOG_LEVEL=loud")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(cmd.Run()); code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "gossipd: invalid --") || stdout.Len() != 0 {
		t.Errorf("stdout %q, stderr %q: want one error line", stdout.String(), stderr.String())
	}
}

// TestContradictorySettingsExit2: settings that contradict each other
// are bad configuration too (exit status 2, as --help says), and the
// error names the environment variable that set the value.
func TestContradictorySettingsExit2(t *testing.T) {
	var stdout, stderr bytes.Buffer
	cmd := gossipd(t, "--listen", "127.0.0.1:0", "--admin-listen", "")
	cmd.Env = append(cmd.Env, "GOSSIPD_PROBE_TIMEOUT=2s")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if code := exitCode(cmd.Run()); code != 2 {
		t.Errorf("exit status %d, want 2", code)
	}
	want := "gossipd: invalid --probe-timeout 2s (from environment variable GOSSIPD_PROBE_TIMEOUT): must be below --probe-interval 1s (the default)"
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], want) || stdout.Len() != 0 {
		t.Errorf("stdout %q, stderr %q: want one line starting %q", stdout.String(), stderr.String(), want)
	}
}

// TestSignal runs gossipd on ephemeral ports, reads the bound admin
// address from its log, checks /healthz and /readyz, sends SIGTERM and
// expects exit status 0 and nothing on stdout.
func TestSignal(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			var stdout bytes.Buffer
			cmd := gossipd(t, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data-dir", t.TempDir())
			cmd.Stdout = &stdout
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			logs := make(chan map[string]any, 100)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					var rec map[string]any
					if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
						rec = map[string]any{"msg": "not JSON: " + sc.Text()}
					}
					select {
					case logs <- rec:
					default:
					}
				}
				close(logs)
				exited <- cmd.Wait() // after stderr is drained, as exec requires
			}()
			defer func() {
				cmd.Process.Kill() // no-op once it exited
				<-exited
			}()

			var admin string
			timeout := time.After(30 * time.Second)
			for admin == "" {
				select {
				case rec, ok := <-logs:
					if !ok {
						t.Fatal("gossipd exited before logging its addresses")
					}
					if rec["msg"] == "gossipd started" {
						admin, _ = rec["admin_addr"].(string)
						if addr, _ := rec["addr"].(string); addr == "" || strings.HasSuffix(addr, ":0") {
							t.Errorf("addr not logged: %v", rec)
						}
					}
				case <-timeout:
					t.Fatal("gossipd did not log its addresses")
				}
			}
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
			for _, path := range []string{"/healthz", "/readyz"} {
				resp, err := client.Get("http://" + admin + path)
				if err != nil {
					t.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("%s: %d", path, resp.StatusCode)
				}
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			stopped := false
			for rec := range logs {
				stopped = stopped || rec["msg"] == "gossipd stopped"
			}
			select {
			case err := <-exited:
				exited <- err // for the deferred wait
				if code := exitCode(err); code != 0 {
					t.Errorf("exit status %d after %v, want 0", code, sig)
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("gossipd did not exit after %v", sig)
			}
			if !stopped {
				t.Error(`no "gossipd stopped" log line`)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout: %q, want nothing", stdout.String())
			}
		})
	}
}

func TestStartFailureExits1(t *testing.T) {
	// A second daemon on a taken port, or on a locked data dir, fails at start.
	dir := t.TempDir()
	var stderr bytes.Buffer
	first := gossipd(t, "--listen", "127.0.0.1:0", "--admin-listen", "", "--data-dir", dir)
	firstErr, err := first.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(firstErr)
	addr := ""
	for addr == "" && sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) == nil && rec["msg"] == "gossipd started" {
			addr, _ = rec["addr"].(string)
		}
	}
	go io.Copy(io.Discard, firstErr)
	defer func() {
		first.Process.Signal(syscall.SIGTERM)
		if err := first.Wait(); err != nil {
			t.Errorf("first daemon: %v", err)
		}
	}()
	if addr == "" {
		t.Fatal("first daemon did not start")
	}

	for _, args := range [][]string{
		{"--listen", addr, "--admin-listen", ""},                             // the port is taken
		{"--listen", "127.0.0.1:0", "--admin-listen", "", "--data-dir", dir}, // the data dir is locked
	} {
		stderr.Reset()
		cmd := gossipd(t, args...)
		cmd.Stderr = &stderr
		if code := exitCode(cmd.Run()); code != 1 {
			t.Errorf("%v: exit status %d, want 1", args, code)
		}
		lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "gossipd: --") || (!strings.Contains(lines[0], addr) && !strings.Contains(lines[0], dir)) {
			t.Errorf("%v: stderr %q: want one line naming the address or dir", args, stderr.String())
		}
	}
}
