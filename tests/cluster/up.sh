#!/usr/bin/env bash
# Brings up a single-node Kubernetes on this machine, built here from the
# Kubernetes Go modules (build.sh) with Debian's containerd, runc and CNI
# plugins, and prints the admin kubeconfig's path on stdout. Progress goes
# to stderr; every process it starts is stopped by down.sh. Run as root.
#
#   export KUBECONFIG=$(bash tests/cluster/up.sh)
#
# A second run with the cluster up only checks that it is healthy.
set -euo pipefail
source "$(dirname "$0")/env.sh"
step() { echo "== cluster: $*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }
[[ $EUID -eq 0 ]] || die "must run as root (it starts containerd and a kubelet)"

# --- packages -----------------------------------------------------------
packages=(containerd runc containernetworking-plugins iptables conntrack umoci debootstrap openssl)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# A cluster whose processes were killed (a reboot, a stopped session)
# leaves state behind that would bring its old pods back: start clean.
if [[ -d "$CLUSTER_DIR" ]] && ! { [[ -f "$CLUSTER_RUN/kube-apiserver.pid" ]] && kill -0 "$(cat "$CLUSTER_RUN/kube-apiserver.pid")" 2>/dev/null; }; then
  step "a previous cluster did not stop cleanly: removing what it left"
  bash "$cluster_here/down.sh"
fi

step "kubernetes binaries"
bash "$cluster_here/build.sh" >/dev/null
export PATH="$CLUSTER_BIN:$PATH"

mkdir -p "$CLUSTER_DIR"/{pki,logs,cni,cni-ipam} "$CLUSTER_RUN"
logs="$CLUSTER_DIR/logs"

# --- certificates and kubeconfigs ---------------------------------------
pki="$CLUSTER_DIR/pki"
if [[ ! -f "$pki/ca.crt" ]]; then
  step "certificates"
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -subj "/CN=wasmless-test-ca" \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
fi
# issue NAME SUBJECT [SUBJECT_ALT_NAMES]: a key and a certificate signed by
# the cluster's CA, for clients and servers alike.
issue() {
  local name=$1 subject=$2 sans=${3:-}
  [[ -f "$pki/$name.crt" ]] && return 0
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$pki/$name.ext"
  openssl req -newkey rsa:2048 -nodes -subj "$subject" \
    -keyout "$pki/$name.key" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -sha256 -days 3650 -in "$pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -extfile "$pki/$name.ext" -out "$pki/$name.crt" 2>/dev/null
}
first_service_ip="${SERVICE_CIDR%.*/*}.1"
issue apiserver "/CN=kube-apiserver" \
  "IP:$NODE_IP,IP:$first_service_ip,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
issue admin "/O=system:masters/CN=wasmless-test-admin"
issue controller-manager "/CN=system:kube-controller-manager"
issue scheduler "/CN=system:kube-scheduler"
issue kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
issue kube-proxy "/CN=system:kube-proxy"
issue coredns "/CN=system:coredns"
# The aggregation layer (metrics.k8s.io): the API server's client for
# extension API servers, and metrics-server's own certificate.
issue front-proxy-client "/CN=front-proxy-client"
issue metrics-server "/CN=system:metrics-server" "IP:$NODE_IP,DNS:metrics-server.kube-system.svc"
kubeconfig() {
  local name=$1
  cat >"$CLUSTER_DIR/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: wasmless-test
  cluster:
    server: $API_SERVER
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$pki/$name.crt")
    client-key-data: $(base64 -w0 "$pki/$name.key")
contexts:
- name: wasmless-test
  context:
    cluster: wasmless-test
    user: $name
current-context: wasmless-test
EOF
  chmod 600 "$CLUSTER_DIR/$name.kubeconfig"
}
for name in admin controller-manager scheduler kubelet kube-proxy coredns metrics-server; do kubeconfig "$name"; done

# --- the node's network -------------------------------------------------
step "network: bridge $BRIDGE with $NODE_IP, pods in $POD_CIDR, services in $SERVICE_CIDR"
ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
ip -4 addr show dev "$BRIDGE" | grep -q "inet $NODE_IP/" || ip addr add "$NODE_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Kernel settings a node needs, and those the kubelet sets itself; down.sh
# puts the saved values back.
sysctls=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops)
if [[ ! -f "$CLUSTER_DIR/sysctl.saved" ]]; then
  for s in "${sysctls[@]}"; do echo "$s=$(sysctl -n "$s")"; done >"$CLUSTER_DIR/sysctl.saved"
