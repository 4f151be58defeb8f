#!/usr/bin/env bash
# Builds the binaries the real-cluster tests and the demo run: kube-apiserver,
# kubectl (and, on request, kube-controller-manager and kube-scheduler) from
# k8s.io/kubernetes, and etcd from go.etcd.io/etcd/server/v3, at the versions
# pinned in the tools modules beside this script. Each lands in
# bin/<component>-<version>/ and is rebuilt only when that folder is missing,
# so a cold machine pays the build (about 7 minutes for kube-apiserver) once.
#
# Usage: test/tools/build.sh [apiserver|kubectl|etcd|controller-manager|scheduler ...]
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

targets=("$@")
[[ ${#targets[@]} -eq 0 ]] && targets=(apiserver kubectl etcd)
for t in "${targets[@]}"; do
  case $t in
    apiserver) build kube-apiserver "$tools/kube" k8s.io/kubernetes/cmd/kube-apiserver "$kube_version" "$kube_ldflags" ;;
    kubectl) build kubectl "$tools/kube" k8s.io/kubernetes/cmd/kubectl "$kube_version" "$kube_ldflags" ;;
    controller-manager) build kube-controller-manager "$tools/kube" k8s.io/kubernetes/cmd/kube-controller-manager "$kube_version" "$kube_ldflags" ;;
    scheduler) build kube-scheduler "$tools/kube" k8s.io/kubernetes/cmd/kube-scheduler "$kube_version" "$kube_ldflags" ;;
    etcd) build etcd "$tools/etcd" go.etcd.io/etcd/server/v3 "$etcd_version" "-s -w" ;;
    *) echo "unknown binary $t" >&2; exit 2 ;;
  esac
done
