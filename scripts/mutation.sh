#!/usr/bin/env bash
# Mutation testing of segment_rules/ with tests/segment_rules as the test command (mutmut).
# Long (about an hour on a loaded 2-core machine), so not part of .ci/run; see docs/testing.md.
#   scripts/mutation.sh            run (incremental: mutmut keeps results in mutants/)
#   scripts/mutation.sh --fresh    forget earlier results first
# Environment: LS_MUTATION_JOBS (parallel mutants, default 2), LS_PROPERTY_SCALE (property
# test examples relative to the default run, default 0.3).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-mutation
if [ "${1:-}" = "--fresh" ]; then
  rm -rf mutants
fi
if [ ! -x "$venv/bin/mutmut" ]; then
  # its own venv: mutmut 3.8 needs click>=8.4.2, faust-streaming 0.15.3 needs click<8.4
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "mutmut==3.8.1" "pytest>=8" "pytest-asyncio>=0.23" \
    "hypothesis>=6.100" "jsonschema>=4.20" "redis==8.1.0"
fi
# fewer, fixed examples per property test: each mutant is judged on the same inputs
export LS_PROPERTY_SCALE="${LS_PROPERTY_SCALE:-0.3}" LS_PROPERTY_DERANDOMIZE=1
nice -n 19 "$venv/bin/mutmut" run --max-children "${LS_MUTATION_JOBS:-2}" || true
"$venv/bin/mutmut" export-cicd-stats >/dev/null 2>&1 || true
"$venv/bin/mutmut" results --all true | grep -v ': killed$' || true
