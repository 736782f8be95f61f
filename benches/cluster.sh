#!/usr/bin/env bash
# Benchmarks on the test cluster (tests/cluster/up.sh), not run by CI.
#
#   bash benches/cluster.sh memory       # the operator's memory with COUNT Functions
#   bash benches/cluster.sh pool-memory  # one pool pod serving COUNT Functions
#   bash benches/cluster.sh cold-start   # apply -> first answer, pool and dedicated
#
# memory: installs wasmless (tests/cluster/overlay, the image of
# $WASMLESS_BIN), creates a namespace with COUNT Functions (default 1000)
# whose inline Python source is SIZE_KB kilobytes (default 16; KIND=wasm:
# WASI command modules with SIZE_KB of data), waits until
# the operator has reconciled every one, and prints the resident
# memory of the operator's processes (VmRSS split into anonymous and
# file-backed pages, and the peak VmHWM, from /proc on this node) idle before
# and after. The Functions are deleted at the end. Functions are created
# with `replicas: 0` so that their pods do not crowd the one node: the
# operator still owns a ConfigMap, a Deployment and a Service for each.
#
# pool-memory: the same COUNT Functions in the namespace's pool instead:
# the pool pod's VmRSS once they are staged (known, not loaded), then after
# one call to each (all loaded), beside the operator's; then, once the pool
# has parked them (PARK_WAIT seconds, default 360), its VmRSS again and the
# first (parked) and second (loaded) request of PROBES (default 50) of them.
#
# cold-start: `wasmless bench cold-start --cluster` in a fresh namespace
# (TRIALS, default 20, and DEDICATED_TRIALS, default 5, per kind; POOL_CPU,
# when set, is the CPU request of the namespace's pool, default 100m).
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

# rss LABEL PATTERN: each process matching PATTERN (pgrep -f) on this
# node, with its VmRSS (heap and file-backed) and peak VmHWM.
# PSS counts a page mapped several times (one code file mapped by many
# functions) once, where VmRSS counts it at every mapping.
rss() {
  local label=$1 pid
  for pid in $(pgrep -f "$2" || true); do
    cat "/proc/$pid/status" "/proc/$pid/smaps_rollup" \
      | awk -v label="$label" -v pid="$pid" '/^VmRSS|^RssAnon|^RssFile|^VmHWM|^Pss:/ {v[$1]=$2}
      END {printf "  %s pid %s: VmRSS %.1f MiB (anon %.1f, file %.1f), PSS %.1f MiB, peak VmHWM %.1f MiB\n",
        label, pid, v["VmRSS:"]/1024, v["RssAnon:"]/1024, v["RssFile:"]/1024, v["Pss:"]/1024, v["VmHWM:"]/1024}'
  done
}
operator_memory() { rss operator 'wasmless operator'; }
pool_memory() { rss pool 'wasmless host --pool'; }

install() {
  step "image and install ($bin)"
  WASMLESS_BIN="$bin" bash "$here/tests/cluster/images.sh"
  kubectl apply --server-side --force-conflicts -k "$here/tests/cluster/overlay" >/dev/null
  kubectl wait --for condition=Established crd/functions.wasmless.io --timeout=60s >/dev/null
  kubectl -n wasmless rollout restart deployment/wasmless-operator >/dev/null
  kubectl -n wasmless rollout status deployment/wasmless-operator --timeout=180s >/dev/null
}

