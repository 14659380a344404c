#!/usr/bin/env bash
# Runs the glassbox serve end-to-end tests (ctest: server_e2e). Exit 77 means
# "skipped" (node/npm missing, or the openai package cannot be installed).
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "server_e2e skipped: node and npm are needed (apt-get install nodejs npm)"
  exit 77
fi
if [ ! -f "$here/node_modules/openai/package.json" ]; then
  echo "installing the openai client (npm ci) in $here"
  if ! (cd "$here" && timeout 300 npm ci --no-audit --no-fund --loglevel=error); then
    echo "server_e2e skipped: 'npm ci' failed in $here (is the npm registry reachable?)"
    exit 77
  fi
fi
if [ -z "${GLASSBOX_BIN:-}" ] || [ ! -x "$GLASSBOX_BIN" ]; then
  echo "server_e2e: GLASSBOX_BIN does not name the glassbox binary" >&2
  exit 1
fi
if [ -z "${GLASSBOX_TEST_PG_URL:-}" ]; then
  echo "note: GLASSBOX_TEST_PG_URL is not set: the PostgreSQL cases are skipped"
fi
cd "$here"
# One test file at a time (each starts servers of its own); Node 18 lacks the flag.
major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$major" -ge 20 ]; then
  exec node --test --test-concurrency=1 ./*.test.mjs
fi
exec node --test ./*.test.mjs
