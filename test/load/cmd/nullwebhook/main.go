// Command nullwebhook is the load test's floor: an admission webhook, on
// controller-runtime like podgate's, that decodes each AdmissionReview and
// allows it. What it costs per request is what TLS, HTTP and the decoding
// cost before any policy runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "Address to serve HTTPS on.")
	certDir := flag.String("cert-dir", "", "Folder holding tls.crt and tls.key.")
	flag.Parse()
	logf.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	allow := admission.HandlerFunc(func(context.Context, admission.Request) admission.Response {
		return admission.Allowed("")
	})
	mux := http.NewServeMux()
	mux.Handle("/validate", &webhook.Admission{Handler: allow})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	err := srv.ListenAndServeTLS(filepath.Join(*certDir, "tls.crt"), filepath.Join(*certDir, "tls.key"))
	if err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "nullwebhook:", err)
		os.Exit(1)
	}
}
