package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/grpc-gossip/gossip/bench/internal/harness"
)

// Report is the content of <out>/<date>.json.
type Report struct {
	Started  time.Time            `json:"started"`
	Finished time.Time            `json:"finished"`
	WallSec  float64              `json:"wall_s"`
	Command  []string             `json:"command"`
	Quick    bool                 `json:"quick"`
	Machine  Machine              `json:"machine"`
	Phases   harness.Phases       `json:"phases"`
	Degree   int                  `json:"degree"` // of the equalised profile
	Runs     []*harness.RunResult `json:"runs"`
}

// Machine describes where the suite ran.
type Machine struct {
	CPUs       int    `json:"cpus"`
	CPUModel   string `json:"cpu_model"`
	MemTotalMB int    `json:"mem_total_mib"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go_version"`
	OSArch     string `json:"os_arch"`
}

func runParent(o *options) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	exe, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	start := time.Now()
	stamp := start.Format("2006-01-02-150405")
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if o.pprof != "" {
		if err := os.MkdirAll(o.pprof, 0o755); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	rep := &Report{
		Started: start, Command: os.Args, Quick: o.quick, Machine: machine(),
		Phases: o.phases, Degree: o.degree,
	}
	total := len(o.nodes) * len(o.payloads) * len(o.profiles) * len(o.impls)
	fmt.Fprintf(os.Stderr, "bench: %d runs (%s; %s; N=%v; payloads %v); each at most %v + start-up\n",
		total, strings.Join(o.impls, ", "), profileList(o.profiles), o.nodes, o.payloads, o.phases.MaxDuration())
	failed, lost := 0, 0
	i := 0
	for _, n := range o.nodes {
		for _, payload := range o.payloads {
			for _, profile := range o.profiles {
				for _, name := range o.impls {
					i++
					if ctx.Err() != nil {
						break
					}
					fmt.Fprintf(os.Stderr, "bench: [%d/%d] %s %s N=%d %d B\n", i, total, name, profile, n, payload)
					res := runOne(ctx, exe, o, name, profile, n, payload)
					if res.Error != "" {
						failed++
						fmt.Fprintf(os.Stderr, "bench: [%d/%d] %s %s: ERROR %s\n", i, total, name, profile, res.Error)
					} else {
						fmt.Fprintf(os.Stderr, "bench: [%d/%d] %s %s: done in %.1f s, max holding rate %s msg/s; other processes used %.0f%% of the CPUs\n",
							i, total, name, profile, res.WallSec, rateString(res), 100*res.OtherCPUShare)
					}
					if o := res.Overload; o != nil {
						fmt.Fprintf(os.Stderr, "bench: [%d/%d] %s %s: overload %s\n", i, total, name, profile, overloadSummary(o))
						if msg := lossFailure(res); msg != "" {
							lost++
							fmt.Fprintf(os.Stderr, "bench: [%d/%d] %s %s: %s\n", i, total, name, profile, msg)
						}
					}
					rep.Runs = append(rep.Runs, res)
				}
			}
		}
	}
	rep.Finished = time.Now()
	rep.WallSec = rep.Finished.Sub(start).Seconds()

	jsonPath := filepath.Join(o.out, stamp+".json")
	if err := writeJSON(jsonPath, rep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if err := render(rep, filepath.Join(o.out, stamp), o.plots); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	fmt.Printf("results %s\n", jsonPath)
	if lost > 0 {
		fmt.Fprintf(os.Stderr, "bench: FAIL: %d of this project's runs lost acknowledged publishes under overload\n", lost)
	}
	if failed > 0 || ctx.Err() != nil {
		fmt.Fprintf(os.Stderr, "bench: %d of %d runs failed\n", failed, total)
	}
	if failed > 0 || lost > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// render prints the table and writes dir/table.md and, if plots, the PNGs.
func render(rep *Report, dir string, plots bool) error {
	printTable(os.Stdout, rep)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	md := filepath.Join(dir, "table.md")
	if err := writeMarkdown(md, rep); err != nil {
		return err
	}
	fmt.Printf("\nwall time %.1f s; table %s\n", rep.WallSec, md)
	if !plots {
		return nil
	}
	files, err := writePlots(dir, rep)
	for _, f := range files {
		fmt.Println("plot", f)
	}
	if err != nil {
		return fmt.Errorf("plots: %w", err)
	}
	return nil
}

// rerender re-renders an existing results file into the directory beside
// it (<out>/<date>.json → <out>/<date>/).
func rerender(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	rep := &Report{}
	if err := json.Unmarshal(b, rep); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %s: %v\n", path, err)
		return 1
	}
	if err := render(rep, strings.TrimSuffix(path, ".json"), true); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func profileList(ps []harness.Profile) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = string(p)
	}
	return strings.Join(s, ", ")
}

