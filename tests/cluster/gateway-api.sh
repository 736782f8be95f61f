#!/usr/bin/env bash
# Prints the folder of the Gateway API's standard CRDs, from the
# sigs.k8s.io/gateway-api Go module at $GATEWAY_API_VERSION (downloaded
# through the Go module proxy once, then from Go's module cache).
set -euo pipefail
source "$(dirname "$0")/env.sh"
dir=$(cd /tmp && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[[ -d "$dir/config/crd/standard" ]] || { echo "gateway-api.sh: no CRDs in the module at $dir" >&2; exit 1; }
echo "$dir/config/crd/standard"
