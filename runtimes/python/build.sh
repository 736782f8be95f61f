#!/usr/bin/env bash
# Builds the Python runtime component (runtimes/dist/python.wasm) from
# app.py with componentize-py, which embeds CPython and its standard library
# and pre-initializes them. Skips the build when nothing changed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/runtimes/dist/python.wasm"
version="0.25.1"
venv="${WASMLESS_PY_VENV:-$root/target/componentize-py-$version}"
stamp="$out.inputs"
inputs="$(cat "$here"/*.py "$root/wit/wasmless.wit" | sha256sum | cut -d' ' -f1) $version"
if [[ -f "$out" && -f "$stamp" && "$(cat "$stamp")" == "$inputs" ]]; then
  echo "python runtime: up to date ($out)"
  exit 0
fi
if [[ ! -x "$venv/bin/componentize-py" ]]; then
  echo "python runtime: installing componentize-py $version into $venv ..."
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "componentize-py==$version"
fi
mkdir -p "$(dirname "$out")"
echo "python runtime: building $out (CPython in a component; a few seconds) ..."
"$venv/bin/componentize-py" --quiet -d "$root/wit" -w function-with-init componentize app -p "$here" -o "$out.tmp"
mv "$out.tmp" "$out"
echo "$inputs" > "$stamp"
ls -la "$out"
