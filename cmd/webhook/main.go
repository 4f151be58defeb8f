// Command webhook is podgate's admission webhook server: the mutating
// (/mutate) and validating (/validate) webhooks over TLS, with metrics and
// health endpoints on their own ports.
package main

import (
	"fmt"
	"os"

	ctrl "sigs.k8s.io/controller-runtime"
)

func main() {
	if err := newCommand(run).Execute(ctrl.SetupSignalHandler(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "podgate webhook:", err)
		os.Exit(1)
	}
}
