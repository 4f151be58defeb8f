package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrapeClient opens a connection per scrape: an idle keep-alive
// connection to the metrics server would hold a goroutine of the webhook
// and blur the goroutine counts.
var scrapeClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// Scrape reads metrics from a Prometheus text endpoint: for each name, the
// sum of its series (a counter's labels, e.g. per webhook path and code).
// A name the endpoint does not have is an error.
func Scrape(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return parseMetrics(resp.Body, names)
}

// parseMetrics sums, for each name, the samples of that metric family in
// a Prometheus text exposition (expfmt's parser).
func parseMetrics(r io.Reader, names []string) (map[string]float64, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, n := range names {
		mf, ok := families[n]
		if !ok {
			return nil, fmt.Errorf("metric %s not found", n)
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				out[n] += m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[n] += m.GetGauge().GetValue()
			case m.Untyped != nil:
				out[n] += m.GetUntyped().GetValue()
			default:
				return nil, fmt.Errorf("metric %s: a %s has no single value", n, mf.GetType())
			}
		}
	}
	return out, nil
}