// runOne runs one system in a child process and returns its result, with
// the child's rusage; on failure a result carrying the error.
func runOne(ctx context.Context, exe string, o *options, name string, profile harness.Profile, n, payload int) *harness.RunResult {
	phases, _ := json.Marshal(o.phases)
	args := []string{
		"--child", "--impl", name, "--profile", string(profile),
		"--nodes", strconv.Itoa(n), "--payload", strconv.Itoa(payload),
		"--degree", strconv.Itoa(o.degree), "--phase-config", string(phases),
	}
	if o.pprof != "" {
		args = append(args, "--pprof", o.pprof)
	}
	timeout := o.timeout
	if timeout == 0 {
		timeout = o.phases.MaxDuration() + 2*time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second // then SIGKILL
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr

	busy0 := machineBusy()
	t0 := time.Now()
	runErr := cmd.Run()
	wall := time.Since(t0)

	res := &harness.RunResult{}
	if err := json.Unmarshal(stdout.Bytes(), res); err != nil || res.Impl == "" {
		res = &harness.RunResult{Impl: name, Profile: profile, Nodes: n, Payload: payload, Degree: o.degree}
		if runErr == nil {
			runErr = fmt.Errorf("no result from the child: %v", err)
		}
	}
	switch {
	case runErr != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.Error = joinErr(res.Error, fmt.Sprintf("killed after %v", timeout))
	case runErr != nil:
		res.Error = joinErr(res.Error, runErr.Error())
	}
	res.WallSec = wall.Seconds()
	if ps := cmd.ProcessState; ps != nil {
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			res.ChildCPUSec = harness.RusageCPU(ru).Seconds()
			res.MaxRSSKiB = ru.Maxrss // KiB on Linux
			res.RSSPerNodeMiB = float64(ru.Maxrss) / 1024 / float64(n)
		}
	}
	if busy0 > 0 {
		other := (machineBusy() - busy0).Seconds() - res.ChildCPUSec
		res.OtherCPUShare = max(0, other/(wall.Seconds()*float64(runtime.NumCPU())))
	}
	return res
}

// lossFailure is the line that fails the suite when res is one of this
// project's systems and lost acknowledged publishes under overload; ""
// otherwise (a peer's loss is only reported).
func lossFailure(res *harness.RunResult) string {
	o := res.Overload
	if o == nil || o.Lost == 0 || !promisesNoLoss(res.Impl) {
		return ""
	}
	return fmt.Sprintf("LOSS UNDER OVERLOAD: %d acknowledged publishes never reached every node (%d receipts missing, up to %d on one node)",
		o.Lost, o.LostReceipts, o.LostMaxPerNode)
}

func joinErr(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// machineBusy returns the CPU time all processes have used since boot
// (the non-idle columns of /proc/stat's cpu line, at USER_HZ = 100), or 0.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 8 { // guest time is already in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// machine reads what describes this machine; fields it cannot read stay
// empty.
func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb int
			if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
				m.MemTotalMB = kb / 1024
				break
			}
		}
		f.Close()
	}
	return m
}
