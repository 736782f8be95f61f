#!/usr/bin/env bash
# Runs every wasmless benchmark on this machine, side by side in one run, and
# writes the tables to benches/results.md (and stdout).
#
#   bash benches/run.sh            # everything (about 15 minutes, plus first builds)
#   QUICK=1 bash benches/run.sh    # shorter runs, for checking the script
#
# Needs: wrk (Debian package `wrk`), wasmtime-cli 48 (installed here with
# cargo if missing), python3. Not run by CI: benchmarks are not tests.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
out="$root/benches/results.md"
work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

duration=${DURATION:-10s}
trials=${TRIALS:-30}
counts=(1 10 100 1000)
if [[ -n "${QUICK:-}" ]]; then duration=3s; trials=5; counts=(1 10 50); fi

step() { echo "== $*" >&2; }

step "tools"
if ! command -v wrk >/dev/null; then
  echo "wrk is missing: apt-get install wrk" >&2
  exit 1
fi
wasmtime_bin=${WASMTIME:-}
if [[ -z "$wasmtime_bin" ]]; then
  if command -v wasmtime >/dev/null && wasmtime --version | grep -q '^wasmtime 48\.'; then
    wasmtime_bin=$(command -v wasmtime)
  else
    wasmtime_bin="$HOME/.local/wasmtime-48/bin/wasmtime"
    if [[ ! -x "$wasmtime_bin" ]]; then
      step "installing wasmtime-cli 48.0.8 (one time, several minutes)"
      cargo install wasmtime-cli --version 48.0.8 --locked --root "$HOME/.local/wasmtime-48"
    fi
  fi
fi
"$wasmtime_bin" --version >&2

step "building (release)"
bash examples/build.sh >/dev/null
cargo build --release --quiet
bin=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')/release/wasmless

# Waits until http://$1 answers.
wait_http() {
  for _ in $(seq 1 600); do
    if curl -s -o /dev/null "http://$1/"; then return 0; fi
    sleep 0.1
  done
  echo "nothing answers on $1" >&2
  exit 1
}

