#!/usr/bin/env bash
# Starts an Apache Kafka broker (4.4, KRaft, one node, from its jars on
# Maven Central) on loopback for the tests of the Kafka client's TLS and
# SASL: a SASL_SSL listener (mechanism PLAIN, user `alice`, password
# `alice-secret`, a certificate for 127.0.0.1 signed by a CA made here) and
# a PLAINTEXT one. State, certificates and its log go to DIR.
#
#   bash tests/kafka/broker.sh DIR
#
# Prints `key=value` lines on stdout once the broker listens: sasl_ssl=,
# plaintext= (host:port), ca= (the CA certificate, PEM) and pid= (the
# broker's process; stop it with SIGTERM). Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
dir=${1:?usage: broker.sh DIR}
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
cache="${WASMLESS_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/wasmless/kafka-broker}"
libs="$cache/libs"

# --- the broker's jars, once --------------------------------------------
for tool in java mvn; do
  if ! command -v "$tool" >/dev/null; then
    echo "kafka broker: installing Java and Maven from Debian ..." >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends default-jre-headless maven >/dev/null
    break
  fi
done
inputs=$(sha256sum "$here/pom.xml" | cut -d' ' -f1)
# Tests start brokers side by side: one fetch at a time, the others wait
# for it and use its jars.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if [[ ! -f "$cache/.stamp" || "$(cat "$cache/.stamp")" != "$inputs" ]]; then
  echo "kafka broker: fetching its jars from Maven Central into $libs ..." >&2
  rm -rf "$libs.tmp"
  mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
    -DoutputDirectory="$libs.tmp" >&2
  rm -rf "$libs"
  mv "$libs.tmp" "$libs"
  echo "$inputs" >"$cache/.stamp"
fi
# Closed, so that the broker started below does not hold the lock.
exec 9>&-

# --- certificates ---------------------------------------------------------
openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 -subj "/CN=wasmless-kafka-test-ca" \
  -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
  -keyout "$dir/broker.key" -out "$dir/broker.csr" 2>/dev/null
echo "subjectAltName=IP:127.0.0.1,DNS:localhost" >"$dir/broker.ext"
openssl x509 -req -sha256 -days 2 -in "$dir/broker.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
  -CAcreateserial -extfile "$dir/broker.ext" -out "$dir/broker.crt" 2>/dev/null
# A PEM key store: the (PKCS#8) key, then the certificate.
cat "$dir/broker.key" "$dir/broker.crt" >"$dir/broker.pem"

# --- configuration ----------------------------------------------------------
read -r plaintext sasl_ssl controller < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://127.0.0.1:$plaintext,SASL_SSL://127.0.0.1:$sasl_ssl,CONTROLLER://127.0.0.1:$controller
advertised.listeners=PLAINTEXT://127.0.0.1:$plaintext,SASL_SSL://127.0.0.1:$sasl_ssl
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";
ssl.keystore.type=PEM
ssl.keystore.location=$dir/broker.pem
log.dirs=$dir/data
num.partitions=2
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
PROPS

# --- start -----------------------------------------------------------------
java_opts=(-Xms256m -Xmx512m -XX:+UseSerialGC -Dlog4j2.level=WARN -cp "$libs/*")
cluster_id=$(python3 -c 'import base64, uuid; print(base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))')
java "${java_opts[@]}" kafka.tools.StorageTool format -t "$cluster_id" -c "$dir/server.properties" \
  >"$dir/format.log" 2>&1 || { cat "$dir/format.log" >&2; exit 1; }
setsid java "${java_opts[@]}" kafka.Kafka "$dir/server.properties" >"$dir/broker.log" 2>&1 </dev/null &
pid=$!
deadline=$((SECONDS + 90))
until python3 -c "import socket; socket.create_connection(('127.0.0.1', $sasl_ssl), 1).close()" 2>/dev/null; do
  if ! kill -0 "$pid" 2>/dev/null || ((SECONDS >= deadline)); then
    echo "kafka broker: did not start; its log:" >&2
    tail -n 40 "$dir/broker.log" >&2
    kill "$pid" 2>/dev/null || true
    exit 1
  fi
  sleep 0.3
done
echo "kafka broker: up on 127.0.0.1:$sasl_ssl (SASL_SSL) and 127.0.0.1:$plaintext (PLAINTEXT)" >&2
echo "sasl_ssl=127.0.0.1:$sasl_ssl"
echo "plaintext=127.0.0.1:$plaintext"
echo "ca=$dir/ca.crt"
echo "pid=$pid"
