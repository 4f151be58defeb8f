package e2e

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// forgedRedis keeps redis's data in an emptyDir and tolerates every taint,
// and claims a ReplicaSet as its controller.
const forgedRedis = `apiVersion: v1
kind: Pod
metadata:
  name: redis
  ownerReferences:
    - {apiVersion: apps/v1, kind: ReplicaSet, name: anything, uid: 6b7f9a5e-1c1e-4a3e-9b59-0d4f1c2d3e4f, controller: true}
spec:
  tolerations: [{operator: Exists}]
  containers:
    - name: redis
      image: redis:7.2
      ports: [{containerPort: 6379}]
      volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
`

// An ownerReference is written by whoever sends the object: it must not
// switch podgate off. Only the controllers themselves (here the
// ReplicaSet controller's service account, as the kube-controller-manager
// runs with --use-service-account-credentials) are not sent to podgate.
func TestAPodNamingAControllerIsCheckedUnlessTheControllerItselfWritesIt(t *testing.T) {
	requireWebhook(t)
	ns := testNamespace(t)
	denied(t, ns, forgedRedis,
		"[stateful-volumes/persistent-storage] Pod "+ns+"/redis: ", "[tolerations/wildcard] Pod "+ns+"/redis: ")

	// kubectl create, not apply: the controller's role may create Pods but
	// not get them.
	stdout, stderr, err := runKubectl(t, strings.NewReader(forgedRedis), "create", "-n", ns, "-f", "-",
		"--as", "system:serviceaccount:kube-system:replicaset-controller")
	if err != nil || !strings.Contains(stdout, "pod/redis created") {
		t.Fatalf("the ReplicaSet controller's Pod must be admitted: %v\n%s%s", err, stdout, stderr)
	}
	var pod corev1.Pod
	if err := apiClient(t).Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "redis"}, &pod); err != nil {
		t.Fatal(err)
	}
	if a, ok := pod.Annotations["podgate.dev/mutations"]; ok {
		t.Errorf("podgate was called for the controller's Pod (it noted %q); the matchCondition should have kept it away", a)
	}
}
