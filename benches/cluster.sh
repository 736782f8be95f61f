#!/usr/bin/env bash
# Benchmarks on the test cluster (tests/cluster/up.sh), not run by CI.
#
#   bash benches/cluster.sh memory    # the operator's memory with COUNT Functions
#
# memory: installs wasmless (tests/cluster/overlay, the image of
# $WASMLESS_BIN), creates a namespace with COUNT Functions (default 1000)
# whose inline Python source is SIZE_KB kilobytes (default 16), waits until
# the operator has reconciled every one, and prints the resident
# memory of the operator's processes (VmRSS split into anonymous and
# file-backed pages, and the peak VmHWM, from /proc on this node) idle before
# and after. The Functions are deleted at the end. Functions are created
# with `replicas: 0` so that their pods do not crowd the one node: the
# operator still owns a ConfigMap, a Deployment and a Service for each.
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
source "$here/tests/cluster/env.sh"
export PATH="$CLUSTER_BIN:$PATH"
: "${KUBECONFIG:?KUBECONFIG must name the test cluster (export KUBECONFIG=\$(bash tests/cluster/up.sh))}"
count=${COUNT:-1000}
size_kb=${SIZE_KB:-16}
ns=${NAMESPACE:-bench-memory}
bin=${WASMLESS_BIN:-}
if [[ -z "$bin" ]]; then
  for b in "$here/target/release/wasmless" "$here/target/debug/wasmless"; do
    [[ -x "$b" ]] && { bin=$b; break; }
  done
fi
[[ -x "$bin" ]] || { echo "no wasmless binary: cargo build --release, or set WASMLESS_BIN" >&2; exit 1; }
step() { echo "== $*" >&2; }

operator_memory() {
  # Every operator process on this node: its pid, then kB figures.
  local pid
  for pid in $(pgrep -f 'wasmless operator' || true); do
    awk -v pid="$pid" '/^VmRSS|^RssAnon|^RssFile|^VmHWM/ {v[$1]=$2}
      END {printf "  pid %s: VmRSS %.1f MiB (anon %.1f, file %.1f), peak VmHWM %.1f MiB\n",
        pid, v["VmRSS:"]/1024, v["RssAnon:"]/1024, v["RssFile:"]/1024, v["VmHWM:"]/1024}' "/proc/$pid/status"
  done
}

memory() {
  step "image and install ($bin)"
  WASMLESS_BIN="$bin" bash "$here/tests/cluster/images.sh"
  kubectl apply --server-side --force-conflicts -k "$here/tests/cluster/overlay" >/dev/null
  kubectl wait --for condition=Established crd/functions.wasmless.io --timeout=60s >/dev/null
  kubectl -n wasmless rollout restart deployment/wasmless-operator >/dev/null
  kubectl -n wasmless rollout status deployment/wasmless-operator --timeout=180s >/dev/null
  kubectl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
  kubectl create namespace "$ns" >/dev/null
  sleep 20
  step "idle, no Functions"
  operator_memory

  step "applying $count Functions of $size_kb KB inline source"
  local manifests
  manifests=$(mktemp -d)
  trap 'rm -rf "$manifests"' RETURN
  python3 - "$manifests" "$count" "$size_kb" <<'EOF'
import sys, os
out, count, size_kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(count):
    filler = "".join(f"# line {j} of function {i}: {'x' * 40}\n" for j in range(size_kb * 1024 // 60))
    source = f"def handler(event, context):\n    return 'function {i}'\n" + filler
    body = "\n".join("      " + line for line in source.splitlines())
    with open(os.path.join(out, f"fn-{i:04}.yaml"), "w") as f:
        f.write(f"""apiVersion: wasmless.io/v1alpha1
kind: Function
metadata:
  name: fn-{i:04}
spec:
  runtime: python3.x
  handler: handler.handler
  replicas: 0
  function: |
{body}
""")
EOF
  local start=$SECONDS
  kubectl -n "$ns" apply -f "$manifests" >/dev/null
  step "applied in $((SECONDS - start)) s; waiting for the operator to reconcile every Function"
  # Reconciled: status.observedGeneration is the generation (1, new). With
  # no replicas, Ready is False with the reason ScaledToZero.
  kubectl -n "$ns" wait --for jsonpath='{.status.observedGeneration}'=1 function --all --timeout=1800s >/dev/null
  step "all $count reconciled $((SECONDS - start)) s after the apply began; settling 30 s"
  sleep 30
  step "with $count Functions ($size_kb KB each), idle"
  operator_memory
  step "deleting the namespace"
  kubectl delete namespace "$ns" --wait=false >/dev/null
}

case "${1:-}" in
  memory) memory ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
