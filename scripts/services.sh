#!/usr/bin/env bash
# Local Kafka (KRaft, single node, built from Maven Central jars) and Redis (AOF on),
# both on loopback. Idempotent: `start` leaves running services alone.
#   scripts/services.sh start|stop|status [redis|kafka|kafka-cluster|redis-cluster]
# (redis and kafka when no service is named; the cluster only when named).
# Logs and data live under LS_SERVICES_DIR (.local/, git-ignored). Ports: LS_KAFKA_PORT (9092),
# LS_KAFKA_CONTROLLER_PORT (9093), LS_REDIS_PORT (6379). Tests that must stop a service start
# a private pair this way (tests/private_services.py), on their own ports and directory.
#   scripts/services.sh start|stop|status redis-cluster
# A Redis Cluster (never started by `start` alone; `stop` alone stops it too): 3 masters with AOF on ports LS_REDIS_CLUSTER_PORT
# (7000) and up, and with LS_REDIS_REPLICAS=1 one replica each (ports 7003..7005); the URL to
# use is redis+cluster://127.0.0.1:7000/ (README, "Running on a Redis Cluster"). A replica
# takes over a master unreachable for LS_REDIS_CLUSTER_NODE_TIMEOUT_MS (5000).
# kafka-cluster: three KRaft nodes (each broker and controller) on LS_KAFKA_CLUSTER_PORT
# (9192) + 0..2, controllers on LS_KAFKA_CLUSTER_CONTROLLER_PORT (9292) + 0..2; `start`
# (re)starts only the nodes that are down, so a test can SIGKILL one and bring it back.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
local_dir=${LS_SERVICES_DIR:-"$root/.local"}
kafka_port=${LS_KAFKA_PORT:-9092}
controller_port=${LS_KAFKA_CONTROLLER_PORT:-9093}
redis_port=${LS_REDIS_PORT:-6379}
kafka_home="$root/services/kafka"
kafka_dir="$local_dir/kafka"
redis_dir="$local_dir/redis"
aof_rewrite_min=${LS_REDIS_AOF_REWRITE_MIN:-1gb}  # see start_redis
cluster_port=${LS_REDIS_CLUSTER_PORT:-7000}
cluster_replicas=${LS_REDIS_REPLICAS:-0}
cluster_node_timeout=${LS_REDIS_CLUSTER_NODE_TIMEOUT_MS:-5000}
cluster_dir="$local_dir/redis-cluster"
kafka_cluster_port=${LS_KAFKA_CLUSTER_PORT:-9192}
kafka_cluster_controller_port=${LS_KAFKA_CLUSTER_CONTROLLER_PORT:-9292}
kafka_cluster_dir="$local_dir/kafka-cluster"
kafka_cluster_nodes=(1 2 3)
# The single broker's JVM: JDK 17's defaults (G1) and LS_KAFKA_HEAP_OPTS' heap; LS_KAFKA_JVM_OPTS
# adds options, e.g. another collector or a GC log to read with `benchmarks.gclog`
# (-Xlog:gc*,safepoint:file=/tmp/b/gc.log:time,uptime,level,tags). Measured and not kept
# (docs/performance.md, thirteenth session, `brokerjvm`): G1 stops this broker 104-326 ms in a
# ~25 s phase at 1,000 events/s (young pauses of 9-51 ms, slow for want of a free core), ZGC
# (-Xms1g -Xmx1g -XX:+UseZGC) 1-9 ms; yet in two alternated pairs ZGC gave the worse p99
# (84.5 and 120.5 against 49.2 and 48.4 ms) at more broker CPU (12.7, 11.6 against 11.8, 11.0 s):
# on two busy cores the pauses are not what sets the tail. Kafka's own G1 options (-Xms1g, pause
# goal 20 ms, IHOP 35) stopped it less (180-186 ms) for p99 92.8 and 61.5 against 89.6 and 44.9
# ms and ~1 broker CPU s more: not kept either. The cluster's nodes keep their own
# small heap and the serial collector (three JVMs on two cores).
read -r -a kafka_jvm_opts <<<"${LS_KAFKA_JVM_OPTS-}"
read -r -a kafka_heap <<<"${LS_KAFKA_HEAP_OPTS:-"-Xms256m -Xmx1g"}"

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
  # auto-aof-rewrite-min-size: Redis' 64 MB rewrote the bench's 100k customers (a forked
  # child, ~2 s of a core) every ~30 s at 1,000 events/s (~1.1 KB of AOF an event), and each
  # rewrite set the p99 of the latency phase it fell in (docs/performance.md, session 15).
  redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$redis_dir" \
    --appendonly yes --appendfsync everysec --save "" --auto-aof-rewrite-min-size "$aof_rewrite_min" \
    --daemonize yes --pidfile "$redis_dir/redis.pid" --logfile "$redis_dir/redis.log"
  wait_for redis 20 redis_ping
  log "redis ready on 127.0.0.1:$redis_port (AOF in $redis_dir)"
}

