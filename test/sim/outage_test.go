package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// cronJob runs a Job every minute; podgate checks it (a Job is no
// long-running workload: no probes needed).
const cronJob = `apiVersion: batch/v1
kind: CronJob
metadata:
  name: report
spec:
  schedule: "* * * * *"
  concurrencyPolicy: Forbid
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: report
              image: busybox:1.36.1
              command: [sh, -c, "echo done"]
`

// jobTimeout bounds the wait for the CronJob's next Job: it is due at the
// next full minute, and kwok completes it at once.
const jobTimeout = 3 * time.Minute

// With the webhook down and failurePolicy Fail, the controllers keep
// working on what podgate admitted: the Deployment controller's
// ReplicaSets, the ReplicaSet controller's Pods, the CronJob controller's
// Jobs never reach podgate (the controller-write matchCondition), and the
// restarts and image rollbacks users start go to the webhook entry with
// failurePolicy Ignore. Everything else is refused, as failurePolicy Fail
// says: a new Deployment, an image of another repository.
func TestAPodgateOutageStopsNoControllerButRefusesNewWorkloads(t *testing.T) {
	b := requireBed(t)
	ns := testNamespace(t)
	const deploy = "deployment/nginx-deployment"
	wantSays(t, mustKubectl(t, "apply", "-n", ns, "-f", "examples/nginx-deployment.yaml"), "deployment.apps/nginx-deployment created")
	wantSays(t, mustKubectl(t, "rollout", "status", "-n", ns, deploy, "--timeout=2m"), "successfully rolled out")
	wantSays(t, mustKubectl(t, "set", "image", "-n", ns, deploy, "nginx=nginx:1.16.1"), "image updated")
	wantSays(t, mustKubectl(t, "rollout", "status", "-n", ns, deploy, "--timeout=2m"), "successfully rolled out")
	out, err := kubectl(t, strings.NewReader(cronJob), "apply", "-n", ns, "-f", "-")
	if err != nil {
		t.Fatalf("kubectl apply the CronJob: %v\n%s", err, out)
	}

	if err := b.StopWebhook(); err != nil {
		t.Fatal(err)
	}
	down := time.Now()
	t.Cleanup(func() {
		// t.Context() is cancelled when cleanups run: its values without its end.
		if err := b.RestartWebhook(context.WithoutCancel(t.Context())); err != nil {
			t.Errorf("restart the webhook: %v", err)
		}
	})

	t.Run("a new Deployment is refused", func(t *testing.T) {
		out, err := kubectl(t, strings.NewReader(deployment("newcomer", "", "")), "apply", "-n", ns, "-f", "-")
		if err == nil {
			t.Fatalf("kubectl apply succeeded while podgate is down:\n%s", out)
		}
		wantSays(t, out, `failed calling webhook "mutate.podgate.dev"`)
	})
	t.Run("an image of another repository is refused", func(t *testing.T) {
		out, err := kubectl(t, nil, "set", "image", "-n", ns, deploy, "nginx=redis:7.2")
		if err == nil {
			t.Fatalf("kubectl set image to another repository succeeded while podgate is down:\n%s", out)
		}
		wantSays(t, out, `failed calling webhook "mutate.podgate.dev"`)
	})
	t.Run("a change of anything but images is refused", func(t *testing.T) {
		out, err := kubectl(t, nil, "patch", "-n", ns, deploy, "-p", `{"spec":{"revisionHistoryLimit":0}}`)
		if err == nil {
			t.Fatalf("kubectl patch succeeded while podgate is down:\n%s", out)
		}
		wantSays(t, out, `failed calling webhook "mutate.podgate.dev"`)
	})
	t.Run("kubectl scale reaches the Deployment's pods", func(t *testing.T) {
		wantSays(t, mustKubectl(t, "scale", "-n", ns, deploy, "--replicas=2"), "scaled")
		wantSays(t, mustKubectl(t, "rollout", "status", "-n", ns, deploy, "--timeout=2m"), "successfully rolled out")
		waitReplicas(t, ns, "nginx-deployment", 2)
	})
	t.Run("kubectl rollout restart rolls out", func(t *testing.T) {
		wantSays(t, mustKubectl(t, "rollout", "restart", "-n", ns, deploy), "restarted")
		wantSays(t, mustKubectl(t, "rollout", "status", "-n", ns, deploy, "--timeout=2m"), "successfully rolled out")
	})
	t.Run("kubectl rollout undo goes back to the first image", func(t *testing.T) {
		wantSays(t, mustKubectl(t, "rollout", "undo", "-n", ns, deploy, "--to-revision=1"), "rolled back")
		wantSays(t, mustKubectl(t, "rollout", "status", "-n", ns, deploy, "--timeout=2m"), "successfully rolled out")
		var d appsv1.Deployment
		if err := b.Client().Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "nginx-deployment"}, &d); err != nil {
			t.Fatal(err)
		}
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "nginx:1.14.2" || d.Status.UpdatedReplicas != 2 {
			t.Errorf("image %s, %d updated replicas; want nginx:1.14.2 on 2", img, d.Status.UpdatedReplicas)
		}
	})
	t.Run("the CronJob's next Job runs to completion", func(t *testing.T) {
		waitJobCompleted(t, ns, down)
	})
}

// waitReplicas waits until the Deployment has n replicas, all ready.
func waitReplicas(t *testing.T, ns, name string, n int32) {
	t.Helper()
	var d appsv1.Deployment
	err := wait.PollUntilContextTimeout(t.Context(), 200*time.Millisecond, waitTimeout, true, func(ctx context.Context) (bool, error) {
		if err := bed.Client().Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &d); err != nil {
			return false, err
		}
		return d.Status.Replicas == n && d.Status.ReadyReplicas == n, nil
	})
	if err != nil {
		t.Fatalf("wait for %d ready replicas of %s (status %+v): %v", n, name, d.Status, err)
	}
}

// waitJobCompleted waits for a Job created after since to complete.
func waitJobCompleted(t *testing.T, ns string, since time.Time) {
	t.Helper()
	var jobs batchv1.JobList
	err := wait.PollUntilContextTimeout(t.Context(), time.Second, jobTimeout, true, func(ctx context.Context) (bool, error) {
		if err := bed.Client().List(ctx, &jobs, client.InNamespace(ns)); err != nil {
			return false, err
		}
		for _, j := range jobs.Items {
			if !j.CreationTimestamp.Time.Before(since.Add(time.Second).Truncate(time.Second)) && j.Status.Succeeded > 0 {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		t.Fatalf("no Job created after the webhook stopped completed (%d Jobs): %v\n%s", len(jobs.Items), err, mustKubectl(t, "get", "jobs,pods,events", "-n", ns))
	}
}
