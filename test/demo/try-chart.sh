#!/usr/bin/env bash
# `make try-chart`: installs charts/podgate from the working tree, with the
# Helm 4 the project builds, into the simulated cluster `make cluster` runs,
# then applies a Deployment podgate denies and shows the denial.
#
# kwok runs no containers, so the chart's own pods are Running in name only
# and cannot answer the API server. The chart's webhook configurations (the
# release is podgate-local, so they are named podgate-local, next to the
# cluster's own "podgate") therefore call the webhook `make cluster` runs,
# built from the same working tree: webhook.url points at it, and
# tls.mode=manual gives them the cluster's CA as their caBundle.
#
# The cluster: $KUBECONFIG, else the kubeconfig `make cluster` links as
# bin/cluster-kubeconfig. RELEASE names the release and its namespace.
# Exit status 1 when the Deployment is not denied by podgate.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin=$(test/tools/build.sh --print-dir)
kubectl=$bin/kubectl
helm=$bin/helm4
release=${RELEASE:-podgate-local}

if [[ -z ${KUBECONFIG:-} ]]; then
  if [[ ! -e bin/cluster-kubeconfig ]]; then
    echo "try-chart: no cluster: run \`make cluster\` in another shell first (or set KUBECONFIG)" >&2
    exit 2
  fi
  KUBECONFIG=$(readlink -f bin/cluster-kubeconfig)
fi
export KUBECONFIG

heading() { printf '==> %s\n' "$*"; }
# show prints a command as a user would type it (kubectl and helm by name)
# and runs it.
show() {
  local words=("$@")
  words[0]=$(basename "${words[0]}")
  printf '$ %s\n' "${words[*]}"
  "$@"
}

heading "The cluster's webhook, which the chart's configurations will call: its URL and CA"
url=$("$kubectl" get validatingwebhookconfiguration podgate -o jsonpath='{.webhooks[0].clientConfig.url}')
ca=$("$kubectl" get validatingwebhookconfiguration podgate -o jsonpath='{.webhooks[0].clientConfig.caBundle}')
if [[ -z $url || -z $ca ]]; then
  echo "try-chart: the cluster has no ValidatingWebhookConfiguration podgate with a url and a caBundle: is it the one \`make cluster\` runs?" >&2
  exit 2
fi
url=${url%/validate}
echo "url: $url"
echo "caBundle: ${ca:0:40}..."

# The cluster's own podgate installed the Report CRD already, as another
# tool (Kyverno, Kubewarden) would have: the chart must not install it again.
heading "Install charts/podgate from the working tree as release $release (tls.mode=manual, webhook.url; the Report CRD is there already)"
printf '$ helm upgrade --install %s charts/podgate --namespace %s --create-namespace --set tls.mode=manual --set tls.manual.secretName=%s-tls --set tls.manual.caBundle=$CA --set webhook.url=%s --set audit.installReportCRD=false\n' \
  "$release" "$release" "$release" "$url"
"$helm" upgrade --install "$release" charts/podgate --namespace "$release" --create-namespace \
  --set tls.mode=manual --set "tls.manual.secretName=$release-tls" --set "tls.manual.caBundle=$ca" \
  --set "webhook.url=$url" --set audit.installReportCRD=false

heading "The chart's webhook configurations, next to the cluster's own"
show "$kubectl" get validatingwebhookconfigurations,mutatingwebhookconfigurations

heading "A Deployment with revisionHistoryLimit: 0 leaves nothing to roll back to: podgate denies it"
set +e
out=$(show "$kubectl" apply --dry-run=server -f examples/deployment-no-history.yaml 2>&1)
status=$?
set -e
echo "$out"
if [[ $status -eq 0 || $out != *'admission webhook "validate.podgate.dev" denied the request'* ]]; then
  echo "try-chart: the Deployment was not denied by podgate" >&2
  exit 1
fi

heading "Done. Remove the release the way docs/install.md says (webhook configurations first):"
echo "kubectl delete mutatingwebhookconfiguration,validatingwebhookconfiguration -l app.kubernetes.io/instance=$release"
echo "helm uninstall $release --namespace $release   # or stop make cluster: everything goes with it"
