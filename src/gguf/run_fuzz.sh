#!/usr/bin/env bash
# Fuzz the GGUF reader, then the Jinja renderer, with libFuzzer (+ASan/UBSan):
# the two parsers of untrusted input (model files; chat templates from model
# files and requests).
#   src/gguf/run_fuzz.sh BUILD_DIR SECONDS
# Configures a clang build in BUILD_DIR with GLASSBOX_FUZZ=ON, builds gguf_fuzz
# and jinja_fuzz, seeds gguf_fuzz's corpus from the small reference GGUFs (plus
# truncated and trimmed copies, so short inputs reach every section quickly)
# and jinja_fuzz's from the reference chat templates, and runs each for
# SECONDS. Exits non-zero when libFuzzer reports a finding (crash-*/leak-*/
# timeout-* files land in BUILD_DIR/fuzz-artifacts/ or jinja-artifacts/).
set -euo pipefail

if [[ $# -ne 2 ]]; then
  echo "usage: $0 BUILD_DIR SECONDS" >&2
  exit 2
fi
BUILD_DIR=$(realpath -m "$1")
SECONDS_TO_RUN=$2
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CXX_BIN=${CXX:-clang++-14}
if ! command -v "$CXX_BIN" >/dev/null; then
  echo "error: $CXX_BIN not found (libFuzzer needs clang; set CXX)" >&2
  exit 2
fi

# Only the fuzz targets are built, so the rest of the tree need not compile here.
# GLASSBOX_CMAKE_SOURCE may name another top-level CMake project that adds
# src/gguf (useful while unrelated layers of the tree do not configure).
cmake -S "${GLASSBOX_CMAKE_SOURCE:-$ROOT}" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CXX_BIN" -DGLASSBOX_FUZZ=ON -DGLASSBOX_TESTS=OFF >/dev/null
cmake --build "$BUILD_DIR" --target gguf_fuzz jinja_fuzz -j2

CORPUS="$BUILD_DIR/fuzz-corpus"
ARTIFACTS="$BUILD_DIR/fuzz-artifacts"
mkdir -p "$CORPUS" "$ARTIFACTS"
MAX_LEN=65536
for f in "$ROOT"/tests/data/reference/models/*.gguf; do
  size=$(stat -c %s "$f")
  (( size < 2000000 )) || continue
  name=$(basename "$f" .gguf)
  # A whole small file would exceed -max_len; keep prefixes that end inside
  # the header, the metadata and the tensor infos, plus the first 64 KiB.
  for len in 24 100 1000 4096 16384 $MAX_LEN; do
    head -c "$len" "$f" > "$CORPUS/$name.head$len"
  done
done
# Complete, valid seeds under -max_len: each reference file's metadata plus a
# few of its smallest tensors (every section present, offsets rewritten).
python3 "$ROOT/src/gguf/make_fuzz_seeds.py" "$CORPUS" $MAX_LEN "$ROOT"/tests/data/reference/models/*.gguf
# Inputs that once found a bug (src/gguf/fuzz_regressions/, named for the bug)
# run first, so a regression fails at once rather than by chance.
cp "$ROOT"/src/gguf/fuzz_regressions/*.gguf "$CORPUS"/

# Runs fuzz target $1 on corpus $2 for SECONDS, findings into $3; fails when
# libFuzzer left a finding there.
run_target() {
  local name=$1 corpus=$2 artifacts=$3 status
  echo "fuzzing $name for ${SECONDS_TO_RUN}s (corpus: $(ls "$corpus" | wc -l) files)"
  local fuzzer
  fuzzer=$(find "$BUILD_DIR" -name "$name" -type f -perm -u+x | head -n 1)
  set +e
  (cd "$artifacts" && "$fuzzer" -max_total_time="$SECONDS_TO_RUN" -max_len=$MAX_LEN \
    -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$artifacts/" -print_final_stats=1 "$corpus")
  status=$?
  set -e
  if ls "$artifacts"/crash-* "$artifacts"/leak-* "$artifacts"/timeout-* "$artifacts"/oom-* >/dev/null 2>&1; then
    echo "fuzzing $name found problems: see $artifacts" >&2
    exit 1
  fi
  return $status
}

run_target gguf_fuzz "$CORPUS" "$ARTIFACTS"

# The Jinja renderer: the reference chat templates (every template family
# glassbox renders) as seeds.
JINJA_CORPUS="$BUILD_DIR/jinja-corpus"
JINJA_ARTIFACTS="$BUILD_DIR/jinja-artifacts"
mkdir -p "$JINJA_CORPUS" "$JINJA_ARTIFACTS"
python3 - "$JINJA_CORPUS" $MAX_LEN "$ROOT"/tests/data/reference/templates/*.json <<'PY'
import json, pathlib, sys
out, max_len = pathlib.Path(sys.argv[1]), int(sys.argv[2])
for path in map(pathlib.Path, sys.argv[3:]):
    source = json.loads(path.read_text())["template_source"].encode()
    if len(source) <= max_len:
        (out / (path.stem + ".jinja")).write_bytes(source)
PY
run_target jinja_fuzz "$JINJA_CORPUS" "$JINJA_ARTIFACTS"
