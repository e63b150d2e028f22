#!/usr/bin/env bash
# Creates .venv and installs livesegments with its dev tools (idempotent, quick when done).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[dev]'
  touch "$stamp"
fi
# The compiled build of the hot modules (livesegments_compiled.py), outside the source tree,
# rebuilt only when missing or stale; LS_COMPILED=0 skips it (pure Python, no C compiler needed)
if [ "${LS_COMPILED:-auto}" != 0 ]; then
  .venv/bin/python scripts/build_compiled.py --if-stale
fi
# Debian's chromium for the browser tests of the Segments page (tests/streams/web/ui/)
scripts/browser.sh