# Prints "req/s p50_ms p99_ms" for a wrk run against $1 (POST if $2 is set),
# with $CONNECTIONS clients (default 8).
load() {
  local url=$1 script=()
  if [[ -n "${2:-}" ]]; then
    printf 'wrk.method = "POST"\nwrk.body = "bench"\nwrk.headers["Content-Type"] = "text/plain"\n' >"$work/post.lua"
    script=(-s "$work/post.lua")
  fi
  wrk -t1 -c"${CONNECTIONS:-8}" -d"$duration" --latency "${script[@]}" "$url" | python3 -c '
import re, sys
text = sys.stdin.read()
def ms(v):
    found = re.match(r"([\d.]+)(\w+)", v)
    if not found:
        sys.exit("cannot read a latency of %r in:\n%s" % (v, text))
    n, unit = found.groups()
    return float(n) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
p50 = ms(re.search(r"50%\s+(\S+)", text).group(1))
p99 = ms(re.search(r"99%\s+(\S+)", text).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
if errors:
    sys.exit("wrk saw %s error responses:\n%s" % (errors.group(1), text))
print(rps, p50, p99)
'
}

step "starting the servers"
# The same Python hello on its container-image runtime, which `up` runs as a
# local python3 process (the fallback path), beside the wasm one.
mkdir -p "$work/fallback"
cp examples/python-hello/hello.py "$work/fallback/"
sed -e 's/name: hello-py/name: hello-py-image/' \
    -e 's|  file: hello.py|  file: hello.py\n  image: ghcr.io/wasmless/runtime-python:0.1.0|' \
    examples/python-hello/function.yaml >"$work/fallback/function.yaml"
# The same Python and JavaScript hellos with instance reuse (spec.instanceReuse).
mkdir -p "$work/reuse"
cp examples/python-hello/hello.py examples/js-hello/hello.js "$work/reuse/"
for kind in py js; do
  sed -e "s/name: hello-$kind/name: hello-$kind-reuse/" \
      -e 's|^  timeout: "10"|  timeout: "10"\n  instanceReuse: {maxEvents: 1000}|' \
      "examples/$( [[ $kind == py ]] && echo python || echo js )-hello/function.yaml" >"$work/reuse/$kind.yaml"
done
"$bin" up examples "$work/fallback" "$work/reuse" --listen 127.0.0.1:18080 --no-watch --cache-dir "$work/cache" --state-dir "$work/state" >"$work/up.out" 2>"$work/up.err" &
pids+=($!)
"$bin" bench ceiling --listen 127.0.0.1:18081 >/dev/null &
pids+=($!)
"$wasmtime_bin" serve -S cli --addr 127.0.0.1:18082 examples/wasm/http-hello.wasm >/dev/null 2>&1 &
pids+=($!)
wait_http 127.0.0.1:18080/healthz
wait_http 127.0.0.1:18081
wait_http 127.0.0.1:18082
# Let the background compiles of optimized code finish first (the Python
# runtime's takes a while), so that they do not compete with the load.
while "$bin" function ls --url http://127.0.0.1:18080 | awk '$4 == "baseline" {found=1} END {exit !found}'; do
  sleep 1
done

{
  echo "# Benchmark results"
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -sr), $("$wasmtime_bin" --version); \`bash benches/run.sh\`, all in one run."
  echo
} >"$out"

# A busy source function gets its own snapshot after its first events under
# load (README, `wasmless up`): the Python and JavaScript rows measure that
# steady state, not the seconds it takes to make one.
step "warming the Python and JavaScript hellos into their own snapshots"
printf 'wrk.method = "POST"\nwrk.body = "bench"\nwrk.headers["Content-Type"] = "text/plain"\n' >"$work/warm.lua"
# code NAME: the CODE column of `function ls` for NAME.
code() { "$bin" function ls --url http://127.0.0.1:18080 | awk -v n="$1" '$1 == n {print $4}'; }
for name in hello-py hello-js; do
  for _ in $(seq 1 30); do
    [[ $(code "$name") == snapshot* ]] && break
    wrk -t1 -c8 -d2s -s "$work/warm.lua" "http://127.0.0.1:18080/$name" >/dev/null
  done
done
for _ in $(seq 1 300); do
  [[ $(code hello-py) == snapshot && $(code hello-js) == snapshot ]] && break
  sleep 1
done
[[ $(code hello-py) == snapshot && $(code hello-js) == snapshot ]] \
  || echo "warning: not both hellos run on their snapshot's optimized code (see $work/up.err)" >&2

step "HTTP throughput (wrk -t1 -c8 -d$duration)"
declare -A rps p50 p99
run_load() {
  local key=$1 url=$2 post=${3:-}
  step "  $key"
  read -r rps[$key] p50[$key] p99[$key] < <(load "$url" "$post")
}
run_load ceiling http://127.0.0.1:18081/
run_load wasmless http://127.0.0.1:18080/hello post
run_load wasi-http http://127.0.0.1:18080/http-hello/
run_load wasi-command http://127.0.0.1:18080/shout post
run_load wasmtime-serve http://127.0.0.1:18082/
run_load python http://127.0.0.1:18080/hello-py post
run_load python-image http://127.0.0.1:18080/hello-py-image post
run_load python-reuse http://127.0.0.1:18080/hello-py-reuse post
run_load javascript http://127.0.0.1:18080/hello-js post
run_load javascript-reuse http://127.0.0.1:18080/hello-js-reuse post
# One client sending back to back: steady load with no overlap, where each
# event waits for the instance made after the one before.
CONNECTIONS=1 run_load python-c1 http://127.0.0.1:18080/hello-py post
CONNECTIONS=1 run_load javascript-c1 http://127.0.0.1:18080/hello-js post
{
  echo "## HTTP hello world, \`wrk -t1 -c8 -d$duration --latency\` on loopback"
  echo
  echo "| server | req/s | ratio to ceiling | p50 ms | p99 ms | p99 ratio to ceiling |"
  echo "|---|---:|---:|---:|---:|---:|"
  for key in ceiling wasmless wasi-http wasi-command wasmtime-serve python python-image python-reuse javascript javascript-reuse python-c1 javascript-c1; do
    case $key in
      ceiling) label="bare hyper server (the ceiling)";;
      wasmless) label="wasmless up, wasmless-world hello (SDK)";;
      wasi-http) label="wasmless up, wasi:http hello";;
      wasi-command) label="wasmless up, WASI command (shout)";;
      wasmtime-serve) label="wasmtime serve, the same wasi:http hello";;
      python) label="wasmless up, Python hello (CPython in wasm)";;
      python-image) label="wasmless up, the same Python hello on its image runtime (a local python3 process)";;
      python-reuse) label="wasmless up, the same Python hello, instanceReuse maxEvents 1000";;
      javascript) label="wasmless up, JavaScript hello (Boa in wasm)";;
      javascript-reuse) label="wasmless up, the same JavaScript hello, instanceReuse maxEvents 1000";;
      python-c1) label="wasmless up, Python hello, one client back to back (wrk -c1)";;
      javascript-c1) label="wasmless up, JavaScript hello, one client back to back (wrk -c1)";;
    esac
    python3 -c "
r, c = ${rps[$key]}, ${rps[ceiling]}
print('| $label | %.0f | %.2f | %.3f | %.3f | %.2f |' % (r, r / c, ${p50[$key]}, ${p99[$key]}, ${p99[$key]} / ${p99[ceiling]}))"
  done
  python3 -c "print(); print('wasi:http hello through wasmless ÷ wasmtime serve: %.2f× the req/s' % (${rps[wasi-http]} / ${rps[wasmtime-serve]}))"
  python3 -c "print(); print('Python hello, wasm ÷ image fallback: %.2f× the req/s' % (${rps[python]} / ${rps[python-image]}))"
  python3 -c "print(); print('Instance reuse ÷ a fresh instance per event: Python %.2f×, JavaScript %.2f× the req/s' % (${rps[python-reuse]} / ${rps[python]}, ${rps[javascript-reuse]} / ${rps[javascript]}))"
  echo
} >>"$out"

step "cold starts ($trials trials per kind and cache state)"
{
  echo "## Deploy to first response, \`wasmless bench cold-start --trials $trials\`"
  echo
  "$bin" bench cold-start --url http://127.0.0.1:18080 --trials "$trials"
  echo
} >>"$out"

step "warm requests, instances made ahead and made with each event"
# A second up that makes every instance with its event, beside the first.
mkdir -p "$work/inline"
"$bin" up "$work/inline" --listen 127.0.0.1:18084 --ready-idle 0 --no-watch --cache-dir "$work/cache" --state-dir "$work/state-inline" >"$work/up-inline.out" 2>"$work/up-inline.err" &
pids+=($!)
wait_http 127.0.0.1:18084/healthz
requests=200
if [[ -n "${QUICK:-}" ]]; then requests=30; fi
{
  echo "## Warm requests, \`wasmless bench warm --requests $requests\` (10 ms apart)"
  echo
  echo "Each function's next instance made ahead of its event (the default):"
  echo
  "$bin" bench warm --url http://127.0.0.1:18080 --requests "$requests"
  echo
  echo "Every instance made with its event (\`--ready-idle 0\`), the same run:"
  echo
  "$bin" bench warm --url http://127.0.0.1:18084 --requests "$requests"
  echo
} >>"$out"
for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
wait 2>/dev/null || true
pids=()

step "memory of idle functions"
mkdir -p "$work/empty"
calc() { python3 -c "print('%.3f' % ($1))"; }
# How many functions run code of tier $1 (reads the whole listing: no
# early exit, which would break the pipe).
code_count() { "$bin" function ls --url http://127.0.0.1:18083 | awk -v tier="$1" '$4 == tier {n++} END {print n + 0}'; }
{
  echo "## Resident memory of the host with idle functions (distinct copies of the 70 KiB hello)"
  echo
  echo "Loaded: every function compiled and kept loaded (--unload-idle 0). Parked: the same functions (loaded from the compile cache), unloaded after 2 s idle (--unload-idle 2s; the default is 5m)."
  echo
  echo "| state | functions deployed | VmRSS MiB | of which anonymous | of which file-backed | VmRSS MiB per function over the empty host |"
  echo "|---|---:|---:|---:|---:|---:|"
} >>"$out"
for mode in loaded parked; do
  unload=0
  [[ $mode == parked ]] && unload=2s
  "$bin" up "$work/empty" --listen 127.0.0.1:18083 --no-watch --unload-idle "$unload" --cache-dir "$work/cache-mem" --state-dir "$work/state" >/dev/null 2>"$work/mem.err" &
  mem_pid=$!
  pids+=($mem_pid)
  wait_http 127.0.0.1:18083/healthz
  rss() { awk -v key="${1:-VmRSS}:" '$1 == key {print $2}' "/proc/$mem_pid/status"; }
  base=$(rss)
  echo "| $mode | 0 | $(calc "$base / 1024") | $(calc "$(rss RssAnon) / 1024") | $(calc "$(rss RssFile) / 1024") | |" >>"$out"
  deployed=0
  for n in "${counts[@]}"; do
    step "  $mode: $n functions"
    "$bin" bench deploy --url http://127.0.0.1:18083 --count $((n - deployed)) --prefix "idle-$n" >/dev/null 2>&1
    deployed=$n
    # Wait for the background compiles (idle functions run optimized
    # code), and when parking, until every function is parked.
    while (($(code_count baseline) > 0)); do sleep 0.5; done
    if [[ $mode == parked ]]; then
      while (($(code_count optimized) > 0)); do sleep 0.5; done
    fi
    sleep 1
    now=$(rss)
    echo "| $mode | $n | $(calc "$now / 1024") | $(calc "$(rss RssAnon) / 1024") | $(calc "$(rss RssFile) / 1024") | $(calc "($now - $base) / 1024 / $n") |" >>"$out"
  done
  kill "$mem_pid"
  wait "$mem_pid" 2>/dev/null || true
done
echo >>"$out"

if [[ -z "${QUICK:-}" ]]; then
  step "criterion: host inner steps"
  {
    echo "## Inner steps, \`cargo bench --bench host\` (criterion medians)"
    echo
    echo '```'
    cargo bench --bench host -- --warm-up-time 1 --measurement-time 3 2>/dev/null | grep -E '^[a-z_]+/|time:' || true
    echo '```'
    echo
  } >>"$out"
  step "triggers"
  {
    echo "## Triggers, \`cargo bench --bench triggers\`"
    echo
    cargo bench --bench triggers 2>/dev/null
    echo
  } >>"$out"
fi

cat "$out"
