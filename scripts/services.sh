#!/usr/bin/env bash
# Local Kafka (KRaft, single node, built from Maven Central jars) and Redis (AOF on),
# both on loopback. Idempotent: `start` leaves running services alone.
#   scripts/services.sh start|stop|status [redis|kafka]   (both when no service is named)
# Logs and data live under LS_SERVICES_DIR (.local/, git-ignored). Ports: LS_KAFKA_PORT (9092),
# LS_KAFKA_CONTROLLER_PORT (9093), LS_REDIS_PORT (6379). Tests that must stop a service start
# a private pair this way (tests/private_services.py), on their own ports and directory.
#   scripts/services.sh start|stop|status redis-cluster
# A Redis Cluster (never part of `all`): 3 masters with AOF on ports LS_REDIS_CLUSTER_PORT
# (7000) and up, and with LS_REDIS_REPLICAS=1 one replica each (ports 7003..7005); the URL to
# use is redis+cluster://127.0.0.1:7000/ (README, "Running on a Redis Cluster"). A replica
# takes over a master unreachable for LS_REDIS_CLUSTER_NODE_TIMEOUT_MS (5000).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
local_dir=${LS_SERVICES_DIR:-"$root/.local"}
kafka_port=${LS_KAFKA_PORT:-9092}
controller_port=${LS_KAFKA_CONTROLLER_PORT:-9093}
redis_port=${LS_REDIS_PORT:-6379}
kafka_home="$root/services/kafka"
kafka_dir="$local_dir/kafka"
redis_dir="$local_dir/redis"
cluster_port=${LS_REDIS_CLUSTER_PORT:-7000}
cluster_replicas=${LS_REDIS_REPLICAS:-0}
cluster_node_timeout=${LS_REDIS_CLUSTER_NODE_TIMEOUT_MS:-5000}
cluster_dir="$local_dir/redis-cluster"

log() { echo "services: $*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() {  # name, seconds, command...
  local name=$1 seconds=$2; shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "$name did not become ready within ${seconds}s"; return 1
    fi
    sleep 0.5
  done
}

ensure_redis_installed() {
  command -v redis-server >/dev/null && return
  log "installing redis-server (Debian package)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq redis-server >/dev/null
}

ensure_kafka_jars() {
  [ -f "$kafka_home/target/lib/.complete" ] && return
  log "fetching Kafka jars from Maven Central (mvn dependency:copy-dependencies)"
  (cd "$kafka_home" && mvn -q -B dependency:copy-dependencies \
      -DoutputDirectory=target/lib -DincludeScope=runtime)
  touch "$kafka_home/target/lib/.complete"
}

redis_ping() { redis-cli -p "$redis_port" ping | grep -q PONG; }

start_redis() {
  if redis_ping 2>/dev/null; then log "redis already running on 127.0.0.1:$redis_port"; return; fi
  ensure_redis_installed
  mkdir -p "$redis_dir"
  # appendonly: every acknowledged write is in the AOF file before the reply is sent, so a
  # crash of the Redis process loses nothing; fsync once a second bounds a power loss to 1 s.
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$redis_dir" \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
  wait_for redis 20 redis_ping
  log "redis ready on 127.0.0.1:$redis_port (AOF in $redis_dir)"
}

kafka_ready() {
  port_open "$kafka_port" && "$root/.venv/bin/python" - "$kafka_port" <<'PY'
import sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{sys.argv[1]}", request_timeout_ms=3000)
admin.list_topics()
admin.close()
PY
}

start_kafka() {
  if port_open "$kafka_port"; then log "kafka already listening on 127.0.0.1:$kafka_port"; return; fi
  command -v java >/dev/null || { log "java is required (Java 17)"; exit 1; }
  ensure_kafka_jars
  mkdir -p "$kafka_dir"
  local props="$kafka_dir/server.properties"
  cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$controller_port
listeners=PLAINTEXT://127.0.0.1:$kafka_port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=PLAINTEXT://127.0.0.1:$kafka_port
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$kafka_dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
  cat >"$kafka_dir/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$kafka_dir/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
PROPS
  local cp="$kafka_home/target/lib/*"
  local jvm=(java -Xms256m -Xmx1g -Dlog4j.configuration="file:$kafka_dir/log4j.properties" -cp "$cp")
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    "${jvm[@]}" kafka.tools.StorageTool format -t "$("${jvm[@]}" kafka.tools.StorageTool random-uuid)" \
      -c "$props" >"$kafka_dir/format.log" 2>&1
  fi
  nohup "${jvm[@]}" kafka.Kafka "$props" >"$kafka_dir/stdout.log" 2>&1 &
  echo $! >"$kafka_dir/kafka.pid"
  wait_for kafka 90 kafka_ready || { tail -20 "$kafka_dir/stdout.log" "$kafka_dir/server.log" >&2; exit 1; }
  log "kafka ready on 127.0.0.1:$kafka_port (KRaft; logs in $kafka_dir)"
}

