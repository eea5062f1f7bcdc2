package main

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// memoryLimitEnv overrides the child's memory guard, in MiB (0 disables).
const memoryLimitEnv = "BENCH_MAX_MEMORY_MIB"

// memoryLimit is the most memory a child run may hold before it is stopped:
// BENCH_MAX_MEMORY_MIB, or a third of the machine's memory. A system that
// buffers without bound under overload (each run pushes it past its
// capacity on purpose) must not take the machine down with it.
func memoryLimit() (uint64, error) {
	if v, ok := os.LookupEnv(memoryLimitEnv); ok {
		mib, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s=%q: want a number of MiB", memoryLimitEnv, v)
		}
		return mib << 20, nil
	}
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 8 << 30, nil // no /proc: a fixed 8 GiB
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemTotal:" {
			kib, err := strconv.ParseUint(f[1], 10, 64)
			if err == nil {
				return kib << 10 / 3, nil
			}
		}
	}
	return 8 << 30, nil
}

// guardMemory cancels ctx, with a cause saying why, when the Go runtime's
// memory (all classes: heap, stacks, runtime) passes limit. It checks every
// 100 ms until ctx ends. limit 0 disables it.
func guardMemory(ctx context.Context, cancel context.CancelCauseFunc, limit uint64, log *slog.Logger) {
	if limit == 0 {
		return
	}
	sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
	tk := time.NewTicker(100 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		metrics.Read(sample)
		if used := sample[0].Value.Uint64(); used > limit {
			err := fmt.Errorf("memory guard: the run held %d MiB, over the limit of %d MiB (%s); stopped",
				used>>20, limit>>20, memoryLimitEnv)
			log.Error("stopping the run", "err", err)
			cancel(err)
			return
		}
	}
}
