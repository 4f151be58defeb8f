// Package load is podgate's HTTPS load test: it starts a real control
// plane (test/cluster), the webhook binary and `opa run --server` serving
// the same policies, and measures both with the load generator in
// loadgen. `make loadtest` runs it through cmd/loadtest.
package load
