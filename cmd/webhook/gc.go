package main

import (
	"os"
	"runtime/debug"
)

// The collector's pacing (GOGC) unless the environment sets it.
//
// One admission request allocates about 250 KB while its Rego is
// evaluated and keeps none of it, so the collector's share of the CPU is
// proportional to 100/GOGC: at Go's default of 100 it ran every few MB and
// took about a sixth of the CPU; at 400 a quarter of that (make bench: 15
// to 25% less CPU per request; docs/performance.md).
//
// The heap may then grow to GOGC/100+1 times what is live. A webhook that
// only admits keeps little live (the policies and the Node inventory), but
// one run with --audit keeps every workload of the cluster in its cache,
// leader or not (the cache fills before the election). At 10,000
// workloads (make auditbench) its RSS was 250 MiB at GOGC 400 (at the
// chart's soft limit, in a 256Mi container), 224 MiB at 200 and 161 MiB at
// Go's default of 100, for 16% more CPU in the audit (30.0 against 25.8 s)
// and Go's default share of collection in its admission. What bounds the
// heap in any case is the deployment's memory limit: the chart sets
// GOMEMLIMIT to 90% of it, and near that soft limit the runtime collects
// as often as it must, whatever GOGC says.
const (
	gcPercent      = 400
	gcPercentAudit = 100
)

func tuneGC(audit bool) {
	if os.Getenv("GOGC") != "" {
		return
	}
	if audit {
		debug.SetGCPercent(gcPercentAudit)
		return
	}
	debug.SetGCPercent(gcPercent)
}