kafka_ready() {  # port [brokers wanted]
  port_open "$1" && "$root/.venv/bin/python" - "$1" "${2:-1}" <<'PY'
import sys
from kafka import KafkaAdminClient
admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{sys.argv[1]}", request_timeout_ms=3000)
admin.list_topics()
brokers = admin.describe_cluster()["brokers"]
admin.close()
sys.exit(0 if len(brokers) >= int(sys.argv[2]) else 1)
PY
}

kafka_log4j() {  # dir: the broker's log4j.properties, logging to dir/server.log
  cat >"$1/log4j.properties" <<PROPS
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$1/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
PROPS
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
  kafka_log4j "$kafka_dir"
  local cp="$kafka_home/target/lib/*"
  local jvm=(java "${kafka_heap[@]}" ${kafka_jvm_opts[@]+"${kafka_jvm_opts[@]}"} -Dlog4j.configuration="file:$kafka_dir/log4j.properties" -cp "$cp")
  if [ ! -f "$kafka_dir/data/meta.properties" ]; then
    "${jvm[@]}" kafka.tools.StorageTool format -t "$("${jvm[@]}" kafka.tools.StorageTool random-uuid)" \
      -c "$props" >"$kafka_dir/format.log" 2>&1
  fi
  nohup "${jvm[@]}" kafka.Kafka "$props" >"$kafka_dir/stdout.log" 2>&1 &
  echo $! >"$kafka_dir/kafka.pid"
  wait_for kafka 90 kafka_ready "$kafka_port" || { tail -20 "$kafka_dir/stdout.log" "$kafka_dir/server.log" >&2; exit 1; }
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

# Every replica has finished its first sync with its master. A replica that never synced
# refuses to take over ("Disconnected from master for longer than allowed"), so a master
# killed before that point would leave its slots down for good (issue 10).
cluster_replicas_synced() {
  local port
  for port in $(cluster_ports); do
    if redis-cli -p "$port" info replication | grep -q '^role:slave'; then
      redis-cli -p "$port" info replication | grep -q '^master_link_status:up' || return 1
      redis-cli -p "$port" info replication | grep -q '^master_sync_in_progress:0' || return 1
    fi
  done
}

start_cluster_node() {  # port: a cluster-enabled redis-server with AOF, unless it answers
  local port=$1 dir="$cluster_dir/$1"
  if cluster_node_ping "$port" 2>/dev/null; then return; fi
  mkdir -p "$dir"
  redis-server --bind 127.0.0.1 --port "$port" --dir "$dir" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout "$cluster_node_timeout" \
    --appendonly yes --appendfsync everysec --save "" --auto-aof-rewrite-min-size "$aof_rewrite_min" \
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
  if [ "$cluster_replicas" -gt 0 ]; then wait_for "redis cluster replicas in sync" 60 cluster_replicas_synced; fi
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

# ---- kafka-cluster: three KRaft nodes, each broker and controller (replication 3, min ISR 2)

kafka_cluster_node_dir() { echo "$kafka_cluster_dir/node-$1"; }
kafka_cluster_node_port() { echo $((kafka_cluster_port + $1 - 1)); }
kafka_cluster_node_pid() {  # the node's pid when it runs (a killed, unreaped one does not), else nothing
  local pid_file state; pid_file="$(kafka_cluster_node_dir "$1")/kafka.pid"
  [ -f "$pid_file" ] || return 0
  state=$(ps -o stat= -p "$(cat "$pid_file")" 2>/dev/null) || return 0
  [[ "$state" == Z* ]] || cat "$pid_file"
}

kafka_cluster_bootstrap() {
  local n out=()
  for n in "${kafka_cluster_nodes[@]}"; do out+=("127.0.0.1:$(kafka_cluster_node_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

kafka_cluster_node_properties() {  # node
  local n=$1 dir; dir=$(kafka_cluster_node_dir "$1")
  local voters=() m
  for m in "${kafka_cluster_nodes[@]}"; do
    voters+=("$m@127.0.0.1:$((kafka_cluster_controller_port + m - 1))")
  done
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
listeners=PLAINTEXT://127.0.0.1:$(kafka_cluster_node_port "$n"),CONTROLLER://127.0.0.1:$((kafka_cluster_controller_port + n - 1))
advertised.listeners=PLAINTEXT://127.0.0.1:$(kafka_cluster_node_port "$n")
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
default.replication.factor=3
min.insync.replicas=2
unclean.leader.election.enable=false
offsets.topic.replication.factor=3
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
group.initial.rebalance.delay.ms=0
log.retention.hours=168
PROPS
}

start_kafka_cluster_node() {  # node: start it unless it runs
  local n=$1 dir; dir=$(kafka_cluster_node_dir "$1")
  if [ -n "$(kafka_cluster_node_pid "$n")" ]; then return; fi
  if port_open "$(kafka_cluster_node_port "$n")"; then
    log "kafka-cluster node $n: port $(kafka_cluster_node_port "$n") is taken by another process"; exit 1
  fi
  mkdir -p "$dir"
  kafka_cluster_node_properties "$n"
  kafka_log4j "$dir"
  local jvm=(java -Xms128m -Xmx256m -XX:+UseSerialGC
    -Dlog4j.configuration="file:$dir/log4j.properties" -cp "$kafka_home/target/lib/*")
  if [ ! -f "$dir/data/meta.properties" ]; then
    "${jvm[@]}" kafka.tools.StorageTool format -t "$(cat "$kafka_cluster_dir/cluster.id")" \
      -c "$dir/server.properties" >"$dir/format.log" 2>&1
  fi
  nohup "${jvm[@]}" kafka.Kafka "$dir/server.properties" >"$dir/stdout.log" 2>&1 &
  echo $! >"$dir/kafka.pid"
  log "kafka-cluster node $n starting (pid $!, 127.0.0.1:$(kafka_cluster_node_port "$n"))"
}

start_kafka_cluster() {
  command -v java >/dev/null || { log "java is required (Java 17)"; exit 1; }
  ensure_kafka_jars
  mkdir -p "$kafka_cluster_dir"
  if [ ! -f "$kafka_cluster_dir/cluster.id" ]; then
    java -cp "$kafka_home/target/lib/*" kafka.tools.StorageTool random-uuid 2>/dev/null >"$kafka_cluster_dir/cluster.id"
  fi
  local n
  for n in "${kafka_cluster_nodes[@]}"; do start_kafka_cluster_node "$n"; done
  for n in "${kafka_cluster_nodes[@]}"; do  # every node answers and sees all three brokers
    wait_for "kafka-cluster node $n" 120 kafka_ready "$(kafka_cluster_node_port "$n")" 3 || {
      tail -n 20 "$(kafka_cluster_node_dir "$n")/stdout.log" "$(kafka_cluster_node_dir "$n")/server.log" >&2
      exit 1
    }
  done
  log "kafka-cluster ready: $(kafka_cluster_bootstrap) (KRaft x3; logs in $kafka_cluster_dir)"
}

stop_kafka_cluster() {
  local n pid pids=()
  for n in "${kafka_cluster_nodes[@]}"; do
    pid=$(kafka_cluster_node_pid "$n") || true
    if [ -n "$pid" ]; then kill "$pid"; pids+=("$pid"); fi
  done
  for pid in "${pids[@]}"; do  # all at once: the last ones lose their quorum, do not wait long
    wait_for "kafka-cluster shutdown" 30 bash -c "! ps -o stat= -p $pid | grep -qv Z" || kill -9 "$pid" 2>/dev/null || true
  done
  rm -f "$kafka_cluster_dir"/node-*/kafka.pid
  [ ${#pids[@]} -gt 0 ] && log "kafka-cluster stopped"
  true
}

status_kafka_cluster() {
  local n
  for n in "${kafka_cluster_nodes[@]}"; do
    if [ -n "$(kafka_cluster_node_pid "$n")" ]; then
      echo "kafka-cluster node $n: up on 127.0.0.1:$(kafka_cluster_node_port "$n")"
    else
      echo "kafka-cluster node $n: down"
    fi
  done
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
case "$which" in
  all|redis|kafka|kafka-cluster) ;;
  *) echo "unknown service '$which': redis, kafka, kafka-cluster or redis-cluster" >&2; exit 2 ;;
esac
wants() { [ "$which" = all ] || [ "$which" = "$1" ]; }

case "${1:-}" in
  start) wants redis && start_redis; wants kafka && start_kafka; true ;;
  stop) wants kafka && stop_kafka; wants redis && stop_redis; true ;;
  status)
    if wants redis; then
      if redis_ping 2>/dev/null; then echo "redis: up on 127.0.0.1:$redis_port"; else echo "redis: down"; fi
    fi
    if wants kafka; then
      if port_open "$kafka_port"; then echo "kafka: up on 127.0.0.1:$kafka_port"; else echo "kafka: down"; fi
    fi
    true ;;
  *) echo "usage: $0 start|stop|status [redis|kafka|kafka-cluster]" >&2; exit 2 ;;
esac

case "${1:-}:$which" in  # the cluster runs only when named
  start:kafka-cluster) start_kafka_cluster ;;
  stop:kafka-cluster) stop_kafka_cluster ;;
  stop:all) if [ -d "$cluster_dir" ]; then stop_redis_cluster; fi ;;
  status:kafka-cluster) status_kafka_cluster ;;
  status:all) if [ -d "$kafka_cluster_dir" ]; then status_kafka_cluster; fi ;;
esac
