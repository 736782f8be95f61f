# Shared by the test cluster's scripts (sourced): where things live and the
# addresses it uses. Every address is in 198.18.0.0/15 (RFC 2544, never
# routed) on a bridge this cluster creates, or on loopback.
cluster_here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# Builds kept between runs: the Kubernetes binary, root file systems, images.
CLUSTER_CACHE="${WASMLESS_CLUSTER_CACHE:-/var/cache/wasmless-cluster}"
# The running cluster: certificates, etcd's data, logs, containerd, kubelet.
CLUSTER_DIR="${WASMLESS_CLUSTER_DIR:-/var/lib/wasmless-cluster}"
CLUSTER_BIN="$CLUSTER_CACHE/bin"
CLUSTER_RUN=/run/wasmless-cluster
CONTAINERD_SOCK="$CLUSTER_RUN/containerd.sock"
NODE_NAME=wasmless-node
# The node's address, held by the pod bridge (pods' gateway).
NODE_IP=198.18.0.1
BRIDGE=wlbr0
POD_CIDR=198.18.0.0/24
SERVICE_CIDR=198.19.0.0/16
API_SERVER="https://$NODE_IP:6443"
KUBECONFIG_ADMIN="$CLUSTER_DIR/admin.kubeconfig"
# Images the cluster runs; none can be pulled.
PAUSE_IMAGE=wasmless.test/pause:1
WASMLESS_IMAGE=wasmless.test/wasmless:e2e
# The Gateway API release whose CRDs the HTTPRoute test installs (from its Go module).
GATEWAY_API_VERSION=v1.4.1
