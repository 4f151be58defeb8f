package main

import (
	"context"
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The collector's settings, unless the environment sets GOGC (then none
// of this applies) or GOMEMLIMIT (then only gcPercent does).
//
// One admission request allocates about 250 KB while its Rego is
// evaluated and keeps none of it, so the collector's share of the CPU is
// proportional to 100/GOGC: at Go's default of 100 it ran every few MB and
// took about a sixth of the CPU; at 400 a quarter of that (make bench: 15
// to 25% less CPU per request; docs/performance.md).
//
// A heap of five times what is live is small for a small cluster, but a
// 5,000-Node inventory keeps about 35 MB live: the soft memory limit keeps
// the process near max(memoryFloor, liveFactor x live heap) instead. With
// the binary's own pages that is about 140 MiB of RSS at 5,000 Nodes, and
// the collector still has twice the live heap to fill before it runs, so
// it never runs back to back.
const (
	gcPercent     = 400
	memoryFloor   = 112 << 20
	liveFactor    = 3
	limitInterval = 10 * time.Second
)

func tuneGC(ctx context.Context) {
	if os.Getenv("GOGC") != "" {
		return
	}
	debug.SetGCPercent(gcPercent)
	if os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetMemoryLimit(memoryLimit())
	go func() {
		t := time.NewTicker(limitInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				debug.SetMemoryLimit(memoryLimit())
			}
		}
	}()
}

// memoryLimit is max(memoryFloor, liveFactor x the heap live after the
// last collection).
func memoryLimit() int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	var live uint64
	if s[0].Value.Kind() == metrics.KindUint64 {
		live = s[0].Value.Uint64()
	}
	return max(memoryFloor, int64(liveFactor*float64(live)))
}
