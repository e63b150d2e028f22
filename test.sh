#!/usr/bin/env bash
# The whole test suite: lint, types, then unit and integration tests against the real
# Kafka broker and Redis (started here on loopback unless KAFKA_BOOTSTRAP/REDIS_URL are set).
# Arguments go to pytest: `./test.sh -m "not integration"` needs (and starts) no service.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
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