fi
sysctl -qw net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1
# Mount propagation into pods needs a shared root.
mount --make-rshared /
# The kubelet reads the kernel log.
[[ -e /dev/kmsg ]] || ln -s /dev/console /dev/kmsg

cat >"$CLUSTER_DIR/cni/10-wasmless.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "wasmless-test",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CLUSTER_DIR/cni-ipam",
        "ranges": [[{"subnet": "$POD_CIDR", "rangeStart": "${POD_CIDR%.*/*}.10", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "198.18.0.0/15"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
# Pods get the cluster's DNS (CoreDNS on the node's address, below) and no
# upstream name servers: nothing outside the cluster is theirs to reach.
: >"$CLUSTER_DIR/resolv.conf"

# --- processes ----------------------------------------------------------
# start NAME COMMAND...: runs COMMAND in its own session, logging to
# logs/NAME.log, unless it runs already.
start() {
  local name=$1
  shift
  local pidfile="$CLUSTER_RUN/$name.pid"
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    return 0
  fi
  setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null &
  echo $! >"$pidfile"
}
# wait_for WHAT SECONDS COMMAND...: polls COMMAND until it succeeds.
wait_for() {
  local what=$1 limit=$2
  shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      echo "cluster: $what not ready after ${limit}s; last log lines:" >&2
      tail -n 30 "$logs/${what%% *}.log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
}
admin_kubectl() { kubectl --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

step "etcd"
start etcd etcd --name wasmless-test --data-dir "$CLUSTER_DIR/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster wasmless-test=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --quota-backend-bytes 4294967296 --log-level warn
wait_for etcd 60 curl -fsS http://127.0.0.1:2381/health

step "kube-apiserver"
start kube-apiserver kube-apiserver \
  --etcd-servers http://127.0.0.1:2379 \
  --bind-address "$NODE_IP" --advertise-address "$NODE_IP" --secure-port 6443 \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction,OwnerReferencesPermissionEnforcement \
  --allow-privileged=true \
  --client-ca-file "$pki/ca.crt" \
  --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
  --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types InternalIP \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
  --requestheader-client-ca-file "$pki/ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key" \
  --enable-aggregator-routing=true \
  --profiling=false
wait_for kube-apiserver 120 admin_kubectl get --raw /readyz

step "kube-controller-manager, kube-scheduler"
start kube-controller-manager kube-controller-manager \
  --kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$CLUSTER_DIR/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
  --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --horizontal-pod-autoscaler-sync-period 5s \
  --profiling=false
start kube-scheduler kube-scheduler \
  --kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig "$CLUSTER_DIR/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --profiling=false

step "coredns"
# What the kubernetes plugin reads, as the upstream system:coredns role.
admin_kubectl apply -f - >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: system:coredns
subjects:
- apiGroup: rbac.authorization.k8s.io
  kind: User
  name: system:coredns
EOF
cat >"$CLUSTER_DIR/Corefile" <<EOF
cluster.local:53 in-addr.arpa:53 {
    bind $NODE_IP
    errors
    health 127.0.0.1:8053
    kubernetes cluster.local in-addr.arpa {
        kubeconfig $CLUSTER_DIR/coredns.kubeconfig wasmless-test
        pods insecure
        ttl 5
    }
}
EOF
start coredns coredns -conf "$CLUSTER_DIR/Corefile"
wait_for coredns 60 curl -fsS http://127.0.0.1:8053/health

step "containerd"
cat >"$CLUSTER_DIR/containerd.toml" <<EOF
version = 2
root = "$CLUSTER_DIR/containerd"
state = "$CLUSTER_RUN/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  disable_apparmor = true
  tolerate_missing_hugepages_controller = true
  # Root here lacks CAP_SYS_RESOURCE: a negative OOM score adjustment (the
  # kubelet asks -998 for sandboxes) is clamped to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$CLUSTER_DIR/cni"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CLUSTER_DIR/containerd-opt"
EOF
start containerd containerd --config "$CLUSTER_DIR/containerd.toml"
wait_for containerd 60 ctr --address "$CONTAINERD_SOCK" version

step "images"
bash "$cluster_here/images.sh" >&2

step "kubelet"
cat >"$CLUSTER_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $pki/ca.crt
authorization:
  mode: Webhook
tlsCertFile: $pki/kubelet.crt
tlsPrivateKeyFile: $pki/kubelet.key
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: $CLUSTER_DIR/resolv.conf
# Nothing can be pulled, and a full disk must not evict the test's pods.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "0%"
  nodefs.available: "0%"
  nodefs.inodesFree: "0%"
  imagefs.available: "0%"
  imagefs.inodesFree: "0%"
serializeImagePulls: false
maxPods: 60
EOF
start kubelet kubelet --config "$CLUSTER_DIR/kubelet.yaml" \
  --kubeconfig "$CLUSTER_DIR/kubelet.kubeconfig" \
  --root-dir "$CLUSTER_DIR/kubelet" --cert-dir "$CLUSTER_DIR/kubelet-pki" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP"

step "kube-proxy"
cat >"$CLUSTER_DIR/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: $CLUSTER_DIR/kube-proxy.kubeconfig
mode: iptables
hostnameOverride: $NODE_NAME
clusterCIDR: $POD_CIDR
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$NODE_IP/32"]
conntrack:
  maxPerCore: 0
EOF
start kube-proxy kube-proxy --config "$CLUSTER_DIR/kube-proxy.yaml"

step "metrics-server (resource metrics for HorizontalPodAutoscalers)"
# It runs on the node like the control plane; the API server reaches it
# through an APIService whose Service points at the node's address (an
# Endpoints object: the one deprecation warning it prints is filtered).
admin_kubectl apply -f - 2> >(grep -v "v1 Endpoints is deprecated" >&2) >/dev/null <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:metrics-server
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:metrics-server
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:metrics-server}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metrics-server}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: metrics-server:system:auth-delegator
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:auth-delegator}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metrics-server}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: metrics-server-auth-reader
  namespace: kube-system
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metrics-server}]
---
apiVersion: v1
kind: Service
metadata:
  name: metrics-server
  namespace: kube-system
