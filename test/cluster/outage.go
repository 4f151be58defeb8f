package cluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
)

// StopWebhook stops the registered webhook (SIGTERM, as a rollout or a
// node drain would) and leaves its configurations registered: the API
// server keeps calling it and finds nothing, as in a podgate outage.
// RestartWebhook brings it back on the same address.
func (c *Cluster) StopWebhook() error {
	if c.webhook == nil {
		return fmt.Errorf("stop webhook: the cluster runs no registered webhook")
	}
	if c.webhook.stopped {
		return nil
	}
	if err := c.webhook.stop(c.log); err != nil {
		return err
	}
	c.logf("webhook stopped; its configurations stay registered")
	return nil
}

// RestartWebhook starts the webhook StopWebhook stopped, with the same
// flags, ports and certificate, and waits until it is ready.
func (c *Cluster) RestartWebhook(ctx context.Context) error {
	if c.webhook == nil || !c.webhook.stopped {
		return fmt.Errorf("restart webhook: it was not stopped")
	}
	defer c.step("webhook restarted")()
	if err := c.runProcess(c.webhook); err != nil {
		return err
	}
	return c.webhook.waitReady(ctx)
}

// LaunchWebhook starts a webhook process as StartWebhook does, unregistered,
// without waiting for it to be ready: for tests of how the webhook starts
// (a broken config must leave it up and unready). Stop stops it; so does
// the cluster's Stop.
func (c *Cluster) LaunchWebhook(args ...string) (*Webhook, error) {
	w, err := c.launchWebhook(args)
	if err != nil {
		return nil, err
	}
	return &Webhook{w}, nil
}

// Readyz returns the process's /readyz?verbose answer: its HTTP status and
// the list of checks and conditions.
func (h *Webhook) Readyz(ctx context.Context) (int, string, error) {
	return readyz(ctx, h.w.healthPort)
}

// Running returns an error when the process has exited.
func (h *Webhook) Running() error {
	select {
	case <-h.w.exited:
		return fmt.Errorf("webhook exited: %v (log %s)", h.w.exitErr, h.w.logPath)
	default:
		return nil
	}
}

// Log returns what the process has logged so far.
func (h *Webhook) Log() (string, error) {
	data, err := os.ReadFile(h.w.logPath)
	return string(data), err
}

// readyz GETs /readyz?verbose on port.
func readyz(ctx context.Context, port int) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+loopback(port)+"/readyz?verbose", nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("readyz: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}