stop_kafka() {
  if [ -f "$kafka_dir/kafka.pid" ] && kill -0 "$(cat "$kafka_dir/kafka.pid")" 2>/dev/null; then
    kill "$(cat "$kafka_dir/kafka.pid")"
    wait_for "kafka shutdown" 60 bash -c "! kill -0 $(cat "$kafka_dir/kafka.pid")" || \
      kill -9 "$(cat "$kafka_dir/kafka.pid")" 2>/dev/null || true
    log "kafka stopped"
  fi
  rm -f "$kafka_dir/kafka.pid"
}

stop_redis() {
  if redis_ping 2>/dev/null && [ -f "$redis_dir/redis.pid" ]; then
    redis-cli -p "$redis_port" shutdown >/dev/null 2>&1 || true
    log "redis stopped"
  fi
}

# --- Redis Cluster: node i listens on cluster_port + i, its data in cluster_dir/<port>/ ---
cluster_ports() {
  local count=$((3 * (1 + cluster_replicas))) i
  for ((i = 0; i < count; i++)); do echo $((cluster_port + i)); done
}

cluster_node_ping() { redis-cli -p "$1" ping | grep -q PONG; }

cluster_ok() { redis-cli -p "$cluster_port" cluster info | grep -q '^cluster_state:ok'; }

start_cluster_node() {  # port: a cluster-enabled redis-server with AOF, unless it answers
  local port=$1 dir="$cluster_dir/$1"
  if cluster_node_ping "$port" 2>/dev/null; then return; fi
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout "$cluster_node_timeout" \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
  wait_for "redis cluster node $port" 20 cluster_node_ping "$port"
}

start_redis_cluster() {
  ensure_redis_installed
  local port nodes=()
  for port in $(cluster_ports); do start_cluster_node "$port"; nodes+=("127.0.0.1:$port"); done
  if ! redis-cli -p "$cluster_port" cluster info | grep -q '^cluster_slots_assigned:16384'; then
    redis-cli --cluster create "${nodes[@]}" --cluster-replicas "$cluster_replicas" \
      --cluster-yes >"$cluster_dir/create.log" 2>&1 || { cat "$cluster_dir/create.log" >&2; exit 1; }
  fi
  wait_for "redis cluster" 30 cluster_ok
  log "redis cluster ready: redis+cluster://127.0.0.1:$cluster_port/ (${#nodes[@]} nodes, AOF in $cluster_dir)"
}

stop_redis_cluster() {  # every node this directory started (a replica may have become a master)
  local pid_file
  for pid_file in "$cluster_dir"/*/redis.pid; do
    [ -f "$pid_file" ] || continue
    local port; port=$(basename "$(dirname "$pid_file")")
    if cluster_node_ping "$port" 2>/dev/null; then
      redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
      log "redis cluster node $port stopped"
    fi
  done
}

status_redis_cluster() {
  if cluster_node_ping "$cluster_port" 2>/dev/null; then
    echo "redis-cluster: $(redis-cli -p "$cluster_port" cluster info | grep '^cluster_state' | tr -d '\r')" \
      "on 127.0.0.1:$cluster_port ($(redis-cli -p "$cluster_port" cluster nodes | wc -l) nodes)"
  else
    echo "redis-cluster: down"
  fi
}

which=${2:-all}
if [ "$which" = redis-cluster ]; then
  case "${1:-}" in
    start) start_redis_cluster ;;
    stop) stop_redis_cluster ;;
    status) status_redis_cluster ;;
    *) echo "usage: $0 start|stop|status redis-cluster" >&2; exit 2 ;;
  esac
  exit 0
fi
case "$which" in all|redis|kafka) ;; *) echo "unknown service '$which': redis, kafka or redis-cluster" >&2; exit 2 ;; esac
wants() { [ "$which" = all ] || [ "$which" = "$1" ]; }

case "${1:-}" in
  start) wants redis && start_redis; wants kafka && start_kafka; true ;;
  stop) wants kafka && stop_kafka; wants redis && stop_redis; true ;;
  status)
    if redis_ping 2>/dev/null; then echo "redis: up on 127.0.0.1:$redis_port"; else echo "redis: down"; fi
    if port_open "$kafka_port"; then echo "kafka: up on 127.0.0.1:$kafka_port"; else echo "kafka: down"; fi ;;
  *) echo "usage: $0 start|stop|status [redis|kafka]" >&2; exit 2 ;;
esac
