package load

import (
	"strings"
	"testing"
)

func TestMetricsAreSummedOverTheirSeries(t *testing.T) {
	text := `# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 42
controller_runtime_webhook_requests_total{code="200",webhook="/mutate"} 10
controller_runtime_webhook_requests_total{code="200",webhook="/validate"} 11
controller_runtime_webhook_requests_total{code="500",webhook="/a b}"} 1
go_memstats_heap_inuse_bytes 1.5e+07
`
	got, err := parseMetrics(strings.NewReader(text), []string{"go_goroutines", "controller_runtime_webhook_requests_total", "go_memstats_heap_inuse_bytes"})
	if err != nil {
		t.Fatal(err)
	}
	if got["go_goroutines"] != 42 || got["controller_runtime_webhook_requests_total"] != 22 || got["go_memstats_heap_inuse_bytes"] != 1.5e7 {
		t.Errorf("got %v", got)
	}
	if _, err := parseMetrics(strings.NewReader(text), []string{"go_gc_heap_live_bytes"}); err == nil {
		t.Error("a missing metric is no error")
	}
}
