package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// MetricsURL is the webhook's Prometheus endpoint; empty without a webhook.
func (c *Cluster) MetricsURL() string {
	if c.webhook == nil {
		return ""
	}
	return c.webhook.metricsURL()
}

// WebhookURL is the webhook's HTTPS base URL, https://127.0.0.1:<port>, for
// calling it directly; empty without a webhook.
func (c *Cluster) WebhookURL() string {
	if c.webhook == nil {
		return ""
	}
	return "https://" + loopback(c.webhook.port)
}

// WebhookCA is the CA certificate (PEM) that verifies the webhook's serving
// certificate: the caBundle of its webhook configurations.
func (c *Cluster) WebhookCA() []byte {
	if c.webhook == nil {
		return nil
	}
	return c.webhook.caPEM
}

// WebhookPID is the webhook process's id, for reading its resource use
// from /proc; 0 without a webhook.
func (c *Cluster) WebhookPID() int {
	if c.webhook == nil {
		return 0
	}
	return c.webhook.cmd.Process.Pid
}

// Metrics returns the webhook's Prometheus metrics, as text.
func (c *Cluster) Metrics(ctx context.Context) (string, error) {
	if c.webhook == nil {
		return "", fmt.Errorf("metrics: the cluster runs no webhook")
	}
	return getText(ctx, c.webhook.metricsURL())
}

// WebhookLogPath is the file the webhook logs to; empty without a webhook.
func (c *Cluster) WebhookLogPath() string {
	if c.webhook == nil {
		return ""
	}
	return c.webhook.logPath
}

// WebhookLog returns what the webhook has logged so far.
func (c *Cluster) WebhookLog() (string, error) {
	if c.webhook == nil {
		return "", fmt.Errorf("webhook log: the cluster runs no webhook")
	}
	data, err := os.ReadFile(c.webhook.logPath)
	if err != nil {
		return "", fmt.Errorf("read webhook log: %w", err)
	}
	return string(data), nil
}

// WriteLogTails writes the end of the webhook's log to w and, with
// controlPlane, those of etcd and kube-apiserver: what to read when
// something failed (a failed start is often the control plane's doing, a
// failed request the webhook's). Call it before Stop, which removes the
// logs.
func (c *Cluster) WriteLogTails(w io.Writer, controlPlane bool) {
	var files []string
	for _, wh := range c.webhooks {
		files = append(files, wh.logPath)
	}
	if controlPlane {
		for _, f := range c.logs {
			files = append(files, f.Name())
		}
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			fmt.Fprintf(w, "cluster: read %s: %v\n", name, err)
			continue
		}
		if len(data) > logTail {
			data = data[len(data)-logTail:]
		}
		fmt.Fprintf(w, "==== %s (last %d bytes) ====\n%s\n==== end of %s ====\n",
			filepath.Base(name), len(data), data, filepath.Base(name))
	}
}

// getText GETs url and returns the body of a 200 answer.
func getText(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", fmt.Errorf("GET %s: read body: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return string(body), nil
}

// Readyz returns the webhook's /readyz?verbose answer: its HTTP status and
// the list of checks and conditions.
func (c *Cluster) Readyz(ctx context.Context) (int, string, error) {
	if c.webhook == nil {
		return 0, "", fmt.Errorf("readyz: the cluster runs no webhook")
	}
	return readyz(ctx, c.webhook.healthPort)
}

// ReadyzURL is the webhook's /readyz?verbose address; empty without a
// webhook.
func (c *Cluster) ReadyzURL() string {
	if c.webhook == nil {
		return ""
	}
	return "http://" + loopback(c.webhook.healthPort) + "/readyz?verbose"
}

// MetricValue sums the samples of metric name in a Prometheus text
// exposition whose labels include every label of match; found is false
// when there is no such sample.
func MetricValue(text, name string, match map[string]string) (sum float64, found bool, err error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		return 0, false, fmt.Errorf("parse metrics: %w", err)
	}
	for _, m := range families[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if !subset(match, labels) {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		}
	}
	return sum, found, nil
}

func subset(small, big map[string]string) bool {
	for k, v := range small {
		if big[k] != v {
			return false
		}
	}
	return true
}