memory() {
  local placement=${1:-Dedicated}
  install
  kubectl delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
  kubectl create namespace "$ns" >/dev/null
  sleep 20
  step "idle, no Functions"
  operator_memory

  step "applying $count Functions of $size_kb KB inline source"
  local manifests
  manifests=$(mktemp -d)
  trap 'rm -rf "$manifests"' RETURN
  python3 - "$manifests" "$count" "$size_kb" "$placement" <<'EOF'
import sys, os
out, count, size_kb, placement = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
# Dedicated with no replicas (no pods), or in the pool.
extra = "  replicas: 0\n  placement: Dedicated\n" if placement == "Dedicated" else ""
kind = os.environ.get("KIND", "python")

for i in range(count):
    if kind == "wasm":
        # A WASI command (WAT) that writes its name, with SIZE_KB of data.
        source = f"""(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") {(1024 + size_kb * 1024) // 65536 + 1})
  (data (i32.const 8) "\\10\\00\\00\\00\\0f\\00\\00\\00")
  (data (i32.const 16) "fn {i:04} said hi")
  (data (i32.const 1024) "{'x' * (size_kb * 1024)}")
  (func (export "_start") (drop (call $w (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 0)))))"""
        header = "  runtime: wasm\n"
    else:
        filler = "".join(f"# line {j} of function {i}: {'x' * 40}\n" for j in range(size_kb * 1024 // 60))
        source = f"def handler(event, context):\n    return 'function {i}'\n" + filler
        header = "  runtime: python3.x\n  handler: handler.handler\n"
    body = "\n".join("      " + line for line in source.splitlines())
    with open(os.path.join(out, f"fn-{i:04}.yaml"), "w") as f:
        f.write(f"""apiVersion: wasmless.io/v1alpha1
kind: Function
metadata:
  name: fn-{i:04}
spec:
{header}{extra}  function: |
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
  if [[ $placement == Pool ]]; then
    pool_memory
    local ip
    ip=$(kubectl -n "$ns" get pods -l wasmless.io/pool=wasmless-pool -o jsonpath='{.items[0].status.podIP}')
    step "one call to each of the $count Functions (the pool pod at $ip, by the wasmless-function header)"
    start=$SECONDS
    for ((i = 0; i < count; i++)); do
      curl -sf -H "wasmless-function: $(printf 'fn-%04d' "$i")" -d x "http://$ip:8080/" >/dev/null \
        || echo "  fn-$i did not answer" >&2
    done
    step "called in $((SECONDS - start)) s; all loaded:"
    pool_memory
    # A pool parks a function idle for --unload-idle (5m) on its next sweep
    # (every 30 s at most): then the first request loads it again from the
    # compile cache. Timed with curl from this node to the pod, so the
    # control plane is left out; the second request is the loaded one.
    step "waiting ${PARK_WAIT:-360} s for the pool to park them"
    sleep "${PARK_WAIT:-360}"
    step "parked:"
    pool_memory
    local probes=${PROBES:-50}
    step "$probes parked functions: first request (parked), then second (loaded), ms"
    for ((i = 0; i < probes; i++)); do
      local f
      f=$(printf 'fn-%04d' "$i")
      for turn in parked loaded; do
        curl -sf -o /dev/null -w "$turn %{time_total}\n" -H "wasmless-function: $f" -d x "http://$ip:8080/" \
          || echo "  $f did not answer" >&2
      done
    done | python3 -c '
import sys, collections
times = collections.defaultdict(list)
for line in sys.stdin:
    turn, seconds = line.split()
    times[turn].append(float(seconds) * 1e3)
for turn in ("parked", "loaded"):
    v = sorted(times[turn])
    if v:
        print(f"  {turn}: n {len(v)}, min {v[0]:.2f}, p50 {v[len(v) // 2]:.2f}, p90 {v[int(len(v) * 0.9)]:.2f}, max {v[-1]:.2f}")'
  fi
  step "deleting the namespace"
  kubectl delete namespace "$ns" --wait=false >/dev/null
}

cold_start() {
  install
  kubectl delete namespace bench-cold-start --ignore-not-found --wait=true >/dev/null
  kubectl create namespace bench-cold-start >/dev/null
  if [[ -n "${POOL_CPU:-}" ]]; then
    # The namespace's pool settings (README: pool size and resources).
    kubectl -n bench-cold-start create configmap wasmless-pool --from-literal=cpu="$POOL_CPU" >/dev/null
  fi
  step "wasmless bench cold-start --cluster${POOL_CPU:+ (pool cpu request $POOL_CPU)}"
  (cd "$here" && "$bin" bench cold-start --cluster -n bench-cold-start \
    --trials "${TRIALS:-20}" --dedicated-trials "${DEDICATED_TRIALS:-5}")
  kubectl delete namespace bench-cold-start --wait=false >/dev/null
}

case "${1:-}" in
  memory) memory Dedicated ;;
  pool-memory) memory Pool ;;
  cold-start) cold_start ;;
  *) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac
