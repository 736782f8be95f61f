#!/usr/bin/env bash
# Stops the test cluster that up.sh started and removes what it made on the
# machine: its processes and containers, mounts, network bridge and
# namespaces, iptables chains, and its state folder. Kernel settings get
# their saved values back. The build cache (binaries, root file systems)
# stays, so the next up.sh is quick. Safe to run twice.
set -uo pipefail
source "$(dirname "$0")/env.sh"
say() { echo "== cluster down: $*" >&2; }
export PATH="$CLUSTER_BIN:$PATH"

# stop NAME: SIGTERM, then SIGKILL after a grace period.
stop() {
  local pidfile="$CLUSTER_RUN/$1.pid"
  [[ -f "$pidfile" ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$pidfile"
}

say "kubelet and kube-proxy"
stop kubelet
stop kube-proxy
if [[ -S "$CONTAINERD_SOCK" ]]; then
  say "containers"
  for task in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$task" >/dev/null 2>&1
  done
  sleep 1
fi
stop containerd
# Shims outlive containerd; theirs are those started for this socket.
pkill -KILL -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null
say "control plane, DNS and metrics"
stop metrics-server
stop coredns
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd

say "mounts"
# Deepest first: pod volumes, container root file systems, sandboxes'
# network namespaces.
for dir in "$CLUSTER_DIR" "$CLUSTER_RUN" /run/netns; do
  awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null
  done
done
for ns in /run/netns/cni-*; do [[ -e "$ns" ]] && ip netns delete "$(basename "$ns")" 2>/dev/null; done

say "network"
ip link show "$BRIDGE" >/dev/null 2>&1 && ip link delete "$BRIDGE"
# Chains of kube-proxy (KUBE-*) and of the CNI plugins (CNI-*).
kube-proxy --cleanup >/dev/null 2>&1
for table in filter nat mangle; do
  iptables -t "$table" -S 2>/dev/null | awk '$1 == "-A" && $0 ~ /(KUBE|CNI)-/' | while read -r rule; do
    iptables -t "$table" ${rule/-A/-D} 2>/dev/null
  done
  iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ { print $2 }' | while read -r chain; do
    iptables -t "$table" -F "$chain" 2>/dev/null
  done
  iptables -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^(KUBE|CNI)-/ { print $2 }' | while read -r chain; do
    iptables -t "$table" -X "$chain" 2>/dev/null
  done
done

if [[ -f "$CLUSTER_DIR/sysctl.saved" ]]; then
  say "kernel settings"
  while IFS= read -r line; do sysctl -qw "$line" 2>/dev/null; done <"$CLUSTER_DIR/sysctl.saved"
fi

say "state"
rm -rf "$CLUSTER_DIR" "$CLUSTER_RUN" /var/log/pods /var/log/containers
say "done"
