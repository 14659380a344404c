#!/usr/bin/env bash
# Writes the synthetic benchmark models (random weights, real shapes and
# metadata, the real Qwen3 vocabulary) with `glassbox synth-model`:
#   qwen3-0.6b and r1-distill-qwen-1.5b, each in F16, Q8_0 and Q4_K_M.
# They take about 9 GB; write them outside the repository.
#
# Usage: bench/scripts/make_bench_models.sh [OUT_DIR]   (default /work/benchmodels)
# Environment: GLASSBOX (default build/glassbox), THREADS (default: all),
#              SEED (default 1), PRESETS, TYPES (space-separated subsets).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
glassbox=${GLASSBOX:-$repo/build/glassbox}
out_dir=${1:-/work/benchmodels}
vocab=$repo/tests/data/reference/tokenizers/qwen3.vocab.gguf
presets=${PRESETS:-"qwen3-0.6b r1-distill-qwen-1.5b"}
types=${TYPES:-"F16 Q8_0 Q4_K_M"}
threads=${THREADS:-0}
seed=${SEED:-1}

mkdir -p "$out_dir"
for preset in $presets; do
  for type in $types; do
    out="$out_dir/$preset.$(echo "$type" | tr 'A-Z' 'a-z').gguf"
    if [ -s "$out" ]; then
      echo "exists: $out"
      continue
    fi
    # Write to a temporary name so an interrupted run leaves no half file.
    "$glassbox" synth-model --preset "$preset" --type "$type" --vocab "$vocab" \
      --seed "$seed" -t "$threads" -o "$out.part"
    mv "$out.part" "$out"
  done
done
