package engine_test

import (
	"strings"
	"testing"

	"github.com/podgate/podgate/engine"
	"github.com/podgate/podgate/policies"
)

// ownedRedis is a redis Pod with its data in an emptyDir (denied by
// stateful-volumes) that names a ReplicaSet as its controller.
const ownedRedis = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"redis","ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"anything","uid":"1","controller":true}]},` +
	`"spec":{"containers":[{"name":"redis","image":"redis","ports":[{"containerPort":6379}],"volumeMounts":[{"name":"data","mountPath":"/data"}]}],"volumes":[{"name":"data","emptyDir":{}}]}}`

const releasedRedis = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"redis"},` +
	`"spec":{"containers":[{"name":"redis","image":"redis","ports":[{"containerPort":6379}],"volumeMounts":[{"name":"data","mountPath":"/data"}]}],"volumes":[{"name":"data","emptyDir":{}}]}}`

func TestOnlyAControllerWritingForItsOwnerIsSkipped(t *testing.T) {
	cfg := write(t, t.TempDir(), "config.yaml", "controllerUsers: [system:serviceaccount:argo-rollouts:argo-rollouts]\n")
	custom := engine.New()
	if err := custom.Load(t.Context(), engine.Sources{Builtin: policies.FS, ConfigFile: cfg}); err != nil {
		t.Fatal(err)
	}
	defaults := engine.New()
	if err := defaults.Load(t.Context(), engine.Sources{Builtin: policies.FS}); err != nil {
		t.Fatal(err)
	}
	pod := engine.GroupVersionKind{Version: "v1", Kind: "Pod"}
	tests := []struct {
		name     string
		eng      *engine.Engine
		user     string
		op       string
		obj, old string
		skipped  string // a fragment of the reason; "" when the pod is checked
	}{
		{"a user's pod with a forged controller reference is checked", defaults, "jane", "CREATE", ownedRedis, "", ""},
		{"an admin's pod with a forged controller reference is checked", defaults, "kubernetes-admin", "CREATE", ownedRedis, "", ""},
		{"the ReplicaSet controller's pod is skipped", defaults, "system:serviceaccount:kube-system:replicaset-controller", "CREATE", ownedRedis, "",
			"written by controller system:serviceaccount:kube-system:replicaset-controller for its owner ReplicaSet/anything"},
		{"the controller-manager's own identity is trusted", defaults, "system:kube-controller-manager", "CREATE", ownedRedis, "", "ReplicaSet/anything"},
		{"a controller's pod without an owner is checked", defaults, "system:serviceaccount:kube-system:replicaset-controller", "CREATE", releasedRedis, "", ""},
		{"a controller releasing a pod it owned is skipped", defaults, "system:serviceaccount:kube-system:replicaset-controller", "UPDATE", releasedRedis, ownedRedis, "ReplicaSet/anything"},
		{"a service account of another namespace with a controller's name is checked", defaults, "system:serviceaccount:default:replicaset-controller", "CREATE", ownedRedis, "", ""},
		{"a controller config names is trusted", custom, "system:serviceaccount:argo-rollouts:argo-rollouts", "CREATE", ownedRedis, "", "argo-rollouts"},
		{"config's list replaces the defaults", custom, "system:serviceaccount:kube-system:replicaset-controller", "CREATE", ownedRedis, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &engine.Request{UID: "1", Kind: pod, Namespace: "default", Name: "redis", Operation: tt.op,
				UserInfo: engine.UserInfo{Username: tt.user}, Object: []byte(tt.obj)}
			if tt.old != "" {
				req.OldObject = []byte(tt.old)
			}
			d, err := tt.eng.Decide(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.skipped == "" && (d.Skipped != "" || d.Allowed()):
				t.Fatalf("skipped %q, allowed %v; want the pod checked and denied", d.Skipped, d.Allowed())
			case tt.skipped != "" && !strings.Contains(d.Skipped, tt.skipped):
				t.Fatalf("skipped %q, want it skipped as %q (violations %v)", d.Skipped, tt.skipped, d.Violations)
			}
		})
	}
}
