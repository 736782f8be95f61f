#!/usr/bin/env bash
# Builds every example (and the test guests) to wasm, into examples/wasm/.
set -euo pipefail
cd "$(dirname "$0")/.."
out=examples/wasm
# Quiet when the targets are already there.
rustup target add wasm32-wasip1 wasm32-wasip2 >/dev/null 2>&1 || rustup target add wasm32-wasip1 wasm32-wasip2
mkdir -p "$out"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
echo "building components (wasm32-wasip2) ..." >&2
cargo build --release --target wasm32-wasip2 -p hello -p echo -p http-hello -p misbehave -p recorder -p fetcher
echo "building command modules (wasm32-wasip1) ..." >&2
cargo build --release --target wasm32-wasip1 -p command
for name in hello echo http_hello misbehave recorder fetcher; do
  cp "$target_dir/wasm32-wasip2/release/$name.wasm" "$out/${name//_/-}.wasm"
done
cp "$target_dir/wasm32-wasip1/release/command.wasm" "$out/command.wasm"
ls -l "$out"/*.wasm >&2
# The runtimes of source functions (JavaScript pre-initialized, Python), by
# the recipe the Dockerfile uses too. The tests pass the binary they run as
# WASMLESS_BIN, so nothing is built twice.
bash runtimes/build.sh
