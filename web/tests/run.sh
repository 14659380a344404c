#!/usr/bin/env bash
# Browser tests of the trace explorer: starts `glassbox serve` and drives
# Debian's chromium headless with playwright-core (tests/explorer.test.mjs).
#
#   GLASSBOX_BIN=build/glassbox web/tests/run.sh
#
# Exits non-zero when a test fails. Without chromium it prints a SKIP line and
# exits 0 (install it with `apt-get install chromium`).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
web=$(dirname "$here")
repo=$(dirname "$web")
chromium=${CHROMIUM_BIN:-/usr/bin/chromium}

if [ ! -x "$chromium" ]; then
  echo "SKIP: trace explorer browser tests: chromium not found at $chromium (apt-get install chromium)"
  exit 0
fi

bin=${GLASSBOX_BIN:-$repo/build/glassbox}
case $bin in /*) ;; *) bin=$(pwd)/$bin ;; esac
if [ ! -x "$bin" ]; then
  echo "error: the glassbox binary was not found at $bin (build it, or set GLASSBOX_BIN)" >&2
  exit 1
fi
export GLASSBOX_BIN=$bin
command -v node >/dev/null || { echo "error: node is needed to run the browser tests" >&2; exit 1; }

cd "$web"
# playwright-core is the only module the tests load; install the locked
# dependencies when they are missing or older than the lock file.
if [ ! -d node_modules/playwright-core ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

node --test --test-reporter=spec --test-concurrency=1 tests/explorer.test.mjs
