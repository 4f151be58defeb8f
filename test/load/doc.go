// Package load is podgate's HTTPS load test, `make loadtest` (through
// cmd/loadtest): it starts a real control plane (test/cluster), the
// webhook binary and `opa run --server` serving the same policies
// (opapeer), and measures both with the load generator (loadgen); then,
// side by side on one Pod, Gatekeeper, a null webhook and podgate with
// only its probes policy on. See docs/performance.md.
//
// What lives where:
//
//	load.go, run.go, report.go  the load test: options, scenarios, report
//	procs.go, metrics.go        processes under test: start, stop, /proc
//	                            usage, Prometheus metrics (the soak too)
//	peers.go, gatekeeper.go     the side-by-side run: null webhook
//	                            (cmd/nullwebhook), Gatekeeper out of
//	                            cluster, OPA, podgate, probes only
//	answer.go                   an AdmissionReview answer, as both servers
//	                            and the soak read it
//	loadgen/                    the open- and closed-loop load generator
//	opapeer/                    OPA serving podgate's policies: the peer
//	soak/                       `make soak` (through cmd/soak): the webhook
//	                            at a fixed rate for minutes, direct and
//	                            behind kube-apiserver, every answer, the
//	                            memory and the goroutines checked
package load
