#!/usr/bin/env bash
# The whole test suite: lint, types, then unit and integration tests against the real
# Kafka broker and Redis (started here on loopback unless KAFKA_BOOTSTRAP/REDIS_URL are set).
# Arguments go to pytest: `./test.sh -m "not integration"` needs (and starts) no service.
# With no arguments a second pass runs the Redis Cluster suite (below) against a local Redis
# Cluster (started here on 7000.. unless LS_TEST_REDIS_CLUSTER_URL names one);
# LS_TEST_REDIS_CLUSTER=0 skips it.
set -euo pipefail
cd "$(dirname "$0")"
# every property test's whole budget of examples (a bare pytest runs a tenth: tests/hypothesis_profiles.py)
export LS_HYPOTHESIS="${LS_HYPOTHESIS:-ci}"
scripts/bootstrap.sh
# the tests run the compiled build bootstrap.sh made (the benchmark's), or fail naming what is
# stale; LS_COMPILED=0 runs the pure modules instead
export LS_COMPILED="${LS_COMPILED:-1}"
if [ -z "${KAFKA_BOOTSTRAP:-}" ] && [ -z "${REDIS_URL:-}" ] && [[ " $* " != *"not integration"* ]]; then
  scripts/services.sh start
fi
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== mypy"
.venv/bin/mypy
# tests/cluster/ starts its own 3-broker Kafka and Redis on free ports (services.sh start
# kafka-cluster, under .local/private/) and removes them after: nothing to start for it here.
echo "== pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"

# The Redis Cluster suite: the integration tests of the state stores, the engine,
# effectively-once, lifecycle, jobs, exports, insights, the HTTP API and the CLI again, on a
# Redis Cluster (redis+cluster:// URL). The node-failure tests
# (tests/streams/test_redis_cluster_failures.py) ran above, on clusters of their own.
REDIS_CLUSTER_SUITE=(
  tests/state tests/insights tests/streams/exports tests/streams/web
  tests/streams/test_engine.py tests/streams/test_effectively_once.py
  tests/streams/test_lifecycle.py tests/streams/test_jobs.py tests/streams/test_job_reports.py
  tests/streams/test_exports_flow.py tests/streams/test_schedules.py
  tests/streams/test_state_behind.py tests/streams/test_forget.py
  tests/streams/operator
)
if [ $# -eq 0 ] && [ "${LS_TEST_REDIS_CLUSTER:-1}" != 0 ]; then
  cluster_url=${LS_TEST_REDIS_CLUSTER_URL:-}
  if [ -z "$cluster_url" ]; then
    scripts/services.sh start redis-cluster
    cluster_url="redis+cluster://127.0.0.1:${LS_REDIS_CLUSTER_PORT:-7000}/"
  fi
  echo "== pytest on a Redis Cluster ($cluster_url)"
  REDIS_URL=$cluster_url .venv/bin/python -m pytest -q -p no:cacheprovider -m integration \
    "${REDIS_CLUSTER_SUITE[@]}"
fi
