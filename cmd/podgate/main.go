// Command podgate is the policy author's and CI pipeline's tool: it runs
// the webhook's own engine and handlers offline, so what `podgate eval`
// says is what the cluster will do.
//
//	podgate eval -f manifests/      what admission would do with each object
//	podgate test [DIR]              Rego unit tests and testdata cases
//	podgate check [DIR]             compile with the webhook's strict checks
//	podgate fmt [-w] [PATH...]      OPA's formatter
//	podgate version
package main

import (
	"context"
	"os"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
