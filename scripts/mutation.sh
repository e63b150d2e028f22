#!/usr/bin/env bash
# Mutation testing of segment_rules/ with tests/segment_rules as the test command (mutmut).
# Long, so not part of .ci/run; see docs/testing.md ("Mutation testing").
#   scripts/mutation.sh                 every mutant (incremental: mutmut keeps results in
#                                       mutants/; ~2,400 mutants, about 2 h on a 2-core machine)
#   scripts/mutation.sh --sample N      a seeded simple random sample of N mutants over all
#                                       files (LS_MUTATION_SEED, default 13), then its summary
#   scripts/mutation.sh --paths F...    every mutant of these files of segment_rules/ only
#                                       (e.g. segment_rules/history.py), then their summary;
#                                       with --sample N before it, a sample of those mutants
#   scripts/mutation.sh --fresh ...     forget earlier results first
# Environment: LS_MUTATION_JOBS (parallel mutants, default 2), LS_PROPERTY_SCALE (property
# test examples relative to the default run, default 0.1), LS_MUTATION_SEED, LS_MUTATION_NICE
# (the niceness of the run, default 19).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-mutation
if [ "${1:-}" = "--fresh" ]; then
  rm -rf mutants
  shift
fi
sample=""
if [ "${1:-}" = "--sample" ]; then
  sample="${2:?--sample needs a number of mutants}"
  shift 2
fi
paths=()
if [ "${1:-}" = "--paths" ]; then
  shift
  paths=("$@")
  [ ${#paths[@]} -gt 0 ] || { echo "--paths needs files of segment_rules/" >&2; exit 2; }
  for path in "${paths[@]}"; do
    case "$path" in
      segment_rules/*.py) [ -f "$path" ] || { echo "no such file: $path" >&2; exit 2; } ;;
      *) echo "--paths takes files of segment_rules/ (got: $path)" >&2; exit 2 ;;
    esac
  done
fi
if [ ! -x "$venv/bin/mutmut" ]; then
  # its own venv: mutmut 3.8 needs click>=8.4.2, faust-streaming 0.15.3 needs click<8.4
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "mutmut==3.8.1" "pytest>=8" "pytest-asyncio>=0.23" \
    "pytest-timeout==2.4.0" "hypothesis>=6.100" "jsonschema>=4.20" "redis==8.1.0" \
    "msgpack==1.2.4"
fi
# tests/conftest.py imports state.connect (copied by also_copy), which needs msgpack
"$venv/bin/python" -c "import msgpack" 2>/dev/null || "$venv/bin/pip" install -q "msgpack==1.2.4"
# fewer, fixed examples per property test: each mutant is judged on the same inputs
# (LS_HYPOTHESIS=ci: the scale is of the whole budget, as in the runs docs/testing.md reports)
export LS_PROPERTY_SCALE="${LS_PROPERTY_SCALE:-0.1}" LS_PROPERTY_DERANDOMIZE=1 LS_HYPOTHESIS=ci
# mutmut mutates the .py files: the tests must run them, never the compiled build
export LS_COMPILED=0
mutmut=("nice" "-n" "${LS_MUTATION_NICE:-19}" "$venv/bin/mutmut")
if [ -z "$sample" ] && [ ${#paths[@]} -eq 0 ]; then
  "${mutmut[@]}" run --max-children "${LS_MUTATION_JOBS:-2}" || true
  "$venv/bin/mutmut" results --all true | grep -v ': killed$' || true
  exit 0
fi
if ! ls mutants/segment_rules/*.meta >/dev/null 2>&1; then
  # mutmut generates every mutant (and maps tests to functions) on its first run
  "${mutmut[@]}" run --max-children 1 "segment_rules.errors.*__mutmut_1" >/tmp/ls-mutation-first-run.log 2>&1 || true
  if ! "$venv/bin/mutmut" results --all true | grep "segment_rules.errors\..*__mutmut_1:" | grep -vq "not checked"; then
    # the tests failed on the unmutated code, or could not be collected in mutants/
    tail -n 40 /tmp/ls-mutation-first-run.log >&2
    exit 1
  fi
fi
"$venv/bin/mutmut" results --all true | sed -n 's/^ *\([^ :]*__mutmut_[0-9]*\):.*/\1/p' |
  sort >mutants/all.txt
python3 - "${sample:-all}" "${LS_MUTATION_SEED:-13}" "${paths[@]}" <<'EOF' >mutants/sample.txt
import random, sys
names = open("mutants/all.txt").read().split()
# segment_rules/history.py -> mutants named segment_rules.history.<function>__mutmut_<n>
modules = tuple(p.removesuffix(".py").replace("/", ".") + "." for p in sys.argv[3:])
if modules:
    names = [n for n in names if n.startswith(modules)]
if sys.argv[1] != "all":
    names = random.Random(int(sys.argv[2])).sample(names, min(int(sys.argv[1]), len(names)))
print("\n".join(sorted(names)))
EOF
echo "$(wc -l <mutants/sample.txt) mutants to run" >&2
xargs "${mutmut[@]}" run --max-children "${LS_MUTATION_JOBS:-2}" <mutants/sample.txt >/dev/null || true
"$venv/bin/mutmut" results --all true | grep -wFf mutants/sample.txt |
  sed 's/.*: //' | sort | uniq -c
"$venv/bin/mutmut" results --all true | grep -wFf mutants/sample.txt | grep -v ': killed$' || true
