package schedcheck

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/test/cluster"
)

// pendingCount reads the number of Pending replicas an unsatisfiable
// message announces.
var pendingCount = regexp.MustCompile(`(\d+) of (\d+) replicas stay Pending`)

var deploymentKind = engine.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}

// TestPlacementWarningsMatchWhatTheSchedulerDoesOnTheDemoNodes applies
// Deployments to the demo's four Nodes (a tainted control plane, a plain
// worker, a tainted GPU worker, a cordoned worker) and compares what
// podgate's placement policy announces with where kube-scheduler puts the
// pods and how many it leaves Pending.
func TestPlacementWarningsMatchWhatTheSchedulerDoesOnTheDemoNodes(t *testing.T) {
	if bed == nil {
		t.Skip("schedcheck: no cluster in -short mode")
	}
	createNamespace(t)
	nodes := cluster.Nodes()
	if err := bed.CreateNodes(t.Context(), nodes); err != nil {
		t.Fatal(err)
	}
	defer cleanUp(t, nodes)
	var names []string
	for _, n := range nodes {
		names = append(names, n.Name)
	}
	e := podgateOn(t, names)
	gpu := corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "gpu", Effect: corev1.TaintEffectNoSchedule}
	tests := []struct {
		name       string
		deployment *appsv1.Deployment
		rule, says string
		onlyOn     []string // the nodes the bound pods must be on
	}{{
		name: "the notes' nginx fits only worker-1", deployment: notesNginx(t),
		rule: "placement/single-node", says: "all 3 replicas fit only node worker-1", onlyOn: []string{"worker-1"},
	}, {
		name: "required hostname anti-affinity with more replicas than nodes",
		deployment: deployment("ingress", 5, func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{gpu}
			s.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
				TopologyKey: corev1.LabelHostname, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "ingress"}},
			}}}}
		}),
		rule: "placement/unsatisfiable", says: "3 of 5 replicas stay Pending", onlyOn: []string{"worker-1", "worker-2"},
	}, {
		name: "a hostname spread that counts the tainted and cordoned nodes",
		deployment: deployment("search", 3, func(s *corev1.PodSpec) {
			s.Tolerations = []corev1.Toleration{gpu}
			s.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
				MaxSkew: 1, TopologyKey: corev1.LabelHostname, WhenUnsatisfiable: corev1.DoNotSchedule,
				LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "search"}},
			}}
		}),
		rule: "placement/unsatisfiable", says: "1 of 3 replicas stay Pending", onlyOn: []string{"worker-1", "worker-2"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.deployment
			msg := podgateSays(t, e, d, tt.rule)
			if !strings.Contains(msg, tt.says) {
				t.Fatalf("[%s] says %q, want it to say %q", tt.rule, msg, tt.says)
			}
			want := 0
			if m := pendingCount.FindStringSubmatch(msg); m != nil {
				want, _ = strconv.Atoi(m[1])
			}
			bound, pending := rollOut(t, d)
			t.Logf("podgate: [%s] %s\nkube-scheduler: bound %v, %d Pending", tt.rule, msg, bound, pending)
			if pending != want {
				t.Errorf("kube-scheduler left %d pods Pending, podgate announced %d", pending, want)
			}
			for _, n := range bound {
				if !slices.Contains(tt.onlyOn, n) {
					t.Errorf("a pod is on %s, podgate said the pods fit only %v", n, tt.onlyOn)
				}
			}
		})
	}
}

func notesNginx(t *testing.T) *appsv1.Deployment {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(bed.Root(), "examples", "nginx-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := yaml.UnmarshalStrict(raw, &d); err != nil {
		t.Fatalf("examples/nginx-deployment.yaml: %v", err)
	}
	d.Namespace = namespace
	return &d
}

func deployment(name string, replicas int32, spec func(*corev1.PodSpec)) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.k8s.io/pause:3.10"}}},
			},
		},
	}
	spec(&d.Spec.Template.Spec)
	return d
}

// podgateSays is the message of rule ("policy/rule") for d; the test
// fails when the rule does not fire.
func podgateSays(t *testing.T, e *engine.Engine, d *appsv1.Deployment, rule string) string {
	t.Helper()
	req, err := request(d, deploymentKind, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := e.Violations(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		if v.Policy+"/"+v.Rule == rule {
			return v.Message
		}
	}
	t.Fatalf("podgate does not report %s for Deployment %s: %+v", rule, d.Name, vs)
	return ""
}

// rollOut creates the Deployment, waits until each of its replicas is
// bound or Unschedulable, deletes it with its pods, and returns the nodes
// of the bound pods and the number of Pending ones.
func rollOut(t *testing.T, d *appsv1.Deployment) (bound []string, pending int) {
	t.Helper()
	ctx := t.Context()
	if err := bed.Client().Create(ctx, d); err != nil {
		t.Fatalf("create deployment %s: %v", d.Name, err)
	}
	defer deleteDeployment(t, d)
	selector := client.MatchingLabels(d.Spec.Template.Labels)
	err := wait.PollUntilContextTimeout(ctx, alonePoll*10, decideTimeout, true, func(ctx context.Context) (bool, error) {
		var pods corev1.PodList
		if err := bed.Client().List(ctx, &pods, client.InNamespace(namespace), selector); err != nil {
			return false, err
		}
		bound, pending = nil, 0
		for _, p := range pods.Items {
			switch ok, _, decided := decision(&p); {
			case !decided:
				return false, nil
			case ok:
				bound = append(bound, p.Spec.NodeName)
			default:
				pending++
			}
		}
		return len(pods.Items) == int(*d.Spec.Replicas), nil
	})
	if err != nil {
		t.Fatalf("wait for the scheduler to decide on the %d replicas of %s: %v", *d.Spec.Replicas, d.Name, err)
	}
	slices.Sort(bound)
	return bound, pending
}

// deleteDeployment deletes d in the foreground, its ReplicaSet and pods
// first, and waits until it is gone.
func deleteDeployment(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	ctx := context.WithoutCancel(t.Context())
	if err := bed.Client().Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationForeground)); err != nil {
		t.Fatalf("delete deployment %s: %v", d.Name, err)
	}
	err := wait.PollUntilContextTimeout(ctx, alonePoll*10, decideTimeout, true, func(ctx context.Context) (bool, error) {
		err := bed.Client().Get(ctx, types.NamespacedName{Namespace: namespace, Name: d.Name}, &appsv1.Deployment{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err != nil {
		t.Fatalf("wait for deployment %s to be gone: %v", d.Name, err)
	}
}
