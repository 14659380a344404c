#!/usr/bin/env bash
# The whole test suite: a Release build and an ASan+UBSan build, each running
# every ctest test, then the GGUF reader fuzzed for 60 seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-2}

echo "== Release build"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
ctest --test-dir build -j"$JOBS" --output-on-failure

echo "== ASan + UBSan build"
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGLASSBOX_SANITIZE=ON >/dev/null
cmake --build build-asan -j"$JOBS"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan -j"$JOBS" --output-on-failure

if [ -x src/gguf/run_fuzz.sh ] || [ -f src/gguf/run_fuzz.sh ]; then
  echo "== Fuzzing the GGUF reader for 60 s"
  bash src/gguf/run_fuzz.sh build-fuzz 60
fi

if [ -f train/test_data.py ] && python3 -c 'import numpy' 2>/dev/null; then
  echo "== Training data generator against an independent evaluator"
  (cd train && python3 -m unittest -q test_data)
fi
