// Package health serves the webhook's /healthz and /readyz. It stands in
// for controller-runtime's probe server for one reason: /readyz must be
// able to say that a policy change was rejected while staying ready (the
// last good policy set still serves), and controller-runtime's checks are
// pass or fail only. The checks themselves are controller-runtime
// healthz.Checkers.
package health

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/healthz"
)

// Server is a manager Runnable serving the probes on Addr.
type Server struct {
	Addr string
	// Live and Ready are the checks of /healthz and /readyz.
	Live, Ready map[string]healthz.Checker
	// Conditions are informational: a non-empty string is shown as a
	// "[!]name: text" line of /readyz?verbose without failing it.
	Conditions map[string]func() string
}

// Start serves until ctx ends.
func (s *Server) Start(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("health probes: %w", err)
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NeedLeaderElection is false: every replica serves probes.
func (s *Server) NeedLeaderElection() bool { return false }

// Handler serves /healthz and /readyz.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, "healthz", s.Live, nil) })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) { s.serve(w, r, "readyz", s.Ready, s.Conditions) })
	return mux
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, name string, checks map[string]healthz.Checker, conds map[string]func() string) {
	var b strings.Builder
	ok := true
	for _, n := range slices.Sorted(maps.Keys(checks)) {
		if err := checks[n](r); err != nil {
			ok = false
			fmt.Fprintf(&b, "[-]%s failed: %v\n", n, err)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", n)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(conds)) {
		if text := conds[n](); text != "" {
			fmt.Fprintf(&b, "[!]%s: %s\n", n, text)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if !ok {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprintf(w, "%s%s check failed\n", b.String(), name)
		return
	}
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprintf(w, "%s%s check passed\n", b.String(), name)
		return
	}
	fmt.Fprint(w, "ok")
}

// Condition is a text that a component sets when something is wrong and
// clears when it is not, for Server.Conditions. It is safe for concurrent
// use; the zero value is clear.
type Condition struct {
	mu   sync.Mutex
	text string
}

// Set replaces the text; "" clears it.
func (c *Condition) Set(text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.text = text
}

// Get is the text, "" when clear.
func (c *Condition) Get() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.text
}
