#!/usr/bin/env bash
# Builds the test cluster's Kubernetes (one multi-call binary, `kube`, from
# the k8s.io/kubernetes module of ./kube/go.mod, with etcd linked in), its
# DNS server (`coredns`, ./dns/go.mod) and metrics-server (./metrics/go.mod,
# for HorizontalPodAutoscalers) into
# $WASMLESS_CLUSTER_CACHE/bin, with links named after each command. Go's
# module and build caches make a second run take seconds.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${WASMLESS_CLUSTER_CACHE:-/var/cache/wasmless-cluster}"
bin="$cache/bin"
mkdir -p "$bin"
cd "$here/kube"
version=$(sed -nE 's/^[[:space:]]*(require[[:space:]]+)?k8s\.io\/kubernetes (v[0-9.]+).*/\2/p' go.mod | head -1)
[[ -n "$version" ]] || { echo "build.sh: no k8s.io/kubernetes version in go.mod" >&2; exit 1; }
stamp="$cache/bin/.stamp"
inputs=$(cat go.mod go.sum main.go | sha256sum | cut -d' ' -f1)
if [[ -x "$bin/kube" && -f "$stamp" && "$(cat "$stamp")" == "$inputs" ]]; then
  echo "kubernetes $version: up to date in $bin" >&2
else
  echo "building kubernetes $version (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl in one binary; the first build takes a while) ..." >&2
  IFS=. read -r major minor _ <<<"${version#v}"
  pkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
  ldflags="-s -w"
  for pkg in "${pkgs[@]}"; do
    ldflags+=" -X $pkg.gitVersion=$version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean"
    ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  started=$SECONDS
  CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$bin/kube.tmp" .
  mv "$bin/kube.tmp" "$bin/kube"
  echo "$inputs" >"$stamp"
  echo "built kubernetes $version in $((SECONDS - started)) s" >&2
fi
# go_tool NAME DIR PACKAGE WHAT: builds PACKAGE of the module in DIR as
# $bin/NAME, unless its go.mod, go.sum and sources are unchanged.
go_tool() {
  local name=$1 dir=$2 package=$3 what=$4
  cd "$here/$dir"
  local stamp="$cache/bin/.stamp-$name" inputs
  inputs=$({ cat go.mod go.sum; cat ./*.go 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)
  if [[ -x "$bin/$name" && -f "$stamp" && "$(cat "$stamp")" == "$inputs" ]]; then
    echo "$name: up to date in $bin" >&2
    return 0
  fi
  echo "building $name ($what) ..." >&2
  local started=$SECONDS
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/$name.tmp" "$package"
  mv "$bin/$name.tmp" "$bin/$name"
  echo "$inputs" >"$stamp"
  echo "built $name in $((SECONDS - started)) s" >&2
}
go_tool coredns dns . "the cluster's DNS"
go_tool metrics-server metrics sigs.k8s.io/metrics-server/cmd/metrics-server "resource metrics for autoscaling; the first build takes a few minutes"
for name in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  ln -sf kube "$bin/$name"
done
echo "$bin"
