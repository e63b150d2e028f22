#!/usr/bin/env bash
# Runs livesegments: local Kafka and Redis (unless KAFKA_BOOTSTRAP/REDIS_URL point elsewhere),
# the topics, and a worker. With --demo, also loads a sample population and example segments
# and prints membership changes as they happen (Ctrl-C stops everything).
set -euo pipefail
cd "$(dirname "$0")"
demo=0
for arg in "$@"; do
  case "$arg" in
    --demo) demo=1 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option $arg (try --demo)" >&2; exit 2 ;;
  esac
done
scripts/bootstrap.sh
if [ -z "${KAFKA_BOOTSTRAP:-}" ] && [ -z "${REDIS_URL:-}" ]; then
  scripts/services.sh start
fi
if [ "$demo" = 1 ] && [ -z "${LS_API_TOKEN:-}" ]; then
  # the Segments page signs in with the API token: the demo makes one up
  LS_API_TOKEN=$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(12))')
  export LS_API_TOKEN
fi
.venv/bin/livesegments settings | grep -E "KAFKA_BOOTSTRAP|REDIS_URL|LS_EVENTS_TOPIC|LS_MEMBERSHIP_TOPIC|LS_WEB_PORT"
ui_host=${LS_WEB_BIND:-127.0.0.1}
case "$ui_host" in 0.0.0.0|::|"") ui_host=127.0.0.1 ;; esac
ui_url="http://$ui_host:${LS_WEB_PORT:-6066}/ui/"
if [ "$demo" = 1 ]; then
  echo "Segments page: $ui_url (sign in with the API token $LS_API_TOKEN)"
elif [ -n "${LS_API_TOKEN:-}" ]; then
  echo "Segments page: $ui_url (sign in with the API token, LS_API_TOKEN)"
else
  echo "Segments page: $ui_url (set LS_API_TOKEN to sign in)"
fi
if [ "$demo" = 0 ]; then
  exec .venv/bin/livesegments worker
fi
mkdir -p .local
.venv/bin/livesegments worker >.local/worker.log 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null; wait $worker 2>/dev/null' EXIT INT TERM
echo "worker started (pid $worker, log .local/worker.log)"
.venv/bin/livesegments demo
