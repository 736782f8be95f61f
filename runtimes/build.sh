#!/usr/bin/env bash
# Builds the runtimes of source functions into runtimes/dist/: the one
# recipe that the examples' build, the tests, CI and the Dockerfile share.
#
#   js.wasm      the JavaScript runtime (the Boa engine, a Rust component),
#                pre-initialized: `wasmless pre-init` runs its init with no
#                function named and writes the snapshot of its memory
#                (wasmtime's Wizer), so no instance builds the engine again;
#   python.wasm  CPython as a component (runtimes/python/build.sh).
#
# WASMLESS_BIN names the wasmless binary that pre-initializes; without it
# target/debug/wasmless is built. Each part is skipped when up to date.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="${WASMLESS_BIN:-}"
if [[ -z "$bin" ]]; then
  cargo build --bin wasmless
  bin="$target_dir/debug/wasmless"
fi
echo "building the JavaScript runtime (wasm32-wasip2) ..." >&2
cargo build --release --target wasm32-wasip2 -p wasmless-js
mkdir -p runtimes/dist
js_built="$target_dir/wasm32-wasip2/release/wasmless_js.wasm"
# The snapshot depends on the runtime and on the pre-initializer (wasmtime's
# version, src/snapshot.rs), not on when the binary was last linked: the
# binary embeds js.wasm (build.rs), so a test of the mtime would rebuild
# each after the other.
js_inputs="$(cat "$js_built" src/snapshot.rs | sha256sum | cut -d' ' -f1) $(grep -A1 '^name = "wasmtime-wizer"$' Cargo.lock | tail -1)"
if [[ ! -f runtimes/dist/js.wasm || "$(cat runtimes/dist/js.wasm.inputs 2>/dev/null)" != "$js_inputs" ]]; then
  echo "pre-initializing the JavaScript runtime (a snapshot of its Boa engine) ..." >&2
  "$bin" pre-init "$js_built" runtimes/dist/js.wasm.tmp
  mv runtimes/dist/js.wasm.tmp runtimes/dist/js.wasm
  echo "$js_inputs" > runtimes/dist/js.wasm.inputs
fi
bash runtimes/python/build.sh >&2
