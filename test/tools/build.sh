#!/usr/bin/env bash
# Builds the binaries the real-cluster tests and the demo run: kube-apiserver,
# kubectl (and, on request, kube-controller-manager and kube-scheduler) from
# k8s.io/kubernetes, and etcd from go.etcd.io/etcd/server/v3, at the versions
# pinned in the tools modules beside this script. Each lands in
# bin/<component>-<version>/ and is rebuilt only when that folder is missing,
# so a cold machine pays the build (about 7 minutes for kube-apiserver) once.
#
# Usage: test/tools/build.sh [apiserver|kubectl|etcd|controller-manager|scheduler|kwok|helm3|helm4|gatekeeper ...]
#        (no argument: apiserver, kubectl and etcd)
# Prints nothing but errors; `test/tools/build.sh --print-dir` prints the
# folder that holds the links to every built binary (bin/testbin).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
tools="$root/test/tools"
out="$root/bin"
links="$out/testbin"

modver() { (cd "$1" && go list -m -f '{{.Version}}' "$2"); }

if [[ "${1:-}" == "--print-dir" ]]; then echo "$links"; exit 0; fi

kube_version=$(modver "$tools/kube" k8s.io/kubernetes)
etcd_version=$(modver "$tools/etcd" go.etcd.io/etcd/server/v3)
minor=$(echo "$kube_version" | cut -d. -f2)
# Without these, the binaries report v0.0.0-master, which kubectl and Helm
# cannot parse as a server version.
kube_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$kube_version \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean"

# Helm 3 and Helm 4, each from its own tools module (helm3/, helm4/), for the
# chart tests: the chart must install with both. The ldflags are those of
# Helm's own Makefile: without them `helm version` says v3.x-dev/v4.x-dev and
# Helm 3 assumes an older default Kubernetes version than the one its
# client-go was built for (Helm 4 reads it from its build info).
helm_ldflags() { # major module-dir
  local major=$1 dir=$2 version client_go
  version=$(modver "$dir" "helm.sh/helm/v$major")
  client_go=$(modver "$dir" k8s.io/client-go)
  local flags="-s -w -X helm.sh/helm/v$major/internal/version.version=$version -X helm.sh/helm/v$major/internal/version.gitTreeState=clean"
  if [[ $major == 3 ]]; then
    local k8s_minor
    k8s_minor=$(echo "$client_go" | cut -d. -f2)
    flags+=" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$k8s_minor"
    flags+=" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$k8s_minor"
  fi
  echo "$flags"
}

build() { # name module-dir package version ldflags
  local name=$1 dir=$2 pkg=$3 version=$4 ldflags=$5
  local dest="$out/$name-$version"
  mkdir -p "$links"
  if [[ ! -x "$dest/$name" ]]; then
    echo "building $name $version (cached afterwards in ${dest#$root/})" >&2
    mkdir -p "$dest.tmp"
    (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$dest.tmp/$name" "$pkg")
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
  fi
  ln -sfn "$dest/$name" "$links/$name"
}

# kwok, from its tools module (kwok/), runs the simulated cluster's fake
# Nodes and Pods; it refuses to start without stage configs, which its
# module ships as YAML: copy the node (fast, heartbeat) and pod (fast) stages
# next to the binary and link them as bin/testbin/kwok-stages.
kwok_stages() {
  local version src dest
  version=$(modver "$tools/kwok" sigs.k8s.io/kwok)
  src=$(cd "$tools/kwok" && go list -m -f '{{.Dir}}' sigs.k8s.io/kwok)/kustomize/stage
  dest="$out/kwok-$version/stages"
  if [[ ! -d "$dest" ]]; then
    mkdir -p "$dest.tmp"
    for stage in node/fast node/heartbeat pod/fast; do
      for f in "$src/$stage"/*.yaml; do
        [[ $(basename "$f") == kustomization.yaml ]] || cp "$f" "$dest.tmp/${stage//\//-}-$(basename "$f")"
      done
    done
    rm -rf "$dest" && mv "$dest.tmp" "$dest"
  fi
  ln -sfn "$dest" "$links/kwok-stages"
}

# Gatekeeper runs out of cluster in the load test: next to its binary go
# the CRDs of its chart (crds/) and the k8srequiredprobes ConstraintTemplate
# and constraint of its gator test fixtures (policy/), all from its module.
gatekeeper_files() {
  local version src dest
  version=$(modver "$tools/gatekeeper" github.com/open-policy-agent/gatekeeper/v3)
  src=$(cd "$tools/gatekeeper" && go list -m -f '{{.Dir}}' github.com/open-policy-agent/gatekeeper/v3)
  dest="$out/gatekeeper-$version"
  if [[ ! -d "$dest/crds" ]]; then
    rm -rf "$dest/files.tmp" && mkdir -p "$dest/files.tmp/crds" "$dest/files.tmp/policy"
    cp "$src"/charts/gatekeeper/crds/*.yaml "$dest/files.tmp/crds/"
    cp "$src"/test/gator/test/fixtures/policies/default/{template,constraint}_k8srequiredprobes.yaml "$dest/files.tmp/policy/"
    chmod -R u+w "$dest/files.tmp"
    rm -rf "$dest/policy" && mv "$dest/files.tmp/policy" "$dest/policy" && mv "$dest/files.tmp/crds" "$dest/crds" && rmdir "$dest/files.tmp"
  fi
}

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(apiserver kubectl etcd)
for t in "${targets[@]}"; do
  case $t in
    apiserver) build kube-apiserver "$tools/kube" k8s.io/kubernetes/cmd/kube-apiserver "$kube_version" "$kube_ldflags" ;;
    kubectl) build kubectl "$tools/kube" k8s.io/kubernetes/cmd/kubectl "$kube_version" "$kube_ldflags" ;;
    controller-manager) build kube-controller-manager "$tools/kube" k8s.io/kubernetes/cmd/kube-controller-manager "$kube_version" "$kube_ldflags" ;;
    scheduler) build kube-scheduler "$tools/kube" k8s.io/kubernetes/cmd/kube-scheduler "$kube_version" "$kube_ldflags" ;;
    etcd) build etcd "$tools/etcd" go.etcd.io/etcd/server/v3 "$etcd_version" "-s -w" ;;
    kwok)
      build kwok "$tools/kwok" sigs.k8s.io/kwok/cmd/kwok "$(modver "$tools/kwok" sigs.k8s.io/kwok)" \
        "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$(modver "$tools/kwok" sigs.k8s.io/kwok | sed 's/^v//')"
      kwok_stages ;;
    helm3) build helm3 "$tools/helm3" helm.sh/helm/v3/cmd/helm "$(modver "$tools/helm3" helm.sh/helm/v3)" "$(helm_ldflags 3 "$tools/helm3")" ;;
    helm4) build helm4 "$tools/helm4" helm.sh/helm/v4/cmd/helm "$(modver "$tools/helm4" helm.sh/helm/v4)" "$(helm_ldflags 4 "$tools/helm4")" ;;
    # Gatekeeper, the load test's peer (make loadtest), from its tools module.
    gatekeeper) build gatekeeper "$tools/gatekeeper" github.com/open-policy-agent/gatekeeper/v3 \
      "$(modver "$tools/gatekeeper" github.com/open-policy-agent/gatekeeper/v3)" "-s -w"
      gatekeeper_files ;;
    *) echo "unknown binary $t" >&2; exit 2 ;;
  esac
done
