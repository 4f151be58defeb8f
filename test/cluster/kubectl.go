package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// kubectlTimeout bounds one Kubectl run; the API server answers in
// milliseconds, so a run this long is stuck.
const kubectlTimeout = time.Minute

// KubectlCommand returns a command that runs the pinned kubectl as the admin
// user, in the repository root (so a manifest path such as
// examples/redis-pod.yaml means what it says), for callers that need their
// own plumbing: the demo sends stdout and stderr to one buffer, so they stay
// interleaved as a terminal shows them. Kubectl covers the common case.
func (c *Cluster) KubectlCommand(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, c.kubectl, args...)
	cmd.Dir = c.root
	// KUBECACHEDIR keeps the discovery cache in the scratch dir, not in
	// the user's ~/.kube.
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.kubeconfig, "KUBECACHEDIR="+filepath.Join(c.dir, "kube-cache"))
	return cmd
}

// Kubectl runs kubectl as the admin user with stdin (nil for none) and
// returns what it printed. A non-zero exit is err (an *exec.ExitError); a
// run that outlives ctx or a minute is an error that says so.
func (c *Cluster) Kubectl(ctx context.Context, stdin io.Reader, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(ctx, kubectlTimeout)
	defer cancel()
	cmd := c.KubectlCommand(ctx, args...)
	cmd.Stdin = stdin
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("kubectl %s: %w", strings.Join(args, " "), ctx.Err())
	}
	return out.String(), errOut.String(), err
}
