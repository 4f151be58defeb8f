package main

import (
	"os"
	"runtime/debug"
)

// gcPercent is the collector's pacing unless the environment sets GOGC.
//
// One admission request allocates about 250 KB while its Rego is
// evaluated and keeps none of it, so the collector's share of the CPU is
// proportional to 100/GOGC: at Go's default of 100 it ran every few MB and
// took about a sixth of the CPU; at 400 a quarter of that (make bench: 15
// to 25% less CPU per request; docs/performance.md).
//
// The heap may then grow to five times what is live. What bounds it is the
// deployment's memory limit: the chart sets GOMEMLIMIT to 90% of it, and
// near that soft limit the runtime collects as often as it must, whatever
// GOGC says.
const gcPercent = 400

func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}
