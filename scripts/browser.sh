#!/usr/bin/env bash
# Installs Debian's chromium for the Segments page's browser tests (idempotent). The tests
# drive it with Playwright's Python package through its executable path: `playwright install`
# is never run and no browser is downloaded from anywhere but the Debian archive.
set -euo pipefail
command -v chromium >/dev/null && exit 0
echo "browser: installing chromium (Debian package)"
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" = 0 ]; then
  apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null
elif command -v sudo >/dev/null; then
  sudo -E apt-get update -qq >/dev/null && sudo -E apt-get install -y -qq chromium >/dev/null
else
  echo "browser: chromium is missing and apt-get needs root: install the 'chromium' package" >&2
  exit 1
fi
