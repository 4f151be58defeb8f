// Package load is podgate's HTTPS load test: it starts a real control
// plane (test/cluster), the webhook binary and `opa run --server` serving
// the same policies, and measures both with the load generator in
// loadgen. `make loadtest` runs it through cmd/loadtest.
//
// The soak (soak*.go, `make soak` through cmd/soak) holds the webhook at a
// fixed rate for minutes, directly and behind kube-apiserver, and checks
// every answer, the memory and the goroutine count.
package load
