#!/usr/bin/env bash
# Builds the images the test cluster runs, with no registry, and imports
# them into containerd's k8s.io namespace: the pod sandbox (pause), the
# wasmless image (the binary the tests run, $WASMLESS_BIN, and the wasm
# runtimes of runtimes/dist), and the Python and Node.js fallback runtimes.
# Root file systems come from debootstrap (Debian bookworm, as the
# Dockerfile's base); images are OCI layouts written by umoci. Each is
# rebuilt only when what it is made of changed.
set -euo pipefail
source "$(dirname "$0")/env.sh"
repo="$(cd "$cluster_here/../.." && pwd)"
say() { echo "images: $*" >&2; }
export PATH="$CLUSTER_BIN:$PATH"
oci="$CLUSTER_CACHE/oci"
roots="$CLUSTER_CACHE/rootfs"
mkdir -p "$oci" "$roots"
ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# A Debian root file system, made once.
base="$roots/bookworm"
if [[ ! -f "$base/.complete" ]]; then
  say "debootstrap bookworm (minbase, once) ..."
  rm -rf "$base"
  debootstrap --variant=minbase bookworm "$base" http://deb.debian.org/debian >"$CLUSTER_CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CLUSTER_CACHE/debootstrap.log" >&2; exit 1; }
  rm -rf "$base"/var/cache/apt/archives/*.deb "$base"/var/lib/apt/lists/*
  touch "$base/.complete"
fi

# A root file system of packages on top of the base, made once per list.
with_packages() {
  local name=$1
  shift
  local root="$roots/$name"
  if [[ ! -f "$root/.complete" || "$(cat "$root/.complete")" != "$*" ]]; then
    say "root file system $name: $* ..."
    rm -rf "$root"
    cp -a "$base" "$root"
    rm -f "$root/.complete"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount -t proc proc "$root/proc"
    trap 'umount "$root/proc" 2>/dev/null || true' RETURN
    chroot "$root" /bin/sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $*" \
      >"$CLUSTER_CACHE/$name-apt.log" 2>&1 || { tail -20 "$CLUSTER_CACHE/$name-apt.log" >&2; exit 1; }
    umount "$root/proc"
    trap - RETURN
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    : >"$root/etc/resolv.conf"
    echo "$*" >"$root/.complete"
  fi
  echo "$root"
}

# image NAME:TAG ROOT STAMP [umoci config flags...]: an image whose only
# layer is ROOT (a folder), imported unless the one with STAMP is there.
image() {
  local ref=$1 root=$2 stamp=$3
  shift 3
  local name=${ref%:*} tag=${ref##*:}
  local dir="$oci/${name//\//_}"
  stamp=$(full_stamp "$stamp" "$@")
  current "$ref" "$stamp" && return 0
  # Built before (a new cluster has an empty containerd): import it again.
  if [[ -f "$dir.stamp" && "$(cat "$dir.stamp")" == "$stamp" && -f "$dir.tar" ]]; then
    say "$ref (import)"
    ctr_ images import --base-name "$name" "$dir.tar" >/dev/null
    return 0
  fi
  say "$ref ..."
  rm -rf "$dir" "$dir.bundle" "$dir.tar"
  umoci init --layout "$dir"
  umoci new --image "$dir:$tag"
  umoci unpack --image "$dir:$tag" "$dir.bundle" >/dev/null
  cp -a "$root/." "$dir.bundle/rootfs/"
  rm -f "$dir.bundle/rootfs/.complete"
  umoci repack --image "$dir:$tag" "$dir.bundle"
  umoci config --image "$dir:$tag" --tag "$tag" --config.env "PATH=$image_path" "$@"
  rm -rf "$dir.bundle"
  tar -C "$dir" -cf "$dir.tar" .
  ctr_ images import --base-name "$name" "$dir.tar" >/dev/null
  echo "$stamp" >"$dir.stamp"
}

image_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
stamp_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# full_stamp STAMP CONFIG...: what an image is made of, with its config.
full_stamp() {
  local stamp=$1
  shift
  echo "$stamp $(echo "PATH=$image_path $*" | sha256sum | cut -c1-16)"
}

# current NAME:TAG FULL_STAMP: whether the image made from STAMP is imported.
current() {
  local name=${1%:*}
  local dir="$oci/${name//\//_}"
  [[ -f "$dir.stamp" && "$(cat "$dir.stamp")" == "$2" ]] && ctr_ images ls -q | grep -qx "$1"
}

# The pod sandbox: a static program that waits and reaps.
pause_root="$roots/pause"
mkdir -p "$pause_root"
(cd "$cluster_here/kube" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$pause_root/pause" ./pause)
image "$PAUSE_IMAGE" "$pause_root" "$(stamp_of "$pause_root/pause")" \
  --config.entrypoint /pause --config.user 65535:65535

# The fallback runtimes, with the catalog's image names.
python_root=$(with_packages python python3 python3-pip)
install -D -m 644 "$repo/runtimes/images/python/server.py" "$python_root/runtime/server.py"
install -D -m 644 "$repo/runtimes/python/_wasmless_request.py" "$python_root/runtime/_wasmless_request.py"
image ghcr.io/wasmless/runtime-python:0.1.0 "$python_root" "$(stamp_of "$python_root/runtime/server.py" "$python_root/runtime/_wasmless_request.py" "$python_root/.complete")" \
  --config.entrypoint python3 --config.entrypoint /runtime/server.py --config.user 65532:65532 \
  --config.env PYTHONUNBUFFERED=1 --config.env PYTHONDONTWRITEBYTECODE=1 \
  --config.env FUNC_DIR=/kubeless --config.env FUNC_PORT=8080
# A user's image as many are: the same runtime, run as root (no USER).
image wasmless.test/python-root:1 "$python_root" "$(stamp_of "$python_root/runtime/server.py" "$python_root/runtime/_wasmless_request.py" "$python_root/.complete")" \
  --config.entrypoint python3 --config.entrypoint /runtime/server.py \
  --config.env PYTHONUNBUFFERED=1 --config.env FUNC_DIR=/kubeless --config.env FUNC_PORT=8080
node_root=$(with_packages nodejs nodejs npm)
install -D -m 644 "$repo/runtimes/images/nodejs/server.js" "$node_root/runtime/server.js"
install -D -m 644 "$repo/runtimes/js/src/express.js" "$node_root/runtime/express.js"
image ghcr.io/wasmless/runtime-nodejs:0.1.0 "$node_root" "$(stamp_of "$node_root/runtime/server.js" "$node_root/runtime/express.js" "$node_root/.complete")" \
  --config.entrypoint node --config.entrypoint /runtime/server.js --config.user 65532:65532 \
  --config.env FUNC_DIR=/kubeless --config.env FUNC_PORT=8080
say "imported before $WASMLESS_IMAGE: $(ctr_ images ls -q | grep -v '^sha256:' | tr '\n' ' ')"

# wasmless: the binary and the runtimes, as the Dockerfile lays them out.
bin="${WASMLESS_BIN:-$repo/target/debug/wasmless}"
if [[ ! -x "$bin" ]]; then
  say "no wasmless binary at $bin yet: $WASMLESS_IMAGE is made when the end-to-end tests start (or set WASMLESS_BIN)"
  exit 0
fi
for runtime in python js; do
  [[ -f "$repo/runtimes/dist/$runtime.wasm" ]] || { echo "images: runtimes/dist/$runtime.wasm is missing: run bash examples/build.sh" >&2; exit 1; }
done
# The Dockerfile's runtime packages: OpenSSL (librdkafka's TLS) and the CA roots.
wasmless_base=$(with_packages wasmless-base libssl3 ca-certificates)
stamp=$(stamp_of "$bin" "$repo/runtimes/dist/python.wasm" "$repo/runtimes/dist/js.wasm" "$wasmless_base/.complete")
config=(--config.entrypoint /usr/local/bin/wasmless --config.cmd host --config.user 65532:65532)
if ! current "$WASMLESS_IMAGE" "$(full_stamp "$stamp" "${config[@]}")"; then
  wasmless_root="$roots/wasmless"
  rm -rf "$wasmless_root"
  cp -a "$wasmless_base" "$wasmless_root"
  install -D -m 755 "$bin" "$wasmless_root/usr/local/bin/wasmless"
  strip --strip-debug "$wasmless_root/usr/local/bin/wasmless" 2>/dev/null || true
  install -d "$wasmless_root/usr/local/share/wasmless/runtimes"
  install -m 644 "$repo/runtimes/dist/python.wasm" "$repo/runtimes/dist/js.wasm" "$wasmless_root/usr/local/share/wasmless/runtimes/"
  # The runtimes' optimized code for the host's engine: no pod compiles an
  # interpreter (the host's default --precompiled-dir).
  say "precompiling the source runtimes for the image ..."
  "$bin" runtimes --precompile "$wasmless_root/usr/local/share/wasmless/precompiled" \
    --runtimes-dir "$repo/runtimes/dist" >/dev/null
  chmod -R a+rX "$wasmless_root/usr/local/share/wasmless/precompiled"
  image "$WASMLESS_IMAGE" "$wasmless_root" "$stamp" "${config[@]}"
  rm -rf "$wasmless_root"
fi
say "imported: $(ctr_ images ls -q | grep -v '^sha256:' | tr '\n' ' ')"
