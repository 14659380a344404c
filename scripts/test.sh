#!/usr/bin/env bash
# The whole test suite: a Release build and an ASan+UBSan build, each running
# every ctest test (the server's end-to-end tests with the openai npm client
# and a real PostgreSQL in the Release build), the trace explorer's browser
# tests, 60 seconds of fuzzing each of the GGUF reader and the Jinja renderer, and the training-data tests.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}

# A throwaway PostgreSQL on loopback for the audit-store tests.
if PG_URL=$(bash tests/server/start_postgres.sh 2>/tmp/glassbox-pg.log | tail -n 1) && [ -n "$PG_URL" ]; then
  export GLASSBOX_TEST_PG_URL="$PG_URL"
  trap 'bash tests/server/start_postgres.sh stop >/dev/null 2>&1 || true' EXIT
  echo "== PostgreSQL for the tests: $GLASSBOX_TEST_PG_URL"
else
  echo "== PostgreSQL could not be started (see /tmp/glassbox-pg.log): its audit tests are skipped"
fi

echo "== Formatting (clang-format)"
bash scripts/format.sh --check

echo "== Release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build -j"$JOBS" --output-on-failure

echo "== Trace explorer in the browser"
GLASSBOX_BIN=build/glassbox bash web/tests/run.sh

echo "== ASan + UBSan build"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGLASSBOX_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
# The end-to-end server tests ran against the Release binary above.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -j"$JOBS" --output-on-failure -E 'server_e2e'

echo "== Fuzzing the GGUF reader and the Jinja renderer for 60 s each"
bash src/gguf/run_fuzz.sh build-fuzz 60

echo "== Training data generator against an independent evaluator"
(cd train && python3 -m unittest -q test_data)