spec:
  ports: [{name: https, port: 443, targetPort: 4443, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata:
  name: metrics-server
  namespace: kube-system
subsets:
- addresses: [{ip: $NODE_IP}]
  ports: [{name: https, port: 4443, protocol: TCP}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1beta1.metrics.k8s.io
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  service: {name: metrics-server, namespace: kube-system, port: 443}
  caBundle: $(base64 -w0 "$pki/ca.crt")
EOF
start metrics-server metrics-server \
  --kubeconfig "$CLUSTER_DIR/metrics-server.kubeconfig" \
  --authentication-kubeconfig "$CLUSTER_DIR/metrics-server.kubeconfig" \
  --authorization-kubeconfig "$CLUSTER_DIR/metrics-server.kubeconfig" \
  --bind-address "$NODE_IP" --secure-port 4443 \
  --tls-cert-file "$pki/metrics-server.crt" --tls-private-key-file "$pki/metrics-server.key" \
  --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP \
  --metric-resolution 15s --kubelet-request-timeout 10s --profiling=false

step "waiting for node $NODE_NAME to be Ready"
node_ready() {
  [[ "$(admin_kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" == True ]]
}
wait_for kubelet 180 node_ready
wait_for kube-controller-manager 120 admin_kubectl -n default get serviceaccount default
wait_for metrics-server 120 admin_kubectl get --raw /apis/metrics.k8s.io/v1beta1/nodes/$NODE_NAME
step "ready: export KUBECONFIG=$KUBECONFIG_ADMIN"
echo "$KUBECONFIG_ADMIN"
