#!/usr/bin/env bash
# Builds the test cluster's Kubernetes (one multi-call binary, `kube`, from
# the k8s.io/kubernetes module of ./kube/go.mod, with etcd linked in) and
# its DNS server (`coredns`, from ./dns/go.mod) into
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
cd "$here/dns"
dns_stamp="$cache/bin/.stamp-coredns"
inputs=$(cat go.mod go.sum main.go | sha256sum | cut -d' ' -f1)
if [[ -x "$bin/coredns" && -f "$dns_stamp" && "$(cat "$dns_stamp")" == "$inputs" ]]; then
  echo "coredns: up to date in $bin" >&2
else
  echo "building coredns (the cluster's DNS) ..." >&2
  started=$SECONDS
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$bin/coredns.tmp" .
  mv "$bin/coredns.tmp" "$bin/coredns"
  echo "$inputs" >"$dns_stamp"
  echo "built coredns in $((SECONDS - started)) s" >&2
fi
for name in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  ln -sf kube "$bin/$name"
done
echo "$bin"
