package cluster

import (
	"encoding/json"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// The matchConditions of podgate's webhook configurations, as the chart
// renders them (charts/podgate/templates/_helpers.tpl; test/chart checks
// that both say the same). Two things must never wait on podgate:
//
//   - a controller writing an object for its owner (config
//     controllerUsers: the Pods of a ReplicaSet, the ReplicaSet of a
//     Deployment, the Job of a CronJob). Its template was checked as its
//     owner's, and engine.Skip would skip it anyway; the API server does
//     not call podgate for it at all, so a podgate outage cannot stop
//     scaling, rollouts or Job runs.
//   - a rollout of an existing workload that changes nothing podgate's
//     built-in deny rules look at: an UPDATE of a Deployment, StatefulSet
//     or DaemonSet whose spec differs from the stored one only in pod
//     template annotations (kubectl rollout restart) and in container
//     images within their repositories (kubectl rollout undo or set
//     image to another version). Such an UPDATE goes to a second webhook
//     entry whose failurePolicy is Ignore: podgate judges it as usual
//     while it is up, and an outage does not stop it.

// controllerOwned says whether obj names a controller owner.
func controllerOwned(obj string) string {
	return "has(" + obj + ".metadata.ownerReferences) && " + obj + ".metadata.ownerReferences.exists(r, has(r.controller) && r.controller)"
}

// ControllerWrite is true for a request of one of users that writes an
// object naming a controller owner (or, on UPDATE, that named one).
func ControllerWrite(users []string) string {
	list, _ := json.Marshal(users)
	return "request.userInfo.username in " + string(list) + " && (" + controllerOwned("object") +
		" || oldObject != null && " + controllerOwned("oldObject") + ")"
}

// repository is the CEL for the repository of image x: x without its
// digest and tag.
func repository(x string) string {
	name := x + ".split('@')[0]"
	return name + ".substring(0, " + name + ".lastIndexOf(':') > " + name + ".lastIndexOf('/') ? " + name + ".lastIndexOf(':') : " + name + ".size())"
}

// sameButImage: container c of the new template is container o of the old
// one but for an image of the same repository.
func sameButImage(c, o string) string {
	return "has(" + c + ".name) && has(" + o + ".name) && " + c + ".name == " + o + ".name && " +
		c + ".all(k, k == 'image' || k in " + o + " && " + c + "[k] == " + o + "[k]) && " + o + ".all(k, k in " + c + ") && " +
		"has(" + c + ".image) && has(" + o + ".image) && " + repository(c+".image") + " == " + repository(o+".image")
}

// RolloutUpdate is true for an UPDATE of a Deployment, StatefulSet or
// DaemonSet whose labels, spec and pod template stay as they were but for
// the template's annotations and the images of its containers and init
// containers, each within its repository. It never fails to evaluate on
// an object the API server accepts: an evaluation error would let the
// failurePolicy refuse the request even while podgate is up.
func RolloutUpdate() string {
	const (
		newSpec = "object.spec.template.spec"
		oldSpec = "oldObject.spec.template.spec"
	)
	labels := func(m string) string { return "(has(" + m + ".labels) ? " + m + ".labels : {})" }
	return strings.Join([]string{
		"request.operation == 'UPDATE' && request.resource.group == 'apps' && request.resource.resource in ['deployments', 'statefulsets', 'daemonsets']",
		labels("object.metadata") + " == " + labels("oldObject.metadata"),
		"object.spec.all(k, k == 'template' || k in oldObject.spec && object.spec[k] == oldObject.spec[k])",
		"oldObject.spec.all(k, k in object.spec)",
		labels("object.spec.template.metadata") + " == " + labels("oldObject.spec.template.metadata"),
		newSpec + ".all(k, k in ['containers', 'initContainers'] || k in " + oldSpec + " && " + newSpec + "[k] == " + oldSpec + "[k])",
		oldSpec + ".all(k, k in " + newSpec + ")",
		"['containers', 'initContainers'].all(l, !(l in " + newSpec + ") || " +
			"(type(" + newSpec + "[l]) == list && type(" + oldSpec + "[l]) == list ? " +
			newSpec + "[l].size() == " + oldSpec + "[l].size() && " +
			newSpec + "[l].all(c, " + oldSpec + "[l].exists(o, " + sameButImage("c", "o") + ")) : " +
			newSpec + "[l] == " + oldSpec + "[l]))",
	}, " && ")
}

// The names of the matchConditions.
const (
	notControllerWrite = "not-a-controller-writing-for-its-owner"
	notRolloutUpdate   = "not-a-restart-or-image-rollout"
	rolloutUpdate      = "a-restart-or-image-rollout"
)

// mainConditions are the matchConditions of the webhooks that get every
// request but those two kinds.
func mainConditions(users []string) []admissionregistrationv1.MatchCondition {
	return []admissionregistrationv1.MatchCondition{
		{Name: notControllerWrite, Expression: "!(" + ControllerWrite(users) + ")"},
		{Name: notRolloutUpdate, Expression: "!(" + RolloutUpdate() + ")"},
	}
}

// rolloutConditions are those of the webhooks that get the rollouts that
// an outage must not stop (failurePolicy Ignore).
func rolloutConditions() []admissionregistrationv1.MatchCondition {
	return []admissionregistrationv1.MatchCondition{{Name: rolloutUpdate, Expression: RolloutUpdate()}}
}
